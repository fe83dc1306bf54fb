"""The peer benchmark: one command, per model float vs the int8 peers vs tinylstm.

    .venv-peers/bin/python bench/peers/run.py [NAME ...] [--limit N] [--latency-n N] [--no-doc]

NAME (default: all of :data:`MODELS`) is looked up as ``examples/models/<NAME>.onnx`` with
``<NAME>_calib.npz`` and ``<NAME>_test.npz``, else as a stand-in written by standins.py
(``random_h64`` and ``japanese_vowels`` are written on demand). Per model it runs on the
test set, every sequence unpadded:

- float: onnxruntime on the ONNX file (the reference for every distance below);
- ORT dynamic int8: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per tensor
  by default, and ``per_channel=True``; DynamicQuantizeLSTM: only the two matmuls in int8,
  the rest float);
- TFLite int8 (LiteRT) and TFLM int8: the tf_keras twin (keras_twin.py) converted to full
  int8 (tflite_int8.py), state reset before every sequence;
- tinylstm int8 (numpy simulator) and tinylstm host C (the generated C compiled for the host,
  gcc -O2, outputs checked equal to the simulator's, latency timed inside the C program): see
  ``tinylstm_runtimes`` and tinylstm_c.py. Their flash is the generated C's (Cortex-M4 -Os).

and reports the task criterion (adding: |err| < 0.04; classifiers: argmax), the distance to
float, flash bytes and the median host latency per sequence (batch 1; for the Python
interpreters this includes the binding overhead of a call) with its ratio to float
onnxruntime. Results go to bench/peers/out/results.json (merged per model) and, unless
``--no-doc``, to the results section of docs/peers.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets TF_USE_LEGACY_KERAS before TensorFlow)
import report  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.data import tasks  # noqa: E402

MODELS = ("japanese_vowels", "adding_T100", "adding_T400", "temporal_order_6a", "random_h64")
RESULTS = common.OUT / "results.json"
SIMULATOR, HOST_C, TFLM = "tinylstm int8 (simulator)", "tinylstm host C", "TFLM int8"
HOST_C8 = "tinylstm host C, int8 LSTM weights"


@dataclass
class Row:
    """One runtime's result on one model."""

    runtime: str
    wrong: int | None = None  # by the task criterion; None: no task
    n: int = 0
    max_abs_diff: float | None = None  # vs float onnxruntime, over the scored sequences
    mean_abs_diff: float | None = None
    flash_bytes: int | None = None
    latency_us: float | None = None  # median per sequence, batch 1, host (preset: measured by the runtime itself)
    note: str = ""


@dataclass
class ModelResult:
    name: str
    origin: str
    summary: str  # architecture
    test_sequences: int
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    c_mismatches: int | None = None  # host C vs simulator, sequences that differ (must be 0)


