"""The long-time-lag tasks of Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997).

These tasks break recurrent nets that cannot hold information for hundreds of steps, which is
exactly what careless fixed-point arithmetic does; tinylstm uses them as acceptance tests for
the integer model. Every generator takes a seeded :class:`numpy.random.Generator`, so a
``(task, n, T, seed)`` recipe identifies a data set exactly.

Variable lengths and padding
----------------------------
Sequences of one data set have different lengths (the adding problem: uniform in
``[T, T + T // 10]``). :class:`TaskData` stores them zero-padded to the longest one, with
``lengths`` telling how many leading steps of each row are real. The padding is only a
storage format: **never run a model over padded steps**. The exact way to evaluate a model
is :func:`length_groups` / :func:`predict_by_length`: rows of equal length are run together as
one batch, cut to their own length, so there is no padding at all. The shipped example
models (``examples/models/``) read the output after the last input step, which is then the
last valid step of every row.

Targets
-------
- adding, multiplication: ``y`` (n, 1), the target at the last step.
- temporal order: ``y`` (n, classes) one-hot, ``labels`` (n,).
- embedded Reber: ``y`` (n, Tmax, 7) multi-hot of the symbols that may come next, per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

#: The paper's success criterion for the adding and multiplication problems.
ADDING_TOLERANCE = 0.04
#: The paper's criterion for temporal order with sigmoid-like outputs: every output error below.
TEMPORAL_ORDER_TOLERANCE = 0.3

#: Temporal order alphabet, in the order of the one-hot input units.
TEMPORAL_ORDER_SYMBOLS = ("E", "B", "a", "b", "c", "d", "X", "Y")
#: Embedded Reber alphabet, in the order of the one-hot input and output units.
REBER_SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")

# Relevant-symbol windows (0-based step indices, inclusive) of Experiment 6.
_TEMPORAL_ORDER_WINDOWS = {
    "6a": ((10, 20), (50, 60)),
    "6b": ((10, 20), (33, 43), (66, 76)),
}


@dataclass(frozen=True)
class TaskData:
    """A batch of padded sequences with their targets.

    Steps ``lengths[i]`` and later of row ``i`` are zero padding (see the module docstring).
    """

    name: str  # "adding", "multiplication", "temporal_order_6a", "temporal_order_6b", "reber"
    x: np.ndarray  # (n, Tmax, features) float32, zero past lengths[i]
    lengths: np.ndarray  # (n,) int64, each in [1, Tmax]
    y: np.ndarray  # (n, outputs) float32, or (n, Tmax, 7) per-step targets for "reber"
    labels: np.ndarray | None = None  # (n,) int64 class index, temporal order only

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: np.ndarray) -> TaskData:
        """Rows ``idx`` (padding trimmed to the longest selected row)."""
        idx = np.asarray(idx)
        tmax = int(self.lengths[idx].max()) if idx.size else 0
        y = self.y[idx]
        if y.ndim == 3:
            y = y[:, :tmax]
        labels = None if self.labels is None else self.labels[idx]
        return TaskData(self.name, self.x[idx, :tmax], self.lengths[idx], y, labels)


@dataclass(frozen=True)
class TaskScore:
    """How many sequences a model processed correctly by the paper's criterion."""

    n: int
    wrong: int
    mean_abs_error: float  # mean |output - target| (adding, multiplication); else 0.0

    @property
    def accuracy(self) -> float:
        return 1.0 - self.wrong / self.n if self.n else 0.0

    def __str__(self) -> str:
        return f"{self.wrong}/{self.n} wrong (mean |err| {self.mean_abs_error:.4f})"


