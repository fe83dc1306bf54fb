"""The ONNX LSTM node -> :class:`tinylstm.ir.LstmNode` (gate order normalized here, once)."""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import LSTM_ACTIVATIONS, Activation, LstmDirection
from .attrs import FLOATS, STRINGS, attr, node_label

#: ONNX stacks gates as i, o, f, c; tinylstm uses i, f, g(=c), o everywhere after import.
ONNX_TO_IFGO = (0, 2, 3, 1)
#: ONNX peepholes are i, o, f; tinylstm stores i, f, o.
ONNX_P_TO_IFO = (0, 2, 1)

LSTM_ATTRIBUTES = {
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "input_forget",
    "layout",
}

#: alpha/beta each activation consumes, in order, with onnxruntime's defaults.
#: None: no default accepted (the ONNX spec and onnxruntime disagree: 1.0 vs 0).
ACTIVATION_PARAMS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "Sigmoid": (),
    "Tanh": (),
    "Relu": (),
    "Softsign": (),
    "Softplus": (),
    "Affine": (("alpha", None), ("beta", None)),
    "LeakyRelu": (("alpha", 0.01),),
    "ThresholdedRelu": (("alpha", None),),
    "ScaledTanh": (("alpha", None), ("beta", None)),
    "HardSigmoid": (("alpha", 0.2), ("beta", 0.5)),
    "Elu": (("alpha", 1.0),),
}


def reorder_gates(a: np.ndarray, hidden: int, axis: int = 0) -> np.ndarray:
    """Rows stacked i, o, f, c (ONNX) -> i, f, g, o (tinylstm)."""
    parts = np.split(a, 4, axis=axis)
    return np.concatenate([parts[k] for k in ONNX_TO_IFGO], axis=axis)


def parse_activations(node: onnx.NodeProto, num_dir: int,
                      defaults: tuple[str, ...] = ("Sigmoid", "Tanh", "Tanh"),
                      slots: str = "f, g, h") -> list[tuple[Activation, ...]]:
    """``activations`` with ``activation_alpha/beta``: ``len(defaults)`` functions per direction
    (LSTM: f, g, h; GRU: f, g), each with the alpha/beta it consumes, in order."""
    per_dir = len(defaults)
    names = attr(node, "activations", STRINGS)
    alphas = attr(node, "activation_alpha", FLOATS, [])
    betas = attr(node, "activation_beta", FLOATS, [])
    if names is None:
        if alphas or betas:
            raise UnsupportedModelError(
                "activation_alpha/activation_beta given without activations",
                node=node_label(node),
                field="activation_alpha",
            )
        names = list(defaults) * num_dir
    if len(names) != per_dir * num_dir:
        raise UnsupportedModelError(
            f"activations has {len(names)} entries; expected {per_dir * num_dir} "
            f"({slots} for each of {num_dir} direction(s))",
            node=node_label(node),
            field="activations",
        )
    acts: list[Activation] = []
    ia = ib = 0
    for n in names:
        canon = {k.lower(): k for k in LSTM_ACTIVATIONS}.get(n.lower())
        if canon is None:
            raise UnsupportedModelError(
                f"activation '{n}' is not supported; supported: {', '.join(LSTM_ACTIVATIONS)}",
                node=node_label(node),
                field="activations",
            )
        vals: dict[str, float] = {}
        for pname, default in ACTIVATION_PARAMS[canon]:
            given = alphas if pname == "alpha" else betas
            k = ia if pname == "alpha" else ib
            if k < len(given):
                vals[pname] = given[k]
            elif default is None:
                raise UnsupportedModelError(
                    f"activation {canon} needs activation_{pname} value #{k}: the ONNX "
                    "operator's default and onnxruntime's (0) disagree, so give it explicitly",
                    node=node_label(node),
                    field=f"activation_{pname}",
                )
            else:
                vals[pname] = default
            if pname == "alpha":
                ia += 1
            else:
                ib += 1
        acts.append(Activation(canon, vals.get("alpha"), vals.get("beta")))
    if ia < len(alphas) or ib < len(betas):
        raise UnsupportedModelError(
            f"activation_alpha has {len(alphas)} and activation_beta {len(betas)} values but the "
            f"activations {names} use {min(ia, len(alphas))} and {min(ib, len(betas))}",
            node=node_label(node),
            field="activation_alpha",
        )
    return [tuple(acts[per_dir * d : per_dir * (d + 1)]) for d in range(num_dir)]


def check_attributes(node: onnx.NodeProto) -> None:
    for a in node.attribute:
        if a.name not in LSTM_ATTRIBUTES:
            raise UnsupportedModelError(
                f"unknown LSTM attribute '{a.name}'; known: {', '.join(sorted(LSTM_ATTRIBUTES))}",
                node=node_label(node),
                field=a.name,
            )


def build_directions(
    node: onnx.NodeProto,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None,
    p: np.ndarray | None,
    init_h: np.ndarray,  # (N0, D, H)
    init_c: np.ndarray,  # (N0, D, H)
    hidden: int,
    num_dir: int,
    reverse_single: bool,
) -> tuple[LstmDirection, ...]:
    """Split the ONNX tensors per direction, normalize gate order and fold Wb + Rb."""
    acts = parse_activations(node, num_dir)
    dirs = []
    for d in range(num_dir):
        wd = reorder_gates(w[d].astype(np.float32), hidden)
        rd = reorder_gates(r[d].astype(np.float32), hidden)
        if b is not None:
            bd = b[d].astype(np.float64)
            bias = reorder_gates(bd[: 4 * hidden] + bd[4 * hidden :], hidden).astype(np.float32)
        else:
            bias = np.zeros(4 * hidden, dtype=np.float32)
        pd = None
        if p is not None:
            pp = p[d].astype(np.float32).reshape(3, hidden)
            pd = pp[list(ONNX_P_TO_IFO)]
        dirs.append(
            LstmDirection(
                w=wd,
                r=rd,
                b=bias,
                p=pd,
                initial_h=np.ascontiguousarray(init_h[:, d], dtype=np.float32),
                initial_c=np.ascontiguousarray(init_c[:, d], dtype=np.float32),
                reverse=(d == 1) or reverse_single,
                activations=acts[d],
            )
        )
    return tuple(dirs)
