"""Reading user data sets (calibration and validation) in one convention.

A data *file* (``.npz``) holds
- ``x``: ``(N, T, F)`` float — N sequences, each ``(time, features)``, whatever the ONNX model's
  own input layout is (tinylstm transposes for time-major models);
- optional ``lengths``: ``(N,)`` ints, the valid length of each (zero-padded) sequence;
- optional ``labels`` ``(N,)`` ints (classifiers) and/or ``y`` (targets in the model's output
  layout per sequence, for regression tasks).

A ``.npy`` file holds ``x`` alone. In memory, an array is taken in the ONNX input's own layout
(as ``FloatModel.run`` takes it), and a list holds single sequences ``(T, F)`` of any lengths.

Files are read by :func:`read_arrays`, never by unpickling: an array of Python objects is
refused, and every array's declared size is checked against the bytes the file holds (and
:data:`MAX_ARRAY_BYTES`) before anything is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..ir import FloatModel
from ..ir.reference import describe_view
from .npzfile import read_arrays
from .taskfiles import load_task_file

#: the arrays of a data file tinylstm reads (others, e.g. a ``task`` name, are ignored)
DATA_KEYS = ("x", "lengths", "labels", "y")
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Dataset:
    """Sequences as a list of ``(T_i, F)`` float arrays plus optional labels/targets."""

    sequences: list[np.ndarray]
    labels: np.ndarray | None = None  # (N,) int
    targets: list[np.ndarray] | None = None  # N arrays, one sequence's targets each
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
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _from_file(os.fspath(source), what, model, feats)
    if isinstance(source, np.ndarray):
        seqs = _batch_rows(source, model, what, "the array")
    elif isinstance(source, (list, tuple)):
        seqs = []
        for k, item in enumerate(source):
            a = _as_array(item, what, k)
            if a.ndim == 3:  # a batch in the model's input layout
                seqs += _batch_rows(a, model, what, f"item {k}")
                continue
            check_not_quantized(a, what, f"item {k}")
            if a.ndim != 2:
                raise DataError(f"{what}: item {k} has shape {a.shape}; expected one sequence (time, features) "
                                "or a batch in the model's input layout")
            seqs.append(_finite(a, what).astype(np.float64))
    else:
        raise DataError(f"{what}: expected a .npz/.npy path, an array, a list of arrays or a Dataset, "
                        f"got {type(source).__name__}")
    _check_sequences(seqs, what, feats)
    return Dataset(seqs)


def _batch_rows(a: np.ndarray, model: FloatModel | None, what: str, key: str) -> list[np.ndarray]:
    """The canonical sequences of a batch given in the model's own input layout."""
    if model is None:
        raise DataError(f"{what}: an in-memory batch needs the model to know its layout")
    _rank_ok(a, model, what)
    check_not_quantized(a, what, key)
    _time_layout(model, a.shape[model.input_view.axis_of("B")], a.shape[model.input_view.axis_of("T")], what,
                 f"{key} of shape {a.shape} (in the model's input layout)")
    try:
        xc = model.input_view.to_canonical(_finite(np.asarray(a), what).astype(np.float64))
    except ValueError as e:
        raise DataError(f"{what}: {key} has shape {a.shape}, not the model's input layout "
                        f"({describe_view(model.input_view)}): {e}") from None
    return [xc[i] for i in range(xc.shape[0])]


def _check_sequences(seqs: list[np.ndarray], label: str, feats: int | None) -> None:
    if not seqs:
        raise DataError(f"{label} holds no sequences (N = 0)")
    for k, s in enumerate(seqs):
        if s.shape[0] == 0:
            raise DataError(f"{label}: sequence {k} has no time steps (T = 0)")
        if feats is not None and s.shape[1] != feats:
            raise DataError(f"{label}: sequences have {s.shape[1]} features; the model expects {feats}")


def _as_array(s: object, what: str, k: int) -> np.ndarray:
    try:
        return np.asarray(s)
    except (ValueError, TypeError) as e:
        raise DataError(f"{what}: sequence {k} is not an array ({e})") from None


def _rank_ok(a: np.ndarray, model: FloatModel, what: str) -> None:
    want = len(model.input_view.dims)
    if a.ndim != want:
        raise DataError(f"{what}: array has shape {a.shape}; expected rank {want} in the model's input layout")


def check_not_quantized(a: object, what: str, key: str) -> None:
    """Refuse integer inputs: tinylstm takes the float values the ONNX model sees; integers are
    most likely already quantized (int8 codes would be read as values of -128..127)."""
    dtype = getattr(a, "dtype", None)
    if dtype is not None and dtype.kind in "iub":
        raise DataError(
            f"{what}: {key} holds integers ({dtype}); tinylstm takes the float inputs the ONNX model "
            "sees, not quantized codes. If these integers are the real input values, convert them "
            "with x.astype(np.float32)"
        )


def _time_layout(model: FloatModel, n: int, steps: int, what: str, shown: str) -> None:
    """Refuse data whose sequence and time axes look swapped: the model was exported at a static
    length that the data holds as its number of sequences, not as its length."""
    t = model.export_time
    if t is not None and steps != t and n == t:
        raise DataError(
            f"{what}: {shown} reads as {n} sequences of {steps} steps, but the model was exported "
            f"with sequences of {t} steps: if it holds {steps} sequences of {t} steps with time first, "
            "swap its first two axes (x.transpose(1, 0, 2)); data files are (N, T, F)"
        )


