"""Calibration: run the float reference over representative data and record tensor ranges.

The observer (minmax, percentile, mse) turns what was seen into the ranges the quantizer uses
for int8 tensors; the cell always keeps its exact ``max |c|`` (docs/quantization.md §7, §12).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset, load_dataset
from ..errors import DataError
from ..ir import FloatModel, GruNode, LstmNode
from ..ir.reference import check_input, run_canonical

OBSERVERS = ("minmax", "percentile", "mse")
#: Values kept per tensor for the percentile and mse observers.
SAMPLE_CAP = 1 << 20
#: Rows per reference batch.
BATCH_ROWS = 256
#: Show progress on stderr (progress=None) when the data holds more sequence steps than this.
PROGRESS_STEPS = 200_000

Progress = Callable[[int, int], None]
CalibData = np.ndarray | Sequence[np.ndarray] | str | os.PathLike | Dataset


@dataclass(frozen=True)
class TensorRange:
    """What calibration saw of one tensor: exact extremes and the observer's chosen range."""

    lo: float  # observer range (contains 0)
    hi: float
    min: float  # exact extremes seen
    max: float
    count: int

    @property
    def absmax(self) -> float:
        return max(abs(self.min), abs(self.max))


@dataclass(frozen=True)
class Calibration:
    """Ranges per ``(node index, tensor name)``. Names: ``"output"`` for every node;
    for LSTM nodes per direction ``d``: ``"pre{d}.i|f|g|o"``, ``"gates{d}"``, ``"c{d}"``,
    ``"h{d}"``; for GRU nodes ``"pre{d}.z|r|h"``, ``"gates{d}"``, ``"rh{d}"``, ``"h{d}"``
    (see reference.Observer)."""

    observer: str
    percentile: float
    ranges: dict[tuple[int, str], TensorRange] = field(repr=False)
    sequences: int = 0
    steps: int = 0
    longest: int = 0  # steps of the longest sequence

    def get(self, node: int, name: str) -> TensorRange:
        try:
            return self.ranges[(node, name)]
        except KeyError:
            raise DataError(f"calibration has no range for node {node} tensor '{name}'") from None

    def range(self, node: int, name: str = "output") -> tuple[float, float]:
        r = self.get(node, name)
        return r.lo, r.hi

    def absmax(self, node: int, name: str) -> float:
        return self.get(node, name).absmax


