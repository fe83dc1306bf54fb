"""Arguments an op reads from its inputs or its attributes, depending on the opset.

Shared by constant folding (:mod:`.fold_ops`) and the interpreter's glue ops: ``axes`` of
Squeeze/Unsqueeze, the target of a Reshape, and the bounds of a Slice, each checked once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import onnx

from ..errors import UnsupportedModelError
from . import args
from .attrs import INT, INTS, attr, node_label, required


def axes_argument(node: onnx.NodeProto, inputs: list, idx: int, label: str) -> list[int] | None:
    """Axes from input ``idx`` (newer opsets) or the ``axes`` attribute (older ones)."""
    if len(inputs) > idx and inputs[idx] is not None:
        return args.ints(inputs[idx], label, "axes")
    return attr(node, "axes", INTS)


def resolve_reshape(in_shape: Sequence[int], shape_arr: object, node: onnx.NodeProto) -> list[int]:
    """The output shape of a Reshape of ``in_shape``: 0 entries copied (unless allowzero), -1
    inferred, the element count kept."""
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


def slice_params(node: onnx.NodeProto, inputs: list, opset: int,
                 shape: Sequence[int]) -> list[tuple[int, int, int, int]]:
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

