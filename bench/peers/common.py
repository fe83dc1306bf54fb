"""Shared setup of the peer benchmark: environment, the model list, data, scoring, timing.

Runs in the separate peers venv (TensorFlow, tf_keras, tflite-micro, ai-edge-litert):

    .venv-peers/bin/python bench/peers/run.py --help

Importing this module sets ``TF_USE_LEGACY_KERAS=1`` (the TFLite converter fuses tf_keras
LSTMs into int8 ``UNIDIRECTIONAL_SEQUENCE_LSTM``; Keras 3 LSTMs become a WHILE loop) and
quiets TensorFlow's C++ logging; import it before TensorFlow.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

from machine_info import cpu_model  # noqa: E402

from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.data.tasks import TaskData  # noqa: E402

EXAMPLES = ROOT / "examples" / "models"
OUT = Path(__file__).resolve().parent / "out"
STANDINS = OUT / "standins"

#: One sequence (1, L, features) float32 -> outputs (1, n_out) float32.
RunOne = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PeerModel:
    """A float ONNX model with its calibration inputs and test set."""

    name: str
    onnx_path: Path
    calib: TaskData  # x (n, Tmax, F) padded, lengths (n,)
    test: TaskData  # with y / labels unless the model has no task ("random")
    origin: str  # "examples/models" or "stand-in (bench/peers/standins.py)"


def in_onnx_layout(fm: Any, run: RunOne) -> RunOne:
    """Wrap ``run`` (taking and returning the ONNX tensors' own layout, e.g. time-major) into a
    function of canonical (batch, time, features) -> (batch, outputs)."""
    in_view, out_view = fm.input_view, fm.output_view
    return lambda x: out_view.to_canonical(np.asarray(run(in_view.from_canonical(x))))


def find_model(name: str) -> PeerModel | None:
    """``examples/models/<name>.onnx`` with ``_calib.npz`` and ``_test.npz``, else a stand-in
    already written by standins.py, else None."""
    for folder, origin in ((EXAMPLES, "examples/models"), (STANDINS, "stand-in")):
        onnx_path = folder / f"{name}.onnx"
        calib, test = folder / f"{name}_calib.npz", folder / f"{name}_test.npz"
        if onnx_path.is_file() and calib.is_file() and test.is_file():
            return PeerModel(name, onnx_path, load_task_file(calib), load_task_file(test), origin)
    return None


def sequences(data: TaskData) -> list[np.ndarray]:
    """Each row unpadded, as (1, L, F) float32."""
    return [np.ascontiguousarray(data.x[i : i + 1, : int(data.lengths[i])]) for i in range(data.n)]


def run_by_sequence(run_one: RunOne, data: TaskData, limit: int | None = None) -> np.ndarray:
    """Outputs (n, n_out) of ``run_one`` on every row (or the first ``limit``), visiting rows
    grouped by length (runtimes that resize per length resize once per group)."""
    n = data.n if limit is None else min(limit, data.n)
    out: np.ndarray | None = None
    for length, idx in tasks.length_groups(data.lengths[:n]):
        for i in idx:
            y = np.asarray(run_one(np.ascontiguousarray(data.x[i : i + 1, :length]))).reshape(-1)
            if out is None:
                out = np.zeros((n, y.size), dtype=np.float32)
            out[i] = y
    assert out is not None
    return out


def score(pred: np.ndarray, data: TaskData) -> tuple[int, int] | None:
    """(wrong, n) by the task's criterion (adding: |err| < 0.04; labelled: argmax), or None
    for a model without a task."""
    if data.y.shape[-1] == 0:
        return None
    n = pred.shape[0]
    sub = data.subset(np.arange(n)) if n < data.n else data
    s = tasks.score(pred, sub)
    return s.wrong, s.n


def time_per_sequence(run_one: RunOne, seqs: list[np.ndarray], repeat: int = 1) -> float:
    """Median wall-clock seconds of one call, over ``seqs`` (after one warm-up call)."""
    run_one(seqs[0])
    times = []
    for x in seqs:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            run_one(x)
            best = min(best, time.perf_counter() - t0)
        times.append(best)
    return float(np.median(times))


def machine() -> str:
    cpu = cpu_model(platform.processor() or platform.machine())
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow-cpu", "tf_keras", "tflite-micro", "ai-edge-litert", "onnxruntime", "onnx",
                "tf2onnx", "numpy", "tinylstm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out