# --------------------------------------------------------------------------------------
# Evaluating a model without padding
# --------------------------------------------------------------------------------------
def length_groups(lengths: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(length, row indices)`` for each distinct length, shortest first."""
    lengths = np.asarray(lengths)
    for length in np.unique(lengths):
        yield int(length), np.flatnonzero(lengths == length)


def predict_by_length(
    run: Callable[[np.ndarray], np.ndarray], data: TaskData, *, per_step: bool = False
) -> np.ndarray:
    """Run ``run(x (b, L, features)) -> (b, outputs)`` once per length group, unpadded.

    Returns the outputs in the rows' original order: (n, outputs), or with ``per_step``
    ``run`` returns (b, L, outputs) and the result is (n, Tmax, outputs), zero past each length.
    """
    out: np.ndarray | None = None
    for length, idx in length_groups(data.lengths):
        block = np.asarray(run(np.ascontiguousarray(data.x[idx, :length])))
        if out is None:
            shape = (data.n, data.x.shape[1], block.shape[-1]) if per_step else (data.n,) + block.shape[1:]
            out = np.zeros(shape, dtype=np.float32)
        if per_step:
            out[idx, :length] = block
        else:
            out[idx] = block
    if out is None:
        raise DataError("predict_by_length: the data set is empty")
    return out


# --------------------------------------------------------------------------------------
# Adding and multiplication problems (Experiments 4 and 5)
# --------------------------------------------------------------------------------------
def _lengths(
    n: int, low: int, high: int, rng: np.random.Generator, length: int | None
) -> np.ndarray:
    """Uniform lengths in [low, high], or all ``length`` (which must lie in that range)."""
    if length is None:
        return rng.integers(low, high + 1, size=n).astype(np.int64)
    if not low <= length <= high:
        raise DataError(f"length {length} is outside the task's range [{low}, {high}]")
    return np.full(n, length, dtype=np.int64)


def _marked_pairs(
    n: int, T: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the two marked pairs: ``a`` among the first ten, ``b`` among the first
    ``T/2 - 1`` still-unmarked pairs after the first one (``b`` is never 0, never ``a``)."""
    a = rng.integers(0, 10, size=n)
    k = rng.integers(0, T // 2 - 1, size=n)  # rank among the candidates 1, 2, ... skipping a
    b = 1 + k
    b = b + ((a >= 1) & (b >= a))
    return a.astype(np.int64), b.astype(np.int64)


def _pair_sequences(
    n: int, T: int, rng: np.random.Generator, low: float, high: float, length: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if T < 20:
        raise DataError(f"adding/multiplication problem: T must be >= 20, got {T}")
    if n < 1:
        raise DataError(f"adding/multiplication problem: n must be >= 1, got {n}")
    lengths = _lengths(n, T, T + T // 10, rng, length)
    tmax = int(lengths.max())
    steps = np.arange(tmax)
    values = rng.uniform(low, high, size=(n, tmax))
    a, b = _marked_pairs(n, T, rng)
    marker = np.zeros((n, tmax))
    rows = np.arange(n)
    marker[:, 0] = -1.0
    marker[rows, lengths - 1] = -1.0
    marker[rows, a] = 1.0
    marker[rows, b] = 1.0
    valid = steps[None, :] < lengths[:, None]
    # Callers compute targets from the float32 values in x: exactly what the model sees.
    x = np.stack([values * valid, marker * valid], axis=-1).astype(np.float32)
    return x, lengths, a, b


def adding_problem(
    n: int, T: int, rng: np.random.Generator, *, length: int | None = None
) -> TaskData:
    """The adding problem: inputs (value in [-1, 1], marker in {1, 0, -1}) per step.

    Length uniform in ``[T, T + T // 10]``. One pair among the first ten and one among the
    first ``T/2 - 1`` others (never the first pair) carry marker 1; the first and last pairs
    carry -1 unless marked. Target ``0.5 + (X1 + X2) / 4`` with ``X1 = 0`` when the first pair
    is the marked one. ``x`` (n, Tmax, 2), ``y`` (n, 1). ``length`` (in that range) gives
    every sequence the same length, e.g. for unpadded training batches.
    """
    x, lengths, a, b = _pair_sequences(n, T, rng, -1.0, 1.0, length)
    rows = np.arange(n)
    x1 = np.where(a == 0, 0.0, x[rows, a, 0].astype(np.float64))
    x2 = x[rows, b, 0].astype(np.float64)
    y = (0.5 + (x1 + x2) / 4.0).astype(np.float32)[:, None]
    return TaskData("adding", x, lengths, y)


def multiplication_problem(
    n: int, T: int, rng: np.random.Generator, *, length: int | None = None
) -> TaskData:
    """The multiplication problem: as :func:`adding_problem` with values in [0, 1],
    ``X1 = 1`` when the first pair is marked, and target ``X1 * X2``."""
    x, lengths, a, b = _pair_sequences(n, T, rng, 0.0, 1.0, length)
    rows = np.arange(n)
    x1 = np.where(a == 0, 1.0, x[rows, a, 0].astype(np.float64))
    x2 = x[rows, b, 0].astype(np.float64)
    y = (x1 * x2).astype(np.float32)[:, None]
    return TaskData("multiplication", x, lengths, y)


def _last_outputs(pred: np.ndarray, n: int) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape not in ((n,), (n, 1)):
        raise DataError(f"expected outputs of shape ({n}, 1), got {pred.shape}")
    return pred.reshape(n)


def score_adding(pred: np.ndarray, data: TaskData) -> TaskScore:
    """Paper criterion (adding and multiplication): correct if ``|output - target| < 0.04``.

    ``pred`` (n, 1) or (n,): the output after each sequence's last valid step.
    """
    err = np.abs(_last_outputs(pred, data.n) - data.y.reshape(data.n).astype(np.float64))
    return TaskScore(data.n, int(np.sum(~(err < ADDING_TOLERANCE))), float(err.mean()))


score_multiplication = score_adding


# --------------------------------------------------------------------------------------
# Temporal order (Experiment 6)
# --------------------------------------------------------------------------------------
def temporal_order(
    n: int,
    rng: np.random.Generator,
    variant: str = "6a",
    T: int = 100,
    *,
    length: int | None = None,
) -> TaskData:
    """Temporal order 6a (classes XX, XY, YX, YY) or 6b (8 classes XXX ... YYY).

    Symbols one-hot over :data:`TEMPORAL_ORDER_SYMBOLS`; length uniform in ``[T, T + T // 10]``
    (the paper: [100, 110]). Starts with E, ends with B; X or Y at one step of each window
    (0-based steps, 6a: [10, 20] and [50, 60]; 6b: [10, 20], [33, 43], [66, 76]); every other
    step random from {a, b, c, d}. Class = the X/Y choices read as a binary number, X = 0,
    first choice most significant. ``x`` (n, Tmax, 8), ``y`` (n, classes), ``labels`` (n,).
    ``length`` (in the length range) gives every sequence the same length.
    """
    if variant not in _TEMPORAL_ORDER_WINDOWS:
        raise DataError(f"temporal order: variant must be '6a' or '6b', got {variant!r}")
    if T < 100:
        raise DataError(f"temporal order: T must be >= 100 (the windows end at 76), got {T}")
    if n < 1:
        raise DataError(f"temporal order: n must be >= 1, got {n}")
    windows = _TEMPORAL_ORDER_WINDOWS[variant]
    lengths = _lengths(n, T, T + T // 10, rng, length)
    tmax = int(lengths.max())
    rows = np.arange(n)
    sym = rng.integers(2, 6, size=(n, tmax))  # a, b, c, d
    sym[:, 0] = 0  # E
    sym[rows, lengths - 1] = 1  # B
    labels = np.zeros(n, dtype=np.int64)
    for lo, hi in windows:
        pos = rng.integers(lo, hi + 1, size=n)
        choice = rng.integers(0, 2, size=n)  # 0 = X, 1 = Y
        sym[rows, pos] = 6 + choice
        labels = 2 * labels + choice
    valid = np.arange(tmax)[None, :] < lengths[:, None]
    x = (np.eye(8, dtype=np.float32)[sym] * valid[:, :, None]).astype(np.float32)
    classes = 2 ** len(windows)
    y = np.eye(classes, dtype=np.float32)[labels]
    return TaskData(f"temporal_order_{variant}", x, lengths, y, labels)


def score_temporal_order(pred: np.ndarray, data: TaskData, *, rule: str = "argmax") -> TaskScore:
    """``rule="argmax"``: correct if the largest output is the target class (softmax heads);
    ``rule="threshold"``: the paper's, correct if every ``|output - target| < 0.3``."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != data.y.shape:
        raise DataError(f"expected outputs of shape {data.y.shape}, got {pred.shape}")
    if rule == "argmax":
        ok = np.argmax(pred, axis=1) == np.argmax(data.y, axis=1)
    elif rule == "threshold":
        ok = np.all(np.abs(pred - data.y) < TEMPORAL_ORDER_TOLERANCE, axis=1)
    else:
        raise DataError(f"score_temporal_order: rule must be 'argmax' or 'threshold', got {rule!r}")
    return TaskScore(data.n, int(np.sum(~ok)), 0.0)


# --------------------------------------------------------------------------------------
# Embedded Reber grammar (Experiment 1)
# --------------------------------------------------------------------------------------
# Inner Reber grammar after its B: state -> ((symbol, next state), (symbol, next state)).
_REBER_GRAPH = {
    0: (("T", 1), ("P", 2)),
    1: (("S", 1), ("X", 3)),
    2: (("T", 2), ("V", 4)),
    3: (("X", 2), ("S", 5)),
    4: (("P", 3), ("V", 5)),
}
_R = {s: i for i, s in enumerate(REBER_SYMBOLS)}


def reber_string(rng: np.random.Generator) -> tuple[list[int], list[frozenset[int]]]:
    """One embedded Reber string and, per symbol, the set of symbols that may follow it.

    B, (T|P), B, inner ..., E, the same (T|P), E; every choice has probability 0.5.
    """
    outer = "TP"[int(rng.integers(0, 2))]
    syms = ["B", outer, "B"]
    nexts: list[frozenset[str]] = [frozenset("TP"), frozenset("B"), frozenset("TP")]
    state = 0
    while state != 5:
        sym, state = _REBER_GRAPH[state][int(rng.integers(0, 2))]
        syms.append(sym)
        nexts.append(frozenset("E") if state == 5 else frozenset(s for s, _ in _REBER_GRAPH[state]))
    syms += ["E", outer, "E"]
    nexts += [frozenset(outer), frozenset("E"), frozenset()]
    return [_R[s] for s in syms], [frozenset(_R[s] for s in nx) for nx in nexts]


def embedded_reber(n: int, rng: np.random.Generator) -> TaskData:
    """``n`` embedded Reber strings for next-symbol prediction.

    Input: every symbol but the final E, one-hot (n, Tmax, 7); ``lengths`` = string length - 1.
    ``y`` (n, Tmax, 7): multi-hot of the symbols that may follow each input step.
    """
    if n < 1:
        raise DataError(f"embedded Reber: n must be >= 1, got {n}")
    strings = [reber_string(rng) for _ in range(n)]
    lengths = np.array([len(s) - 1 for s, _ in strings], dtype=np.int64)
    tmax = int(lengths.max())
    x = np.zeros((n, tmax, 7), dtype=np.float32)
    y = np.zeros((n, tmax, 7), dtype=np.float32)
    for i, (syms, nexts) in enumerate(strings):
        for t in range(len(syms) - 1):
            x[i, t, syms[t]] = 1.0
            y[i, t, list(nexts[t])] = 1.0
    return TaskData("reber", x, lengths, y)


def score_reber(pred: np.ndarray, data: TaskData) -> TaskScore:
    """Paper criterion: a string is correct if at every step the units of the possible next
    symbols are the most active ones (each allowed output above every disallowed one).

    ``pred`` (n, Tmax, 7) per-step outputs (values past a row's length are ignored).
    """
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != data.y.shape:
        raise DataError(f"expected outputs of shape {data.y.shape}, got {pred.shape}")
    allowed = data.y > 0.5
    min_allowed = np.where(allowed, pred, np.inf).min(axis=2)
    max_other = np.where(allowed, -np.inf, pred).max(axis=2)
    step_ok = min_allowed > max_other
    valid = np.arange(pred.shape[1])[None, :] < data.lengths[:, None]
    ok = np.all(step_ok | ~valid, axis=1)
    return TaskScore(data.n, int(np.sum(~ok)), 0.0)


# --------------------------------------------------------------------------------------
# Recipes: a data set named by (task, n, T, seed)
# --------------------------------------------------------------------------------------
TASKS = ("adding", "multiplication", "temporal_order_6a", "temporal_order_6b", "reber")


def generate(task: str, n: int, seed: int, T: int | None = None) -> TaskData:
    """The data set ``task`` with ``n`` sequences from ``np.random.default_rng(seed)``.

    ``T`` is the minimal length (adding, multiplication: required; temporal order: default
    100; Reber: unused).
    """
    rng = np.random.default_rng(seed)
    if task in ("adding", "multiplication"):
        if T is None:
            raise DataError(f"task '{task}' needs T (the minimal sequence length)")
        fn = adding_problem if task == "adding" else multiplication_problem
        return fn(n, T, rng)
    if task.startswith("temporal_order_") and task in TASKS:
        return temporal_order(n, rng, task.rsplit("_", 1)[1], 100 if T is None else T)
    if task == "reber":
        return embedded_reber(n, rng)
    raise DataError(f"unknown task {task!r}; supported: {', '.join(TASKS)}")


def score_classification(pred: np.ndarray, data: TaskData) -> TaskScore:
    """Correct if the largest of ``pred`` (n, classes) is at ``data.labels``."""
    pred = np.asarray(pred)
    if data.labels is None or pred.shape != data.y.shape:
        raise DataError(f"expected outputs of shape {data.y.shape} for labelled data, got {pred.shape}")
    return TaskScore(data.n, int(np.sum(np.argmax(pred, axis=1) != data.labels)), 0.0)


def score(pred: np.ndarray, data: TaskData) -> TaskScore:
    """Score with the paper's criterion for ``data.name``; labelled data (temporal order,
    JapaneseVowels) by argmax."""
    if data.name in ("adding", "multiplication"):
        return score_adding(pred, data)
    if data.labels is not None:
        return score_classification(pred, data)
    if data.name == "reber":
        return score_reber(pred, data)
    raise DataError(f"no scoring rule for task {data.name!r}")