def _finite(a: np.ndarray, what: str, key: str = "data") -> np.ndarray:
    """``a`` if it is real numbers that are finite in float32 (the ONNX input's type)."""
    if a.dtype.kind not in "fiu":
        raise DataError(f"{what}: {key} has dtype {a.dtype}; expected float or integer numbers")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{what}: {key} holds {int(bad.sum())} NaN or Inf value(s), the first "
                            f"{a[at]} at index {at}")
    if a.size and a.dtype.kind == "f" and a.dtype.itemsize > 4:  # only float64+ exceeds float32
        big = np.abs(a) > _F32_MAX
        if big.any():
            at = tuple(int(i) for i in np.argwhere(big)[0])
            raise DataError(f"{what}: {key} holds {a[at]:g} at index {at}, beyond the float32 range "
                            f"(|x| <= {_F32_MAX:.4g}) of the model's input")
    return a


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def _from_file(path: str, what: str, model: FloatModel | None, feats: int | None) -> Dataset:
    label = f"{what} '{path}'"
    names, arrays = read_arrays(path, what, DATA_KEYS)
    if "x" not in names and ({"seed", "task"} <= names or "dataset" in names):
        # a task-file recipe (tinylstm.data.taskfiles): regenerated and checked against its hashes
        td = load_task_file(path)
        arrays = {"x": td.x, "lengths": td.lengths}
        if td.labels is not None:
            arrays["labels"] = td.labels
        if td.y.size:
            arrays["y"] = td.y
    elif "x" not in names:
        shown = sorted(names)[:10] + (["..."] if len(names) > 10 else [])
        raise DataError(f"{label} has arrays {shown}; expected 'x' (N, T, F) and optional "
                        "'lengths', 'labels', 'y'")
    check_not_quantized(arrays["x"], label, "'x'")
    x = _finite(arrays["x"], label, "'x'")
    if x.ndim != 3:
        raise DataError(f"{label}: 'x' has shape {x.shape}; expected (N, T, F) = "
                        "(sequences, time steps, features)")
    if model is not None:
        _time_layout(model, x.shape[0], x.shape[1], label, f"'x' of shape {x.shape}")
    if feats is not None and x.shape[2] != feats and x.shape[0] and x.shape[1]:
        raise DataError(f"{label}: 'x' has {x.shape[2]} features (shape {x.shape}); the model "
                        f"expects {feats}")
    n, steps = x.shape[0], x.shape[1]
    if n and not steps:
        raise DataError(f"{label}: 'x' has shape {x.shape}: no time steps (T = 0)")
    lengths = _check_lengths(arrays["lengths"], n, steps, label) if "lengths" in arrays else None
    labels = _check_labels(arrays["labels"], n, model, label) if "labels" in arrays else None
    y = _check_targets(arrays["y"], n, model, label) if "y" in arrays else None
    xf = x.astype(np.float64)
    seqs = [xf[i] if lengths is None else xf[i, : int(lengths[i])] for i in range(n)]
    _check_sequences(seqs, label, feats)
    targets = [np.asarray(y[i]) for i in range(n)] if y is not None else None
    return Dataset(seqs, labels, targets, path)


def _check_lengths(lens: np.ndarray, n: int, steps: int, label: str) -> np.ndarray:
    if lens.dtype.kind not in "iu" or lens.shape != (n,):
        raise DataError(f"{label}: 'lengths' must be (N,) = ({n},) integers; got shape {lens.shape} "
                        f"dtype {lens.dtype}")
    bad = (lens < 1) | (lens > steps)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{label}: 'lengths' must lie in [1, {steps}] (T of 'x'); got {lens[i]} at "
                        f"index {i}")
    return lens.astype(np.int64)


def _classes(model: FloatModel | None) -> int | None:
    """Class count when the model is a classifier (one score vector per sequence)."""
    if model is None or model.many_to_many or model.output_features < 2:
        return None
    return int(model.output_features)


def _check_labels(labels: np.ndarray, n: int, model: FloatModel | None, label: str) -> np.ndarray:
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(f"{label}: 'labels' must be (N,) integers; got shape {labels.shape} "
                        f"dtype {labels.dtype}")
    if labels.shape[0] != n:
        raise DataError(f"{label}: 'labels' has {labels.shape[0]} entries for {n} sequences")
    classes = _classes(model)
    high = classes - 1 if classes is not None else None
    bad = (labels < 0) | (labels > high) if high is not None else labels < 0
    if bad.any():
        i = int(np.argmax(bad))
        rng = f"[0, {high}] (the model has {classes} outputs)" if high is not None else ">= 0"
        raise DataError(f"{label}: 'labels' must lie in {rng}; got {labels[i]} at index {i}")
    return labels.astype(np.int64)


def _check_targets(y: np.ndarray, n: int, model: FloatModel | None, label: str) -> np.ndarray:
    if y.dtype.kind not in "fiu":
        raise DataError(f"{label}: 'y' has dtype {y.dtype}; expected float or integer targets")
    if y.ndim < 1 or y.shape[0] != n:
        raise DataError(f"{label}: 'y' has shape {y.shape}; expected ({n}, ...), the targets of "
                        f"each of the {n} sequences")
    _finite(y, label, "'y'")
    if model is not None and not model.many_to_many and n:
        per = int(np.prod(y.shape[1:], dtype=np.int64))
        if per != model.output_features:
            raise DataError(f"{label}: 'y' has {per} values per sequence (shape {y.shape}); the "
                            f"model outputs {model.output_features}")
    return y


def to_model_layout(model: FloatModel, batch: np.ndarray) -> np.ndarray:
    """Canonical ``(B, T, F)`` -> the ONNX input's own layout."""
    return model.input_view.from_canonical(batch)
