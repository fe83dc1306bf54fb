"""How far one model's outputs are from another's: the numbers `tinylstm validate` reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorStats:
    """Elementwise error of ``got`` against ``ref`` (both float, same shape)."""

    rmse: float
    mae: float
    max_abs: float
    l2r: float  # ||got - ref|| / ||ref||
    cosine: float  # cosine similarity of the flattened tensors
    mean_ref_abs: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def error_stats(got: np.ndarray, ref: np.ndarray) -> ErrorStats:
    g = np.asarray(got, dtype=np.float64).reshape(-1)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if g.shape != r.shape:
        raise ValueError(f"shapes differ: {got.shape} vs {ref.shape}")
    d = g - r
    nr = float(np.linalg.norm(r))
    ng = float(np.linalg.norm(g))
    return ErrorStats(
        rmse=float(np.sqrt(np.mean(d * d))) if d.size else 0.0,
        mae=float(np.mean(np.abs(d))) if d.size else 0.0,
        max_abs=float(np.max(np.abs(d))) if d.size else 0.0,
        l2r=float(np.linalg.norm(d) / nr) if nr > 0 else float(np.linalg.norm(d) > 0),
        cosine=float(g @ r / (ng * nr)) if ng > 0 and nr > 0 else float(ng == nr),
        mean_ref_abs=float(np.mean(np.abs(r))) if r.size else 0.0,
    )


@dataclass(frozen=True)
class ClassStats:
    """Classifier view: accuracy against labels (when given) and top-1 agreement."""

    n: int
    accuracy_ref: float | None
    accuracy_got: float | None
    top1_agreement: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def class_stats(got: np.ndarray, ref: np.ndarray, labels: np.ndarray | None = None) -> ClassStats:
    """``got``/``ref``: (n, classes) scores (logits, probabilities or log-probabilities)."""
    pg = np.argmax(got, axis=-1).reshape(-1)
    pr = np.argmax(ref, axis=-1).reshape(-1)
    acc_r = acc_g = None
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        acc_r = float(np.mean(pr == lab))
        acc_g = float(np.mean(pg == lab))
    return ClassStats(int(pg.size), acc_r, acc_g, float(np.mean(pg == pr)) if pg.size else 1.0)


def per_step_error(got: np.ndarray, ref: np.ndarray, time_axis: int) -> np.ndarray:
    """Mean absolute error at each time step (error drift over the sequence)."""
    d = np.abs(np.asarray(got, np.float64) - np.asarray(ref, np.float64))
    d = np.moveaxis(d, time_axis, 0)
    return d.reshape(d.shape[0], -1).mean(axis=1)


def drift_slope(step_err: np.ndarray) -> float:
    """Least-squares slope of the per-step error (units per step); ~0 means no drift."""
    n = step_err.shape[0]
    if n < 2:
        return 0.0
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    return float((t @ (step_err - step_err.mean())) / (t @ t))
