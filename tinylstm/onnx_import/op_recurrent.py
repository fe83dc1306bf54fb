"""What the ONNX LSTM and GRU ops share: the attributes ``hidden_size``, ``direction``,
``layout`` and ``clip``; the input X as a ``[T, B, F]`` / ``[B, T, F]`` sequence;
``sequence_lens`` and the initial states, reduced to one row when every batch row holds the
same; and the outputs Y, Y_h (and the LSTM's Y_c) as views of the IR node.

The op-specific parts (weights, gate order, the other attributes) are in :mod:`.op_lstm` /
:mod:`.lstm` and :mod:`.op_gru`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import SEQ, Atom, LstmStateNode
from .attrs import FLOAT, INT, STRING, attr
from .loader import check_finite
from .symbolic import Sym
from .values import SeqLensInput, const

if TYPE_CHECKING:
    from .interpret import Interpreter


@dataclass(frozen=True)
class Common:
    """The attributes both ops have, checked (``hidden`` None: taken from W)."""

    hidden: int | None
    direction: str  # forward, reverse or bidirectional
    num_dir: int
    layout: int  # 0: X is [T, B, F]; 1: [B, T, F]
    clip: float | None


@dataclass(frozen=True)
class Rows:
    """The batch that per-row constants (sequence_lens, initial states) are read against."""

    label: str
    size: int  # batch size during import (a sentinel when dynamic)
    fixed: int | None  # the static batch, None when dynamic
    pick: int | None  # the row the caller picked (``batch_row``), None: keep all


def common_options(node: onnx.NodeProto, label: str) -> Common:
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
    clip = attr(node, "clip", FLOAT)
    if clip is not None and not clip > 0:
        raise UnsupportedModelError(f"clip {clip} must be a positive number", node=label, field="clip")
    num_dir = 2 if direction == "bidirectional" else 1
    return Common(hidden, direction, num_dir, layout, clip)


def batch_rows(it: Interpreter, x: Sym, label: str) -> Rows:
    batch = [i for i, a in enumerate(x.atoms) if a.label == "B"][0]
    return Rows(label, x.sizes[batch], x.atoms[batch].size, it.batch_row)


def lengths(seq_lens: object, rows: Rows) -> tuple[np.ndarray | None, bool]:
    """``sequence_lens`` as (constant per-row lengths or None, is a graph input)."""
    if isinstance(seq_lens, SeqLensInput):
        return None, True
    if seq_lens is None:
        return None, False
    lens = const(seq_lens, rows.label, "sequence_lens").astype(np.int64).reshape(-1)
    lens = per_batch_rows(lens, rows, "sequence_lens", axis=0)
    if (lens < 0).any():
        raise UnsupportedModelError("sequence_lens has negative entries", node=rows.label,
                                    field="sequence_lens")
    return lens, False


def sequence_input(it: Interpreter, x: object, layout: int, in_size: int, op: str, label: str) -> int:
    """The IR value feeding the layer, after checking X is a [T, B, F] / [B, T, F] sequence."""
    if not isinstance(x, Sym):
        raise UnsupportedModelError(f"{op} input X must come from the graph input", node=label, field="X")
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


def initial_state(nm: str, st: object, rows: Rows, layout: int, num_dir: int,
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
    return per_batch_rows(st, rows, nm, axis=1)


def per_batch_rows(a: np.ndarray, rows: Rows, what: str, axis: int) -> np.ndarray:
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


def outputs(it: Interpreter, v: int, x: Sym, batch_size: int, layout: int, num_dir: int,
            hidden: int, label: str, states: tuple[str, ...]) -> list:
    """Y [T, D, B, H] (layout 0) / [B, T, D, H]; then one state output [D, B, H] / [B, D, H]
    per entry of ``states`` (``("h", "c")`` for an LSTM, ``("h",)`` for a GRU) of layer ``v``."""
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
    for which in states:
        sv = it.add(LstmStateNode(f"{label}:Y_{which}", v, which, num_dir * hidden))  # type: ignore[arg-type]
        s_atoms = [b_atom] + atoms[2:]
        s_sizes = [batch_size] + sizes[2:]
        sd = (d_idx - 1,) if d_idx is not None else ()
        hh = (len(s_atoms) - 1,)
        s_dims = (sd, (0,), hh) if layout == 0 else ((0,), sd, hh)
        outs.append(Sym(sv, tuple(s_atoms), s_dims, tuple(s_sizes)))
    return outs


def weights(label: str, opts: Common, w: np.ndarray, r: np.ndarray, gates: int,
            extras: tuple[tuple[str, object, int], ...], hidden_note: str = "") -> tuple[int, list[np.ndarray | None]]:
    """hidden_size and the optional per-direction inputs ``extras`` ((name, value, rows per hidden
    unit): B, P), with the shapes of W (``gates`` rows per unit), R and the extras checked and every
    value finite. ``hidden_note`` ends the hidden_size mismatch message."""
    num_dir = opts.num_dir
    if w.ndim != 3 or w.shape[0] != num_dir or w.shape[1] % gates:
        raise UnsupportedModelError(
            f"W has shape {list(w.shape)}; expected [num_directions={num_dir}, {gates}*hidden_size, "
            "input_size]",
            node=label,
            field="W",
        )
    hidden = opts.hidden if opts.hidden is not None else w.shape[1] // gates
    if hidden <= 0 or w.shape[1] != gates * hidden:
        raise UnsupportedModelError(
            f"hidden_size {hidden} does not match W of shape {list(w.shape)} ({gates}*hidden_size "
            f"rows){hidden_note}",
            node=label,
            field="hidden_size",
        )
    if r.shape != (num_dir, gates * hidden, hidden):
        raise UnsupportedModelError(
            f"R has shape {list(r.shape)}; expected {[num_dir, gates * hidden, hidden]}",
            node=label,
            field="R",
        )
    values: list[np.ndarray | None] = []
    for nm, v, rows in extras:
        if v is not None:
            v = const(v, label, nm)
            if v.shape != (num_dir, rows * hidden):
                raise UnsupportedModelError(
                    f"{nm} has shape {list(v.shape)}; expected {[num_dir, rows * hidden]}",
                    node=label, field=nm,
                )
        values.append(v)
    named = [("W", w), ("R", r)] + [(e[0], v) for e, v in zip(extras, values, strict=True)]
    for nm, arr in named:
        if arr is not None:
            check_finite(np.asarray(arr), f"node '{label}' input {nm}")
    return hidden, values
