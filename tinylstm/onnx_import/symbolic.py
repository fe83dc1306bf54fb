"""Symbolic tensors: ONNX tensors that carry model data, described as views of IR values.

While the importer walks the ONNX graph, every tensor is either a constant (a numpy array,
folded) or a :class:`Sym`: a view onto an IR value. A dynamic batch or time axis has a
*sentinel* size, a prime no real feature size is a multiple of, so the shape arithmetic
exporters emit (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``) folds to plain integers
in which batch and time stay recognisable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedModelError
from ..ir import Atom

#: Sentinel sizes of dynamic batch and time axes during import.
BATCH_SENTINEL = 1009
TIME_SENTINEL = 1013
#: features one tensor may hold (a feature gather builds an index grid of that size)
MAX_FEATURES = 1 << 20


@dataclass(frozen=True)
class Sym:
    """A tensor holding model data: a view of IR value ``value``.

    ``atoms`` are the value's canonical atoms (B, [T], feature sub-axes) with their sizes
    (sentinels for dynamic axes); ``dims`` holds, per tensor axis, the atom indices merged
    into it (row-major). Feature atoms of size 1 are never listed.
    """

    value: int
    atoms: tuple[Atom, ...]
    dims: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]  # the size of each atom during import (sentinels for dynamic)

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(math.prod(self.sizes[i] for i in g) for g in self.dims)

    def feature_atoms(self) -> list[int]:
        return [i for i, a in enumerate(self.atoms) if a.is_feature]

    def with_dims(self, dims: list[tuple[int, ...]] | tuple[tuple[int, ...], ...]) -> Sym:
        return Sym(self.value, self.atoms, tuple(tuple(g) for g in dims), self.sizes)

    def describe(self) -> str:
        parts = []
        for g in self.dims:
            names = [self.atoms[i].label for i in g]
            parts.append("*".join(names) if names else "1")
        return "[" + ", ".join(parts) + "]"


class ViewError(Exception):
    """A view operation that cannot be expressed; the caller turns it into a user error."""


def reshape_dims(sym: Sym, target: list[int]) -> list[tuple[int, ...]]:
    """Partition the atoms of ``sym`` (in tensor order) into ``target`` dims.

    Only merging and splitting *between* atoms is expressible; splitting one atom is not.
    Atoms of size 1 (a static batch or time of 1) are left out: they *float* (see
    :func:`place_floating`), since an exporter may move them to any axis of size 1 or fold
    them into a neighbour when it reshapes.
    """
    order = [i for g in sym.dims for i in g if sym.sizes[i] != 1]
    dims: list[tuple[int, ...]] = []
    k = 0
    for want in target:
        group: list[int] = []
        prod = 1
        while prod < want and k < len(order):
            group.append(order[k])
            prod *= sym.sizes[order[k]]
            k += 1
        if prod != want:
            raise ViewError(_split_message(sym, target))
        dims.append(tuple(group))
    if k != len(order):
        raise ViewError(_split_message(sym, target))
    return dims


def floating(atoms: tuple[Atom, ...], dims: tuple[tuple[int, ...], ...] | list[tuple[int, ...]]) -> list[int]:
    """Atoms (of size 1) that sit on no axis."""
    placed = {i for g in dims for i in g}
    return [i for i in range(len(atoms)) if i not in placed]


def place_floating(atoms: tuple[Atom, ...], dims: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """Put every floating atom on an axis, for a :class:`~tinylstm.ir.View` of a graph tensor.

    An atom of size 1 goes to the first axis of size 1 that holds nothing (the batch axis
    PyTorch keeps in ``(1, classes)``); where there is none (the exporter squeezed it), it is
    merged in front of the first axis, so that N sequences' outputs come out concatenated.
    """
    out = [tuple(g) for g in dims]
    for i in floating(atoms, out):
        empty = [d for d, g in enumerate(out) if not g]
        if empty:
            out[empty[0]] = (i,)
        elif out:
            out[0] = (i,) + out[0]
    return tuple(out)


def _split_message(sym: Sym, target: list[int]) -> str:
    shown = [_show(sym, v) for v in target]
    return (
        f"cannot reshape {sym.describe()} (sizes {list(_show(sym, s) for s in sym.shape)}) to "
        f"{shown}: only merging or splitting whole batch/time/feature axes is supported"
    )


def _show(sym: Sym, v: int) -> str:
    """Render an integer that may contain sentinel factors."""
    out = []
    for label, sent in (("batch", BATCH_SENTINEL), ("time", TIME_SENTINEL)):
        while v and v % sent == 0:
            out.append(label)
            v //= sent
    if v != 1 or not out:
        out.append(str(v))
    return "*".join(out)


def feature_index_grid(sym: Sym, label: str) -> tuple[list[int], np.ndarray]:
    """Feature atom indices of the value and a grid of canonical feature indices."""
    feats = sym.feature_atoms()
    shape = [sym.sizes[i] for i in feats]
    total = math.prod(shape)
    if total > MAX_FEATURES:
        raise UnsupportedModelError(
            f"a tensor of {total} features {sym.describe()}; supported: up to {MAX_FEATURES}",
            node=label,
        )
    return feats, np.arange(total, dtype=np.int64).reshape(shape)
