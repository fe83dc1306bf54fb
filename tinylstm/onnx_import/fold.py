"""Constant folding of the shape/glue arithmetic exporters emit.

Common ops are folded in numpy (:mod:`.fold_ops`); anything else whose inputs are all constant
goes through onnx's reference evaluator (:mod:`.fold_reference`). Every output's size is bounded
before it is created, and malformed arguments are refused naming the node, never a numpy error.
"""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedModelError, one_line
from . import args
from .attrs import node_label
from .checks import check_attribute_names
from .fold_ops import FOLDERS, VIEW_SAFE
from .fold_reference import reference_fold
from .values import ShapeOnly

__all__ = ["fold"]


def fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray | ShapeOnly]:
    """Evaluate ``node`` on constant ``inputs`` (None for omitted optional inputs)."""
    label = node_label(node)
    shape_only = [a for a in inputs if isinstance(a, ShapeOnly)]
    if shape_only and node.op_type not in ("Shape", "Size"):
        raise UnsupportedModelError(shape_only[0].refusal(), node=label)
    check_attribute_names(node, opset)
    folder = FOLDERS.get(node.op_type)
    if folder is None:
        return reference_fold(node, inputs, opset)
    if node.op_type not in VIEW_SAFE:
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

