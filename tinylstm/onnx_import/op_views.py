"""Glue ops that only change how model data is viewed: no IR node, a new :class:`Sym` view.

Identity, Dropout, Cast (to a float type), Shape, Transpose, Squeeze, Unsqueeze, Reshape,
Flatten and no-op Expands. A Reshape that bakes a literal sequence length into a dynamic-time
graph raises :class:`BakedTimeError`, so the caller retries with the time axis fixed to it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from . import args
from .attrs import INT, INTS, attr, required
from .fold import fold
from .node_args import axes_argument, resolve_reshape
from .optable import Op, op
from .symbolic import BATCH_SENTINEL, TIME_SENTINEL, Sym, ViewError, reshape_dims
from .values import ShapeOnly, const, const_or_none

if TYPE_CHECKING:
    from .interpret import Interpreter

#: distinct literal lengths a Reshape may offer as a baked sequence length (each costs a
#: re-interpretation of the graph)
MAX_BAKED_CANDIDATES = 4


class BakedTimeError(Exception):
    """The graph fixes the time axis to a literal (PyTorch dynamo export, batch_first=False)."""

    def __init__(self, node: str, candidates: list[int]):
        super().__init__(node)
        self.node = node
        self.candidates = candidates


def _identity(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    return [ins[0]]


def _cast(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    to = required(node, "to", INT)
    if to not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise UnsupportedModelError(
            f"Cast of model data to {_type_name(to)} is not supported "
            "(only to float types)",
            node=label,
            field="to",
        )
    return [ins[0]]


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def _shape(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    return fold(node, [ShapeOnly(ins[0].shape, label)], it.opset)


def _transpose(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    perm = args.perm(attr(node, "perm", INTS), s.rank, label)
    return [s.with_dims([s.dims[p] for p in perm])]


def _squeeze(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    axes = axes_argument(node, [s, const_or_none(ins, 1, label, "axes")], 1, label)
    shape = s.shape
    if axes is None:
        axes = [d for d, n in enumerate(shape) if n == 1]
    axes = args.axes(axes, s.rank, label)
    for a in axes:
        if shape[a] != 1:
            raise UnsupportedModelError(
                f"Squeeze of axis {a} which holds {s.describe()} (not size 1)", node=label,
                field="axes",
            )
    # atoms in squeezed dims have size 1 (a static batch of 1): they float
    return [s.with_dims([g for d, g in enumerate(s.dims) if d not in axes])]


def _unsqueeze(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    axes = axes_argument(node, [s, const_or_none(ins, 1, label, "axes")], 1, label)
    if axes is None:
        raise UnsupportedModelError("Unsqueeze needs axes", node=label, field="axes")
    dims = list(s.dims)
    for a in sorted(args.axes(axes, s.rank + len(axes), label)):
        dims.insert(a, ())
    return [s.with_dims(dims)]


def _reshape(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    raw = const(ins[1], label, "shape")
    try:
        target = resolve_reshape(s.shape, raw, node)
        dims = reshape_dims(s, target)
    except (ViewError, UnsupportedModelError) as e:
        _maybe_baked_time(s, raw, label)
        msg = str(e) if isinstance(e, ViewError) else e.args[0].split(": ", 1)[-1]
        raise UnsupportedModelError(msg, node=label, field="shape") from None
    return [s.with_dims(dims)]


def _maybe_baked_time(s: Sym, raw: np.ndarray, label: str) -> None:
    """A Reshape whose target bakes a literal sequence length into a dynamic-time graph."""
    t_atoms = [a for a in s.atoms if a.label == "T"]
    if not t_atoms or t_atoms[0].size is not None:
        return
    cands = list(dict.fromkeys(int(v) for v in np.asarray(raw).reshape(-1)
                               if v > 1 and v % TIME_SENTINEL and v % BATCH_SENTINEL))
    if 0 < len(cands) <= MAX_BAKED_CANDIDATES:
        raise BakedTimeError(label, cands)


def _flatten(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    axis = args.axis(attr(node, "axis", INT, 1), s.rank + 1, label)
    shape = s.shape
    target = [math.prod(shape[:axis]), math.prod(shape[axis:])]
    try:
        dims = reshape_dims(s, target)
    except ViewError as e:
        raise UnsupportedModelError(str(e), node=label, field="axis") from None
    return [s.with_dims(dims)]


def _expand(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    shape = args.dims(args.ints(const(ins[1], label, "shape"), label, "shape"), label)
    out = args.broadcast_shape([s.shape, shape], label)
    if tuple(out) != s.shape:
        raise UnsupportedModelError(
            f"Expand of model data {s.describe()} to {shape} would copy it; only no-op "
            "Expands are supported",
            node=label,
        )
    return [s]


OPS: dict[str, Op] = {
    "Identity": op(_identity),
    "Dropout": op(_identity, "seed", "ratio", "is_test"),
    "Cast": op(_cast, "to", "saturate", "round_mode"),
    "Shape": op(_shape, "start", "end"),
    "Transpose": op(_transpose, "perm"),
    "Squeeze": op(_squeeze, "axes"),
    "Unsqueeze": op(_unsqueeze, "axes"),
    "Reshape": op(_reshape, "allowzero"),
    "Flatten": op(_flatten, "axis"),
    "Expand": op(_expand),
}
