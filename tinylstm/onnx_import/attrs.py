"""Reading node attributes with their declared type checked, and naming nodes in errors.

An ONNX attribute carries its type in ``AttributeProto.type``; :func:`attr` refuses an
attribute whose type is not the one the operator defines (or is left UNDEFINED), so a string
``layout`` or a float ``hidden_size`` never reaches ``int()``. Float values must be finite.
"""

from __future__ import annotations

import math
from typing import Any

import onnx
from onnx import AttributeProto, helper

from ..errors import UnsupportedModelError

INT = AttributeProto.INT
FLOAT = AttributeProto.FLOAT
STRING = AttributeProto.STRING
TENSOR = AttributeProto.TENSOR
INTS = AttributeProto.INTS
FLOATS = AttributeProto.FLOATS
STRINGS = AttributeProto.STRINGS

_TYPE_NAMES = {
    AttributeProto.UNDEFINED: "of UNDEFINED type",
    INT: "an int",
    FLOAT: "a float",
    STRING: "a string",
    TENSOR: "a tensor",
    AttributeProto.GRAPH: "a graph",
    INTS: "a list of ints",
    FLOATS: "a list of floats",
    STRINGS: "a list of strings",
    AttributeProto.GRAPHS: "a list of graphs",
    AttributeProto.SPARSE_TENSOR: "a sparse tensor",
    AttributeProto.SPARSE_TENSORS: "a list of sparse tensors",
    AttributeProto.TENSORS: "a list of tensors",
    AttributeProto.TYPE_PROTO: "a type",
    AttributeProto.TYPE_PROTOS: "a list of types",
}


def node_label(node: onnx.NodeProto) -> str:
    """How errors name a node: its name, else its op type and outputs."""
    return node.name or f"{node.op_type}({', '.join(node.output)})"


def type_name(kind: int) -> str:
    return _TYPE_NAMES.get(kind, f"of unknown type {kind}")


def attr(node: onnx.NodeProto, name: str, kind: int, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``node``, which must be of type ``kind``.

    Returns ``default`` when the attribute is absent. Strings come back as ``str``, lists as
    Python lists; floats must be finite.
    """
    found = [a for a in node.attribute if a.name == name]
    if not found:
        return default
    if len(found) > 1:
        raise UnsupportedModelError(
            f"attribute '{name}' is given {len(found)} times", node=node_label(node), field=name
        )
    a = found[0]
    if a.type != kind:
        raise UnsupportedModelError(
            f"attribute '{name}' of {node.op_type} is {type_name(a.type)}; expected {type_name(kind)}",
            node=node_label(node),
            field=name,
        )
    value = helper.get_attribute_value(a)
    if kind == STRING:
        return _text(value, node, name)
    if kind == STRINGS:
        return [_text(v, node, name) for v in value]
    if kind in (INTS, FLOATS):
        value = list(value)
    if kind == FLOAT or kind == FLOATS:
        for v in value if kind == FLOATS else [value]:
            if not math.isfinite(v):
                raise UnsupportedModelError(
                    f"attribute '{name}' of {node.op_type} holds {v}; it must be finite",
                    node=node_label(node),
                    field=name,
                )
    return value


def required(node: onnx.NodeProto, name: str, kind: int) -> Any:
    """Like :func:`attr` for an attribute the operator cannot do without."""
    value = attr(node, name, kind)
    if value is None:
        raise UnsupportedModelError(
            f"{node.op_type} needs the attribute '{name}' ({type_name(kind)})",
            node=node_label(node),
            field=name,
        )
    return value


def _text(value: bytes | str, node: onnx.NodeProto, name: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedModelError(
            f"attribute '{name}' is not valid UTF-8 text ({value[:40]!r})",
            node=node_label(node),
            field=name,
        ) from None
