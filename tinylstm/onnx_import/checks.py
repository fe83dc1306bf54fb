"""Whole-graph checks before interpretation: single assignment and node arity.

A tensor written twice (or a node output shadowing an initializer or graph input) makes the
graph ambiguous; a node with more or fewer inputs than its operator defines would otherwise
be read past its end or silently truncated.
"""

from __future__ import annotations

from functools import lru_cache

import onnx
import onnx.defs

from ..errors import UnsupportedModelError
from .attrs import node_label
from .loader import MAX_OPSET

_SINGLE = onnx.defs.OpSchema.FormalParameterOption.Single


def check_graph(model: onnx.ModelProto, initializers: set[str], opset: int) -> None:
    """Refuse a graph whose tensors are not written once, or whose nodes have a wrong arity."""
    graph = model.graph
    writer: dict[str, str | onnx.NodeProto] = {name: "an initializer" for name in initializers}
    inputs: set[str] = set()
    for i in graph.input:
        if i.name in inputs:
            raise UnsupportedModelError(
                f"graph input '{i.name}' is listed twice; names must be unique", field="graph.input"
            )
        inputs.add(i.name)
        writer.setdefault(i.name, "a graph input")
    for node in graph.node:
        for out in node.output:
            if not out:
                continue
            if out in writer:
                first = writer[out]
                what = first if isinstance(first, str) else f"produced by node '{node_label(first)}'"
                raise UnsupportedModelError(
                    f"output '{out}' is already {what}; every tensor must be written once",
                    node=node_label(node),
                    field="output",
                )
            writer[out] = node
        check_arity(node, opset)


def check_arity(node: onnx.NodeProto, opset: int) -> None:
    """Input and output counts of a default-domain node against its operator's schema.

    The minimum is the declared opset's; the maximum the newest opset's, so an input a later
    version added (Squeeze's axes, Slice's starts) reaches the op's handler, which reads it
    or refuses it with a precise message.
    """
    if node.domain not in ("", "ai.onnx"):
        return
    arity = _arity(node.op_type, opset)
    if arity is None:
        return  # not an operator of this opset: refused where it is used or folded
    (lo_in, hi_in), (lo_out, hi_out), required = arity
    n_in, n_out = len(node.input), len(node.output)
    if not lo_in <= n_in <= hi_in:
        raise UnsupportedModelError(
            f"{node.op_type} has {n_in} input(s); it takes {_count(lo_in, hi_in)}",
            node=node_label(node),
            field="input",
        )
    for k, name in required:
        if k < n_in and not node.input[k]:
            raise UnsupportedModelError(
                f"the required input '{name}' of {node.op_type} is empty",
                node=node_label(node),
                field=name,
            )
    if not lo_out <= n_out <= hi_out:
        raise UnsupportedModelError(
            f"{node.op_type} has {n_out} output(s); it has {_count(lo_out, hi_out)}",
            node=node_label(node),
            field="output",
        )


def check_attribute_names(node: onnx.NodeProto, opset: int) -> None:
    """Refuse an attribute the operator does not define (it would be silently ignored)."""
    known = _attribute_names(node.op_type, opset)
    if known is None or node.domain not in ("", "ai.onnx"):
        return
    for a in node.attribute:
        if a.name not in known:
            raise UnsupportedModelError(
                f"attribute '{a.name}' is not an attribute of {node.op_type} (opset {opset}); "
                f"known: {', '.join(sorted(known)) or 'none'}",
                node=node_label(node),
                field=a.name,
            )


@lru_cache(maxsize=512)
def _attribute_names(op_type: str, opset: int) -> frozenset[str] | None:
    schema = _schema(op_type, opset)
    return None if schema is None else frozenset(schema.attributes)


def _count(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f"at least {lo}" if hi >= 1 << 30 else f"{lo} to {hi}"


Arity = tuple[tuple[int, int], tuple[int, int], tuple[tuple[int, str], ...]]


@lru_cache(maxsize=512)
def _arity(op_type: str, opset: int) -> Arity | None:
    """(inputs lo, hi), (outputs lo, hi), and the required single inputs (position, name)."""
    schema = _schema(op_type, opset)
    if schema is None:
        return None
    newest = _schema(op_type, MAX_OPSET) or schema
    required = tuple((k, f.name) for k, f in enumerate(schema.inputs) if f.option == _SINGLE)
    return (
        (schema.min_input, max(schema.max_input, newest.max_input)),
        (schema.min_output, max(schema.max_output, newest.max_output)),
        required,
    )


def _schema(op_type: str, opset: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return None
