"""The ONNX GRU op -> :class:`tinylstm.ir.GruNode`: every attribute checked, the weights split
per direction with ONNX's gate order ``z, r, h`` kept, the biases folded where the equations
allow it, and the outputs Y, Y_h laid out as views (shared with the LSTM: :mod:`.op_recurrent`).

Measured against onnxruntime 1.32 (tests/test_gru_import.py): ``clip`` bounds all three
pre-activations (for ``h`` after the reset gate's product); any non-zero
``linear_before_reset`` acts as 1 (onnxruntime and ``onnx.reference`` alike); a row of
length 0 reports Y_h = 0; ``layout=1`` is refused by onnxruntime (``onnx.reference`` runs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import GruDirection, GruNode
from . import op_recurrent as rec
from .attrs import INT, attr
from .lstm import parse_activations
from .optable import op
from .symbolic import Sym
from .values import const

if TYPE_CHECKING:
    from .interpret import Interpreter

#: the inputs of the ONNX GRU, in order
GRU_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h")
#: every attribute of the ONNX GRU (opset 14+); the interpreter refuses any other
GRU_ATTRIBUTES = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
                  "hidden_size", "layout", "linear_before_reset")


def _gru(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    ins = ins + [None] * (len(GRU_INPUTS) - len(ins))
    x, w, r, b, seq_lens, init_h = ins[: len(GRU_INPUTS)]
    if not isinstance(x, Sym):
        raise UnsupportedModelError("GRU input X must come from the graph input", node=label, field="X")
    w = const(w, label, "W")
    r = const(r, label, "R")
    opts = rec.common_options(node, label)
    # onnxruntime and onnx.reference treat any non-zero value as 1
    lbr = attr(node, "linear_before_reset", INT, 0) != 0
    hidden, b = _weights(label, opts, w, r, b)
    in_size = int(w.shape[2])
    src = rec.sequence_input(it, x, opts.layout, in_size, "GRU", label)
    rows = rec.batch_rows(it, x, label)
    lens_const, lens_is_input = rec.lengths(seq_lens, rows)
    h0 = rec.initial_state("initial_h", init_h, rows, opts.layout, opts.num_dir, hidden)
    acts = parse_activations(node, opts.num_dir, ("Sigmoid", "Tanh"), "f, g")
    dirs = []
    for d in range(opts.num_dir):
        bias, rb_h = _biases(b, d, hidden, lbr)
        dirs.append(GruDirection(
            w=np.ascontiguousarray(w[d], dtype=np.float32),
            r=np.ascontiguousarray(r[d], dtype=np.float32),
            b=bias,
            rb_h=rb_h,
            initial_h=np.ascontiguousarray(h0[:, d], dtype=np.float32),
            reverse=d == 1 or opts.direction == "reverse",
            activations=acts[d],  # type: ignore[arg-type]
        ))
    gru = GruNode(
        name=label,
        src=src,
        input_size=in_size,
        hidden_size=hidden,
        directions=tuple(dirs),
        clip=opts.clip,
        linear_before_reset=lbr,
        sequence_lens=lens_const,
        sequence_lens_is_input=lens_is_input,
    )
    return rec.outputs(it, it.add(gru), x, rows.size, opts.layout, opts.num_dir, hidden, label, ("h",))


def _weights(label: str, opts: rec.Common, w: np.ndarray, r: np.ndarray,
             b: object) -> tuple[int, np.ndarray | None]:
    """hidden_size and B, with the shapes of W, R, B checked and their values finite."""
    hidden, (b,) = rec.weights(label, opts, w, r, 3, (("B", b, 6),))
    return hidden, b


def _biases(b: np.ndarray | None, d: int, hidden: int, lbr: bool) -> tuple[np.ndarray, np.ndarray]:
    """(3H,) ``b`` and (H,) ``rb_h`` of direction ``d`` (see :class:`~tinylstm.ir.GruDirection`):
    Wb + Rb for z and r; for h, Rbh is folded into Wbh unless the reset gate multiplies it."""
    if b is None:
        return np.zeros(3 * hidden, np.float32), np.zeros(hidden, np.float32)
    wb, rb = b[d, : 3 * hidden].astype(np.float64), b[d, 3 * hidden :].astype(np.float64)
    bias = wb.copy()
    bias[: 2 * hidden] += rb[: 2 * hidden]
    if lbr:
        return bias.astype(np.float32), rb[2 * hidden :].astype(np.float32)
    bias[2 * hidden :] += rb[2 * hidden :]
    return bias.astype(np.float32), np.zeros(hidden, np.float32)


OPS = {"GRU": op(_gru, *GRU_ATTRIBUTES)}
