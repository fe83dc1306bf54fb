"""Constant folding of the shape/glue arithmetic exporters emit.

Common ops are folded here in numpy (``ConstantOfShape``/``Expand`` as zero-copy broadcast
views, so sentinel-sized zero states cost no memory); anything else whose inputs are all
constant goes through onnx's reference evaluator, with a size guard.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedModelError

MAX_FOLD_ELEMENTS = 1 << 24


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _axes(node, inputs, idx: int, opset_attr: str = "axes"):
    if len(inputs) > idx and inputs[idx] is not None:
        return [int(v) for v in np.asarray(inputs[idx]).reshape(-1)]
    a = attr(node, opset_attr)
    return None if a is None else [int(v) for v in a]


def fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray]:
    """Evaluate ``node`` on constant ``inputs`` (None for omitted optional inputs)."""
    op = node.op_type
    x = inputs[0] if inputs else None
    if op == "Identity":
        return [x]
    if op == "Constant":
        return [_constant(node)]
    if op == "Shape":
        shape = np.asarray(np.shape(x), dtype=np.int64)
        start = attr(node, "start", 0)
        end = attr(node, "end", None)
        return [shape[start:end]]
    if op == "Size":
        return [np.asarray(np.size(x), dtype=np.int64)]
    if op == "ConstantOfShape":
        value = attr(node, "value")
        v = numpy_helper.to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
        shape = [int(s) for s in np.asarray(x).reshape(-1)]
        return [np.broadcast_to(np.asarray(v), shape)]
    if op == "Expand":
        shape = [int(s) for s in np.asarray(inputs[1]).reshape(-1)]
        out_shape = np.broadcast_shapes(np.shape(x), tuple(shape))
        return [np.broadcast_to(x, out_shape)]
    if op == "Cast":
        to = attr(node, "to")
        return [np.asarray(x).astype(helper.tensor_dtype_to_np_dtype(to))]
    if op == "Unsqueeze":
        axes = _axes(node, inputs, 1)
        out = np.asarray(x)
        rank = out.ndim + len(axes)
        for a in sorted(ax % rank for ax in axes):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Squeeze":
        axes = _axes(node, inputs, 1)
        out = np.asarray(x)
        if axes is None:
            return [np.squeeze(out)]
        return [np.squeeze(out, axis=tuple(a % out.ndim for a in axes))]
    if op == "Concat":
        axis = attr(node, "axis")
        arrs = [np.asarray(a) for a in inputs if a is not None]
        return [np.concatenate(arrs, axis=axis)]
    if op == "Gather":
        axis = attr(node, "axis", 0)
        return [np.take(np.asarray(x), np.asarray(inputs[1]).astype(np.int64), axis=axis)]
    if op == "Reshape":
        return [np.reshape(np.asarray(x), resolve_reshape(np.shape(x), inputs[1], node))]
    if op == "Transpose":
        perm = attr(node, "perm")
        return [np.transpose(np.asarray(x), perm)]
    if op in ("Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Max", "Min", "Mod"):
        a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
        if op == "Div" and a.dtype.kind in "iu":
            return [(np.trunc(a / b)).astype(a.dtype)]
        fn = {
            "Add": np.add,
            "Sub": np.subtract,
            "Mul": np.multiply,
            "Div": np.divide,
            "Equal": np.equal,
            "Less": np.less,
            "Greater": np.greater,
            "Max": np.maximum,
            "Min": np.minimum,
            "Mod": np.mod,
        }[op]
        return [np.asarray(fn(a, b))]
    if op == "Neg":
        return [-np.asarray(x)]
    if op == "Where":
        return [np.where(inputs[0], inputs[1], inputs[2])]
    if op == "Slice":
        return [slice_const(node, inputs, opset)]
    if op == "Range":
        return [np.arange(inputs[0], inputs[1], inputs[2])]
    # generic fallback: onnx's reference implementation of the single op
    total = sum(int(np.size(a)) for a in inputs if a is not None)
    if total > MAX_FOLD_ELEMENTS:
        raise UnsupportedModelError(
            f"op {op} on constants of {total} elements is too large to fold", node=node.name
        )
    return _reference_fold(node, inputs, opset)


def _constant(node: onnx.NodeProto) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.asarray(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.asarray(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.asarray(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.asarray(list(a.ints), dtype=np.int64)
    raise UnsupportedModelError(
        "Constant without value/value_float(s)/value_int(s) is not supported",
        node=node.name,
        field="value",
    )


def resolve_reshape(in_shape, shape_arr, node: onnx.NodeProto) -> list[int]:
    target = [int(v) for v in np.asarray(shape_arr).reshape(-1)]
    allowzero = attr(node, "allowzero", 0)
    out = []
    for i, v in enumerate(target):
        if v == 0 and not allowzero:
            if i >= len(in_shape):
                raise UnsupportedModelError(
                    f"shape entry {i} is 0 (copy) but the input has rank {len(in_shape)}",
                    node=node.name,
                    field="shape",
                )
            out.append(int(in_shape[i]))
        else:
            out.append(v)
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise UnsupportedModelError("more than one -1 in the shape", node=node.name, field="shape")
    if -1 in out:
        known = int(np.prod([v for v in out if v != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise UnsupportedModelError(
                f"cannot infer -1 reshaping {list(in_shape)} to {target}", node=node.name, field="shape"
            )
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise UnsupportedModelError(
            f"cannot reshape {list(in_shape)} to {target}", node=node.name, field="shape"
        )
    return out


def slice_params(node: onnx.NodeProto, inputs: list, opset: int, shape) -> list[tuple[int, int, int, int]]:
    """Normalized (axis, start, stop, step) per sliced axis, clamped like numpy."""
    if opset < 10:
        starts, ends = attr(node, "starts"), attr(node, "ends")
        axes = attr(node, "axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = [int(v) for v in np.asarray(inputs[1]).reshape(-1)]
        ends = [int(v) for v in np.asarray(inputs[2]).reshape(-1)]
        axes = (
            [int(v) for v in np.asarray(inputs[3]).reshape(-1)]
            if len(inputs) > 3 and inputs[3] is not None
            else list(range(len(starts)))
        )
        steps = (
            [int(v) for v in np.asarray(inputs[4]).reshape(-1)]
            if len(inputs) > 4 and inputs[4] is not None
            else [1] * len(starts)
        )
    out = []
    for ax, st, en, sp in zip(axes, starts, ends, steps, strict=True):
        ax = ax % len(shape)
        if sp == 0:
            raise UnsupportedModelError("Slice step 0", node=node.name, field="steps")
        start, stop, step = slice(st, en, sp).indices(int(shape[ax]))
        out.append((ax, start, stop, step))
    return out


def slice_const(node: onnx.NodeProto, inputs: list, opset: int) -> np.ndarray:
    x = np.asarray(inputs[0])
    sl = [slice(None)] * x.ndim
    for ax, start, stop, step in slice_params(node, inputs, opset, x.shape):
        sl[ax] = slice(start, stop if stop >= 0 else None, step)
    return x[tuple(sl)]


def _reference_fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    n2 = helper.make_node(
        node.op_type, names, [f"out{i}" for i in range(len(node.output))], domain=node.domain
    )
    n2.attribute.extend(node.attribute)
    g = helper.make_graph(
        [n2],
        "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), None)
         for n, a in zip(names, inputs, strict=True) if n],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in n2.output],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    try:
        ev = ReferenceEvaluator(m)
        res = ev.run(None, {n: np.asarray(a) for n, a in zip(names, inputs, strict=True) if n})
    except Exception as e:
        raise UnsupportedModelError(
            f"op {node.op_type} on constant inputs could not be evaluated ({type(e).__name__}: {e})",
            node=node.name,
        ) from None
    return [np.asarray(r) for r in res]
