"""How closely the torch forward (:mod:`.forward`) reproduces the simulator: the int8 outputs of
both on the same sequences, compared value by value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..qmodel import QuantizedModel
from . import forward
from .data import Examples
from .score import int_outputs
from .weights import Weights


@dataclass(frozen=True)
class Agreement:
    values: int  # int8 outputs compared
    equal: int  # bit-identical
    within_1: int  # |torch - simulator| <= 1 LSB
    max_diff: int  # LSB

    def __str__(self) -> str:
        n = max(self.values, 1)
        return (f"{self.equal}/{self.values} int8 outputs identical ({100.0 * self.equal / n:.2f} %), "
                f"{100.0 * self.within_1 / n:.2f} % within 1 LSB, max difference {self.max_diff} LSB")

    def as_dict(self) -> dict[str, int]:
        return {"values": self.values, "equal": self.equal, "within_1": self.within_1, "max_diff": self.max_diff}


def torch_outputs(qm: QuantizedModel, w: Weights, ex: Examples, batch: int = 256) -> list[np.ndarray]:
    """Each sequence's int8 output from the torch forward (canonical, cut to its length)."""
    tw = {k: torch.as_tensor(v) for k, v in w.items()}
    out: list[np.ndarray] = []
    with torch.no_grad():
        for s in range(0, len(ex), batch):
            b = ex.subset(np.arange(s, min(s + batch, len(ex))))
            lens = torch.as_tensor(b.lengths)
            xq = torch.as_tensor(qm.quantize_input(b.x).astype(np.float64))
            y = forward.run(qm, tw, xq, lens)[-1].numpy().astype(np.int64)
            for i in range(len(b)):
                out.append(y[i, : b.lengths[i]] if y.ndim == 3 else y[i])
    return out


def agreement(qm: QuantizedModel, w: Weights, ex: Examples) -> Agreement:
    """Torch forward vs simulator on ``ex``, the integer model ``qm`` quantized from weights ``w``."""
    got = np.concatenate([a.reshape(-1) for a in torch_outputs(qm, w, ex)])
    ref = np.concatenate([a.reshape(-1) for a in int_outputs(qm, ex)]).astype(np.int64)
    d = np.abs(got - ref)
    return Agreement(int(d.size), int(np.sum(d == 0)), int(np.sum(d <= 1)), int(d.max(initial=0)))
