"""Constant folding of the shape/glue arithmetic exporters emit.

Common ops are folded here in numpy (``ConstantOfShape``/``Expand`` as zero-copy broadcast
views, so sentinel-sized zero states cost no memory); anything else whose inputs are all
constant goes through onnx's reference evaluator. Every output's size is bounded before it
is created, and malformed arguments are refused naming the node, never a numpy error.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import UnsupportedModelError, one_line
from . import args
from .args import MAX_FOLD_ELEMENTS, MAX_VIEW_ELEMENTS
from .attrs import FLOAT, FLOATS, INT, INTS, TENSOR, attr, node_label, required
from .checks import check_attribute_names
from .loader import tensor_array

__all__ = ["MAX_FOLD_ELEMENTS", "ShapeOnly", "fold", "resolve_reshape", "slice_params"]

Folder = Callable[[onnx.NodeProto, list, int], list[np.ndarray]]

#: element types a Cast may produce while folding
_CAST_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
    onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32,
    onnx.TensorProto.UINT64, onnx.TensorProto.BOOL,
}


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


def fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray | ShapeOnly]:
    """Evaluate ``node`` on constant ``inputs`` (None for omitted optional inputs)."""
    label = node_label(node)
    shape_only = [a for a in inputs if isinstance(a, ShapeOnly)]
    if shape_only and node.op_type not in ("Shape", "Size"):
        raise UnsupportedModelError(shape_only[0].refusal(), node=label)
    check_attribute_names(node, opset)
    folder = _FOLDERS.get(node.op_type)
    if folder is None:
        return _reference_fold(node, inputs, opset)
    if node.op_type not in _VIEW_SAFE:
        for k, a in enumerate(inputs):
            if a is not None:
                args.bound(np.shape(a), label, f"input {k} of {node.op_type}")
    with np.errstate(all="ignore"):
        try:
            return folder(node, inputs, opset)
        except UnsupportedModelError:
            raise
        except (ValueError, IndexError, TypeError, KeyError, OverflowError, ZeroDivisionError) as e:
            raise UnsupportedModelError(
                f"op {node.op_type} on constant inputs cannot be evaluated "
                f"({type(e).__name__}: {one_line(e)})",
                node=label,
            ) from None


# --------------------------------------------------------------------------------------
# one folder per op
# --------------------------------------------------------------------------------------
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
_VIEW_SAFE = {"Identity", "Shape", "Size", "ConstantOfShape", "Expand", "Cast", "Neg",
              "Unsqueeze", "Squeeze", "Transpose", "Slice", "Reshape"}

_FOLDERS: dict[str, Folder] = {
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


# --------------------------------------------------------------------------------------
# arguments shared with the interpreter
# --------------------------------------------------------------------------------------
def axes_argument(node: onnx.NodeProto, inputs: list, idx: int, label: str) -> list[int] | None:
    """Axes from input ``idx`` (newer opsets) or the ``axes`` attribute (older ones)."""
    if len(inputs) > idx and inputs[idx] is not None:
        return args.ints(inputs[idx], label, "axes")
    return attr(node, "axes", INTS)


def resolve_reshape(in_shape, shape_arr, node: onnx.NodeProto) -> list[int]:
    label = node_label(node)
    target = args.ints(shape_arr, label, "shape")
    allowzero = attr(node, "allowzero", INT, 0)
    out = []
    for i, v in enumerate(target):
        if v == 0 and not allowzero:
            if i >= len(in_shape):
                raise UnsupportedModelError(
                    f"shape entry {i} is 0 (copy) but the input has rank {len(in_shape)}",
                    node=label,
                    field="shape",
                )
            out.append(int(in_shape[i]))
        elif v < -1:
            raise UnsupportedModelError(f"shape {target} has the entry {v}", node=label,
                                        field="shape")
        else:
            out.append(v)
    total = math.prod(int(s) for s in in_shape)
    if out.count(-1) > 1:
        raise UnsupportedModelError("more than one -1 in the shape", node=label, field="shape")
    if -1 in out:
        known = math.prod(v for v in out if v != -1)
        if known == 0 or total % known:
            raise UnsupportedModelError(
                f"cannot infer -1 reshaping {list(in_shape)} to {target}", node=label, field="shape"
            )
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise UnsupportedModelError(
            f"cannot reshape {list(in_shape)} to {target}", node=label, field="shape"
        )
    return out


def slice_params(node: onnx.NodeProto, inputs: list, opset: int, shape) -> list[tuple[int, int, int, int]]:
    """Normalized (axis, start, stop, step) per sliced axis, clamped like numpy."""
    label = node_label(node)
    if opset < 10:
        if len(inputs) > 1:
            raise UnsupportedModelError(
                f"Slice at opset {opset} takes starts/ends as attributes, not as inputs (opset >= 10)",
                node=label,
                field="starts",
            )
        starts, ends = required(node, "starts", INTS), required(node, "ends", INTS)
        axes = attr(node, "axes", INTS, list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = args.ints(inputs[1], label, "starts")
        ends = args.ints(inputs[2], label, "ends")
        axes = (args.ints(inputs[3], label, "axes") if len(inputs) > 3 and inputs[3] is not None
                else list(range(len(starts))))
        steps = (args.ints(inputs[4], label, "steps") if len(inputs) > 4 and inputs[4] is not None
                 else [1] * len(starts))
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise UnsupportedModelError(
            f"starts, ends, axes and steps have {len(starts)}, {len(ends)}, {len(axes)} and "
            f"{len(steps)} entries; they must agree",
            node=label,
            field="starts",
        )
    out = []
    for ax, st, en, sp in zip(args.axes(axes, len(shape), label), starts, ends, steps, strict=True):
        if sp == 0:
            raise UnsupportedModelError("Slice step 0", node=label, field="steps")
        start, stop, step = slice(st, en, sp).indices(int(shape[ax]))
        out.append((ax, start, stop, step))
    return out


# --------------------------------------------------------------------------------------
# everything else: onnx's reference implementation of the single op, bounded
# --------------------------------------------------------------------------------------
#: ops whose output size onnx's shape inference cannot know but their inputs bound
_BOUNDED_BY_INPUTS = {"NonZero", "Compress", "Unique", "TopK", "StringSplit", "RegexFullMatch"}
#: ops whose work grows faster than their inputs and outputs: folded only when small
_HEAVY = {"MatMul", "Gemm", "Conv", "ConvTranspose", "ConvInteger", "MatMulInteger",
          "QLinearConv", "QLinearMatMul", "Einsum", "DeformConv", "MaxPool", "AveragePool",
          "LpPool", "MaxRoiPool", "RoiAlign", "NonMaxSuppression", "RNN", "GRU", "LSTM",
          "Col2Im", "MaxUnpool", "Attention", "Resize", "Upsample", "GridSample", "DFT", "STFT",
          "CumSum", "Det"}
MAX_HEAVY_ELEMENTS = 1 << 12


def _reference_fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray]:
    label = node_label(node)
    op = node.op_type
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        raise UnsupportedModelError(
            f"op {op} has a subgraph; tinylstm does not evaluate subgraphs (control flow)",
            node=label,
            field="op_type",
        )
    total = sum(int(np.size(a)) for a in inputs if a is not None)
    limit = MAX_HEAVY_ELEMENTS if op in _HEAVY else MAX_FOLD_ELEMENTS
    if total > limit:
        raise UnsupportedModelError(
            f"op {op} on constants of {total} elements is too large to fold (limit {limit})",
            node=label,
        )
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    n2 = helper.make_node(op, names, [f"out{i}" for i in range(len(node.output))], domain=node.domain)
    n2.attribute.extend(node.attribute)
    arrays = {n: np.ascontiguousarray(a) for n, a in zip(names, inputs, strict=True) if n}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _bound_outputs(n2, arrays, opset, label, limit)
            ev = _evaluator(n2, arrays, opset)
            res = ev.run(None, arrays)
        except UnsupportedModelError:
            raise
        except Exception as e:
            raise UnsupportedModelError(
                f"op {op} on constant inputs could not be evaluated ({type(e).__name__}: {one_line(e)})",
                node=label,
            ) from None
    return [np.asarray(r) for r in res]


def _one_node_model(n: onnx.NodeProto, arrays: dict[str, np.ndarray], opset: int,
                    as_initializers: bool) -> onnx.ModelProto:
    from onnx import numpy_helper

    values = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
              for k, a in arrays.items()]
    g = helper.make_graph(
        [n], "fold", [] if as_initializers else values,
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in n.output],
        [numpy_helper.from_array(a, k) for k, a in arrays.items()] if as_initializers else [],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _bound_outputs(n: onnx.NodeProto, arrays: dict[str, np.ndarray], opset: int, label: str,
                   limit: int) -> None:
    """Refuse before evaluating when shape inference says an output is too large (or cannot
    say, for an op whose inputs do not bound its outputs)."""
    model = _one_node_model(n, arrays, opset, as_initializers=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    for out in inferred.graph.output:
        t = out.type.tensor_type
        known = t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)
        if known:
            args.bound([d.dim_value for d in t.shape.dim], label, f"{n.op_type} output", limit)
        elif n.op_type not in _BOUNDED_BY_INPUTS:
            raise UnsupportedModelError(
                f"op {n.op_type} on constants: the size of its output cannot be bounded before "
                "evaluating it, so it is not folded",
                node=label,
            )


def _evaluator(n: onnx.NodeProto, arrays: dict[str, np.ndarray], opset: int):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(_one_node_model(n, arrays, opset, as_initializers=False))
