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
    hidden, (b, p) = rec.weights(label, opts, w, r, 4, (("B", b, 8), ("P", p, 3)),
                                 "; projections (proj_size) are not part of the ONNX LSTM")
    return hidden, b, p


OPS: dict[str, Op] = {
    "LSTM": Op(_lstm, None),  # checks its attributes itself (lstm.check_attributes)
}
