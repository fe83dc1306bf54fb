"""The LSTM op: its attributes and tensor shapes checked and its outputs Y, Y_h, Y_c laid out as
views of an :class:`~tinylstm.ir.LstmNode` (what it shares with the GRU: :mod:`.op_recurrent`).

The weights themselves (gate order, bias folding, activations) are read by :mod:`.lstm`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import LstmNode
from . import lstm as lstm_mod
from . import op_recurrent as rec
from .attrs import INT, attr
from .loader import check_finite
from .optable import Op
from .symbolic import Sym
from .values import const

if TYPE_CHECKING:
    from .interpret import Interpreter

#: the inputs of the ONNX LSTM, in order
LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")


def _lstm(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    lstm_mod.check_attributes(node)
    ins = ins + [None] * (len(LSTM_INPUTS) - len(ins))
    x, w, r, b, seq_lens, init_h, init_c, p = ins[: len(LSTM_INPUTS)]
    if not isinstance(x, Sym):
        raise UnsupportedModelError("LSTM input X must come from the graph input", node=label,
                                    field="X")
    w = const(w, label, "W")
    r = const(r, label, "R")
    opts = rec.common_options(node, label)
    # onnxruntime treats any non-zero value as 1
    input_forget = attr(node, "input_forget", INT, 0) != 0
    hidden, b, p = _weights(label, opts, w, r, b, p)
    num_dir = opts.num_dir
    in_size = int(w.shape[2])
    src = rec.sequence_input(it, x, opts.layout, in_size, "LSTM", label)
    rows = rec.batch_rows(it, x, label)
    lens_const, lens_is_input = rec.lengths(seq_lens, rows)
    init = [rec.initial_state(nm, st, rows, opts.layout, num_dir, hidden)
            for nm, st in (("initial_h", init_h), ("initial_c", init_c))]
    dirs = lstm_mod.build_directions(
        node, w, r, b, p, init[0], init[1], hidden, num_dir, opts.direction == "reverse"
    )
    lstm = LstmNode(
        name=label,
        src=src,
        input_size=in_size,
        hidden_size=hidden,
        directions=dirs,
        clip=opts.clip,
        input_forget=input_forget,
        sequence_lens=lens_const,
        sequence_lens_is_input=lens_is_input,
    )
    return rec.outputs(it, it.add(lstm), x, rows.size, opts.layout, num_dir, hidden, label, ("h", "c"))


def _weights(label: str, opts: rec.Common, w: np.ndarray, r: np.ndarray, b: object,
             p: object) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    """hidden_size, B and P, with the shapes of W, R, B, P checked and their values finite."""
    num_dir = opts.num_dir
    if w.ndim != 3 or w.shape[0] != num_dir or w.shape[1] % 4:
        raise UnsupportedModelError(
            f"W has shape {list(w.shape)}; expected [num_directions={num_dir}, 4*hidden_size, "
            "input_size]",
            node=label,
            field="W",
        )
    hidden = opts.hidden if opts.hidden is not None else w.shape[1] // 4
    if hidden <= 0 or w.shape[1] != 4 * hidden:
        raise UnsupportedModelError(
            f"hidden_size {hidden} does not match W of shape {list(w.shape)} (4*hidden_size "
            "rows); projections (proj_size) are not part of the ONNX LSTM",
            node=label,
            field="hidden_size",
        )
    if r.shape != (num_dir, 4 * hidden, hidden):
        raise UnsupportedModelError(
            f"R has shape {list(r.shape)}; expected {[num_dir, 4 * hidden, hidden]}",
            node=label,
            field="R",
        )
    optional = []
    for nm, v, rows in (("B", b, 8), ("P", p, 3)):
        if v is not None:
            v = const(v, label, nm)
            if v.shape != (num_dir, rows * hidden):
                raise UnsupportedModelError(
                    f"{nm} has shape {list(v.shape)}; expected {[num_dir, rows * hidden]}",
                    node=label, field=nm,
                )
        optional.append(v)
    b, p = optional
    for nm, arr in (("W", w), ("R", r), ("B", b), ("P", p)):
        if arr is not None:
            check_finite(np.asarray(arr), f"node '{label}' input {nm}")
    return hidden, b, p


OPS: dict[str, Op] = {
    "LSTM": Op(_lstm, None),  # checks its attributes itself (lstm.check_attributes)
}
