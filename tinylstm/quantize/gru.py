"""Quantizing a GRU layer (docs/quantization.md §16): the LSTM's gate arithmetic (§5, §6, §8) on
three gate rows per unit, an int16 state updated like the LSTM's cell, an int8 output.

Every width, ``P``, shift and scale is chosen so that the §16 bounds
(:mod:`tinylstm.qmodel.bounds`) hold for every int8 input, every int16 state and every gate value.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import QuantizationError
from ..fixedpoint import INT32_MAX, Lut
from ..ir import Activation, GruDirection, GruNode
from ..qmodel import QGru, QGruDirection
from ..qmodel.bounds import gru_gate_sum_bound, pre_activation_bound, state_acc_bound, state_c_bound
from ..qmodel.nodes import MAX_STATE_SHIFT, MIN_STATE_SHIFT, S_MIN
from .calibration import Calibration
from .lstm import (
    MAX_CELL_FRAC,
    MAX_TABLE_SHIFT,
    MIN_AUTO_PRE_FRAC,
    _gate_lut,
    _lstm_matrix,
    gate_shifts,
    matrix_bits,
    pre_shift,
)
from .luts import MAX_DOMAIN
from .params import as_int32, head_range, int8_params_min_scale, multiplier, quantize_rows

#: Fraction bits of the gate values the reset product and the update multiply by (§16): 1.0 = 2^15.
GATE_ONE_Q = 15
#: The activations (f, g) the standard table serves.
STANDARD = ("Sigmoid", "Tanh")


def is_standard_gru(activations: tuple[Activation, Activation]) -> bool:
    """(f, g) = (Sigmoid, Tanh) without alpha/beta: the standard table serves them."""
    return tuple((a.name, a.alpha, a.beta) for a in activations) == tuple((n, None, None) for n in STANDARD)


def state_shift(rq: np.ndarray) -> int:
    """§16: the smallest ``q`` in [1, 15] with every recurrent accumulator bound ``<= 2^30`` over the
    state narrowed by ``q`` (the LSTM's pre-shift, §5, read the other way)."""
    a = int(state_acc_bound(rq, 0).max()) if rq.size else 0
    q = MIN_STATE_SHIFT
    while q < MAX_STATE_SHIFT and a >> q > 1 << 30:
        q += 1
    return q


def state_reach(node: GruNode, k: int, d: int, calib: Calibration, headroom: float) -> float:
    """The largest ``|h|`` the state of direction ``d`` of node ``k`` can reach. With update-gate values in [0, 1]
    the update is a convex combination, ``|h'| <= max(|n|, |h|)``: the candidate's activation over its
    possible inputs (``clip``, or the largest table domain) and ``initial_h`` bound it. Any other
    gate activation (e.g. Tanh) can grow the state: then the calibrated ``max |h|`` times
    ``cell_headroom``, as the LSTM's cell (§7), with those two as a floor (§16)."""
    from ..ir.reference import apply_activation

    dr = node.directions[d]
    lim = min(node.clip if node.clip is not None else math.inf, MAX_DOMAIN)
    probe = np.linspace(-lim, lim, 1 << 14)
    f = apply_activation(dr.activations[0], probe)
    m = float(np.max(np.abs(apply_activation(dr.activations[1], probe))))
    m = max(m, float(np.max(np.abs(dr.initial_h))) if dr.initial_h.size else 0.0)
    if f.min() < 0.0 or f.max() > 1.0:
        m = max(m, calib.absmax(k, f"h{d}") * headroom)
    return m


def state_frac(reach: float) -> int:
    """``k = 15 - ceil(log2 M)`` clamped to [0, 23]: int16 Q(k) covers ``[-2^(15-k), 2^(15-k))`` (§16)."""
    if reach <= 0:
        return 15
    return int(min(max(15 - math.ceil(math.log2(reach)), 0), MAX_CELL_FRAC))


def _gate_rows(wq, rq, px: int, q: int, fx, fh, bias_p, rb_p):
    """§6 per gate row with the §16 bound: shifts (lowered on rows whose ``t`` bound would pass int32),
    multipliers, ``B``, the candidate's ``rbias`` and the ``t`` bound. Returns (s, mx, mh, B, Bu, T)."""
    H = rq.shape[1]
    s = gate_shifts(fx, fh)
    while True:
        mx = np.rint(fx * np.exp2(16 + s)).astype(np.int64)
        mh = np.rint(fh * np.exp2(16 + s)).astype(np.int64)
        bf = np.rint(bias_p * np.exp2(s)) + np.exp2(s - 1) + 1
        bu = np.rint(rb_p * np.exp2(s[2 * H :]))
        if max(np.abs(bf).max(initial=0), np.abs(bu).max(initial=0)) > 2.0**62:
            tb = np.where(np.abs(bf) > INT32_MAX, np.int64(2**62), 0)
            tb[2 * H :] = np.where(np.abs(bu) > INT32_MAX, np.int64(2**62), tb[2 * H :])
        else:
            tb = gru_gate_sum_bound(wq, rq, px, q, mx, mh, bf.astype(np.int64), bu.astype(np.int64))
        over = tb > INT32_MAX
        if not over.any() or (s[over] <= S_MIN).all():
            return s, mx, mh, bf.astype(np.int64), bu.astype(np.int64), tb
        s = np.where(over & (s > S_MIN), s - 1, s)


def _choose_p(node: GruNode, dr: GruDirection, wq, sw, rq, sr, px: int, q: int, k: int, qf: int, sx: float,
              P: int):
    """The largest ``P <= P`` whose gate rows keep ``s >= S_MIN`` and every §16 bound; returns it with
    the rows (s, mx, mh, B, Bu) and the proven ``|z|`` bound per row."""
    H = node.hidden_size
    # candidate rows multiply by the reset gate as Q(15) whatever the table's q_f (§16)
    row_h = np.concatenate([np.ones(2 * H), np.full(H, 2.0 ** (GATE_ONE_Q - qf))])
    bias = np.asarray(dr.b, np.float64)
    rb = np.asarray(dr.rb_h, np.float64) if node.linear_before_reset else np.zeros(H)
    while True:
        fx = np.where(wq.any(axis=1), sw * sx * 2.0 ** (P - px), 0.0)
        fh = np.where(rq.any(axis=1), sr * 2.0 ** (P + q - k) * row_h, 0.0)
        s, mx, mh, bt, bu, tb = _gate_rows(wq, rq, px, q, fx, fh, bias * 2.0**P, rb * 2.0 ** (P + GATE_ONE_Q - qf))
        ok = (s >= S_MIN).all() and tb.max(initial=0) <= INT32_MAX
        zb = pre_activation_bound(tb, s, None, np.zeros(3), np.zeros(3)) if ok else None
        if ok and zb.max(initial=0) <= INT32_MAX and (node.clip is None or node.clip * 2.0**P <= INT32_MAX):
            return P, (s, mx, mh, bt, bu), zb
        if P <= MIN_AUTO_PRE_FRAC:
            raise QuantizationError(
                f"node '{node.name}': the gate arithmetic does not fit int32 even with {P} fraction bits "
                "(inputs or weights of an extreme range)"
            )
        P -= 1


def _quantize_direction(node: GruNode, d: int, k: int, sx: float, sy: float, zpy: int,
                        opts: dict) -> tuple[QGruDirection, int]:
    """One direction with its state in Q(k), at the requested ``P`` (or lower); returns it and the P
    it needs."""
    dr = node.directions[d]
    name = node.name
    f_act, g_act = dr.activations
    standard = is_standard_gru(dr.activations) and opts["lut_interp"]
    wq, sw = _lstm_matrix(dr.w, matrix_bits(opts, "W"), f"node '{name}' (input matmul)")
    rq, sr = quantize_rows(dr.r, matrix_bits(opts, "R"))
    px, q = pre_shift(wq), state_shift(rq)
    if int(state_acc_bound(rq, q).max(initial=0)) > INT32_MAX:
        raise QuantizationError(f"node '{name}' (recurrent matmul): an int32 accumulator could overflow")
    H = node.hidden_size
    qf = GATE_ONE_Q
    while True:  # custom tables: the output format q_f of lut_f feeds the candidate rows' factors
        P = opts["pre_frac"]
        if standard:
            P = min(P, opts["table_frac"] + MAX_TABLE_SHIFT)
        P, (s, mx, mh, bt, bu), zb = _choose_p(node, dr, wq, sw, rq, sr, px, q, k, qf, sx, P)
        if standard:
            lut_f = lut_g = None
            qg = GATE_ONE_Q
            break
        z_real = zb / 2.0**P
        clip = node.clip if node.clip is not None else math.inf
        lut_f: Lut | None = _gate_lut(f_act, P, min(clip, float(z_real[: 2 * H].max())), opts, name, "gate (f)")
        lut_g: Lut | None = _gate_lut(g_act, P, min(clip, float(z_real[2 * H :].max())), opts, name,
                                      "candidate (g)")
        qg = lut_g.q
        if lut_f.q == qf:
            break
        qf = lut_f.q
    m = max(k, qg)
    ym, ys = multiplier(2.0**-k / sy, f"node '{name}' output requantization")
    if state_c_bound([ym], [ys], zpy) > INT32_MAX:
        raise QuantizationError(f"node '{name}': output requantization overflows int32 (scale too small)")
    h0 = np.clip(np.rint(np.asarray(dr.initial_h, np.float64) * 2.0**k), -32768, 32767).astype(np.int16)
    qd = QGruDirection(
        w=wq, r=rq, pre_x=px, state_shift=q, mult_x=mx.astype(np.int32), mult_h=mh.astype(np.int32),
        bias=as_int32(bt, f"node '{name}': gate bias"), shift=s.astype(np.int32),
        rbias=as_int32(bu, f"node '{name}': candidate recurrent bias"), state_frac=k, lut_f=lut_f, lut_g=lut_g,
        a_h=m - k, a_n=m - qg, s_u=qf + m - k, y_mult=ym, y_shift=ys, initial_h=h0, reverse=dr.reverse,
    )
    return qd, P


def quantize_gru(node: GruNode, k: int, calib: Calibration, src: tuple[float, int], opts: dict) -> QGru:
    """Float GRU node ``k`` reading an int8 input ``src = (scale, zero_point)`` -> integer layer
    (one ``P`` for all its directions: the smallest any of them needs)."""
    sx, zpx = src
    lo, hi = head_range(*calib.range(k, "output"), opts["range_margin"])
    reach = [state_reach(node, k, d, calib, opts["cell_headroom"]) for d in range(node.num_directions)]
    lo, hi = max(lo, -max(reach)), min(hi, max(reach))
    for dr in node.directions:
        if dr.initial_h.size:
            lo, hi = min(lo, float(dr.initial_h.min())), max(hi, float(dr.initial_h.max()))
    # the int8 output of a state at its int16 limit must fit the requantization (§16, as §11.9)
    s_min = max(2.0 ** (15 - state_frac(r)) for r in reach) / 2.0**30
    sy, zpy = int8_params_min_scale(lo, hi, s_min)
    p_req = opts["pre_frac"]
    while True:
        dirs, p_used = [], p_req
        for d in range(node.num_directions):
            qd, p = _quantize_direction(node, d, state_frac(reach[d]), sx, sy, zpy, dict(opts, pre_frac=p_req))
            dirs.append(qd)
            p_used = min(p_used, p)
        if p_used == p_req:
            break
        p_req = p_used  # one P per layer: redo every direction at the smallest one
    return QGru(
        name=node.name, src=node.src, input_size=node.input_size, hidden_size=node.hidden_size,
        directions=tuple(dirs), pre_frac=p_req, input_zero_point=zpx,
        table=opts["table"] if any(d.standard for d in dirs) else None, table_frac=opts["table_frac"],
        clip_q=None if node.clip is None else int(np.rint(node.clip * 2.0**p_req)),
        linear_before_reset=node.linear_before_reset, sequence_lens=node.sequence_lens,
        sequence_lens_is_input=node.sequence_lens_is_input, scale=sy, zero_point=zpy, kind=node.kind,
    )


__all__ = ["is_standard_gru", "quantize_gru", "state_frac", "state_reach", "state_shift"]
