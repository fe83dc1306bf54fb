"""``--lstm-weight-bits auto``: the fewest bits (8 or 16) per recurrent weight matrix whose integer
model still scores within a budget of the float model.

The score is the simulator's on validation data: with ``labels`` or ``y`` the task's (wrong
sequences, as :mod:`.score` counts them); without, agreement with the float model (a classifier's
top class; a regression output within ``tolerance`` of the float output). The budget allows
``floor(budget * n)`` more wrong sequences than the float model (default 0.1 %: none on fewer than
1000 sequences). Search: every matrix at 8 bits; if that misses the budget, all at 16, then each
matrix (the input matrix W and the recurrent matrix R of every layer) lowered to 8 in turn, largest
first, kept where the budget still holds: at most 2L + 2 integer models for L layers, one
calibration. The quantizer takes the widths as ``lstm_weight_bits={"layer/W": 8, "layer/R": 16}``.
The module lives beside fine-tuning because both score integer models with the simulator on data
(:mod:`.score`), a later stage than the quantizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.dataset import Dataset, load_dataset
from ..ir import FloatModel, GruNode, LstmNode
from ..ir.reference import run_canonical
from ..qmodel import QuantizedModel
from ..quantize import calibrate, quantize
from .data import Examples, examples
from .score import DEFAULT_TOLERANCE, Score, float_score, int_score

#: Default budget: at most this share of the sequences more wrong than the float model.
DEFAULT_BUDGET = 0.001


@dataclass(frozen=True)
class WeightBits:
    """The choice and how it was made."""

    bits: dict[str, int]  # "layer/W" or "layer/R" -> 8 or 16
    float_score: Score
    score: Score  # of the chosen integer model
    allowed: int  # wrong sequences the budget allows
    met: bool  # False: even 16 bits everywhere misses the budget (16 bits kept)
    against: str  # "targets" or "the float model"
    tried: tuple[tuple[str, Score], ...]

    @property
    def spec(self) -> str:
        """The choice as ``--lstm-weight-bits`` takes it: ``NODE=BITS,...``."""
        return format_bits(self.bits)

    def describe(self) -> str:
        head = (f"--lstm-weight-bits auto chose {self.spec} (score {self.score}; float {self.float_score}; "
                f"budget: at most {self.allowed} more wrong than float, against {self.against})")
        if not self.met:
            head += "; no width meets the budget: 16 bits kept"
        return head


def format_bits(bits: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in bits.items())


def parse_bits(text: str) -> int | str | dict[str, int]:
    """``8``, ``16``, ``auto`` or ``KEY=BITS[,KEY=BITS...]`` with KEY a layer or ``layer/W``,
    ``layer/R`` (a ValueError names what is wrong)."""
    t = text.strip()
    if t in ("8", "16"):
        return int(t)
    if t == "auto":
        return t
    out: dict[str, int] = {}
    for part in t.split(","):
        name, eq, b = part.rpartition("=")
        if not eq or not name or b.strip() not in ("8", "16"):
            raise ValueError(f"'{text}': expected 8, 16, auto or NODE[/W|/R]=BITS[,...] with BITS 8 or 16")
        out[name] = int(b)
    return out


def _matrices(fm: FloatModel) -> list[tuple[str, int]]:
    """The recurrent layers' weight matrices ``layer/W``, ``layer/R`` with their weight counts,
    largest first (the order of the model on ties)."""
    out = []
    for n in fm.nodes:
        if isinstance(n, (LstmNode, GruNode)):
            out.append((f"{n.name}/W", sum(d.w.size for d in n.directions)))
            out.append((f"{n.name}/R", sum(d.r.size for d in n.directions)))
    return sorted(out, key=lambda t: -t[1])


def _reference(fm: FloatModel, ds: Dataset) -> Examples:
    """``ds`` with the float model's outputs as its targets (classifiers: its top class as label)."""
    outs: list[np.ndarray | None] = [None] * len(ds)
    for idx, batch in ds.groups():
        y = run_canonical(fm, batch.astype(np.float64))
        for k, i in enumerate(idx):
            outs[int(i)] = y[k]
    classifier = not fm.many_to_many and fm.output_features >= 2
    if classifier:
        labels = np.array([int(np.argmax(o)) for o in outs], np.int64)
        return examples(Dataset(ds.sequences, labels, None, ds.source), fm, "validation data")
    return examples(Dataset(ds.sequences, None, [np.asarray(o) for o in outs], ds.source), fm, "validation data")


def choose_weight_bits(fm: FloatModel, calib: Any, data: Any = None, *, quantize_options: dict | None = None,
                       budget: float = DEFAULT_BUDGET, tolerance: float = DEFAULT_TOLERANCE
                       ) -> tuple[QuantizedModel, WeightBits]:
    """The integer model with the fewest LSTM/GRU weight bits per matrix within ``budget`` (see the
    module doc) on ``data`` (default: the calibration data, against the float model)."""
    opts = {k: v for k, v in (quantize_options or {}).items() if k != "lstm_weight_bits"}
    cal_ds = load_dataset(calib, fm, what="calibration data")
    cal = calibrate(fm, cal_ds, **{k: opts[k] for k in ("observer", "percentile") if k in opts})
    ds = load_dataset(data, fm, what="validation data") if data is not None else cal_ds
    with_truth = ds.targets is not None or (ds.labels is not None and not fm.many_to_many
                                            and fm.output_features >= 2)
    ex = examples(ds, fm, "validation data") if with_truth else _reference(fm, ds)
    ref = float_score(fm, ex, tolerance)
    allowed = ref.wrong + math.floor(budget * len(ex))
    layers = _matrices(fm)
    tried: list[tuple[str, Score]] = []

    def attempt(bits: dict[str, int]) -> tuple[QuantizedModel, Score]:
        qm = quantize(fm, cal, lstm_weight_bits=bits, **opts)
        s = int_score(qm, fm, ex, tolerance)
        tried.append((format_bits(bits), s))
        return qm, s

    def done(bits, qm, s, met=True):
        return qm, WeightBits(bits, ref, s, allowed, met, "targets" if with_truth else "the float model",
                              tuple(tried))

    bits = {name: 8 for name, _ in layers}
    qm, s = attempt(bits)
    if s.wrong <= allowed:
        return done(bits, qm, s)
    bits = {name: 16 for name, _ in layers}
    qm, s = attempt(bits)
    if s.wrong > allowed:
        return done(bits, qm, s, met=False)
    for name, _ in layers:
        trial = dict(bits, **{name: 8})
        if all(b == 8 for b in trial.values()):
            continue  # tried first
        qm2, s2 = attempt(trial)
        if s2.wrong <= allowed:
            bits, qm, s = trial, qm2, s2
    return done(bits, qm, s)
