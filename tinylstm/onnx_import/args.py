"""Integer arguments of ops (axes, permutations, shapes, element counts), checked once.

Every check raises :class:`UnsupportedModelError` naming the node and the argument, so an
out-of-range axis is refused instead of wrapping around with ``% rank``, and sizes are
computed with Python integers (no silent int64 wrap-around).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import UnsupportedModelError

#: elements a folded constant may materialize (64 MiB of float32)
MAX_FOLD_ELEMENTS = 1 << 24
#: elements a zero-copy broadcast view (ConstantOfShape, Expand) may describe: it costs no
#: memory, so the bound is numpy's (sizes must fit a signed 64-bit index)
MAX_VIEW_ELEMENTS = 1 << 62


def ints(value: object, label: str, what: str) -> list[int]:
    """An integer tensor (shape, axes, indices) as Python ints; other dtypes are refused."""
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise UnsupportedModelError(
            f"{what} must be an integer tensor, not {a.dtype}", node=label, field=what
        )
    if a.size > MAX_FOLD_ELEMENTS:
        raise UnsupportedModelError(f"{what} has {a.size} entries", node=label, field=what)
    return [int(v) for v in a.reshape(-1)]


def axis(value: int, rank: int, label: str, what: str = "axis") -> int:
    """A single axis in [-rank, rank - 1], normalized to [0, rank - 1]."""
    if not -rank <= value < rank:
        raise UnsupportedModelError(
            f"{what} {value} is out of range for a tensor of rank {rank} "
            f"(valid: {-rank}..{rank - 1})",
            node=label,
            field=what,
        )
    return value % rank


def axes(values: Sequence[int], rank: int, label: str, what: str = "axes") -> list[int]:
    """Distinct axes, each in [-rank, rank - 1], normalized."""
    bad = [v for v in values if not -rank <= v < rank]
    if bad:
        raise UnsupportedModelError(
            f"{what} {list(values)}: axis {bad[0]} is out of range for a tensor of rank {rank} "
            f"(valid: {-rank}..{rank - 1})",
            node=label,
            field=what,
        )
    out = [v % rank for v in values]
    if len(set(out)) != len(out):
        raise UnsupportedModelError(f"{what} {list(values)} repeats an axis", node=label, field=what)
    return out


def perm(values: Sequence[int] | None, rank: int, label: str) -> list[int]:
    """A Transpose permutation of ``rank`` axes (None: reverse them)."""
    if values is None:
        return list(reversed(range(rank)))
    if sorted(values) != list(range(rank)):
        raise UnsupportedModelError(
            f"perm {list(values)} is not a permutation of the {rank} axes 0..{rank - 1}",
            node=label,
            field="perm",
        )
    return list(values)


def dims(values: Sequence[int], label: str, what: str = "shape") -> list[int]:
    """Output dimensions: each must be >= 0."""
    if any(v < 0 for v in values):
        raise UnsupportedModelError(
            f"{what} {list(values)} has a negative dimension", node=label, field=what
        )
    return list(values)


def broadcast_shape(shapes: Sequence[Sequence[int]], label: str) -> tuple[int, ...]:
    """numpy broadcasting of ``shapes`` on Python ints (no overflow for absurd sizes)."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        sizes = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0} - {1}
        if len(sizes) > 1:
            raise UnsupportedModelError(
                f"shapes {[list(s) for s in shapes]} do not broadcast", node=label
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def bound(shape: Sequence[int], label: str, what: str, limit: int = MAX_FOLD_ELEMENTS) -> int:
    """The element count of ``shape``, refused above ``limit`` before anything is allocated."""
    n = math.prod(shape)
    if n > limit:
        raise UnsupportedModelError(
            f"{what} would hold {n} elements (shape {list(shape)}); the limit is {limit}",
            node=label,
        )
    return n
