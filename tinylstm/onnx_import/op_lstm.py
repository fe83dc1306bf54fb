"""The LSTM op: its attributes and tensor shapes checked, its per-batch-row constants reduced,
and its outputs Y, Y_h, Y_c laid out as views of an :class:`~tinylstm.ir.LstmNode`.

The weights themselves (gate order, bias folding, activations) are read by :mod:`.lstm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import SEQ, Atom, LstmNode, LstmStateNode
from . import lstm as lstm_mod
from .attrs import FLOAT, INT, STRING, attr
from .loader import check_finite
from .optable import Op
from .symbolic import Sym
from .values import SeqLensInput, const

if TYPE_CHECKING:
    from .interpret import Interpreter

#: the inputs of the ONNX LSTM, in order
LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")


@dataclass(frozen=True)
class _Options:
    """The LSTM's attributes, checked (``hidden`` None: taken from W)."""

    hidden: int | None
    direction: str  # forward, reverse or bidirectional
    num_dir: int
    layout: int  # 0: X is [T, B, F]; 1: [B, T, F]
    input_forget: bool
    clip: float | None


@dataclass(frozen=True)
class _Rows:
    """The batch that per-row constants (sequence_lens, initial states) are read against."""

    label: str
    size: int  # batch size during import (a sentinel when dynamic)
    fixed: int | None  # the static batch, None when dynamic
    pick: int | None  # the row the caller picked (``batch_row``), None: keep all


def _lstm(it: Interpreter, node: onnx.NodeProto, label: str, ins: list) -> list:
    lstm_mod.check_attributes(node)
    ins = ins + [None] * (len(LSTM_INPUTS) - len(ins))
    x, w, r, b, seq_lens, init_h, init_c, p = ins[: len(LSTM_INPUTS)]
    if not isinstance(x, Sym):
        raise UnsupportedModelError("LSTM input X must come from the graph input", node=label,
                                    field="X")
    w = const(w, label, "W")
    r = const(r, label, "R")
    opts = _options(node, label)
    hidden, b, p = _weights(label, opts, w, r, b, p)
    num_dir = opts.num_dir
    in_size = int(w.shape[2])
    src = _input(it, x, opts.layout, in_size, label)

    batch = [i for i, a in enumerate(x.atoms) if a.label == "B"][0]
    rows = _Rows(label, x.sizes[batch], x.atoms[batch].size, it.batch_row)
    lens_const = None
    lens_is_input = False
    if isinstance(seq_lens, SeqLensInput):
        lens_is_input = True
    elif seq_lens is not None:
        lens_const = const(seq_lens, label, "sequence_lens").astype(np.int64).reshape(-1)
        lens_const = _per_batch_rows(lens_const, rows, "sequence_lens", axis=0)
        if (lens_const < 0).any():
            raise UnsupportedModelError("sequence_lens has negative entries", node=label,
                                        field="sequence_lens")
    init = [_initial_state(nm, st, rows, opts.layout, num_dir, hidden)
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
        input_forget=opts.input_forget,
        sequence_lens=lens_const,
        sequence_lens_is_input=lens_is_input,
    )
    return _outputs(it, it.add(lstm), x, rows.size, opts.layout, num_dir, hidden, label)


def _options(node: onnx.NodeProto, label: str) -> _Options:
    hidden = attr(node, "hidden_size", INT)
    direction = attr(node, "direction", STRING, "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise UnsupportedModelError(
            f"direction '{direction}' is not one of forward, reverse, bidirectional",
            node=label,
            field="direction",
        )
    layout = attr(node, "layout", INT, 0)
    if layout not in (0, 1):
        raise UnsupportedModelError(f"layout {layout} is not 0 or 1", node=label, field="layout")
    # onnxruntime treats any non-zero value as 1
    input_forget = attr(node, "input_forget", INT, 0) != 0
    clip = attr(node, "clip", FLOAT)
    if clip is not None:
        if not clip > 0:
            raise UnsupportedModelError(f"clip {clip} must be a positive number", node=label,
                                        field="clip")
    num_dir = 2 if direction == "bidirectional" else 1
    return _Options(hidden, direction, num_dir, layout, input_forget, clip)


