"""The fine-tuning report: float and integer scores before and after, the checkpoint chosen, the
LSTM weight widths, the torch forward's agreement with the simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..qmodel import QLstm, QuantizedModel
from .score import Score


def weight_bits(qm: QuantizedModel) -> list[tuple[str, int, str, int]]:
    """``(node, direction, "W" or "R", bits)`` of every LSTM matrix of an integer model (the
    width its values use: 8 for int8 storage, else the smallest of 9..16 holding them)."""
    out = []
    for n in qm.nodes:
        if isinstance(n, QLstm):
            for d, dr in enumerate(n.directions):
                for m, a in (("W", dr.w), ("R", dr.r)):
                    top = int(np.abs(a).max()) if a.size else 0
                    out.append((n.name, d, m, 8 if a.dtype == np.int8 else max(top.bit_length() + 1, 9)))
    return out


def bits_text(bits: list[tuple[str, int, str, int]]) -> str:
    return ", ".join(f"{n}{f' dir {d}' if d else ''} {m}: {b}" for n, d, m, b in bits)


@dataclass
class FinetuneReport:
    model: str
    train: str
    val: str
    calib: str
    sequences: dict[str, int]  # train / val / calib
    options: dict[str, Any]
    weight_bits: list[tuple[str, int, str, int]]
    float_before: Score
    int_before: Score
    float_after: Score
    int_after: Score
    best_step: int
    steps: int
    history: list[tuple[int, float, Score]]
    seconds: float
    agreement: Any = None  # agreement.Agreement, measured on the validation data
    notes: list[str] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        return self.best_step > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "train": self.train, "val": self.val, "calib": self.calib,
            "sequences": self.sequences, "options": self.options,
            "weight_bits": [{"node": n, "direction": d, "matrix": m, "bits": b} for n, d, m, b in self.weight_bits],
            "before": {"float": self.float_before.as_dict(), "int": self.int_before.as_dict()},
            "after": {"float": self.float_after.as_dict(), "int": self.int_after.as_dict()},
            "best_step": self.best_step, "steps": self.steps, "seconds": round(self.seconds, 2),
            "history": [{"step": s, "train_loss": None if np.isnan(lo) else lo, "val_int": sc.as_dict()}
                        for s, lo, sc in self.history],
            "agreement": None if self.agreement is None else self.agreement.as_dict(),
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        n = self.sequences
        lines = [
            f"# Fine-tuning {self.model}",
            "",
            f"- training data: {self.train} ({n['train']} sequences); validation: {self.val} ({n['val']}); "
            f"calibration: {self.calib} ({n['calib']})",
            f"- LSTM weights: {bits_text(self.weight_bits)} bits",
            f"- {self.steps} steps of batch {self.options['batch']}, Adam lr {self.options['lr']:g}, validated every "
            f"{self.options['eval_every']} steps; {self.seconds:.1f} s",
            "",
            "| validation | float | integer (simulator) |",
            "|---|---|---|",
            f"| before | {self.float_before} | {self.int_before} |",
            f"| after (step {self.best_step}) | {self.float_after} | {self.int_after} |",
            "",
        ]
        if not self.improved:
            lines += ["No checkpoint scored better than the input model: the weights are unchanged.", ""]
        lines += ["| step | training loss | integer validation |", "|---|---|---|"]
        lines += [f"| {s} | {'-' if np.isnan(lo) else f'{lo:.4g}'} | {sc} |" for s, lo, sc in self.history]
        if self.agreement is not None:
            lines += ["", f"Torch forward vs simulator (validation data, chosen checkpoint): {self.agreement}."]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {t}" for t in self.notes]
        return "\n".join(lines) + "\n"
