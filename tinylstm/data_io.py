"""Reading user data sets (calibration and validation) in one convention.

A data *file* (``.npz``) holds
- ``x``: ``(N, T, F)`` float — N sequences, each ``(time, features)``, whatever the ONNX model's
  own input layout is (tinylstm transposes for time-major models);
- optional ``lengths``: ``(N,)`` ints, the valid length of each (zero-padded) sequence;
- optional ``labels`` ``(N,)`` ints (classifiers) and/or ``y`` (targets in the model's output
  layout per sequence, for regression tasks).

A ``.npy`` file holds ``x`` alone. In memory, an array is taken in the ONNX input's own layout
(as ``FloatModel.run`` takes it), and a list holds single sequences ``(T, F)`` of any lengths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .ir import FloatModel


@dataclass(frozen=True)
class Dataset:
    """Sequences as a list of ``(T_i, F)`` float arrays plus optional labels/targets."""

    sequences: list[np.ndarray]
    labels: np.ndarray | None = None
    targets: list[np.ndarray] | None = None
    source: str = "<array>"

    def __len__(self) -> int:
        return len(self.sequences)

    def groups(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(indices, batch (n, T, F))`` per distinct length, in index order within a group."""
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(self.sequences):
            by_len.setdefault(s.shape[0], []).append(i)
        return [(np.asarray(ix), np.stack([self.sequences[i] for i in ix])) for _, ix in sorted(by_len.items())]


def load_dataset(source, model: FloatModel | None = None, *, what: str = "data",
                 features: int | None = None) -> Dataset:
    """Load a data file or array (see module doc) and check it against the model's input."""
    feats = features if features is not None else (model.input_features if model is not None else None)
    name = "<array>"
    labels = None
    targets = None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        x, lengths, labels, y = _read_file(name, what)
        seqs = _split(x, lengths, name, what)
        if y is not None:
            targets = [np.asarray(y[i]) for i in range(y.shape[0])]
    elif isinstance(source, Dataset):
        return source
    elif isinstance(source, np.ndarray):
        if model is None:
            raise DataError(f"{what}: an in-memory array needs the model to know its layout")
        xc = model.input_view.to_canonical(_finite(np.asarray(source, np.float64), what)) \
            if _rank_ok(source, model, what) else None
        seqs = [xc[i] for i in range(xc.shape[0])]
    elif isinstance(source, (list, tuple)):
        seqs = [_finite(np.asarray(s, np.float64), what) for s in source]
        for k, s in enumerate(seqs):
            if s.ndim != 2:
                raise DataError(f"{what}: sequence {k} has shape {s.shape}; expected (time, features)")
    else:
        raise DataError(f"{what}: expected a .npz/.npy path, an array or a list of arrays, "
                        f"got {type(source).__name__}")
    if not seqs:
        raise DataError(f"{what} ({name}) holds no sequences")
    for k, s in enumerate(seqs):
        if s.shape[0] == 0:
            raise DataError(f"{what} ({name}): sequence {k} has no time steps")
        if feats is not None and s.shape[1] != feats:
            raise DataError(f"{what} ({name}): sequences have {s.shape[1]} features; the model "
                            f"expects {feats}")
    if labels is not None and labels.shape[0] != len(seqs):
        raise DataError(f"{what} ({name}): {labels.shape[0]} labels for {len(seqs)} sequences")
    return Dataset(seqs, labels, targets, name)


def _rank_ok(a: np.ndarray, model: FloatModel, what: str) -> bool:
    want = len(model.input_view.dims)
    if a.ndim != want:
        raise DataError(f"{what}: array has shape {a.shape}; expected rank {want} in the model's input layout")
    return True


def _finite(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype.kind not in "fiu":
        raise DataError(f"{what}: data must be numeric, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise DataError(f"{what}: data contains NaN or Inf")
    return a


def _read_file(path: str, what: str):
    if not os.path.isfile(path):
        raise DataError(f"{what} '{path}': no such file")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{what} '{path}' is not a readable .npy/.npz file ({e})") from None
    if isinstance(z, np.ndarray):
        return z, None, None, None
    with z:
        keys = set(z.files)
        if "x" not in keys and ({"seed", "task"} <= keys or "dataset" in keys):
            # a task-file recipe (tinylstm.datasets): regenerated and checked against its hashes
            from .datasets import load_task_file

            td = load_task_file(path)
            y = td.y if td.y.size else None
            return td.x, td.lengths, td.labels, y
        if "x" not in keys:
            raise DataError(f"{what} '{path}' has arrays {sorted(keys)}; expected 'x' (N, T, F)")
        x = z["x"]
        lengths = z["lengths"] if "lengths" in keys else None
        labels = z["labels"] if "labels" in keys else None
        y = z["y"] if "y" in keys else None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise DataError(f"{what} '{path}': 'labels' must be a 1-D integer array")
    return x, lengths, labels, y


def _split(x: np.ndarray, lengths, path: str, what: str) -> list[np.ndarray]:
    x = _finite(np.asarray(x), f"{what} '{path}'")
    if x.ndim != 3:
        raise DataError(f"{what} '{path}': 'x' has shape {x.shape}; expected (N, T, F)")
    x = x.astype(np.float64)
    if lengths is None:
        return [x[i] for i in range(x.shape[0])]
    lens = np.asarray(lengths)
    if lens.dtype.kind not in "iu" or lens.shape != (x.shape[0],):
        raise DataError(f"{what} '{path}': 'lengths' must be {x.shape[0]} integers")
    if (lens < 1).any() or (lens > x.shape[1]).any():
        raise DataError(f"{what} '{path}': 'lengths' must lie in [1, {x.shape[1]}]")
    return [x[i, : int(n)] for i, n in enumerate(lens)]


def to_model_layout(model: FloatModel, batch: np.ndarray) -> np.ndarray:
    """Canonical ``(B, T, F)`` -> the ONNX input's own layout."""
    return model.input_view.from_canonical(batch)
