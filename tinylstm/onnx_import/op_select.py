"""Glue ops that pick from model data: Gather, Slice and Concat.

A pick on the time axis is one step (a SelectStep node: the first or last steps of a dynamic
sequence, any step of a fixed one); a pick on a feature axis is a FeatureGather node; a Concat
of model tensors is either a feature gather of one value (``cat(h_n[-2], h_n[-1])``) or a
:class:`SymStack` a later Gather/Slice picks one part from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import Atom, FeatureGatherNode, SelectStepNode
from . import args
from .attrs import INT, attr, required
from .node_args import slice_params
from .optable import Op, op
from .symbolic import Sym, feature_index_grid
from .values import Picks, SymStack, from_end, indices, picks_all

if TYPE_CHECKING:
    from .interpret import Interpreter

#: a static sequence length (and a picked step) must fit the C runtime's int32 step counter
MAX_STEPS = (1 << 31) - 1
#: steps from either end of a dynamic time axis a Gather/Slice may pick
MAX_STEP_OFFSET = 64


def _select_axis(it: Interpreter, s: Sym, axis: int, picks: Picks, keep_dim: bool, label: str,
                 what: str) -> Sym:
    """Gather/Slice on one axis of a Sym: time steps or features.

    ``picks`` are indices on that axis (negative ones count from the end): a ``range``
    from a Slice (never materialized: a time axis may be huge) or an array from a Gather.
    """
    axis = args.axis(axis, s.rank, label)
    g = [i for i in s.dims[axis] if s.sizes[i] != 1]
    if not g:
        # an axis of size 1 (e.g. num_directions of a one-direction LSTM)
        if [int(p) for p in from_end(picks, 1)] != [0]:
            raise UnsupportedModelError(f"{what} index out of range on a size-1 axis", node=label)
        if keep_dim:
            return s
        return s.with_dims([g for d, g in enumerate(s.dims) if d != axis])  # size-1 atoms float
    if len(g) != 1:
        raise UnsupportedModelError(
            f"{what} on axis {axis} of {s.describe()} is not supported (the axis must hold "
            "exactly one of batch, time or a feature axis)",
            node=label,
        )
    atom = g[0]
    size = s.sizes[atom]
    picks = from_end(picks, size)
    label_of = s.atoms[atom].label
    if label_of in ("B", "T") and keep_dim and picks_all(picks, size):
        return s
    if label_of == "B":
        raise UnsupportedModelError(f"{what} over the batch axis is not supported", node=label)
    if label_of == "T":
        index = _step_index(s.atoms[atom].size, size, picks, label, what)
        return _select_step(it, s, axis, atom, index, keep_dim, label)
    return _select_features(it, s, axis, atom, picks, keep_dim, label, what)


def _step_index(fixed: int | None, size: int, picks: Picks, label: str, what: str) -> int:
    """The SelectStep index of one picked step (negative: counted from the end)."""
    if len(picks) != 1:
        raise UnsupportedModelError(
            f"{what} of {len(picks)} time steps is not supported (only one step, e.g. the last)",
            node=label,
        )
    t = int(picks[0])
    if fixed is None:  # a dynamic time axis of sentinel size
        if size - MAX_STEP_OFFSET <= t < size:
            return t - size  # counted from the end
        if 0 <= t < MAX_STEP_OFFSET:
            return t
        raise UnsupportedModelError(
            f"{what} picks a time step that depends on the sequence length (supported: one of "
            f"the first or last {MAX_STEP_OFFSET} steps)",
            node=label,
        )
    if fixed > MAX_STEPS:
        raise UnsupportedModelError(
            f"{what} on a fixed sequence length of {fixed} steps; supported: up to {MAX_STEPS}",
            node=label,
        )
    if not 0 <= t < size:
        raise UnsupportedModelError(
            f"{what} picks time step {t} of a sequence of fixed length {size}", node=label
        )
    return t - size if t == size - 1 else t


def _select_step(it: Interpreter, s: Sym, axis: int, atom: int, index: int, keep_dim: bool, label: str) -> Sym:
    """One time step of ``s`` (time atom ``atom`` on ``axis``): a SelectStep node."""
    feats = s.feature_atoms()
    nfeat = math.prod(s.sizes[i] for i in feats)
    v = it.add(SelectStepNode(label, s.value, index, nfeat))
    atoms = [at for i, at in enumerate(s.atoms) if i != atom]
    sizes = [sz for i, sz in enumerate(s.sizes) if i != atom]
    dims = []
    for d, gg in enumerate(s.dims):
        rest = tuple(i if i < atom else i - 1 for i in gg if i != atom)
        if d == axis and not keep_dim:
            if any(sizes[i] != 1 for i in rest):
                raise UnsupportedModelError(
                    f"{s.describe()}: picking one time step of axis {axis} would drop the other "
                    "axes merged into it", node=label)
            continue  # size-1 atoms merged with time (a static batch of 1) float
        dims.append(rest)
    return Sym(v, tuple(atoms), tuple(dims), tuple(sizes))


def _select_features(it: Interpreter, s: Sym, axis: int, atom: int, picks: Picks, keep_dim: bool,
                     label: str, what: str) -> Sym:
    """Some features of feature atom ``atom`` (on ``axis``): a FeatureGather node."""
    size = s.sizes[atom]
    feats, grid = feature_index_grid(s, label)
    picks = np.asarray(picks, dtype=np.int64)
    if picks.size and (picks.min() < 0 or picks.max() >= size):
        raise UnsupportedModelError(f"{what} index out of range", node=label)
    sub = np.take(grid, picks, axis=feats.index(atom))
    # canonical order of the remaining feature atoms stays; the picked atom shrinks
    v = it.add(FeatureGatherNode(label, s.value, sub.reshape(-1), kind=it.nodes[s.value].kind))
    atoms = list(s.atoms)
    sizes = list(s.sizes)
    new_size = int(picks.size)
    atoms[atom] = Atom(s.atoms[atom].label, new_size)
    sizes[atom] = new_size
    dims = [list(gg) for gg in s.dims]
    if not keep_dim and new_size != 1:
        raise UnsupportedModelError("unexpected scalar gather", node=label)
    if new_size == 1:
        # drop the atom entirely; renumber
        atoms.pop(atom)
        sizes.pop(atom)
        dims = [[i if i < atom else i - 1 for i in gg if i != atom] for gg in dims]
    if not keep_dim:
        dims.pop(axis)
    return Sym(v, tuple(atoms), tuple(tuple(gg) for gg in dims), tuple(sizes))


def _concat(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    parts = [v for v in ins if v is not None]
    if not all(isinstance(v, Sym) for v in parts):
        raise UnsupportedModelError(
            "Concat of model data with constants is not supported", node=label
        )
    axis = args.axis(required(node, "axis", INT), parts[0].rank, label)
    merged = _concat_features(it, parts, axis, label)
    if merged is not None:
        return [merged]
    return [SymStack(tuple(parts), axis, label)]


def _concat_features(it: Interpreter, parts: list[Sym], axis: int, label: str) -> Sym | None:
    """Concat on the feature axis of views of one value (e.g. cat(h_n[-2], h_n[-1])):
    a single feature gather of that value. None when the pattern does not apply."""
    layout = None
    picks: list[np.ndarray] = []
    base = None
    for p in parts:
        if sorted(p.dims[axis]) != p.feature_atoms():
            return None
        others = tuple(tuple(p.atoms[i].label for i in g) for d, g in enumerate(p.dims) if d != axis)
        if layout is None:
            layout = others
        elif others != layout:
            return None
        v = it.features_in_order(p, list(p.dims[axis]), label)
        idx = np.arange(it.nodes[v].features)
        while isinstance(it.nodes[v], FeatureGatherNode):
            idx = it.nodes[v].indices[idx]
            v = it.nodes[v].src
        if base is None:
            base = v
        elif v != base:
            return None
        picks.append(idx)
    assert base is not None
    idx = np.concatenate(picks)
    g = it.add(FeatureGatherNode(label, base, idx, kind=it.nodes[base].kind))
    return it.new_value(g, parts[0], axis, int(idx.size))


def _gather(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s = ins[0]
    if isinstance(s, SymStack):
        idx = indices(ins[1], label)
        axis = args.axis(attr(node, "axis", INT, 0), s.rank, label)
        part, local = s.pick(axis, idx.reshape(-1), label)
        return [_select_axis(it, part, axis, local, keep_dim=idx.ndim == 1, label=label,
                             what="Gather")]
    if not isinstance(s, Sym):
        raise UnsupportedModelError("Gather with computed indices is not supported", node=label)
    idx = indices(ins[1], label)
    axis = attr(node, "axis", INT, 0)
    if idx.ndim > 1:
        raise UnsupportedModelError("Gather with multi-dimensional indices", node=label)
    return [_select_axis(it, s, axis, idx, keep_dim=idx.ndim == 1, label=label, what="Gather")]


def _slice(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s = ins[0]
    if isinstance(s, SymStack):
        stack = s
        params = slice_params(node, ins, it.opset, stack.shape)
        if stack.axis not in [p[0] for p in params]:
            raise UnsupportedModelError(stack.refusal(), node=stack.label)
        s = None
        for ax, start, stop, step in params:
            if ax == stack.axis:
                s, local = stack.pick(ax, range(start, stop, step), label)
                s = _select_axis(it, s, ax, local, keep_dim=True, label=label, what="Slice")
        for ax, start, stop, step in params:
            if ax != stack.axis:
                s = _select_axis(it, s, ax, range(start, stop, step), keep_dim=True,
                                 label=label, what="Slice")
        return [s]
    if any(isinstance(v, Sym) for v in ins[1:]):
        raise UnsupportedModelError("Slice bounds computed from model data", node=label)
    for ax, start, stop, step in slice_params(node, ins, it.opset, s.shape):
        s = _select_axis(it, s, ax, range(start, stop, step), keep_dim=True, label=label,
                         what="Slice")
    return [s]


OPS: dict[str, Op] = {
    "Gather": op(_gather, "axis"),
    "Slice": op(_slice, "starts", "ends", "axes"),
    "Concat": op(_concat, "axis"),
}
