"""What a tensor can be while the importer walks the graph, besides a numpy constant or a Sym.

- :class:`ShapeOnly`: a tensor of which only the shape may be used (a huge broadcast constant,
  or model data whose ``Shape`` is asked);
- :class:`SymStack`: model tensors concatenated on one axis, usable only through a pick;
- :class:`ExtraInput` / :class:`SeqLensInput`: graph inputs other than the model input;

and :func:`const`, which reads an operand that must be a constant, refusing all of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedModelError
from . import args
from .args import MAX_FOLD_ELEMENTS
from .symbolic import Sym

Picks = range | np.ndarray  # indices on one axis: a lazy range (Slice) or an array (Gather)


@dataclass(frozen=True)
class ShapeOnly:
    """A tensor of which only the shape may be used (by Shape and Size): a broadcast constant
    too large even for a numpy view (over 2^63 bytes), or model data whose shape is asked.

    A node that needs its values refuses it.
    """

    shape: tuple[int, ...]
    producer: str  # the node that made it

    def refusal(self) -> str:
        return (f"a constant of shape {list(self.shape)} (from node '{self.producer}') is far too "
                f"large to use; the limit is {MAX_FOLD_ELEMENTS} elements")


class SymStack:
    """Model tensors concatenated on one axis (PyTorch's h_n of stacked layers).

    Only a later Gather/Slice that picks from exactly one of the parts is supported.
    """

    def __init__(self, parts: tuple[Sym, ...], axis: int, label: str):
        self.parts = parts
        self.axis = axis
        self.label = label
        shapes = [list(p.shape) for p in parts]
        for sh in shapes[1:]:
            if sh[:axis] + sh[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
                raise UnsupportedModelError("Concat of tensors with different shapes", node=label)
        shape = list(shapes[0])
        shape[axis] = sum(sh[axis] for sh in shapes)
        self.shape = tuple(shape)
        self.rank = len(shape)

    def refusal(self) -> str:
        return (
            "Concat of model tensors is only supported when a later Gather/Slice picks from "
            "one of them (e.g. PyTorch's h_n[-1])"
        )

    def pick(self, axis: int, picks: Picks, label: str) -> tuple[Sym, Picks]:
        """The part holding every index of ``picks`` on ``axis``, and the indices within it."""
        if axis != self.axis:
            raise UnsupportedModelError(self.refusal(), node=self.label)
        picks = from_end(picks, self.shape[self.axis])
        if len(picks):
            lo, hi = (min(picks[0], picks[-1]), max(picks[0], picks[-1])) if isinstance(
                picks, range) else (int(picks.min()), int(picks.max()))
            start = 0
            for p in self.parts:
                n = p.shape[self.axis]
                if start <= lo and hi < start + n:
                    return p, _shifted(picks, -start)
                start += n
        raise UnsupportedModelError(self.refusal(), node=self.label)


class ExtraInput:
    """A graph input besides the model input and sequence_lens: refused where it is used."""

    def __init__(self, name: str):
        self.name = name


class SeqLensInput:
    """Marker for a graph input that feeds LSTM sequence_lens at run time."""

    def __init__(self, name: str):
        self.name = name


def from_end(picks: Picks, size: int) -> Picks:
    """Negative indices counted from the end (a Slice's range is already normalized)."""
    if isinstance(picks, range):
        return picks
    p = np.asarray(picks, dtype=np.int64).reshape(-1)
    return np.where(p < 0, p + size, p)


def picks_all(picks: Picks, size: int) -> bool:
    """``picks`` is 0, 1, ..., size - 1 (compared without building that sequence)."""
    if isinstance(picks, range):
        return picks == range(size)
    return picks.size == size and np.array_equal(picks, np.arange(size))


def _shifted(picks: Picks, by: int) -> Picks:
    if isinstance(picks, range):
        return range(picks.start + by, picks.stop + by, picks.step)
    return picks + by


# --------------------------------------------------------------------------------------
# constant operands (weights, shapes, indices)
# --------------------------------------------------------------------------------------
def const(v: object, label: str, what: str) -> np.ndarray:
    """A constant operand (weights, shapes, indices) of at most MAX_FOLD_ELEMENTS."""
    if isinstance(v, (Sym, SymStack, SeqLensInput)):
        raise UnsupportedModelError(
            f"{what} must be a constant (initializer or folded), not computed from the input",
            node=label,
            field=what,
        )
    if isinstance(v, ShapeOnly):
        raise UnsupportedModelError(v.refusal(), node=label, field=what)
    args.bound(np.shape(v), label, what)
    return np.asarray(v)


def const_or_none(ins: list, k: int, label: str, what: str) -> np.ndarray | None:
    """Optional constant input ``k``."""
    return const(ins[k], label, what) if len(ins) > k and ins[k] is not None else None


def indices(v: object, label: str) -> np.ndarray:
    """Constant integer indices (of a Gather)."""
    idx = const(v, label, "indices")
    args.ints(idx, label, "indices")
    return idx.astype(np.int64)
