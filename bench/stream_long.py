"""10^6 ``<prefix>_step`` calls on a trained model in ONE C process, compared with the simulator.

Usage: .venv/bin/python bench/stream_long.py [--model adding_T100] [--steps 1000000]
                                            [--checkpoint 10000] [--compiler gcc] [--seed 7]

The input is a long concatenation of generator sequences (adding / temporal-order models:
``tinylstm.data.tasks.generate``) or of the calibration sequences (JapaneseVowels, each trimmed to
its length), quantized once. The state is never reset: the LSTM runs 10^6 steps straight.

C side: the chost harness in step mode (reset once, then ``model_step`` per step) built twice,
``-O2`` (timed, no trace) and ``-O1`` with ASan+UBSan (every h and c of every step traced, and the
output after every step). Simulator side: ``QuantizedModel.run_int`` over chunks of
``--checkpoint`` steps, each chunk starting from the previous chunk's final state (the model's
initial state replaced), which checks every stored value fits its C type. Compared exactly:
the output at each checkpoint (run_int's output), the output after EVERY step (the head applied to
the simulator's traced h), and h and c of every step. Prints mismatches (0 expected), the cell's
range over time (share of values at the int16 limits per 10^5 steps), and wall times.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinylstm  # noqa: E402
from tinylstm.cbuild.host import build_host, run_c_steps  # noqa: E402
from tinylstm.cbuild.toolchain import missing_reason  # noqa: E402
from tinylstm.data.tasks import generate  # noqa: E402
from tinylstm.qmodel import QDense, QLstm, QSelectStep, QSoftmax, QTable, QuantizedModel  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402
from tinylstm.simulate import checked as simulate  # noqa: E402

MODELS = ROOT / "examples" / "models"


def stream_input(name: str, steps: int, seed: int) -> np.ndarray:
    """(steps, F) float32: valid steps of many sequences, back to back."""
    parts: list[np.ndarray] = []
    total = 0
    if name.startswith("adding") or name.startswith("temporal_order"):
        task = "adding" if name.startswith("adding") else name.rsplit("_", 1)[0]
        T = int(name.split("_T")[1]) if "_T" in name else None
        k = 0
        while total < steps:
            d = generate(task, 2000, seed + k, T)
            k += 1
            for x, n in zip(d.x, d.lengths, strict=True):
                parts.append(x[:n])
                total += int(n)
    else:
        z = np.load(MODELS / f"{name}_calib.npz")
        seqs = [x[:n] for x, n in zip(z["x"], z["lengths"], strict=True)]
        rng = np.random.default_rng(seed)
        while total < steps:
            s = seqs[int(rng.integers(len(seqs)))]
            parts.append(s)
            total += s.shape[0]
    return np.concatenate(parts)[:steps].astype(np.float32)


def lstm_layers(q: QuantizedModel) -> list[int]:
    return [k for k, n in enumerate(q.nodes) if isinstance(n, QLstm)]


def head_per_step(q: QuantizedModel, h_seq: np.ndarray) -> np.ndarray:
    """The output C's step() writes after every step: the nodes after the (single, forward) LSTM
    applied to each step's h (time as batch). h_seq (T, H) int8 -> (T, OUT) int8."""
    v = h_seq.astype(np.int64)
    for node in q.nodes[lstm_layers(q)[-1] + 1:]:
        if isinstance(node, QSelectStep):
            continue  # the step C just computed
        if isinstance(node, QDense):
            v = simulate.dense(node, v)
        elif isinstance(node, QTable):
            v = node.table.astype(np.int64)[v + 128]
        elif isinstance(node, QSoftmax):
            v = simulate.softmax(node, v)
        else:
            raise SystemExit(f"head node {type(node).__name__} not handled by this bench")
    return v.astype(np.int8)


