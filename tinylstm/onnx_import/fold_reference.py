"""Folding any other op on constants with onnx's reference implementation, bounded.

Before evaluating, onnx's shape inference must show that every output stays within the fold
limit (a heavy op, whose work grows faster than its inputs, only when small); subgraphs
(control flow) are never evaluated.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import helper

from ..errors import UnsupportedModelError, one_line
from . import args
from .args import MAX_FOLD_ELEMENTS
from .attrs import node_label

#: ops whose output size onnx's shape inference cannot know but their inputs bound
_BOUNDED_BY_INPUTS = {"NonZero", "Compress", "Unique", "TopK", "StringSplit", "RegexFullMatch"}
#: ops whose work grows faster than their inputs and outputs: folded only when small
_HEAVY = {"MatMul", "Gemm", "Conv", "ConvTranspose", "ConvInteger", "MatMulInteger",
          "QLinearConv", "QLinearMatMul", "Einsum", "DeformConv", "MaxPool", "AveragePool",
          "LpPool", "MaxRoiPool", "RoiAlign", "NonMaxSuppression", "RNN", "GRU", "LSTM",
          "Col2Im", "MaxUnpool", "Attention", "Resize", "Upsample", "GridSample", "DFT", "STFT",
          "CumSum", "Det"}
MAX_HEAVY_ELEMENTS = 1 << 12


def reference_fold(node: onnx.NodeProto, inputs: list, opset: int) -> list[np.ndarray]:
    """Evaluate ``node`` on constant ``inputs`` with onnx's reference evaluator, bounded."""
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
