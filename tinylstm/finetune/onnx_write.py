"""Fine-tuned weights written into a copy of the input ONNX graph (nothing else changes).

LSTM ``W``, ``R`` go back to ONNX's gate order (i, o, f, c); the folded bias ``b = Wb + Rb`` is
written as ``Wb = b``, ``Rb = 0`` (their sum is then exactly ``b`` in float32). Dense weights go
into the Gemm / MatMul constant they came from (transposed as it was), their bias into the Gemm
``C`` or the Add that follows a MatMul. Every tensor must be an initializer or a ``Constant`` that
feeds only that node. :func:`updated_model` imports the result again and checks that it holds
exactly the given weights: a graph that folds its weights some other way is refused, never
written wrong.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UnsupportedModelError
from ..ir import DenseNode, FloatModel, LstmNode
from ..onnx_import.attrs import node_label
from ..onnx_import.loader import read_model
from .weights import Weights, read_weights

#: tinylstm's gate blocks i, f, g, o taken in ONNX's order i, o, f, c
IFGO_TO_ONNX = (0, 3, 1, 2)


class _Graph:
    """Name -> tensor holder (initializer or Constant node) of a model, and the readers of each name."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.model = model
        self.init = {t.name: t for t in g.initializer}
        self.const = {n.output[0]: n for n in g.node if n.op_type == "Constant" and n.output}
        self.users: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            for i in n.input:
                self.users.setdefault(i, []).append(n)

    def array(self, name: str) -> np.ndarray | None:
        if name in self.init:
            return numpy_helper.to_array(self.init[name])
        n = self.const.get(name)
        if n is not None:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None

    def put(self, name: str, value: np.ndarray, node: str, what: str) -> None:
        """Replace tensor ``name`` (keeping its dtype and shape) by ``value``."""
        old = self.array(name)
        if old is None:
            raise UnsupportedModelError(f"finetune writes weights into initializers; {what} is computed in the "
                                        "graph", node=node, field=what)
        if len(self.users.get(name, [])) > 1 or name in {o.name for o in self.model.graph.output}:
            raise UnsupportedModelError(f"{what} ('{name}') is shared with other nodes; finetune would change "
                                        "them too", node=node, field=what)
        t = numpy_helper.from_array(np.asarray(value, dtype=old.dtype).reshape(old.shape), name)
        if name in self.init:
            self.init[name].CopyFrom(t)
        else:
            for a in self.const[name].attribute:
                if a.name == "value":
                    a.t.CopyFrom(t)

    def add(self, base: str, value: np.ndarray) -> str:
        name = base
        k = 0
        taken = set(self.init) | set(self.users) | {o for n in self.model.graph.node for o in n.output}
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        t = numpy_helper.from_array(value, name)
        self.model.graph.initializer.append(t)
        self.init[name] = self.model.graph.initializer[-1]
        return name


def _onnx_node(model: onnx.ModelProto, name: str, ops: tuple[str, ...]) -> onnx.NodeProto:
    for n in model.graph.node:
        if n.op_type in ops and node_label(n) == name:
            return n
    raise UnsupportedModelError(f"finetune cannot find the ONNX {'/'.join(ops)} node of this layer", node=name)


def _to_onnx_gates(a: np.ndarray) -> np.ndarray:
    parts = np.split(a, 4, axis=0)
    return np.concatenate([parts[k] for k in IFGO_TO_ONNX], axis=0)


def _write_lstm(g: _Graph, n: LstmNode, w: Weights) -> None:
    node = _onnx_node(g.model, n.name, ("LSTM",))
    ins = list(node.input) + [""] * (4 - len(node.input))
    for field, k in (("W", 1), ("R", 2)):
        g.put(ins[k], np.stack([_to_onnx_gates(w[(n.name, f"{field.lower()}{d}")])
                                for d in range(n.num_directions)]), n.name, field)
    b = np.stack([np.concatenate([_to_onnx_gates(w[(n.name, f"b{d}")]), np.zeros(4 * n.hidden_size, np.float32)])
                  for d in range(n.num_directions)])
    if ins[3]:
        g.put(ins[3], b, n.name, "B")
    elif np.any(b):
        while len(node.input) < 4:
            node.input.append("")
        node.input[3] = g.add(f"{n.name}_B_finetuned", b.astype(np.float32))


def _bias_name(g: _Graph, node: onnx.NodeProto) -> str | None:
    """The tensor holding a Dense node's bias: Gemm's C, or the constant of the Add after a MatMul."""
    if node.op_type == "Gemm":
        return node.input[2] if len(node.input) > 2 and node.input[2] else None
    for u in g.users.get(node.output[0], []):
        other = [i for i in u.input if i != node.output[0]]
        if u.op_type == "Add" and len(other) == 1 and g.array(other[0]) is not None:
            return other[0]
    return None


def _write_dense(g: _Graph, n: DenseNode, w: Weights) -> None:
    """``n`` is the node as imported (its weights tell the orientation of the stored matrix)."""
    node = _onnx_node(g.model, n.name, ("Gemm", "MatMul"))
    wt, bias = w[(n.name, "weight")], w[(n.name, "bias")]
    cur = g.array(node.input[1])
    transposed = cur is not None and cur.shape == n.weight.T.shape and np.array_equal(
        cur.astype(np.float32), n.weight.T)
    g.put(node.input[1], wt.T if transposed else wt, n.name, "weight")
    name = _bias_name(g, node)
    if name is not None:
        g.put(name, bias, n.name, "bias")
    elif node.op_type == "Gemm" and np.any(bias):
        while len(node.input) < 3:
            node.input.append("")
        node.input[2] = g.add(f"{n.name}_C_finetuned", bias.astype(np.float32))
    elif np.any(bias):
        raise UnsupportedModelError("the layer has no bias tensor to write the fine-tuned bias into",
                                    node=n.name, field="bias")


def fixed_biases(source: str | os.PathLike | onnx.ModelProto, fm: FloatModel) -> set[tuple[str, str]]:
    """Dense biases the graph has no tensor for (a MatMul without an Add): they stay as they are."""
    model, _ = read_model(source)
    g = _Graph(model)
    out = set()
    for n in fm.nodes:
        if isinstance(n, DenseNode):
            node = _onnx_node(model, n.name, ("Gemm", "MatMul"))
            if node.op_type == "MatMul" and _bias_name(g, node) is None:
                out.add((n.name, "bias"))
    return out


def updated_model(source: str | os.PathLike | onnx.ModelProto, fm: FloatModel, w: Weights) -> onnx.ModelProto:
    """A copy of ``source`` (the ONNX file ``fm`` was imported from) holding the weights ``w``;
    checked by importing it again."""
    from ..onnx_import import load_onnx

    model, _ = read_model(source)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    g = _Graph(copy)
    for n in fm.nodes:
        if isinstance(n, LstmNode):
            _write_lstm(g, n, w)
        elif isinstance(n, DenseNode):
            _write_dense(g, n, w)
    again = read_weights(load_onnx(copy, batch_row=fm.batch_row))
    for key, want in w.items():
        got = again.get(key)
        if got is None or got.shape != want.shape or not np.array_equal(got, want):
            raise UnsupportedModelError(
                f"finetune cannot write the {key[1]} weights back into this graph (it computes them from "
                "its tensors in a way finetune does not invert)", node=key[0], field=key[1])
    return copy