class _Stats:
    """Exact min/max plus a uniform Bernoulli sample (probability halves when it overflows)."""

    def __init__(self, keep_sample: bool, rng: np.random.Generator):
        self.min = np.inf
        self.max = -np.inf
        self.count = 0
        self.keep = keep_sample
        self.rng = rng
        self.p = 1.0
        self.chunks: list[np.ndarray] = []
        self.n_kept = 0

    def add(self, a: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        if a.size == 0:
            return
        if not np.isfinite(a).all():
            raise DataError("the float model produced NaN or Inf on the calibration data")
        self.min = min(self.min, float(a.min()))
        self.max = max(self.max, float(a.max()))
        self.count += a.size
        if not self.keep:
            return
        if self.p < 1.0:
            a = a[self.rng.random(a.size) < self.p]
        self.chunks.append(a.astype(np.float32))
        self.n_kept += a.size
        while self.n_kept > 2 * SAMPLE_CAP:
            s = np.concatenate(self.chunks)
            s = s[self.rng.random(s.size) < 0.5]
            self.chunks = [s]
            self.n_kept = s.size
            self.p *= 0.5

    def sample(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)


def _mse_range(sample: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The range ``[a lo, b hi]`` (a, b in 0.10..1.00 step 0.02) minimizing the mean squared
    int8 quantization error (rounding s^2/12 inside, clipping outside) on a 2048-bin histogram."""
    if hi - lo <= 0:
        return lo, hi
    counts, edges = np.histogram(sample.astype(np.float64), bins=2048, range=(lo, hi))
    centers = 0.5 * (edges[:-1] + edges[1:])
    w = counts / max(1, counts.sum())
    fr = np.linspace(0.10, 1.00, 46)
    los = lo * fr if lo < 0 else np.zeros(1)
    his = hi * fr if hi > 0 else np.zeros(1)
    L, Hh = np.meshgrid(los, his, indexing="ij")  # (nl, nh)
    s = (Hh - L) / 255.0
    c = centers[None, None, :]
    clipped = np.clip(c, L[..., None], Hh[..., None])
    err = ((c - clipped) ** 2 + (s**2 / 12.0)[..., None]) @ w  # (nl, nh)
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(L[i, j]), float(Hh[i, j])


def _finish(st: _Stats, observer: str, pct: float) -> TensorRange:
    mn, mx = (st.min, st.max) if st.count else (0.0, 0.0)
    lo, hi = min(mn, 0.0), max(mx, 0.0)
    if observer != "minmax" and st.count:
        s = st.sample()
        if s.size:
            if observer == "percentile":
                lo = min(float(np.percentile(s, 100.0 - pct)), 0.0)
                hi = max(float(np.percentile(s, pct)), 0.0)
            else:
                lo, hi = _mse_range(s, lo, hi)
    return TensorRange(lo, hi, mn, mx, st.count)


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def _cut_rows(model: FloatModel, data: CalibData, lens: np.ndarray) -> list[np.ndarray]:
    """Rows of one batch in the ONNX input layout, each cut to its ``sequence_lens`` entry, as
    single canonical sequences ``(T_i, F)``."""
    if not isinstance(data, np.ndarray):
        raise DataError("sequence_lens needs the data as one array in the model's input layout")
    xc = check_input(model, data)
    lens = np.asarray(lens).reshape(-1)
    if lens.shape[0] != xc.shape[0]:
        raise DataError(f"sequence_lens has {lens.shape[0]} entries for {xc.shape[0]} sequences")
    if (lens < 1).any() or (lens > xc.shape[1]).any():
        raise DataError(f"sequence_lens must lie in [1, {xc.shape[1]}]")
    return [xc[i, : int(n)] for i, n in enumerate(lens)]


def canonical_groups(model: FloatModel, data: CalibData | Dataset) -> list[np.ndarray]:
    """The data as canonical ``(B, T, F)`` float64 batches, one per sequence length (no padding).

    ``data``: anything :func:`tinylstm.data.load_dataset` reads — a :class:`~tinylstm.data.Dataset`,
    a data file path (``x`` (N, T, F), optional ``lengths``), an array in the ONNX input's layout,
    or a list of single sequences ``(T, F)`` and/or batches in that layout of different lengths.
    """
    return [batch for _, batch in load_dataset(data, model, what="calibration data").groups()]


def calibrate(
    float_model: FloatModel,
    data: CalibData,
    *,
    observer: str = "minmax",
    percentile: float = 99.99,
    progress: Progress | bool | None = None,
    sequence_lens: np.ndarray | None = None,
    seed: int = 0,
) -> Calibration:
    """Observe every internal tensor of ``float_model`` on ``data`` (see :func:`canonical_groups`).

    ``sequence_lens`` (with array data only): valid length of each row; rows are cut to it.

    ``progress``: None shows a progress line on stderr for large data sets, False never,
    a callable ``progress(done_sequences, total_sequences)`` is called after each batch.
    """
    if observer not in OBSERVERS:
        raise DataError(f"unknown observer '{observer}'; use one of {', '.join(OBSERVERS)}")
    if not 50.0 < percentile <= 100.0:
        raise DataError(f"percentile {percentile} must lie in (50, 100]")
    if sequence_lens is not None:
        data = _cut_rows(float_model, data, sequence_lens)
    groups = canonical_groups(float_model, data)
    total = sum(g.shape[0] for g in groups)
    total_steps = sum(g.shape[0] * g.shape[1] for g in groups)
    keep = observer != "minmax"
    rng = np.random.default_rng(seed)
    stats: dict[tuple[int, str], _Stats] = {}
    # gate rows of each recurrent node: (hidden size, gate names in row order)
    hidden = {k: (n.hidden_size, "ifgo" if isinstance(n, LstmNode) else "zrh")
              for k, n in enumerate(float_model.nodes) if isinstance(n, (LstmNode, GruNode))}

    def put(key: tuple[int, str], a: np.ndarray) -> None:
        st = stats.get(key)
        if st is None:
            st = stats[key] = _Stats(keep, rng)
        st.add(a)

    def observe(k: int, name: str, a: np.ndarray) -> None:
        if name.startswith("pre"):
            h, gate_names = hidden[k]
            for gi, g in enumerate(gate_names):
                put((k, f"{name}.{g}"), a[:, gi * h : (gi + 1) * h])
        else:
            put((k, name), a)

    report: Progress | None
    if callable(progress):
        report = progress
    elif progress is None and total_steps > PROGRESS_STEPS:
        def report(done: int, tot: int) -> None:
            print(f"\rcalibrating: {done}/{tot} sequences", end="" if done < tot else "\n",
                  file=sys.stderr, flush=True)
    else:
        report = None

    fixed = float_model.fixed_batch  # rows of a static batch hold different initial states
    rows = fixed or BATCH_ROWS
    done = 0
    for g in groups:
        for start in range(0, g.shape[0], rows):
            xb = g[start : start + rows]
            if fixed and xb.shape[0] < fixed:
                # a fixed-batch model (initial states per row): fill up by repeating rows
                xb = np.take(g, np.arange(start, start + fixed) % g.shape[0], axis=0)
            lens = None
            if float_model.sequence_lens_input is not None:
                lens = np.full(xb.shape[0], xb.shape[1], dtype=np.int32)
            run_canonical(float_model, xb, sequence_lens=lens, observe=observe)
            done += min(xb.shape[0], g.shape[0] - start)
            if report is not None:
                report(done, total)
    ranges = {key: _finish(st, observer, percentile) for key, st in stats.items()}
    return Calibration(observer, percentile, ranges, sequences=total, steps=total_steps,
                       longest=max(g.shape[1] for g in groups))
