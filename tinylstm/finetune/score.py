"""Scores of a model on examples: the float reference and the integer simulator (the real one,
:func:`tinylstm.simulate.run_canonical_int`, not the torch forward).

A score is ``wrong`` sequences (classification: the largest output is not the label;
regression: some output is ``tolerance`` or more off its target, the adding problem's criterion
and ``validate``'s ``wrong_0.04``) and a mean ``error`` (classification: cross-entropy;
regression: mean absolute error) that breaks ties. Checkpoints compare by ``(wrong, error)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import ActivationNode, FloatModel
from ..ir.reference import run_canonical
from ..qmodel import QuantizedModel
from .data import Examples

#: Regression: an output this far from its target makes the sequence wrong.
DEFAULT_TOLERANCE = 0.04


@dataclass(frozen=True)
class Score:
    n: int
    wrong: int
    error: float  # classification: mean cross-entropy; regression: mean |output - target|
    classification: bool

    @property
    def key(self) -> tuple[int, float]:
        return (self.wrong, self.error)

    def __str__(self) -> str:
        if self.classification:
            return f"{self.wrong}/{self.n} wrong ({100.0 * (1 - self.wrong / self.n):.2f} %)"
        return f"{self.wrong}/{self.n} wrong (mean error {self.error:.4f})"

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "wrong": self.wrong, "error": self.error}


def output_kind(fm: FloatModel) -> str:
    """What a classifier outputs: ``logits``, ``probs`` (Softmax) or ``logprobs`` (LogSoftmax)."""
    last = fm.nodes[-1]
    if isinstance(last, ActivationNode) and last.activation.name in ("Softmax", "LogSoftmax"):
        return "probs" if last.activation.name == "Softmax" else "logprobs"
    return "logits"


def log_probs(out: np.ndarray, kind: str) -> np.ndarray:
    """Log-probabilities of classifier outputs (n, classes)."""
    out = np.asarray(out, np.float64)
    if kind == "logprobs":
        return out
    if kind == "probs":
        return np.log(np.maximum(out, 1e-6))
    m = out.max(axis=1, keepdims=True)
    return out - m - np.log(np.exp(out - m).sum(axis=1, keepdims=True))


def score_outputs(out: list[np.ndarray], ex: Examples, kind: str, tolerance: float) -> Score:
    """``out``: each sequence's canonical output, in the order of ``ex``."""
    n = len(ex)
    if ex.labels is not None:
        o = np.stack([np.asarray(a, np.float64).reshape(-1) for a in out])
        lp = log_probs(o, kind)
        wrong = int(np.sum(np.argmax(o, axis=1) != ex.labels))
        return Score(n, wrong, float(-lp[np.arange(n), ex.labels].mean()), True)
    errs = []
    for i, a in enumerate(out):
        t = ex.targets[i] if ex.targets.ndim == 2 else ex.targets[i, : ex.lengths[i]]  # type: ignore[union-attr]
        errs.append(np.abs(np.asarray(a, np.float64).reshape(-1) - t.reshape(-1)))
    worst = np.array([e.max() for e in errs])
    return Score(n, int(np.sum(~(worst < tolerance))), float(np.concatenate(errs).mean()), False)


def _by_length(ex: Examples, run) -> list[np.ndarray]:
    out: list[np.ndarray | None] = [None] * len(ex)
    for idx, batch in ex.dataset.groups():
        y = run(batch)
        for k, i in enumerate(idx):
            out[int(i)] = y[k]
    return out  # type: ignore[return-value]


def float_score(fm: FloatModel, ex: Examples, tolerance: float = DEFAULT_TOLERANCE) -> Score:
    """The float reference (tinylstm's, equal to onnxruntime within 1e-5) on ``ex``."""
    return score_outputs(_by_length(ex, lambda b: run_canonical(fm, b.astype(np.float64))), ex, output_kind(fm),
                         tolerance)


def int_outputs(qm: QuantizedModel, ex: Examples) -> list[np.ndarray]:
    """Each sequence's int8 output from the simulator (canonical)."""
    from ..simulate import run_canonical_int

    return _by_length(ex, lambda b: run_canonical_int(qm, qm.quantize_input(b.astype(np.float32)))[0])


def int_score(qm: QuantizedModel, fm: FloatModel, ex: Examples, tolerance: float = DEFAULT_TOLERANCE,
              outputs: list[np.ndarray] | None = None) -> Score:
    """The integer model through the simulator on ``ex``."""
    y8 = outputs if outputs is not None else int_outputs(qm, ex)
    return score_outputs([qm.dequantize_output(y) for y in y8], ex, output_kind(fm), tolerance)