# --------------------------------------------------------------------------------------
# Runtimes
# --------------------------------------------------------------------------------------
def _ort_session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_runner(path: Path, fm: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Canonical (batch, time, features) -> (batch, outputs), whatever the ONNX layout."""
    sess = _ort_session(path)
    name = sess.get_inputs()[0].name
    return common.in_onnx_layout(fm, lambda x: sess.run(None, {name: x})[0])


def ort_dynamic_int8(src: Path, dst: Path, per_channel: bool) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    return dst


def tinylstm_runtimes(fm: Any, model: common.PeerModel, limit: int | None, latency_seqs: list[np.ndarray],
                      work: Path) -> list[tuple[Row, Callable[[np.ndarray], np.ndarray]]]:
    """tinylstm's own int8 rows (a missing or changed API prints a line and leaves the row out).

    1. numpy simulator: ``tinylstm.quantize.quantizer.quantize(fm, calib)`` (calib: unpadded (1, L, F)
       sequences) and ``QuantizedModel.run``;
    2. host C: the generated C compiled for the host (tinylstm_c.host_c); its outputs come from the
       compiled program (checked equal to the simulator's in run_model) and its latency is timed
       inside it;
    3. host C of the model quantized with int8 LSTM weights (``lstm_weight_bits=8``; the default
       is 16): the flash / accuracy trade-off (first 64 outputs checked against its simulator).
    The rows' flash is the generated C's footprint (tinylstm_c.c_footprint: weights, tables,
    params and code; Cortex-M4 -Os when arm-none-eabi-gcc is installed).
    """
    import tinylstm_c

    out: list[tuple[Row, Callable[[np.ndarray], np.ndarray]]] = []
    try:
        from tinylstm.quantize.quantizer import quantize

        t0 = time.perf_counter()
        qm = quantize(fm, common.sequences(model.calib))
        print(f"  tinylstm quantize: {time.perf_counter() - t0:.1f} s")
    except Exception as e:  # the API may still be moving
        print(f"tinylstm int8: hook failed ({type(e).__name__}: {e}); wire it in bench/peers/run.py")
        return out
    try:
        fp = tinylstm_c.c_footprint(qm, work / "footprint")
        flash, note = fp.flash_bytes, fp.note
    except Exception as e:
        print(f"  tinylstm C footprint failed ({type(e).__name__}: {e})")
        flash, note = None, f"footprint failed: {type(e).__name__}"
    out.append((Row(SIMULATOR, flash_bytes=flash, note=note), common.in_onnx_layout(fm, qm.run)))
    n = model.test.n if limit is None else min(limit, model.test.n)
    seqs = common.sequences(model.test)[:n]
    row = _host_c_row(HOST_C, fm, qm, seqs, latency_seqs, work / "host", flash, "the same C", check=0)
    if row is not None:
        out.append(row)
    # the same with int8 LSTM weights (quantize(..., lstm_weight_bits=8)): smaller flash, see docs/peers.md
    try:
        qm8 = quantize(fm, common.sequences(model.calib), lstm_weight_bits=8)
        fp8 = tinylstm_c.c_footprint(qm8, work / "footprint8")
    except Exception as e:
        print(f"  tinylstm int8-weight variant failed ({type(e).__name__}: {e})")
        return out
    row = _host_c_row(HOST_C8, fm, qm8, seqs, latency_seqs, work / "host8", fp8.flash_bytes, fp8.note, check=64)
    if row is not None:
        out.append(row)
    return out


def _host_c_row(label: str, fm: Any, qm: Any, seqs: list[np.ndarray], latency_seqs: list[np.ndarray], work: Path,
                flash: int | None, note: str, check: int) -> tuple[Row, Callable[[np.ndarray], np.ndarray]] | None:
    import tinylstm_c

    try:
        t0 = time.perf_counter()
        hc = tinylstm_c.host_c(fm, qm, seqs, latency_seqs, work, check=check)
    except Exception as e:
        print(f"{label}: failed ({type(e).__name__}: {e})")
        return None
    print(f"  {label}: built, ran and timed in {time.perf_counter() - t0:.1f} s"
          + ("" if hc.step_us is None else f"; {hc.step_us:.2f} us per step() call")
          + (f"; {hc.mismatched}/{hc.checked} differ from the simulator" if hc.checked else ""), flush=True)
    if hc.mismatched:
        raise SystemExit(f"{label}: {hc.mismatched} of the first {hc.checked} outputs differ from the simulator")
    return Row(label, flash_bytes=flash, latency_us=hc.latency_us, note=note), hc.run_one


# --------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------
def describe(fm: Any) -> str:
    parts = []
    for node in fm.nodes[1:]:
        kind = type(node).__name__
        if kind in ("LstmNode", "GruNode"):
            d = "" if node.direction == "forward" else f" {node.direction}"
            parts.append(f"{kind[:-4].upper()}({node.input_size}->{node.hidden_size}{d})")
        elif kind == "DenseNode":
            parts.append(f"Dense({node.weight.shape[1]}->{node.features})")
        elif kind == "ActivationNode":
            parts.append(node.activation.name)
    return " + ".join(parts) + f", {fm.parameters} parameters"


def evaluate(rows: list[tuple[Row, Callable[[np.ndarray], np.ndarray]]], model: common.PeerModel,
             ref: np.ndarray, limit: int | None, latency_seqs: list[np.ndarray],
             preds: dict[str, np.ndarray]) -> list[Row]:
    done = []
    for row, run_one in rows:
        t0 = time.perf_counter()
        pred = common.run_by_sequence(run_one, model.test, limit)
        preds[row.runtime] = pred
        s = common.score(pred, model.test)
        if s is not None:
            row.wrong, row.n = s
        else:
            row.n = pred.shape[0]
        diff = np.abs(pred.astype(np.float64) - ref[: pred.shape[0]])
        row.max_abs_diff, row.mean_abs_diff = float(diff.max()), float(diff.mean())
        if row.latency_us is None:
            row.latency_us = common.time_per_sequence(run_one, latency_seqs) * 1e6
        print(f"  {row.runtime:28s} {_fmt_score(row):>16s}  max|d| {row.max_abs_diff:.3g} "
              f"mean {row.mean_abs_diff:.2g}  {row.latency_us:.0f} us/seq  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        done.append(row)
    return done


def _fmt_score(row: Row) -> str:
    return "no task" if row.wrong is None else f"{row.wrong}/{row.n} wrong"


def run_model(model: common.PeerModel, limit: int | None, latency_n: int) -> ModelResult:
    from keras_twin import NotExpressible, build_twin, float_parity
    from tflite_int8 import LiteRtRunner, TflmRunner, convert

    t_start = time.perf_counter()
    fm = tinylstm.load_onnx(model.onnx_path)
    n = model.test.n if limit is None else min(limit, model.test.n)
    res = ModelResult(model.name, model.origin, describe(fm), n)
    print(f"== {model.name} ({model.origin}): {res.summary}; {n} test sequences", flush=True)
    seqs = common.sequences(model.test)
    latency_seqs = seqs[:latency_n]

    # float onnxruntime: batched by length for the outputs, batch 1 for the latency
    float_run = ort_runner(model.onnx_path, fm)
    ref = tasks.predict_by_length(float_run, model.test.subset(np.arange(n))).astype(np.float64)
    float_row = Row("float (onnxruntime)", n=n, max_abs_diff=0.0, mean_abs_diff=0.0,
                    flash_bytes=4 * fm.parameters, note=f"ONNX file {model.onnx_path.stat().st_size} B")
    s = common.score(ref, model.test)
    if s is not None:
        float_row.wrong, float_row.n = s
    float_row.latency_us = common.time_per_sequence(float_run, latency_seqs) * 1e6
    res.rows.append(float_row)
    print(f"  {float_row.runtime:28s} {_fmt_score(float_row):>16s}  {float_row.latency_us:.0f} us/seq", flush=True)
    ref_float = common.in_onnx_layout(fm, fm.run)(seqs[0])
    res.notes.append(f"tinylstm float reference vs onnxruntime on test sequence 0: max |d| "
                     f"{float(np.max(np.abs(ref_float - ref[0]))):.2g}")

    candidates: list[tuple[Row, Callable[[np.ndarray], np.ndarray]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for per_channel, label in ((False, "ORT dynamic int8"), (True, "ORT dynamic int8 per-channel")):
            try:
                q_path = ort_dynamic_int8(model.onnx_path, Path(tmp) / f"dyn{int(per_channel)}.onnx", per_channel)
                candidates.append((Row(label, flash_bytes=q_path.stat().st_size,
                                       note="file size; LSTM as DynamicQuantizeLSTM"), ort_runner(q_path, fm)))
            except Exception as e:
                res.notes.append(f"{label} failed: {type(e).__name__}: {e}")

        try:
            twin = build_twin(fm)
            par = float_parity(model.onnx_path, fm, build_twin(fm, batch=None), seqs[: min(n, 64)])
            res.notes.append(f"Keras twin (float) vs onnxruntime: max |d| {par.max_abs_diff:.2g} "
                             f"over {par.sequences} test sequences")
            conv = convert(twin, common.sequences(model.calib))
            res.notes.append(f"TFLite int8: {', '.join(conv.ops)}; {len(conv.flatbuffer)} B flatbuffer; "
                             f"converted in {conv.seconds:.1f} s with {conv.calib_sequences} calibration "
                             "sequences")
            size = len(conv.flatbuffer)
            lite, micro = LiteRtRunner(conv.flatbuffer), TflmRunner(conv.flatbuffer)
            candidates.append((Row("TFLite int8 (LiteRT)", flash_bytes=size, note="flatbuffer"), lite))
            candidates.append((Row("TFLM int8", flash_bytes=size, note="flatbuffer"), micro))
            res.notes.append(_stale_state(conv.flatbuffer, micro, seqs[: min(n, 50)]))
        except NotExpressible as e:
            res.notes.append(f"TFLite / TFLM: not expressible: {e}")

        candidates += tinylstm_runtimes(fm, model, limit, latency_seqs, Path(tmp))
        preds: dict[str, np.ndarray] = {}
        res.rows += evaluate(candidates, model, ref, limit, latency_seqs, preds)
        if HOST_C in preds and SIMULATOR in preds:
            from tinylstm_c import mismatches

            res.c_mismatches = mismatches(preds[HOST_C], preds[SIMULATOR])
            print(f"  tinylstm host C vs simulator: {res.c_mismatches} of {preds[HOST_C].shape[0]} outputs differ"
                  + ("" if res.c_mismatches == 0 else "  <-- MISMATCH: the C must equal the simulator"), flush=True)
            res.notes.append(f"tinylstm host C vs simulator: {res.c_mismatches}/{preds[HOST_C].shape[0]} outputs "
                             "differ (must be 0); host C latency timed inside the C program (gcc -O2, median of "
                             "5 `run()` calls per sequence, median over the sequences), the other rows through "
                             "their Python APIs")
        if "TFLM int8" in preds:
            step = micro.io.out_scale
            lsb = np.abs(preds["TFLM int8"] - preds["TFLite int8 (LiteRT)"]) / step
            res.notes.append(f"LiteRT vs TFLM int8 outputs: {int(np.sum(lsb > 0.5))}/{lsb.size} values differ, "
                             f"by at most {float(lsb.max()):.0f} LSB (output LSB {step:.3g})")
    res.notes.append(f"float outputs span [{ref.min():.3g}, {ref.max():.3g}]; an int8 step over that "
                     f"span is {(ref.max() - ref.min()) / 255:.3g}")
    res.seconds = time.perf_counter() - t_start
    return res


def _stale_state(flatbuffer: bytes, micro: Any, seqs: list[np.ndarray]) -> str:
    """How many outputs change when TFLM's LSTM state is NOT reset between sequences."""
    from tflite_int8 import TflmRunner

    stale = TflmRunner(flatbuffer, reset=False)
    changed = sum(int(not np.array_equal(stale(x), micro(x))) for x in seqs)
    return (f"TFLM without reset() between sequences: {changed}/{len(seqs)} outputs change "
            "(the state carries over silently)")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def load_results() -> dict[str, Any]:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"models": {}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Float vs TFLite/TFLM/ORT int8 vs tinylstm on the example models.")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"models (default: {' '.join(MODELS)})")
    ap.add_argument("--limit", type=int, default=None, help="score the first N test sequences only")
    ap.add_argument("--latency-n", type=int, default=100, help="sequences timed per runtime (default 100)")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/peers.md")
    ap.add_argument("--doc-only", action="store_true", help="rewrite docs/peers.md from results.json, run nothing")
    args = ap.parse_args(argv)
    doc = common.ROOT / "docs" / "peers.md"
    if args.doc_only:
        report.write_doc(load_results(), doc, MODELS)
        print(f"wrote {doc}")
        return 0
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    results = load_results()
    results["machine"] = common.machine()
    results["versions"] = common.versions()
    bad_c = 0
    for name in args.names or MODELS:
        model = common.find_model(name)
        if model is None and name in ("random_h64", "japanese_vowels"):
            import standins

            common.STANDINS.mkdir(parents=True, exist_ok=True)
            getattr(standins, name)(common.STANDINS)
            model = common.find_model(name)
        if model is None:
            print(f"== {name}: not found in examples/models (not trained yet?); skipped")
            results["models"].setdefault(name, {"name": name, "missing": True})
            continue
        res = run_model(model, args.limit, args.latency_n)
        bad_c += res.c_mismatches or 0
        results["models"][name] = asdict(res) | {"limit": args.limit}
        common.OUT.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_doc:
        report.write_doc(results, doc, MODELS)
        print(f"wrote {doc}")
    if bad_c:
        print(f"error: {bad_c} host C output(s) differ from the simulator", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
