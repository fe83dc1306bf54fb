"""Throughput of the bit-exact integer simulator vs onnxruntime (float) on the same model.

    .venv/bin/python bench/bench_simulator.py [--model path.onnx] [--batch 256] [--steps 100]
                                              [--hidden 32] [--inputs 2] [--repeat 7] [--checked]
    .venv/bin/python bench/bench_simulator.py --table     # the rows of docs/quantization.md §13.6

Without ``--model`` a random one-layer LSTM (Y_h output -> Gemm) is built with onnx.helper.
onnxruntime and the simulator are timed alternately in one process (best of ``--repeat``
rounds each), so load from other processes hits both; prints sequences/second for both and the
ratio simulator / onnxruntime (goal >= 0.5). ``--checked`` also times the checked reference
kernels (``simulate.CHECKED``) and verifies that both paths give the same int8 output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # both sides single-threaded (before numpy loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinylstm  # noqa: E402
from tinylstm.quantize.calibration import calibrate  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402
from tinylstm.simulate import checked as simulate  # noqa: E402


def random_model(inputs: int, hidden: int, outputs: int = 1, seed: int = 0) -> onnx.ModelProto:
    """x [batch, time, inputs] -> Transpose -> LSTM -> Y_h [1, B, H] -> Squeeze -> Gemm."""
    rng = np.random.default_rng(seed)
    H, I = hidden, inputs
    w = rng.normal(0, 1.0 / np.sqrt(I), (1, 4 * H, I)).astype(np.float32)
    r = rng.normal(0, 1.0 / np.sqrt(H), (1, 4 * H, H)).astype(np.float32)
    b = rng.normal(0, 0.3, (1, 8 * H)).astype(np.float32)
    fw = rng.normal(0, 1.0 / np.sqrt(H), (outputs, H)).astype(np.float32)
    fb = np.zeros(outputs, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"), (fw, "FW"), (fb, "FB"))]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "ax0"))
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "W", "R", "B"], ["", "Y_h"], hidden_size=H),
        helper.make_node("Squeeze", ["Y_h", "ax0"], ["h"]),
        helper.make_node("Gemm", ["h", "FW", "FB"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", I])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", outputs])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def best_times(fns: list, repeat: int) -> list[float]:
    """Best wall time of each function, timed in alternation (one warm-up call each first)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def measure(proto: onnx.ModelProto, batch: int, steps: int, repeat: int, threads: int = 1,
            checked: bool = False) -> dict[str, float]:
    """Seconds per call of onnxruntime (float) and the simulator (and its checked kernels)."""
    fm = tinylstm.load_onnx(proto)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, fm.input_view.onnx_shape(batch, steps)).astype(np.float32)
    qm = quantize(fm, calibrate(fm, x[: min(64, batch)] if fm.input_view.axis_of("B") == 0 else x))
    xi = qm.quantize_input(x)

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def sim_checked():
        simulate.CHECKED = True
        try:
            return qm.run_int(xi)
        finally:
            simulate.CHECKED = False

    fns = [lambda: sess.run(None, {name: x}), lambda: qm.run_int(xi)] + ([sim_checked] if checked else [])
    if checked and not np.array_equal(qm.run_int(xi), sim_checked()):
        raise SystemExit("fast and checked simulator paths differ")
    t = best_times(fns, repeat)
    return {"ort": t[0], "sim": t[1], **({"checked": t[2]} if checked else {})}


#: The configurations of docs/quantization.md §13.6.
TABLE = (("random I = 2, H = 32, 100 steps", None, 2, 32, 100),
         ("`examples/models/adding_T100.onnx`, 100 steps", "examples/models/adding_T100.onnx", 2, 32, 100),
         ("random I = 64, H = 128, 50 steps", None, 64, 128, 50))


def table(batch: int, repeat: int) -> None:
    root = Path(__file__).resolve().parents[1]
    print(f"| model (batch {batch}) | onnxruntime float | simulator | checked kernels | simulator / onnxruntime |")
    print("|---|---|---|---|---|")
    for title, path, inputs, hidden, steps in TABLE:
        proto = onnx.load(str(root / path)) if path else random_model(inputs, hidden)
        t = measure(proto, batch, steps, repeat, checked=True)
        print(f"| {title} | {t['ort'] * 1e3:.1f} ms | {t['sim'] * 1e3:.1f} ms | {t['checked'] * 1e3:.0f} ms "
              f"| **{t['ort'] / t['sim']:.2f}×** |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--checked", action="store_true", help="also time the checked reference kernels")
    ap.add_argument("--table", action="store_true", help="print the markdown rows of docs/quantization.md §13.6")
    args = ap.parse_args()
    if args.table:
        table(args.batch, args.repeat)
        return

    proto = onnx.load(str(args.model)) if args.model else random_model(args.inputs, args.hidden)
    t = measure(proto, args.batch, args.steps, args.repeat, args.threads, args.checked)
    n = args.batch
    print(f"model: {args.model or f'random LSTM I={args.inputs} H={args.hidden}'}, batch {n}, {args.steps} steps")
    print(f"onnxruntime float ({args.threads} thread): {t['ort'] * 1e3:8.1f} ms  {n / t['ort']:9.0f} seq/s")
    print(f"tinylstm simulator (int):    {t['sim'] * 1e3:8.1f} ms  {n / t['sim']:9.0f} seq/s")
    if args.checked:
        print(f"  checked kernels (int):     {t['checked'] * 1e3:8.1f} ms  {n / t['checked']:9.0f} seq/s")
    print(f"ratio simulator / onnxruntime: {t['ort'] / t['sim']:.2f}x")


if __name__ == "__main__":
    main()
