"""One numpy folder per common op of the shape/glue arithmetic exporters emit, in a table.

``ConstantOfShape``/``Expand`` are zero-copy broadcast views, so sentinel-sized zero states cost
no memory; the ops in :data:`VIEW_SAFE` take such views without materializing them. Every
output's size is bounded before it is created.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from ..errors import UnsupportedModelError
from . import args
from .args import MAX_FOLD_ELEMENTS, MAX_VIEW_ELEMENTS
from .attrs import FLOAT, FLOATS, INT, INTS, TENSOR, attr, node_label, required
from .loader import tensor_array
from .node_args import axes_argument, resolve_reshape, slice_params
from .values import ShapeOnly

#: (node, constant inputs, opset) -> outputs
Folder = Callable[[onnx.NodeProto, list, int], list[np.ndarray]]

#: element types a Cast may produce while folding
_CAST_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
    onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32,
    onnx.TensorProto.UINT64, onnx.TensorProto.BOOL,
}


def _identity(node, inputs, opset):
    return [inputs[0]]


def _constant(node, inputs, opset):
    label = node_label(node)
    given = [a.name for a in node.attribute if a.name.startswith(("value", "sparse_value"))]
    if len(given) != 1:
        raise UnsupportedModelError(
            f"Constant needs exactly one value attribute, got {given or 'none'}",
            node=label,
            field="value",
        )
    name = given[0]
    if name == "value":
        return [tensor_array(attr(node, name, TENSOR), f"node '{label}' value")]
    if name == "value_float":
        return [np.asarray(attr(node, name, FLOAT), dtype=np.float32)]
    if name == "value_floats":
        return [np.asarray(attr(node, name, FLOATS), dtype=np.float32)]
    if name == "value_int":
        return [np.asarray(attr(node, name, INT), dtype=np.int64)]
    if name == "value_ints":
        return [np.asarray(attr(node, name, INTS), dtype=np.int64)]
    raise UnsupportedModelError(
        f"Constant with {name} is not supported; supported: value, value_float(s), value_int(s)",
        node=label,
        field=name,
    )


def _shape_of(a: np.ndarray | ShapeOnly) -> tuple[int, ...]:
    return a.shape if isinstance(a, ShapeOnly) else np.shape(a)


def _shape(node, inputs, opset):
    shape = np.asarray(_shape_of(inputs[0]), dtype=np.int64)
    start = attr(node, "start", INT, 0)
    end = attr(node, "end", INT, None)
    return [shape[start:end]]


def _size(node, inputs, opset):
    return [np.asarray(math.prod(_shape_of(inputs[0])), dtype=np.int64)]


def _constant_of_shape(node, inputs, opset):
    label = node_label(node)
    value = attr(node, "value", TENSOR)
    v = np.float32(0)
    if value is not None:
        arr = tensor_array(value, f"node '{label}' value")
        if arr.size != 1:
            raise UnsupportedModelError(
                f"value holds {arr.size} elements; ConstantOfShape needs exactly one",
                node=label,
                field="value",
            )
        v = arr.reshape(-1)[0]
    shape = args.dims(args.ints(inputs[0], label, "shape"), label)
    return [_broadcast_view(np.asarray(v), shape, node)]


def _expand(node, inputs, opset):
    label = node_label(node)
    x = inputs[0]
    shape = args.dims(args.ints(inputs[1], label, "shape"), label)
    out = args.broadcast_shape([np.shape(x), shape], label)
    return [_broadcast_view(np.asarray(x), out, node)]


def _broadcast_view(x: np.ndarray, shape, node: onnx.NodeProto) -> np.ndarray | ShapeOnly:
    """``x`` broadcast to ``shape`` without copying (a ShapeOnly beyond numpy's reach)."""
    label = node_label(node)
    n = args.bound(shape, label, f"{node.op_type} output", MAX_VIEW_ELEMENTS)
    if n * x.dtype.itemsize >= 1 << 63:
        return ShapeOnly(tuple(shape), label)
    return np.broadcast_to(x, shape)


def _cast(node, inputs, opset):
    to = required(node, "to", INT)
    if to not in _CAST_TYPES:
        raise UnsupportedModelError(
            f"Cast to element type {to} is not supported in shape arithmetic (numeric types only)",
            node=node_label(node),
            field="to",
        )
    dtype = helper.tensor_dtype_to_np_dtype(to)
    return [_map_view(lambda a: a.astype(dtype), np.asarray(inputs[0]), node)]


def _neg(node, inputs, opset):
    return [_map_view(np.negative, np.asarray(inputs[0]), node)]


def _unsqueeze(node, inputs, opset):
    label = node_label(node)
    out = np.asarray(inputs[0])
    given = axes_argument(node, inputs, 1, label)
    if given is None:
        raise UnsupportedModelError("Unsqueeze needs axes", node=label, field="axes")
    for a in sorted(args.axes(given, out.ndim + len(given), label)):
        out = np.expand_dims(out, a)
    return [out]


def _squeeze(node, inputs, opset):
    label = node_label(node)
    x = np.asarray(inputs[0])
    given = axes_argument(node, inputs, 1, label)
    if given is None:
        return [np.squeeze(x)]
    picked = args.axes(given, x.ndim, label)
    for a in picked:
        if x.shape[a] != 1:
            raise UnsupportedModelError(
                f"Squeeze of axis {a} of size {x.shape[a]} (not 1)", node=label, field="axes"
            )
    return [np.squeeze(x, axis=tuple(picked))]


def _concat(node, inputs, opset):
    label = node_label(node)
    arrs = [np.asarray(a) for a in inputs if a is not None]
    rank = arrs[0].ndim
    ax = args.axis(required(node, "axis", INT), max(rank, 1), label)
    for a in arrs:
        if a.ndim != rank or a.shape[:ax] + a.shape[ax + 1 :] != arrs[0].shape[:ax] + arrs[0].shape[ax + 1 :]:
            raise UnsupportedModelError(
                f"Concat on axis {ax} of shapes {[list(b.shape) for b in arrs]}: the other axes "
                "must match",
                node=label,
                field="axis",
            )
    args.bound([sum(a.size for a in arrs)], label, "Concat output")
    return [np.concatenate(arrs, axis=ax)]


def _gather(node, inputs, opset):
    label = node_label(node)
    x = np.asarray(inputs[0])
    idx = np.asarray(inputs[1])
    args.ints(idx, label, "indices")
    ax = args.axis(attr(node, "axis", INT, 0), x.ndim, label)
    n = x.shape[ax]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise UnsupportedModelError(
            f"Gather index {int(idx.max()) if idx.max() >= n else int(idx.min())} is out of range "
            f"for axis {ax} of size {n}",
            node=label,
            field="indices",
        )
    args.bound(x.shape[:ax] + idx.shape + x.shape[ax + 1 :], label, "Gather output")
    return [np.take(x, idx.astype(np.int64), axis=ax)]


def _reshape(node, inputs, opset):
    x = np.asarray(inputs[0])
    target = resolve_reshape(x.shape, inputs[1], node)
    return [np.reshape(x, target, copy=None if x.size <= MAX_FOLD_ELEMENTS else False)]


def _transpose(node, inputs, opset):
    x = np.asarray(inputs[0])
    return [np.transpose(x, args.perm(attr(node, "perm", INTS), x.ndim, node_label(node)))]


def _truncating_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX integer Div: the quotient rounded toward zero."""
    q = np.abs(a) // np.abs(b)
    return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))


def _binary(node, inputs, opset):
    label = node_label(node)
    arrs = [np.asarray(a) for a in inputs if a is not None]
    args.bound(args.broadcast_shape([a.shape for a in arrs], label), label,
               f"{node.op_type} output")
    op = node.op_type
    if op in ("Div", "Mod") and all(a.dtype.kind in "iub" for a in arrs) and (arrs[1] == 0).any():
        raise UnsupportedModelError(f"integer {op} by zero", node=label)
    if op == "Div" and all(a.dtype.kind in "iu" for a in arrs):
        return [_truncating_div(*arrs)]
    if op == "Mod":
        fn = np.fmod if attr(node, "fmod", INT, 0) else np.mod
        return [np.asarray(fn(*arrs))]
    return [np.asarray(functools.reduce(_BINARY[op], arrs))]


_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "Max": np.maximum,
    "Min": np.minimum,
}


def _where(node, inputs, opset):
    label = node_label(node)
    cond, a, b = (np.asarray(v) for v in inputs)
    if cond.dtype != np.bool_:
        raise UnsupportedModelError(f"condition must be bool, not {cond.dtype}", node=label,
                                    field="condition")
    args.bound(args.broadcast_shape([cond.shape, a.shape, b.shape], label), label, "Where output")
    return [np.where(cond, a, b)]


def _slice(node, inputs, opset):
    x = np.asarray(inputs[0])
    sl = [slice(None)] * x.ndim
    for ax, start, stop, step in slice_params(node, inputs, opset, x.shape):
        sl[ax] = slice(start, stop if stop >= 0 else None, step)
    return [x[tuple(sl)]]


def _range(node, inputs, opset):
    label = node_label(node)
    start, limit, delta = (np.asarray(v) for v in inputs[:3])
    if start.size != 1 or limit.size != 1 or delta.size != 1:
        raise UnsupportedModelError("Range needs scalar start, limit and delta", node=label)
    if start.dtype.kind not in "iuf":
        raise UnsupportedModelError(f"Range of {start.dtype} is not supported", node=label)
    s, lim, d = (v.reshape(-1)[0].item() for v in (start, limit, delta))
    if d == 0 or not all(math.isfinite(v) for v in (s, lim, d)):
        raise UnsupportedModelError(
            f"Range({s}, {lim}, {d}): delta must be non-zero and all values finite", node=label
        )
    n = max(math.ceil((lim - s) / d), 0) if start.dtype.kind == "f" else max(-((s - lim) // d), 0)
    args.bound([n], label, "Range output")
    return [(s + np.arange(n, dtype=np.float64 if start.dtype.kind == "f" else np.int64) * d)
            .astype(start.dtype)]


#: folders that may take a huge broadcast view as input without materializing it
VIEW_SAFE = {"Identity", "Shape", "Size", "ConstantOfShape", "Expand", "Cast", "Neg",
             "Unsqueeze", "Squeeze", "Transpose", "Slice", "Reshape"}

#: op type -> its numpy folder (other ops go to onnx's reference evaluator)
FOLDERS: dict[str, Folder] = {
    "Identity": _identity,
    "Constant": _constant,
    "Shape": _shape,
    "Size": _size,
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Cast": _cast,
    "Neg": _neg,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Gather": _gather,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Where": _where,
    "Slice": _slice,
    "Range": _range,
    "Mod": _binary,
    **{op: _binary for op in _BINARY},
}


def _map_view(fn: Callable[[np.ndarray], np.ndarray], a: np.ndarray,
              node: onnx.NodeProto) -> np.ndarray:
    """An elementwise ``fn`` of ``a``; on a broadcast view, computed once per distinct value."""
    if a.size <= MAX_FOLD_ELEMENTS:
        return fn(a)
    core = a[tuple(slice(0, 1) if s == 0 else slice(None) for s in a.strides)]
    args.bound(core.shape, node_label(node), f"{node.op_type} output")
    return np.broadcast_to(fn(core), a.shape)
