"""Throughput of the bit-exact integer simulator vs onnxruntime (float) on the same model.

    .venv/bin/python bench/bench_simulator.py [--model path.onnx] [--batch 256] [--steps 100]
                                              [--hidden 32] [--inputs 2] [--repeat 5]

Without ``--model`` a random one-layer LSTM (Y_h output -> Gemm) is built with onnx.helper.
Prints sequences/second for both and the ratio simulator / onnxruntime (goal >= 0.5).
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
from tinylstm.calibrate import calibrate  # noqa: E402
from tinylstm.quantize import quantize  # noqa: E402


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


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = ap.parse_args()

    proto = onnx.load(str(args.model)) if args.model else random_model(args.inputs, args.hidden)
    fm = tinylstm.load_onnx(proto)
    rng = np.random.default_rng(0)
    shape = fm.input_view.onnx_shape(args.batch, args.steps)
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    qm = quantize(fm, calibrate(fm, x[: min(64, args.batch)] if fm.input_view.axis_of("B") == 0 else x))
    xi = qm.quantize_input(x)

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    t_ort = best_time(lambda: sess.run(None, {name: x}), args.repeat)
    t_sim = best_time(lambda: qm.run_int(xi), args.repeat)
    n = args.batch
    print(f"model: {args.model or f'random LSTM I={args.inputs} H={args.hidden}'}, batch {n}, {args.steps} steps")
    print(f"onnxruntime float ({args.threads} thread): {t_ort * 1e3:8.1f} ms  {n / t_ort:9.0f} seq/s")
    print(f"tinylstm simulator (int):    {t_sim * 1e3:8.1f} ms  {n / t_sim:9.0f} seq/s")
    print(f"ratio simulator / onnxruntime: {t_ort / t_sim:.2f}x")


if __name__ == "__main__":
    main()