def _weights(label: str, opts: _Options, w: np.ndarray, r: np.ndarray, b: object,
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


def _input(it: Interpreter, x: Sym, layout: int, in_size: int, label: str) -> int:
    """The IR value feeding the LSTM, after checking X is a [T, B, F] / [B, T, F] sequence."""
    if x.rank != 3:
        raise UnsupportedModelError(
            f"X has rank {x.rank} ({x.describe()}); expected 3", node=label, field="X"
        )
    if it.nodes[x.value].kind != SEQ:  # e.g. a Y_h unsqueezed back to rank 3: no time axis
        raise UnsupportedModelError("X must be a sequence (it has no time axis)", node=label, field="X")
    want = ("T", "B") if layout == 0 else ("B", "T")
    for d, lab in enumerate(want):
        g = [x.atoms[i].label for i in x.dims[d] if x.sizes[i] != 1]
        # an axis of size 1 holds a static batch (or time) of 1, wherever the exporter put it
        size_one = x.sizes[[i for i, a in enumerate(x.atoms) if a.label == lab][0]] == 1
        if g != [lab] and not (size_one and not g):
            raise UnsupportedModelError(
                f"X is laid out {x.describe()} but layout={layout} expects "
                f"[{', '.join('time' if v == 'T' else 'batch' for v in want)}, features]",
                node=label,
                field="layout",
            )
    feat_atoms = list(x.dims[2])
    if sorted(feat_atoms) != x.feature_atoms():
        raise UnsupportedModelError(f"X axis 2 is not the feature axis ({x.describe()})",
                                    node=label, field="X")
    nfeat = math.prod(x.sizes[i] for i in feat_atoms)
    if nfeat != in_size:
        raise UnsupportedModelError(
            f"X has {nfeat} features but W expects input_size {in_size}", node=label, field="W"
        )
    return it.features_in_order(x, feat_atoms, label)


def _initial_state(nm: str, st: object, rows: _Rows, layout: int, num_dir: int,
                   hidden: int) -> np.ndarray:
    """initial_h or initial_c as (rows, num_directions, hidden); zeros when omitted."""
    label = rows.label
    if st is None:
        return np.zeros((1, num_dir, hidden), dtype=np.float32)
    st = const(st, label, nm)
    if st.ndim != 3:
        raise UnsupportedModelError(f"{nm} has rank {st.ndim}; expected 3", node=label,
                                    field=nm)
    if layout == 1:
        st = np.swapaxes(st, 0, 1)
    if st.shape[0] != num_dir or st.shape[2] != hidden:
        raise UnsupportedModelError(
            f"{nm} has shape {list(st.shape)}; expected [num_directions={num_dir}, batch, "
            f"hidden_size={hidden}]" + (" (layout=1: [batch, num_directions, hidden])"
                                         if layout == 1 else ""),
            node=label,
            field=nm,
        )
    check_finite(st, f"node '{label}' input {nm}")
    return _per_batch_rows(st, rows, nm, axis=1)


def _per_batch_rows(a: np.ndarray, rows: _Rows, what: str, axis: int) -> np.ndarray:
    """Constant per-batch-row data -> rows on axis 0: one row when it is the same for every
    row of the batch (exporters' zero initial states), else one per row of a static batch
    (or row ``rows.pick`` alone, when the caller picked one)."""
    label = rows.label
    n = a.shape[axis]
    data = np.moveaxis(a, axis, 0)
    if n != 1 and n != rows.size:
        raise UnsupportedModelError(
            f"{what} has {n} batch rows but the input batch is "
            f"{rows.fixed if rows.fixed is not None else 'dynamic'}",
            node=label,
            field=what,
        )
    if (data == data[0:1]).all():
        return np.ascontiguousarray(data[0:1])
    if rows.fixed is None:
        # sized from the dynamic batch (e.g. ConstantOfShape of Shape(X)) yet not uniform
        raise UnsupportedModelError(
            f"{what} depends on the batch row in a dynamic-batch model", node=label,
            field=what,
        )
    if rows.pick is not None:
        if not 0 <= rows.pick < n:
            raise UnsupportedModelError(
                f"batch row {rows.pick} does not exist: {what} has {n} rows (0..{n - 1})",
                node=label, field=what)
        return np.ascontiguousarray(data[rows.pick : rows.pick + 1])
    return np.ascontiguousarray(data)


def _outputs(it: Interpreter, v: int, x: Sym, batch_size: int, layout: int, num_dir: int,
             hidden: int, label: str) -> list:
    """Y [T, D, B, H] (layout 0) / [B, T, D, H]; Y_h, Y_c [D, B, H] / [B, D, H] of LSTM ``v``."""
    b_atom = [a for a in x.atoms if a.label == "B"][0]
    t_atom = [a for a in x.atoms if a.label == "T"][0]
    t_size = x.sizes[[i for i, a in enumerate(x.atoms) if a.label == "T"][0]]
    atoms = [b_atom, t_atom]
    sizes = [batch_size, t_size]
    d_idx = None
    if num_dir > 1:
        atoms.append(Atom("D", num_dir))
        sizes.append(num_dir)
        d_idx = 2
    atoms.append(Atom("H", hidden))
    sizes.append(hidden)
    h_idx = len(atoms) - 1
    dd = (d_idx,) if d_idx is not None else ()
    if layout == 0:
        y_dims = ((1,), dd, (0,), (h_idx,))
    else:
        y_dims = ((0,), (1,), dd, (h_idx,))
    y = Sym(v, tuple(atoms), y_dims, tuple(sizes))
    outs: list[object] = [y]
    for which in ("h", "c"):
        sv = it.add(LstmStateNode(f"{label}:Y_{which}", v, which, num_dir * hidden))
        s_atoms = [b_atom] + atoms[2:]
        s_sizes = [batch_size] + sizes[2:]
        sd = (d_idx - 1,) if d_idx is not None else ()
        hh = (len(s_atoms) - 1,)
        s_dims = (sd, (0,), hh) if layout == 0 else ((0,), sd, hh)
        outs.append(Sym(sv, tuple(s_atoms), s_dims, tuple(s_sizes)))
    return outs


OPS: dict[str, Op] = {
    "LSTM": Op(_lstm, None),  # checks its attributes itself (lstm.check_attributes)
}
