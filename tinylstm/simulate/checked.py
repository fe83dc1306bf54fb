"""Bit-exact numpy simulator of the integer model (docs/quantization.md).

Each kernel mirrors one C function of the runtime one-to-one by name:

===========================  =====================
``matvec_acc``               ``tl_matvec_s8``
``lstm_gates``               ``tl_lstm_gates_s8``
``lstm_cell``                ``tl_lstm_cell_s16``
``lstm_step``                ``tl_lstm_step_s8``
``dense``                    ``tl_dense_s8``
``softmax``                  ``tl_softmax_s8``
===========================  =====================

Arithmetic is int64 numpy, vectorized over the batch (Python loops over time only). At each point where
C stores a value the simulator checks that it fits the C type; a value that does not raises
:class:`SimulatorOverflow`, an internal error: the overflow proof (§11) or the code is wrong. It never wraps.

Integer matrix products run through float64 BLAS: every product is < 2^23 in magnitude and
every partial sum an integer < 2^53, so the result is exact whatever the summation order.

``run_lstm`` runs an LSTM layer through :mod:`.fast` (the same integers with far fewer numpy passes)
when :func:`.fastplan.plan_direction` proves, from the layer's integers, that no stored value can
overflow and that its float64 shortcuts are exact; the kernels here are the checked reference
(forced everywhere by :data:`CHECKED` or ``TINYLSTM_SIM_CHECKED=1``). GRU layers: :mod:`.gru_checked`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    INT32_MIN,
    Lut,
    lut_eval,
    mul16,
    requant,
    round_shift,
    sat,
    sat8,
    sat16,
    sigmoid_q15,
    tanh_q15,
)
from ..ir.reference import resolve_lengths
from ..qmodel import (
    QDense,
    QFeatureGather,
    QInput,
    QLstm,
    QLstmDirection,
    QLstmState,
    QSelectStep,
    QSoftmax,
    QTable,
    QuantizedModel,
)
from .fast import run_direction
from .fastplan import MEMO_LIMIT, constant_beyond, plans

#: Force the checked reference kernels everywhere (every stored value range-checked, step by
#: step). Off by default: ``run_lstm`` then takes the fast path wherever ``fastplan.plan_direction``
#: proves it exact and overflow-free. The environment variable ``TINYLSTM_SIM_CHECKED=1`` sets it.
CHECKED = os.environ.get("TINYLSTM_SIM_CHECKED", "") not in ("", "0")

_RANGES = {"int8": (INT8_MIN, INT8_MAX), "int16": (INT16_MIN, INT16_MAX), "int32": (INT32_MIN, INT32_MAX)}
_memo: dict[tuple, tuple[int, np.ndarray]] = {}
LAYERS: dict = {}  # other recurrent layers: integer node class -> run_lstm-like runner (.gru_checked: QGru)


def lut(x: np.ndarray, table: Lut) -> np.ndarray:
    """``lut_eval`` (``tl_lut_eval``) through a memo of its value at every input up to the
    point where it is constant: the same function, one gather instead of ~15 array operations."""
    key = (table.table.tobytes(), table.sym, table.shift, table.interp)
    m = _memo.get(key)
    if m is None:
        lim = constant_beyond(table)
        if lim > MEMO_LIMIT or not table.interp:
            m = (-1, np.zeros(0, np.int64))
        else:
            # every gate value C stores comes from here: check the int32 range once
            m = (lim, store(lut_eval(np.arange(-lim, lim + 1, dtype=np.int64), table), "int32", table.function))
        if len(_memo) > 64:
            _memo.clear()
        _memo[key] = m
    lim, values = m
    if lim < 0:
        return lut_eval(x, table)
    return np.take(values, x + lim, mode="clip")  # index clipped to [0, 2 lim]: x clipped to +-lim


class SimulatorOverflow(RuntimeError):
    """A value does not fit the C type it is stored in: a bug in the spec or the quantizer."""


def store(a: np.ndarray, ctype: str, where: str) -> np.ndarray:
    """Check that ``a`` fits ``ctype`` (what C stores there); return it unchanged."""
    if a.size:
        lo, hi = _RANGES[ctype]
        amin, amax = int(a.min()), int(a.max())
        if amin < lo or amax > hi:
            raise SimulatorOverflow(f"{where}: value {amin if amin < lo else amax} does not fit {ctype}")
    return a


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------
_wt: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _float_t(w: np.ndarray) -> np.ndarray:
    """``w.T`` as float64, cached per weight array (exact: int8 values)."""
    hit = _wt.get(id(w))
    if hit is None or hit[0] is not w:
        if len(_wt) > 256:
            _wt.clear()
        hit = _wt[id(w)] = (w, np.ascontiguousarray(w.T, dtype=np.float64))
    return hit[1]


def matvec_acc(w: np.ndarray, x: np.ndarray, eff_bias: np.ndarray | int, where: str = "matvec") -> np.ndarray:
    """``acc[.., r] = eff_bias[r] + sum_k w[r, k] x[.., k]``: int8 or int16 (R, K) x int8 or widened
    int16 (.., K) -> int32 (.., R) (``tl_matvec_*``, §5). Every sum is an integer below 2^53, so
    float64 BLAS computes it exactly; the int32 range is checked."""
    prod = x.astype(np.float64) @ _float_t(w)
    acc = prod.astype(np.int64)
    acc += eff_bias
    return store(acc, "int32", where)


def widen(v: np.ndarray, zero_point: int, pre: int) -> np.ndarray:
    """The widened matvec input ``(v - zp) << pre`` (int16 in C, §5)."""
    return store((np.asarray(v, np.int64) - zero_point) << pre, "int16", "widened input")


def input_side(layer: QLstm, d: QLstmDirection, x: np.ndarray) -> np.ndarray:
    """``bias + mul16(acc_x, mult_x)`` for every step at once: x (B, T, I) int8 -> (B, T, 4H) int32,
    the first partial sum of ``t`` (§6) that ``lstm_gates`` forms per step."""
    bsz, steps, _ = x.shape
    v = widen(x.reshape(bsz * steps, x.shape[2]), layer.input_zero_point, d.pre_x)
    acc = matvec_acc(d.w, v, 0, f"{layer.name}: input matvec")
    tx = store(d.bias.astype(np.int64) + mul16(acc, d.mult_x), "int32", f"{layer.name}: t (input side)")
    return tx.reshape(bsz, steps, tx.shape[-1])


def gate_values(layer: QLstm, d: QLstmDirection, z: np.ndarray, which: str) -> np.ndarray:
    """Gate values in Q(q) from pre-activations z Q(P): ``which`` is "f" (i, f, o: sigmoid) or "g"
    (the cell input: tanh); the standard table or the direction's custom table (§8)."""
    if d.standard:
        sh = layer.pre_frac - layer.table_frac
        return sigmoid_q15(z, layer.table, sh) if which == "f" else tanh_q15(z, layer.table, sh)
    return lut(z, d.lut_f if which == "f" else d.lut_g)