def with_state(q: QuantizedModel, h: list[np.ndarray], c: list[np.ndarray]) -> QuantizedModel:
    """The model with its LSTMs' initial states replaced (one forward direction each)."""
    nodes = list(q.nodes)
    for i, k in enumerate(lstm_layers(q)):
        layer = nodes[k]
        d0 = dataclasses.replace(layer.directions[0], initial_h=h[i][None].astype(np.int8),
                                 initial_c=c[i][None].astype(np.int16))
        nodes[k] = dataclasses.replace(layer, directions=(d0,))
    return dataclasses.replace(q, nodes=tuple(nodes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="adding_T100")
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--checkpoint", type=int, default=10_000)
    ap.add_argument("--compiler", default="gcc")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    if missing_reason(args.compiler):
        print(missing_reason(args.compiler))
        return 2
    fm = tinylstm.load_onnx(MODELS / f"{args.model}.onnx")
    z = np.load(MODELS / f"{args.model}_calib.npz")
    q = quantize(fm, [z["x"]])
    layers = lstm_layers(q)
    if any(q.nodes[k].num_directions != 1 or q.nodes[k].directions[0].reverse for k in layers):
        raise SystemExit("streaming needs forward LSTMs")
    xs = q.quantize_input(stream_input(args.model, args.steps, args.seed)[None])  # (1, N, F) int8
    x = xs[0]
    n = x.shape[0]
    print(f"model {args.model}: {n} steps, input int8 range [{x.min()}, {x.max()}], "
          f"LSTM hidden {[q.nodes[k].hidden_size for k in layers]}, compiler {args.compiler}", flush=True)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="tinylstm-stream-"))
    t0 = time.perf_counter()
    fast = build_host(q, work / "o2", compiler=args.compiler, opt="-O2")
    san = build_host(q, work / "san", compiler=args.compiler, opt="-O1", sanitize=True)
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    y_fast, _ = run_c_steps(fast, xs, timeout=3600)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_san, tr_san = run_c_steps(san, xs, trace=True, timeout=3600)
    t_san = time.perf_counter() - t0
    print(f"C -O2: {t_fast:.2f} s ({1e6 * t_fast / n:.2f} us/step incl. I/O); "
          f"C -O1 ASan+UBSan traced: {t_san:.1f} s", flush=True)
    if y_fast.shape != y_san.shape or not np.array_equal(y_fast, y_san):
        print("MISMATCH between the -O2 and the sanitized build's outputs")
        return 1
    y_c = y_san[0]  # (N, OUT): the output after every step, ONNX feature order
    assert tr_san is not None

    t0 = time.perf_counter()
    hs = [q.nodes[k].directions[0].initial_h[0] for k in layers]
    cs = [q.nodes[k].directions[0].initial_c[0] for k in layers]
    mism = {"checkpoint outputs": 0, "per-step outputs": 0, "h steps": 0, "c steps": 0}
    checkpoints = 0
    overflow = None
    c_min = [np.iinfo(np.int16).max] * len(layers)
    c_max = [np.iinfo(np.int16).min] * len(layers)
    at_limit = np.zeros((len(layers), (n + 99_999) // 100_000), np.int64)
    first_bad = None
    for s0 in range(0, n, args.checkpoint):
        s1 = min(n, s0 + args.checkpoint)
        qc = with_state(q, hs, cs)
        try:
            y_sim, tr = qc.run_int(x[None, s0:s1], trace=True)
        except simulate.SimulatorOverflow as e:
            overflow = f"steps {s0}-{s1}: {e}"
            break
        checkpoints += 1
        y_last = np.asarray(y_sim).reshape(-1)
        if not np.array_equal(y_last, y_c[s1 - 1].reshape(-1)):
            mism["checkpoint outputs"] += 1
            first_bad = first_bad or f"checkpoint at step {s1}"
        for i, k in enumerate(layers):
            t_sim = tr[q.nodes[k].name][0]
            ct = tr_san[q.nodes[k].name][0]
            valid, h_c, c_c = ct.valid[0], ct.h[0], ct.c[0]
            h_s, c_s = t_sim.h[0], t_sim.c[0]
            bad_h = int((h_s != h_c[s0:s1]).any(axis=1).sum())
            bad_c = int((c_s != c_c[s0:s1]).any(axis=1).sum())
            mism["h steps"] += bad_h + int((~valid[s0:s1]).sum())
            mism["c steps"] += bad_c
            if (bad_h or bad_c) and first_bad is None:
                first_bad = f"layer {i} state in steps {s0}-{s1}"
            hs[i], cs[i] = h_s[-1], c_s[-1]
            c_min[i], c_max[i] = min(c_min[i], int(c_s.min())), max(c_max[i], int(c_s.max()))
            lim = (c_s == np.iinfo(np.int16).max) | (c_s == np.iinfo(np.int16).min)
            np.add.at(at_limit[i], np.arange(s0, s1) // 100_000, lim.sum(axis=1))
            if i == len(layers) - 1:
                y_step = head_per_step(q, h_s)
                bad_y = int((y_step != y_c[s0:s1]).any(axis=1).sum())
                mism["per-step outputs"] += bad_y
                if bad_y and first_bad is None:
                    first_bad = f"per-step output in steps {s0}-{s1}"
    t_sim = time.perf_counter() - t0

    print(f"simulator: {checkpoints} chunks of {args.checkpoint} steps in {t_sim:.1f} s"
          f"{'' if overflow is None else ' -- SimulatorOverflow ' + overflow}")
    for i, k in enumerate(layers):
        H = q.nodes[k].hidden_size
        kf = q.nodes[k].directions[0].cell_frac
        print(f"layer {q.nodes[k].name}: cell int16 range over the run [{c_min[i]}, {c_max[i]}] "
              f"(Q{kf}: [{c_min[i] / 2**kf:.3f}, {c_max[i] / 2**kf:.3f}]); "
              f"cell values at +-32767/-32768 per 10^5 steps (of {H * 100_000}): {at_limit[i].tolist()}")
    total = sum(mism.values())
    print("mismatches: " + ", ".join(f"{k} {v}" for k, v in mism.items()) + (f" (first: {first_bad})" if first_bad
                                                                             else ""))
    print(f"SUMMARY model={args.model} steps={n} C_processes=1(+1 -O2) mismatches={total} "
          f"overflows={0 if overflow is None else 1} C_O2_s={t_fast:.2f} C_san_s={t_san:.1f} sim_s={t_sim:.1f}")
    return 1 if total or overflow else 0


if __name__ == "__main__":
    raise SystemExit(main())
