"""Which int8 weights break a model? Fake-quantize W and/or R in the float reference.

    .venv/bin/python bench/peers/weight_ablation.py examples/models/adding_T400.onnx \\
        examples/models/adding_T400_test.npz [--n 512]

Each LSTM's (and GRU's) input weights W and/or recurrent weights R are rounded to int8 (symmetric, scale
max|row|/127 per row, or max|matrix|/127 per tensor) and the model is otherwise run in float
(tinylstm's float reference), unpadded, and scored by the task's criterion. No TensorFlow needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tinylstm  # noqa: E402
from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.ir import FloatModel, GruNode, LstmNode  # noqa: E402


def fake_int8(w: np.ndarray, per_row: bool) -> np.ndarray:
    """Round to the int8 grid (symmetric, [-127, 127]) and back."""
    bound = np.abs(w).max(axis=1, keepdims=True) if per_row else np.abs(w).max()
    scale = np.where(bound > 0, bound / 127.0, 1.0)
    return (np.round(w / scale) * scale).astype(w.dtype)


def with_int8_weights(fm: FloatModel, which: str, per_row: bool) -> FloatModel:
    nodes = []
    for n in fm.nodes:
        if isinstance(n, (LstmNode, GruNode)):
            dirs = []
            for d in n.directions:
                kw = {}
                if "W" in which:
                    kw["w"] = fake_int8(d.w, per_row)
                if "R" in which:
                    kw["r"] = fake_int8(d.r, per_row)
                dirs.append(dataclasses.replace(d, **kw))
            n = dataclasses.replace(n, directions=tuple(dirs))
        nodes.append(n)
    return dataclasses.replace(fm, nodes=tuple(nodes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", type=Path)
    ap.add_argument("test", type=Path)
    ap.add_argument("--n", type=int, default=512, help="first N test sequences (default 512)")
    args = ap.parse_args(argv)
    fm = tinylstm.load_onnx(args.onnx)
    data = load_task_file(args.test)
    data = data.subset(np.arange(min(args.n, data.n)))
    print(f"float: {tasks.score(tasks.predict_by_length(fm.run, data), data)}")
    for which in ("W", "R", "WR"):
        for per_row in (True, False):
            m = with_int8_weights(fm, which, per_row)
            s = tasks.score(tasks.predict_by_length(m.run, data), data)
            print(f"int8 {which:2s} {'per row' if per_row else 'per tensor':10s}: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