def cell_out(layer: QLstm, d: QLstmDirection, c: np.ndarray) -> np.ndarray:
    """``h_act(c)`` in Q(q_h) from the cell Q(k) (§8, §9)."""
    if d.standard:
        return tanh_q15(c, layer.table, d.cell_frac - layer.table_frac)
    return lut(c, d.lut_h)


def lstm_gates(
    layer: QLstm,
    d: QLstmDirection,
    x: np.ndarray | None,
    h: np.ndarray,
    c: np.ndarray,
    tx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gate pre-activations and the i, f, g gates (``tl_lstm_gates_s8``, §6).

    x (B, I) int8 (or ``tx`` (B, 4H) = its ``input_side`` part precomputed), h (B, H) int8,
    c (B, H) int16. Returns z (B, 4H) int32 Q(P) (o without its peephole and clip) and
    gates (B, 3H) int32 (i, f, g).
    """
    H = layer.hidden_size
    if tx is None:
        tx = input_side(layer, d, x[:, None, :])[:, 0]
    acc_h = matvec_acc(d.r, widen(h, layer.zero_point, d.pre_h), 0, f"{layer.name}: recurrent matvec")
    t = store(tx + mul16(acc_h, d.mult_h), "int32", f"{layer.name}: t")
    z = t >> d.shift.astype(np.int64)
    if d.peep is not None:
        pc = d.peep[:2].astype(np.int64)[None] * c[:, None, :]  # (B, 2, H), int32 products
        pt = requant(pc, d.peep_mult[:2, None], d.peep_shift[:2, None])
        store(pt, "int32", f"{layer.name}: peephole i/f")
        z[:, : 2 * H] = store(z[:, : 2 * H] + pt.reshape(-1, 2 * H), "int32", f"{layer.name}: z + peephole")
    if layer.clip_q is not None:
        z[:, : 3 * H] = sat(z[:, : 3 * H], -layer.clip_q, layer.clip_q)
    qf = d.gate_q[0]
    if layer.input_forget:
        gi = gate_values(layer, d, z[:, :H], "f")
        gif = np.concatenate([gi, (1 << qf) - gi], axis=1)
    else:
        gif = gate_values(layer, d, z[:, : 2 * H], "f")
    gates = np.concatenate([gif, gate_values(layer, d, z[:, 2 * H : 3 * H], "g")], axis=1)
    return z, gates


def lstm_cell(d: QLstmDirection, gates: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c' = sat16(round_shift((f c << a_fc) + (i g << a_ig), s_c))`` (``tl_lstm_cell_s16``, §7).

    gates (B, 3H) int32 i, f, g; c (B, H) int16 Q(k) -> c' (B, H) int16 Q(k)."""
    H = c.shape[-1]
    gi, gf, gg = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    fc = gf * c
    ig = gi * gg
    if d.a_fc:
        fc <<= d.a_fc
    if d.a_ig:
        ig <<= d.a_ig
    return sat16(round_shift(fc + ig, d.s_c))  # int64, |fc + ig| < 2^54 (§11.5)


def lstm_step(
    layer: QLstm,
    d: QLstmDirection,
    x: np.ndarray | None,
    h: np.ndarray,
    c: np.ndarray,
    tx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM step for a batch (``tl_lstm_step_s8``, §9).

    x (B, I) int8 (or ``tx``, its precomputed ``input_side``), h (B, H) int8, c (B, H) int16.
    Returns h' (B, H) int8, c' (B, H) int16, z (B, 4H) int32 (o after its peephole and clip),
    gates (B, 4H) int32 (i, f, g, o).
    """
    H = layer.hidden_size
    z, gates = lstm_gates(layer, d, x, h, c, tx)
    c_new = lstm_cell(d, gates, c)
    zo = z[:, 3 * H :]
    if d.peep is not None:
        pt = store(requant(d.peep[2].astype(np.int64) * c_new, d.peep_mult[2], d.peep_shift[2]), "int32",
                   f"{layer.name}: peephole o")
        zo = store(zo + pt, "int32", f"{layer.name}: z_o + peephole")
    if layer.clip_q is not None:
        zo = sat(zo, -layer.clip_q, layer.clip_q)
    z[:, 3 * H :] = zo
    go = gate_values(layer, d, zo, "f")
    oa = go * cell_out(layer, d, c_new)  # |o a| <= 2^30: int32 (§11.6)
    hr = store(requant(oa, d.h_mult, d.h_shift), "int32", f"{layer.name}: requant(o * h_act(c))")
    h_new = sat8(layer.zero_point + hr)
    return h_new, c_new, z, np.concatenate([gates, go], axis=1)


def dense(node: QDense, x: np.ndarray) -> np.ndarray:
    """int8 (.., F_in) -> int8 (.., F_out) (``tl_dense_s8``, §10)."""
    acc = matvec_acc(node.weight, x, node.eff_bias, f"{node.name}: matvec")
    r = store(requant(acc, node.mult, node.shift), "int32", f"{node.name}: requant")
    return sat(node.zero_point + r, node.act_min, node.act_max)


def softmax(node: QSoftmax, x: np.ndarray) -> np.ndarray:
    """Softmax / LogSoftmax over the last axis, int8 -> int8 (``tl_softmax_s8``, §10)."""
    x = x.astype(np.int64)
    xm = x.max(axis=-1, keepdims=True)
    n = xm - x  # [0, 255]
    e = node.exp_table.astype(np.int64)[n]
    s = store(e.sum(axis=-1, keepdims=True), "int32", f"{node.name}: exp sum")
    if not node.log:
        from ..fixedpoint import div_round

        return sat8(-128 + div_round(e << 8, s))
    b = np.floor(np.log2(s.astype(np.float64))).astype(np.int64)
    # exact floor(log2) for integers < 2^31 (guard against float rounding at powers of two)
    b = np.where((np.int64(1) << b) > s, b - 1, b)
    b = np.where((np.int64(1) << (b + 1)) <= s, b + 1, b)
    rr = s - (np.int64(1) << b)
    sh = b - 8
    idx = rr >> sh
    fr = rr & ((np.int64(1) << sh) - 1)
    t = node.log2_table.astype(np.int64)
    l2 = ((b - 15) << 16) + t[idx] + round_shift(store((t[idx + 1] - t[idx]) * fr, "int32", f"{node.name}: log2"), sh)
    L = store(requant(store(l2, "int32", f"{node.name}: l2"), node.l_mult, node.l_shift), "int32", f"{node.name}: L")
    D = requant(x - xm, node.d_mult, node.d_shift)
    return sat8(127 + store(D - L, "int32", f"{node.name}: D - L"))


# ---------------------------------------------------------------------------------------
# whole model
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LstmTrace:
    """Integer internals of one LSTM direction, indexed by original time step."""

    pre: np.ndarray = field(repr=False)  # (B, T, 4H) int32 gate pre-activations (after peephole, clip)
    gates: np.ndarray = field(repr=False)  # (B, T, 4H) int32 i, f, g, o in Q(q)
    c: np.ndarray = field(repr=False)  # (B, T, H) int16 Q(k)
    h: np.ndarray = field(repr=False)  # (B, T, H) int8
    valid: np.ndarray = field(repr=False)  # (B, T) bool: step processed


def _per_batch(a: np.ndarray, batch: int) -> np.ndarray:
    """An initial state (1, H) (one row: the checker refuses others) for every row, as int64."""
    return np.broadcast_to(a, (batch,) + a.shape[1:]).astype(np.int64)


def run_lstm(
    layer: QLstm, x: np.ndarray, lens: np.ndarray, trace: bool = False, need_y: bool = True
) -> tuple[np.ndarray | None, list[np.ndarray], list[np.ndarray], list[LstmTrace]]:
    """All directions of a layer: x (B, T, I) int8 values -> y (B, T, D*H) int8 (None when
    ``need_y`` is False), final h and c per direction (int64), traces.

    Runs the fast path (:mod:`.fast`) when its exactness and no-overflow conditions are proven for
    every direction and :data:`CHECKED` is off; otherwise the checked step-by-step kernels."""
    fast = None if CHECKED else plans(layer)
    if fast is not None and all(p is not None for p in fast):
        return _run_lstm_fast(layer, fast, x, lens, trace, need_y)
    return run_lstm_checked(layer, x, lens, trace)


def _run_lstm_fast(layer: QLstm, fast, x: np.ndarray, lens: np.ndarray, trace: bool, need_y: bool):
    """``run_lstm`` through :func:`.fast.run_direction`, every direction planned (``fast``)."""
    rs = [run_direction(layer, d, p, x, lens, _per_batch(d.initial_h, len(x)), _per_batch(d.initial_c, len(x)),
                        need_y=need_y, trace=trace) for d, p in zip(layer.directions, fast, strict=True)]
    y = np.concatenate([r.y for r in rs], axis=2) if need_y else None
    return y, [r.h for r in rs], [r.c for r in rs], [LstmTrace(*r.trace) for r in rs] if trace else []


def run_lstm_checked(
    layer: QLstm, x: np.ndarray, lens: np.ndarray, trace: bool = False
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[LstmTrace]]:
    """``run_lstm`` through the reference kernels, checking every stored value."""
    bsz, steps, _ = x.shape
    H = layer.hidden_size
    rows = np.arange(bsz)
    full = bool((lens == steps).all())
    ys, hs, cs, trs = [], [], [], []
    for d in layer.directions:
        tx_all = input_side(layer, d, x)
        h = _per_batch(d.initial_h, bsz).copy()
        c = _per_batch(d.initial_c, bsz).copy()
        y = np.full((bsz, steps, H), layer.zero_point, dtype=np.int8)
        if trace:
            tz = np.zeros((bsz, steps, 4 * H), np.int32)
            tg = np.zeros((bsz, steps, 4 * H), np.int32)
            tc = np.zeros((bsz, steps, H), np.int16)
            th = np.zeros((bsz, steps, H), np.int8)
            tv = np.zeros((bsz, steps), bool)
        for s in range(steps):
            if full:
                t = steps - 1 - s if d.reverse else s
                h, c, z, g = lstm_step(layer, d, None, h, c, tx=tx_all[:, t])
                y[:, t] = h
                if trace:
                    tz[:, t], tg[:, t], tc[:, t], th[:, t], tv[:, t] = z, g, c, h, True
                continue
            active = s < lens
            if not active.any():
                continue
            t_idx = np.where(active, lens - 1 - s, 0) if d.reverse else np.full(bsz, s)
            h2, c2, z, g = lstm_step(layer, d, None, h, c, tx=tx_all[rows, t_idx])
            m = active[:, None]
            h = np.where(m, h2, h)
            c = np.where(m, c2, c)
            ra, ta = rows[active], t_idx[active]
            y[ra, ta] = h2[active]
            if trace:
                tz[ra, ta], tg[ra, ta], tc[ra, ta], th[ra, ta] = z[active], g[active], c2[active], h2[active]
                tv[ra, ta] = True
        empty = (lens == 0)[:, None]
        if empty.any():
            h = np.where(empty, layer.zero_point, h)
            c = np.where(empty, 0, c)
        ys.append(y)
        hs.append(h)
        cs.append(c)
        if trace:
            trs.append(LstmTrace(tz, tg, tc, th, tv))
    return np.concatenate(ys, axis=2), hs, cs, trs


def check_int8_input(model: QuantizedModel, x_int8: np.ndarray) -> np.ndarray:
    """Validate an int8 input in the ONNX layout; return canonical (B, T, F) int64."""
    x = np.asarray(x_int8)
    if x.dtype.kind not in "iu":
        raise DataError(f"run_int expects an int8 array, got dtype {x.dtype} (use run() for float input)")
    if x.size and (x.min() < INT8_MIN or x.max() > INT8_MAX):
        raise DataError("run_int input values must lie in [-128, 127]")
    try:
        xc = model.input_view.to_canonical(x)
    except ValueError as e:
        raise DataError(f"input '{model.input_name}' has shape {tuple(x.shape)}: {e}") from None
    if xc.shape[1] == 0:
        raise DataError("input has no time steps")
    return xc.astype(np.int64)


def run_canonical_int(
    model: QuantizedModel, xc: np.ndarray, sequence_lens: np.ndarray | None = None, trace: bool = False
) -> tuple[np.ndarray, dict[str, tuple[LstmTrace, ...]]]:
    """Canonical int input (B, T, F) -> canonical int output and the traces."""
    vals: list[np.ndarray] = []
    finals: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    traces: dict[str, tuple[LstmTrace, ...]] = {}
    bsz, steps = xc.shape[0], xc.shape[1]
    # values read by a later node (Y_h / Y_c read the final states, not the sequence)
    used = {n.src for n in model.nodes[1:] if not isinstance(n, QLstmState)} | {len(model.nodes) - 1}
    for k, node in enumerate(model.nodes):
        if isinstance(node, QInput):
            v = xc
        elif isinstance(node, (QLstm, *LAYERS)):
            lens = resolve_lengths(node, bsz, steps, sequence_lens)  # type: ignore[arg-type]
            v, hs, cs, trs = LAYERS.get(type(node), run_lstm)(node, vals[node.src], lens, trace, need_y=k in used)
            finals[k] = (hs, cs)
            if trace:
                traces[node.name] = tuple(trs)
        elif isinstance(node, QLstmState):
            hs, cs = finals[node.src]
            if node.which == "h":
                v = np.concatenate(hs, axis=1)
            else:
                parts = [
                    sat8(node.zero_point + store(requant(c, m, s), "int32", f"{node.name}: requant"))
                    for c, m, s in zip(cs, node.mult, node.shift, strict=True)
                ]
                v = np.concatenate(parts, axis=1)
        elif isinstance(node, QSelectStep):
            v = vals[node.src][:, node.index, :]
        elif isinstance(node, QFeatureGather):
            v = vals[node.src][..., node.indices]
        elif isinstance(node, QDense):
            v = dense(node, vals[node.src])
        elif isinstance(node, QTable):
            v = node.table.astype(np.int64)[vals[node.src].astype(np.int64) + 128]
        elif isinstance(node, QSoftmax):
            v = softmax(node, vals[node.src])
        else:  # pragma: no cover - closed set
            raise TypeError(type(node))
        vals.append(v)
    return vals[-1], traces


def run_int(
    model: QuantizedModel, x_int8: np.ndarray, sequence_lens: np.ndarray | None = None, trace: bool = False
):
    """int8 input (ONNX layout) -> int8 output (ONNX layout); with ``trace``: ``(y, traces)``."""
    xc = check_int8_input(model, x_int8)
    out, traces = run_canonical_int(model, xc, sequence_lens, trace)
    y = model.output_view.from_canonical(store(out, "int8", "model output")).astype(np.int8)
    return (y, traces) if trace else y
