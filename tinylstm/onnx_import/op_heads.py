"""Model ops of the head after the LSTMs: dense layers, activations and softmax.

Gemm, MatMul and a per-feature Add become :class:`~tinylstm.ir.DenseNode` s (an Add right
after a MatMul folds into its bias); elementwise activations, Softmax and LogSoftmax become
:class:`~tinylstm.ir.ActivationNode` s. Each acts on the feature axis of its input.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import Activation, ActivationNode, DenseNode
from . import args
from .attrs import FLOAT, INT, attr
from .loader import check_finite
from .optable import Op, op
from .symbolic import Sym
from .values import const

if TYPE_CHECKING:
    from .interpret import Interpreter

#: elementwise activations and their attributes with onnxruntime's defaults
ELEMENTWISE = {
    "Relu": (),
    "Tanh": (),
    "Sigmoid": (),
    "Softsign": (),
    "Softplus": (),
    "LeakyRelu": (("alpha", 0.01),),
    "Elu": (("alpha", 1.0),),
    "HardSigmoid": (("alpha", 0.2), ("beta", 0.5)),
}


def _dense(it: Interpreter, s: Sym, weight: np.ndarray, bias: np.ndarray, label: str, feat_axis: int) -> Sym:
    fa = it.feature_dim(s, feat_axis, label, "a dense layer")
    nfeat = math.prod(s.sizes[i] for i in fa)
    if weight.ndim != 2 or weight.shape[1] != nfeat:
        raise UnsupportedModelError(
            f"the weight of shape {list(weight.shape)} does not take the input's {nfeat} "
            f"features ({s.describe()})",
            node=label,
            field="B",
        )
    src = it.features_in_order(s, fa, label)
    check_finite(weight, f"weight of node '{label}'")
    check_finite(bias, f"bias of node '{label}'")
    kind = it.nodes[s.value].kind
    v = it.add(
        DenseNode(label, src, weight.astype(np.float32), bias.astype(np.float32), kind=kind)
    )
    return it.new_value(v, s, feat_axis % s.rank, int(weight.shape[0]))


def _gemm(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    if not isinstance(a, Sym) or isinstance(b, Sym) or isinstance(c, Sym):
        raise UnsupportedModelError(
            "Gemm must multiply model data (A) by constant weights (B, C)", node=label
        )
    if attr(node, "transA", INT, 0):
        raise UnsupportedModelError("Gemm transA=1 is not supported", node=label, field="transA")
    if a.rank != 2:
        raise UnsupportedModelError(f"Gemm input A has rank {a.rank}", node=label)
    alpha = attr(node, "alpha", FLOAT, 1.0)
    beta = attr(node, "beta", FLOAT, 1.0)
    w = const(b, label, "B").astype(np.float64)
    if w.ndim != 2:
        raise UnsupportedModelError("Gemm B must be a matrix", node=label, field="B")
    w = w if attr(node, "transB", INT, 0) else w.T  # (N_out, K)
    if w.shape[1] != a.shape[1]:
        raise UnsupportedModelError(
            f"Gemm B has {w.shape[1]} inputs but A has {a.shape[1]} features", node=label,
            field="B",
        )
    bias = np.zeros(w.shape[0])
    if c is not None:
        c = const(c, label, "C").astype(np.float64)
        if c.size == 1:
            bias = np.full(w.shape[0], float(c.reshape(-1)[0]))
        elif c.shape[-1] == w.shape[0] and math.prod(c.shape[:-1]) == 1:
            bias = c.reshape(-1)
        else:
            raise UnsupportedModelError(
                f"Gemm C of shape {list(c.shape)} is not a per-output bias", node=label,
                field="C",
            )
    return [_dense(it, a, alpha * w, beta * bias, label, 1)]


def _matmul(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    a, b = ins
    if not isinstance(a, Sym) or isinstance(b, Sym):
        raise UnsupportedModelError(
            "MatMul must multiply model data by a constant weight matrix", node=label
        )
    w = const(b, label, "B").astype(np.float64)
    if w.ndim != 2:
        raise UnsupportedModelError("MatMul weight must be 2-D", node=label, field="B")
    return [_dense(it, a, w.T, np.zeros(w.shape[1]), label, -1)]


def _add(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    a, b = ins
    if isinstance(b, Sym) and not isinstance(a, Sym):
        a, b = b, a
    if isinstance(b, Sym):
        raise UnsupportedModelError(
            "Add of two model tensors (e.g. a residual connection) is not supported", node=label
        )
    s: Sym = a
    c = const(b, label, "B").astype(np.float64)
    nfeat = math.prod(s.sizes[i] for i in s.feature_atoms())
    last = s.dims[-1]
    ok = (
        c.ndim <= s.rank
        and math.prod(c.shape[:-1]) == 1
        and c.shape[-1:] in ((nfeat,), (1,))
        and sorted(last) == s.feature_atoms()
    ) or c.size == 1
    if not ok:
        raise UnsupportedModelError(
            f"Add of a constant of shape {list(c.shape)} to {s.describe()}: only a per-feature "
            "bias on the last axis is supported",
            node=label,
        )
    bias = np.broadcast_to(c.reshape(-1), (nfeat,)) if c.size != nfeat else c.reshape(-1)
    prev = it.nodes[s.value]
    if (
        isinstance(prev, DenseNode)
        and s.value == len(it.nodes) - 1
        and list(last) == s.feature_atoms()
        and _single_use_dense(it, s.value)
    ):
        it.nodes[s.value] = DenseNode(
            prev.name, prev.src, prev.weight,
            (prev.bias.astype(np.float64) + bias).astype(np.float32), kind=prev.kind,
        )
        return [s]
    return [_dense(it, s, np.eye(nfeat), bias, label, -1)]


def _single_use_dense(it: Interpreter, value: int) -> bool:
    # a Dense value just created by MatMul: fold the bias into it when nothing else saw it
    return it.sym_uses.get(value, 0) <= 1


def _activation(it: Interpreter, s: Sym, act: Activation, label: str) -> Sym:
    feats = s.feature_atoms()
    nfeat = math.prod(s.sizes[i] for i in feats)
    kind = it.nodes[s.value].kind
    v = it.add(ActivationNode(label, s.value, act, nfeat, kind=kind))
    return Sym(v, s.atoms, s.dims, s.sizes)


def _elementwise(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    params = ELEMENTWISE[node.op_type]
    vals = {}
    for pname, default in params:
        vals[pname] = attr(node, pname, FLOAT, default)
    act = Activation(node.op_type, vals.get("alpha"), vals.get("beta"))
    return [_activation(it, ins[0], act, label)]


def _softmax(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    s: Sym = ins[0]
    default_axis = -1 if it.opset >= 13 else 1
    axis = args.axis(attr(node, "axis", INT, default_axis), s.rank, label)
    if it.opset < 13 and axis != s.rank - 1:
        # older opsets flatten [axis:] into one: that must be exactly the features
        tail = [i for g in s.dims[axis:] for i in g]
        if sorted(tail) != s.feature_atoms():
            raise UnsupportedModelError(
                f"{node.op_type} over axes {axis}.. of {s.describe()} is not over the features",
                node=label,
                field="axis",
            )
    else:
        it.feature_dim(s, axis, label, node.op_type)
    return [_activation(it, s, Activation(node.op_type), label)]


OPS: dict[str, Op] = {
    "Gemm": op(_gemm, "alpha", "beta", "transA", "transB", "broadcast"),
    "MatMul": op(_matmul),
    "Add": op(_add, "axis", "broadcast"),
    "Softmax": op(_softmax, "axis"),
    "LogSoftmax": op(_softmax, "axis"),
    **{name: op(_elementwise, *(p for p, _ in params)) for name, params in ELEMENTWISE.items()},
}
