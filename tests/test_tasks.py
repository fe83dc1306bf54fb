"""The 1997 LSTM paper's task generators and scoring rules (tinylstm/tasks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinylstm.data import tasks
from tinylstm.data.tasks import REBER_SYMBOLS, TEMPORAL_ORDER_SYMBOLS
from tinylstm.errors import DataError


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _valid(data: tasks.TaskData) -> np.ndarray:
    return np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]


# --------------------------------------------------------------------------------------
# Adding and multiplication
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [20, 100, 400])
def test_adding_shapes_lengths_and_padding(T: int) -> None:
    d = tasks.adding_problem(3000, T, _rng(T))
    assert d.x.dtype == np.float32 and d.y.dtype == np.float32
    assert d.x.shape == (3000, d.lengths.max(), 2) and d.y.shape == (3000, 1)
    assert d.lengths.min() == T and d.lengths.max() == T + T // 10  # both ends reached
    assert np.all(d.x[~_valid(d)] == 0.0)
    values = d.x[..., 0][_valid(d)]
    assert values.min() >= -1.0 and values.max() <= 1.0


def test_adding_markers_and_target_formula() -> None:
    T = 100
    d = tasks.adding_problem(5000, T, _rng(1))
    rows = np.arange(d.n)
    marker, value = d.x[..., 1], d.x[..., 0].astype(np.float64)
    assert set(np.unique(marker[_valid(d)])) <= {-1.0, 0.0, 1.0}
    assert np.all((marker == 1.0).sum(axis=1) == 2)
    marked = np.sort(np.argwhere(marker == 1.0)[:, 1].reshape(d.n, 2), axis=1)
    first, second = marked[:, 0], marked[:, 1]
    assert first.max() <= 9 and second.min() >= 1 and second.max() <= T // 2
    # The first and last pairs carry -1 unless marked; no other pair does.
    assert np.all(marker[rows, d.lengths - 1] == -1.0)
    assert np.all(marker[first != 0, 0] == -1.0)
    assert np.all((marker == -1.0).sum(axis=1) == np.where(first == 0, 1, 2))
    # Target: 0.5 + (X1 + X2) / 4, and a marked first pair means X1 = 0.
    x1 = np.where(first == 0, 0.0, value[rows, first])
    x2 = value[rows, second]
    np.testing.assert_array_equal(d.y[:, 0], (0.5 + (x1 + x2) / 4).astype(np.float32))
    assert d.y.min() >= 0.0 and d.y.max() <= 1.0


def test_adding_first_pair_rule() -> None:
    """About 1 row in 10 has its first pair marked; X2 then ranges over 1..T/2-1 and is
    never the first pair (otherwise "marked first pair" would not mean X1 = 0)."""
    T = 40
    d = tasks.adding_problem(20000, T, _rng(2))
    marker = d.x[..., 1]
    first_marked = marker[:, 0] == 1.0
    assert 0.09 < first_marked.mean() < 0.11
    second = np.argwhere(marker[first_marked] == 1.0)[:, 1].reshape(-1, 2)[:, 1]
    assert set(second.tolist()) == set(range(1, T // 2))
    # With the first pair unmarked, X2 is one of the first T/2 - 1 unmarked pairs after it.
    m = np.sort(np.argwhere(marker[~first_marked] == 1.0)[:, 1].reshape(-1, 2), axis=1)
    a_rows = m[:, 0] <= 9
    assert np.all(a_rows)
    assert m[:, 1].max() == T // 2


def test_multiplication_target_and_first_pair() -> None:
    d = tasks.multiplication_problem(4000, 50, _rng(3))
    rows = np.arange(d.n)
    values = d.x[..., 0][_valid(d)]
    assert values.min() >= 0.0 and values.max() <= 1.0
    marker, value = d.x[..., 1], d.x[..., 0].astype(np.float64)
    marked = np.sort(np.argwhere(marker == 1.0)[:, 1].reshape(d.n, 2), axis=1)
    x1 = np.where(marked[:, 0] == 0, 1.0, value[rows, marked[:, 0]])
    np.testing.assert_array_equal(d.y[:, 0], (x1 * value[rows, marked[:, 1]]).astype(np.float32))
    assert np.any(marked[:, 0] == 0)


def test_generators_are_reproducible() -> None:
    for task, T in (("adding", 100), ("multiplication", 100), ("temporal_order_6a", None),
                    ("temporal_order_6b", None), ("reber", None)):
        a, b = tasks.generate(task, 50, 7, T), tasks.generate(task, 50, 7, T)
        c = tasks.generate(task, 50, 8, T)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.lengths, b.lengths)
        assert not np.array_equal(a.x, c.x) or not np.array_equal(a.lengths, c.lengths)


def test_fixed_length_option() -> None:
    d = tasks.adding_problem(10, 100, _rng(), length=107)
    assert np.all(d.lengths == 107) and d.x.shape[1] == 107
    assert np.all(d.x[:, 106, 1] == -1.0)
    with pytest.raises(DataError, match="outside"):
        tasks.adding_problem(10, 100, _rng(), length=111)
    with pytest.raises(DataError, match="outside"):
        tasks.temporal_order(10, _rng(), "6a", length=99)


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="T must be"):
        tasks.adding_problem(10, 10, _rng())
    with pytest.raises(DataError, match="needs T"):
        tasks.generate("adding", 10, 0)
    with pytest.raises(DataError, match="unknown task"):
        tasks.generate("copying", 10, 0)
    with pytest.raises(DataError, match="variant"):
        tasks.temporal_order(10, _rng(), "6c")
    for task in ("adding", "temporal_order_6b", "reber"):
        with pytest.raises(DataError, match="n must be"):
            tasks.generate(task, 0, 0, 100)


def test_score_adding_threshold() -> None:
    d = tasks.adding_problem(100, 20, _rng(4))
    y = d.y.astype(np.float64)
    assert tasks.score_adding(y, d).wrong == 0
    assert tasks.score_adding(y + 0.0399, d).wrong == 0
    assert tasks.score_adding(y - 0.0401, d).wrong == 100
    pred = y.copy()
    pred[[3, 50]] += 0.05
    s = tasks.score(pred[:, 0], d)
    assert (s.n, s.wrong) == (100, 2)
    assert s.mean_abs_error == pytest.approx(0.001, abs=1e-6)
    with pytest.raises(DataError, match="shape"):
        tasks.score_adding(np.zeros((100, 2)), d)


# --------------------------------------------------------------------------------------
# Temporal order
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant, windows", [
    ("6a", ((10, 20), (50, 60))),
    ("6b", ((10, 20), (33, 43), (66, 76))),
])
def test_temporal_order(variant: str, windows: tuple[tuple[int, int], ...]) -> None:
    d = tasks.temporal_order(4000, _rng(5), variant)
    assert d.x.shape[2] == len(TEMPORAL_ORDER_SYMBOLS)
    assert d.lengths.min() == 100 and d.lengths.max() == 110
    valid = _valid(d)
    assert np.all(d.x.sum(axis=2) == valid)  # one-hot on valid steps, zero padding
    sym = d.x.argmax(axis=2)
    rows = np.arange(d.n)
    assert np.all(sym[:, 0] == TEMPORAL_ORDER_SYMBOLS.index("E"))
    assert np.all(sym[rows, d.lengths - 1] == TEMPORAL_ORDER_SYMBOLS.index("B"))
    xy = (sym >= 6) & valid
    assert np.all(xy.sum(axis=1) == len(windows))
    pos = np.argwhere(xy)[:, 1].reshape(d.n, len(windows))
    label = np.zeros(d.n, dtype=np.int64)
    for k, (lo, hi) in enumerate(windows):
        assert pos[:, k].min() == lo and pos[:, k].max() == hi
        label = 2 * label + (sym[rows, pos[:, k]] == 7)  # Y = 1
    np.testing.assert_array_equal(d.labels, label)
    np.testing.assert_array_equal(d.y.argmax(axis=1), label)
    assert set(label.tolist()) == set(range(2 ** len(windows)))
    others = valid & ~xy
    others[:, 0] = False
    others[rows, d.lengths - 1] = False
    assert set(np.unique(sym[others]).tolist()) == {2, 3, 4, 5}  # a, b, c, d


def test_score_temporal_order_rules() -> None:
    d = tasks.temporal_order(10, _rng(6), "6a")
    pred = d.y * 0.75 + 0.1  # target 1 -> 0.85, 0 -> 0.1: all errors < 0.3
    assert tasks.score_temporal_order(pred, d, rule="threshold").wrong == 0
    pred[0] = d.y[0] * 0.6  # argmax right, error 0.4 on the target unit
    assert tasks.score_temporal_order(pred, d, rule="threshold").wrong == 1
    assert tasks.score_temporal_order(pred, d).wrong == 0
    pred[1] = 1.0 - d.y[1]
    assert tasks.score(pred, d).wrong == 1


# --------------------------------------------------------------------------------------
# Embedded Reber grammar
# --------------------------------------------------------------------------------------
_INNER = {0: {"T": 1, "P": 2}, 1: {"S": 1, "X": 3}, 2: {"T": 2, "V": 4},
          3: {"X": 2, "S": 5}, 4: {"P": 3, "V": 5}}


def _is_embedded_reber(s: str) -> bool:
    if len(s) < 9 or s[0] != "B" or s[1] not in "TP" or s[2] != "B" or s[-3:] != "E" + s[1] + "E":
        return False
    state = 0
    for c in s[3:-3]:
        if state == 5 or c not in _INNER[state]:
            return False
        state = _INNER[state][c]
    return state == 5


def test_reber_strings_follow_the_grammar() -> None:
    d = tasks.embedded_reber(500, _rng(9))
    valid = _valid(d)
    assert np.all(d.x.sum(axis=2) == valid)
    seconds = set()
    for i in range(d.n):
        syms = d.x[i, : d.lengths[i]].argmax(axis=1)
        text = "".join(REBER_SYMBOLS[k] for k in syms) + "E"
        assert _is_embedded_reber(text), text
        seconds.add(text[1])
        # Each next-symbol set holds the symbol that actually follows.
        nxt = [REBER_SYMBOLS.index(c) for c in text[1:]]
        assert np.all(d.y[i, np.arange(d.lengths[i]), nxt] == 1.0)
        # The symbol before the last is determined by the second one.
        assert np.array_equal(np.flatnonzero(d.y[i, d.lengths[i] - 2]), [REBER_SYMBOLS.index(text[1])])
    assert seconds == {"T", "P"}
    assert np.all(d.y[~valid] == 0.0)


def test_score_reber_needs_the_long_memory() -> None:
    d = tasks.embedded_reber(50, _rng(10))
    assert tasks.score_reber(d.y.copy(), d).wrong == 0
    # A predictor that forgot the second symbol: both T and P equally likely before the end.
    forgetful = d.y.copy()
    rows = np.arange(d.n)
    t = d.lengths - 2
    forgetful[rows, t, REBER_SYMBOLS.index("T")] = 1.0
    forgetful[rows, t, REBER_SYMBOLS.index("P")] = 1.0
    assert tasks.score(forgetful, d).wrong == 50
    # Values past a row's length are ignored.
    junk = d.y.copy()
    junk[~_valid(d)] = 5.0
    assert tasks.score_reber(junk, d).wrong == 0


# --------------------------------------------------------------------------------------
# Running without padding
# --------------------------------------------------------------------------------------
def test_predict_by_length_never_shows_padding() -> None:
    d = tasks.adding_problem(300, 100, _rng(11))
    seen = []

    def last_step(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape[1])
        return x[:, -1, :]  # (b, 2): the last input pair of each row

    out = tasks.predict_by_length(last_step, d)
    assert out.shape == (300, 2)
    assert np.all(out[:, 1] == -1.0)  # the last pair's marker: the run saw no padding
    np.testing.assert_array_equal(out[:, 0], d.x[np.arange(d.n), d.lengths - 1, 0])
    assert sorted(seen) == sorted(set(d.lengths.tolist()))

    per_step = tasks.predict_by_length(lambda x: x, d, per_step=True)
    np.testing.assert_array_equal(per_step, d.x)


def test_length_groups_and_subset() -> None:
    lengths = np.array([5, 3, 5, 4, 3])
    groups = list(tasks.length_groups(lengths))
    assert [g[0] for g in groups] == [3, 4, 5]
    np.testing.assert_array_equal(groups[2][1], [0, 2])
    d = tasks.adding_problem(20, 20, _rng(12))
    short = np.flatnonzero(d.lengths == d.lengths.min())
    sub = d.subset(short)
    assert sub.x.shape == (short.size, d.lengths.min(), 2)
