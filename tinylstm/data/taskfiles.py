"""Data shipped with tinylstm, and the data files written beside the example models.

- :func:`load_japanese_vowels`: the UCI/UEA JapaneseVowels speaker-recognition set (see
  ``docs/data.md`` for its source and citation), bundled as ``tinylstm/data/japanese_vowels.npz``.
- :func:`load_task_file`: a ``<model>_test.npz`` or ``<model>_calib.npz`` from
  ``examples/models/``. Two forms exist:

  * **arrays**: ``x`` (n, Tmax, features) float32 zero-padded, ``lengths`` (n,), optional
    ``y`` and ``labels``, and a ``task`` name;
  * **recipe** (data sets too large to store exactly, e.g. 2560 adding-problem sequences of
    length 400-440): ``task``, ``n``, ``T``, ``seed`` and the SHA-256 of the generated ``x``
    and ``y``. The data are regenerated with :func:`tinylstm.tasks.generate` and checked
    against the hashes, so a changed random stream is an error, never a silent new test set;
  * **reference** to data bundled with tinylstm: ``dataset`` (``"japanese_vowels"``),
    ``split`` and the same two hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .npzfile import read_arrays
from .tasks import TaskData, generate

#: Class count, channel count and maximal length of JapaneseVowels.
JAPANESE_VOWELS_CLASSES = 9
JAPANESE_VOWELS_CHANNELS = 12
JAPANESE_VOWELS_MAX_LENGTH = 29


@dataclass(frozen=True)
class JapaneseVowels:
    """The official train/test split, each as :class:`TaskData` named ``japanese_vowels``.

    ``x`` (n, 29, 12) float32 zero-padded after ``lengths`` (7..29), ``labels`` (n,) in 0..8
    (speaker 1..9 is label 0..8), ``y`` (n, 9) one-hot. Train n = 270, test n = 370.
    """

    train: TaskData
    test: TaskData


def _classification(name: str, x: np.ndarray, lengths: np.ndarray, labels: np.ndarray,
                    classes: int) -> TaskData:
    labels = labels.astype(np.int64)
    y = np.eye(classes, dtype=np.float32)[labels]
    return TaskData(name, x.astype(np.float32), lengths.astype(np.int64), y, labels)


def load_japanese_vowels() -> JapaneseVowels:
    """Load the bundled JapaneseVowels data (no download)."""
    ref = resources.files("tinylstm.data").joinpath("japanese_vowels.npz")
    with resources.as_file(ref) as path, np.load(path) as z:
        parts = {
            split: _classification(
                "japanese_vowels",
                z[f"x_{split}"],
                z[f"lengths_{split}"],
                z[f"labels_{split}"],
                JAPANESE_VOWELS_CLASSES,
            )
            for split in ("train", "test")
        }
    return JapaneseVowels(parts["train"], parts["test"])


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def save_recipe(path: str | Path, data: TaskData, *, task: str, n: int, T: int | None,
                seed: int) -> None:
    """Write a recipe-form task file for ``data == generate(task, n, seed, T)``."""
    again = generate(task, n, seed, T)
    if array_sha256(again.x) != array_sha256(data.x) or array_sha256(again.y) != array_sha256(data.y):
        raise DataError(f"{path}: the data are not generate({task!r}, {n}, {seed}, {T})")
    np.savez_compressed(
        path,
        task=np.array(task),
        n=np.array(n),
        T=np.array(-1 if T is None else T),
        seed=np.array(seed),
        x_sha256=np.array(array_sha256(data.x)),
        y_sha256=np.array(array_sha256(data.y)),
        lengths=data.lengths,
    )


_BUNDLED = {"japanese_vowels": load_japanese_vowels}


def _bundled(dataset: str, split: str) -> TaskData:
    if dataset not in _BUNDLED or split not in ("train", "test"):
        raise DataError(f"no bundled data set {dataset!r} split {split!r}; bundled: "
                        f"{', '.join(_BUNDLED)} with splits train, test")
    return getattr(_BUNDLED[dataset](), split)


def save_reference(path: str | Path, data: TaskData, *, dataset: str, split: str) -> None:
    """Write a reference-form task file for ``data``, a split of a bundled data set."""
    bundled = _bundled(dataset, split)
    if array_sha256(bundled.x) != array_sha256(data.x) or array_sha256(bundled.y) != array_sha256(data.y):
        raise DataError(f"{path}: the data are not the {split} split of {dataset!r}")
    np.savez_compressed(
        path,
        task=np.array(data.name),
        dataset=np.array(dataset),
        split=np.array(split),
        x_sha256=np.array(array_sha256(data.x)),
        y_sha256=np.array(array_sha256(data.y)),
    )


def _check_hashes(path: Path, data: TaskData, arrays: dict[str, np.ndarray], what: str) -> TaskData:
    want = (_field(arrays, "x_sha256", path, str), _field(arrays, "y_sha256", path, str))
    if (array_sha256(data.x), array_sha256(data.y)) != want:
        raise DataError(f"{path}: {what} gave different data than when the file was written")
    return data


#: bounds of a recipe (the adding-problem test set: 2560 sequences of up to 440 steps)
MAX_RECIPE_SEQUENCES = 1_000_000
MAX_RECIPE_STEPS = 100_000
MAX_RECIPE_VALUES = 50_000_000  # n * max(T, 100)


def _field(arrays: dict[str, np.ndarray], key: str, path: Path, kind: type) -> Any:
    """A scalar field of a task file: an int, or a str."""
    if key not in arrays:
        raise DataError(f"{path}: the task file has no field '{key}'")
    a = arrays[key]
    want = "iu" if kind is int else "U"
    if a.shape != () or a.dtype.kind not in want:
        raise DataError(f"{path}: field '{key}' must be a scalar {kind.__name__}; got shape {a.shape} "
                        f"dtype {a.dtype}")
    return kind(a[()])


def _recipe(path: Path, arrays: dict[str, np.ndarray]) -> TaskData:
    task = _field(arrays, "task", path, str)
    n, T, seed = (_field(arrays, k, path, int) for k in ("n", "T", "seed"))
    if not 1 <= n <= MAX_RECIPE_SEQUENCES:
        raise DataError(f"{path}: recipe field 'n' = {n} must lie in [1, {MAX_RECIPE_SEQUENCES}]")
    if T != -1 and not 1 <= T <= MAX_RECIPE_STEPS:
        raise DataError(f"{path}: recipe field 'T' = {T} must be -1 (task default) or lie in "
                        f"[1, {MAX_RECIPE_STEPS}]")
    if n * max(T, 100) > MAX_RECIPE_VALUES:
        raise DataError(f"{path}: recipe fields 'n' = {n} and 'T' = {T} ask for more than "
                        f"{MAX_RECIPE_VALUES} time steps in all")
    if not 0 <= seed < 2**63:
        raise DataError(f"{path}: recipe field 'seed' = {seed} must lie in [0, 2^63)")
    try:
        data = generate(task, n, seed, None if T < 0 else T)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    return _check_hashes(path, data, arrays, f"regenerating {task} (n={n}, T={T}, seed={seed}) "
                         "(numpy's random stream changed?)")


def _reference(path: Path, arrays: dict[str, np.ndarray]) -> TaskData:
    dataset, split = _field(arrays, "dataset", path, str), _field(arrays, "split", path, str)
    try:
        bundled = _bundled(dataset, split)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    return _check_hashes(path, bundled, arrays, f"the bundled {dataset!r} {split} split")


def save_arrays(path: str | Path, data: TaskData, *, with_targets: bool = True) -> None:
    """Write an arrays-form task file (``with_targets=False`` for calibration inputs)."""
    fields: dict[str, np.ndarray] = {
        "task": np.array(data.name),
        "x": data.x.astype(np.float32),
        "lengths": data.lengths.astype(np.int64),
    }
    if with_targets:
        fields["y"] = data.y
        if data.labels is not None:
            fields["labels"] = data.labels
    np.savez_compressed(path, **fields)


def load_task_file(path: str | Path) -> TaskData:
    """Load a task file in either form (see the module docstring).

    Calibration files have no targets: their ``y`` is an empty (n, 0) array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not a readable .npz task file (no such file)")
    keys = ("task", "n", "T", "seed", "x_sha256", "y_sha256", "dataset", "split", "x", "lengths",
            "y", "labels")
    names, arrays = read_arrays(path, "task file", keys)
    if "seed" in names:
        return _recipe(path, arrays)
    if "dataset" in names:
        return _reference(path, arrays)
    if not {"x", "lengths"} <= names:
        raise DataError(f"{path}: a task file needs 'x' and 'lengths' (or a recipe 'seed', "
                        "or a bundled 'dataset')")
    x = arrays["x"]
    lengths = arrays["lengths"]
    if lengths.dtype.kind not in "iu" or x.dtype.kind not in "fiu":
        raise DataError(f"{path}: 'x' must be numbers and 'lengths' integers; got dtypes {x.dtype} "
                        f"and {lengths.dtype}")
    lengths = lengths.astype(np.int64)
    name = _field(arrays, "task", path, str) if "task" in names else path.stem
    y = arrays["y"] if "y" in names else np.zeros((x.shape[0] if x.ndim else 0, 0), dtype=np.float32)
    labels = arrays["labels"].astype(np.int64) if "labels" in names else None
    if x.ndim != 3 or lengths.shape != (x.shape[0],):
        raise DataError(f"{path}: x must be (n, Tmax, features) with lengths (n,); got "
                        f"{x.shape} and {lengths.shape}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise DataError(f"{path}: lengths must lie in [1, {x.shape[1]}]")
    return TaskData(name, x.astype(np.float32), lengths, y, labels)
