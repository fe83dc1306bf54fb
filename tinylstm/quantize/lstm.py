"""Quantizing an LSTM layer (docs/quantization.md §5–§9) and its state outputs (§10).

Every width, ``P`` and scale is chosen so that the §11 bounds (:mod:`tinylstm.qmodel.bounds`)
hold for every int8 input and hidden state and every int16 cell.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import QuantizationError
from ..fixedpoint import INT16_MAX, INT32_MAX, Lut
from ..ir import LstmNode, LstmStateNode
from ..qmodel import QLstm, QLstmDirection, QLstmState
from ..qmodel.bounds import (
    gate_sum_bound,
    hidden_bound,
    lut_interp_bound,
    pre_activation_bound,
    state_c_bound,
    widened_acc_bound,
)
from ..qmodel.nodes import MAX_GATE_SHIFT, MAX_PRE, S_MIN
from .calibration import Calibration
from .luts import BOUNDED, GATE_Q, LutError, build_lut, is_standard
from .params import as_int32, head_range, int8_params, int8_params_min_scale, multiplier, multipliers, quantize_rows

#: Default fraction bits of gate pre-activations (measured: docs/quantization.md §13).
DEFAULT_PRE_FRAC = 16
#: Smallest pre_frac a user may request.
MIN_PRE_FRAC = 8
#: Smallest P the quantizer lowers a layer to on its own (extreme input or weight ranges, §6).
MIN_AUTO_PRE_FRAC = 4
MAX_CELL_FRAC = 23
#: Largest interpolation shift of the standard table: V = D[j] 2^s + (D[j+1] - D[j]) r plus its
#: rounding term stays below 2^31 (D <= 2^15, spec §11.4).
MAX_TABLE_SHIFT = 14


def cell_frac(cmax: float, headroom: float) -> int:
    """``k = 15 - ceil(log2(cmax * headroom))`` clamped to [0, 23] (§7)."""
    v = cmax * headroom
    if v <= 0:
        return 15
    return int(min(max(15 - math.ceil(math.log2(v)), 0), MAX_CELL_FRAC))


def matrix_bits(opts: dict, matrix: str) -> int:
    """The requested width of one weight matrix ("W" or "R") of a layer: ``opts["matrix_bits"]``
    (per matrix, from ``lstm_weight_bits={"layer/W": 8, ...}``) or the layer's ``lstm_weight_bits``."""
    return int(opts.get("matrix_bits", {}).get(matrix, opts["lstm_weight_bits"]))


def _lstm_matrix(w: np.ndarray, bits: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights of one LSTM matrix at the widest width <= ``bits`` whose matvec over widened inputs
    (``|v| <= 255``, no pre-shift) provably fits int32 (§11.1): ``(wq, per-row scale)``."""
    for b in range(bits, 7, -1):
        wq, sw = quantize_rows(w, b)
        if not wq.size or int(widened_acc_bound(wq, 0).max()) <= INT32_MAX:
            return wq, sw
    raise QuantizationError(f"{where}: an int32 accumulator could overflow even with 8-bit weights (fan-in too large)")


def pre_shift(wq: np.ndarray) -> int:
    """§5: the largest ``p`` in [0, MAX_PRE] with every accumulator bound ``<= 2^30`` once the
    widened inputs are shifted left by ``p``: spare accumulator bits for the gate products."""
    if not wq.size:
        return MAX_PRE
    a = int(widened_acc_bound(wq, 0).max())
    p = 0
    while p < MAX_PRE and a << (p + 1) <= 1 << 30:
        p += 1
    return p


def gate_shifts(fx: np.ndarray, fh: np.ndarray) -> np.ndarray:
    """§6: per row the largest ``s <= MAX_GATE_SHIFT`` with ``rint(F 2^(16+s)) < 2^15`` for the larger
    of the two factors (rows of zero weights get MAX_GATE_SHIFT)."""
    fm = np.maximum(fx, fh)
    s = np.full(fm.shape, MAX_GATE_SHIFT, np.int64)
    pos = fm > 0
    est = np.floor(-1.0 - np.log2(fm[pos])).astype(np.int64)  # 2^14 <= F 2^(16+s) < 2^15
    s[pos] = np.minimum(est, MAX_GATE_SHIFT)
    over = np.rint(fm * np.exp2(16 + s)) >= 2**15
    return np.where(over, s - 1, s)


def max_table_shift(table: np.ndarray) -> int:
    """The largest input shift ``sh`` below the standard table's grid whose interpolation step
    ``|D[j+1] - D[j]| * (2^sh - 1)`` plus a rounding term ``2^sh`` stays below 2^31 (§11.4)."""
    sh = 0
    while sh < 30 and lut_interp_bound(table, sh + 1) + (1 << (sh + 1)) <= INT32_MAX:
        sh += 1
    return sh


def _gate_rows(wq: np.ndarray, rq: np.ndarray, px: int, ph: int, fx: np.ndarray, fh: np.ndarray,
               bias_p: np.ndarray) -> tuple[np.ndarray, ...]:
    """§6 per gate row: the shift ``s`` (``gate_shifts``, lowered on the rows whose ``t`` bound would
    pass int32: a large bias beside small weights), the multipliers, ``B`` and the ``t`` bound.
    ``bias_p`` is the bias in units of Q(P). Returns (s, mx, mh, B, T), int64 (4H,) each."""
    s = gate_shifts(fx, fh)
    while True:
        mx = np.rint(fx * np.exp2(16 + s)).astype(np.int64)
        mh = np.rint(fh * np.exp2(16 + s)).astype(np.int64)
        # bias, half of the final shift (round half up) and 1 (the mean loss of the two floored products)
        bf = np.rint(bias_p * np.exp2(s)) + np.exp2(s - 1) + 1
        if np.abs(bf).max(initial=0) > 2.0**62:
            tb = np.where(np.abs(bf) > INT32_MAX, np.int64(2**62), 0)
        else:
            tb = gate_sum_bound(wq, rq, px, ph, mx, mh, bf.astype(np.int64))
        over = tb > INT32_MAX
        if not over.any() or (s[over] <= S_MIN).all():
            return s, mx, mh, bf.astype(np.int64), tb
        s = np.where(over & (s > S_MIN), s - 1, s)


def _gate_lut(act, in_frac: int, limit: float, opts: dict, node: str, slot: str) -> Lut:
    try:
        return build_lut(act, in_frac, limit=limit, size=opts["lut_size"], interp=opts["lut_interp"])
    except LutError as e:
        raise QuantizationError(f"node '{node}': {slot} activation {act}: {e}") from None


def _quantize_direction(node: LstmNode, d: int, k_node: int, calib: Calibration, sx: float, zpx: int,
                        sh: float, zph: int, opts: dict) -> tuple[QLstmDirection, int]:
    """One direction; returns it and the pre-activation fraction bits P it needs."""
    dr = node.directions[d]
    name = node.name
    f_act, g_act, h_act = dr.activations
    standard = is_standard(dr.activations) and opts["lut_interp"]
    wq, sw = _lstm_matrix(dr.w, matrix_bits(opts, "W"), f"node '{name}' (input matmul)")
    rq, sr = _lstm_matrix(dr.r, matrix_bits(opts, "R"), f"node '{name}' (recurrent matmul)")
    px, ph = pre_shift(wq), pre_shift(rq)

    # cell format from calibration (and the initial state)
    cmax = calib.absmax(k_node, f"c{d}")
    cmax = max(cmax, float(np.max(np.abs(dr.initial_c))) if dr.initial_c.size else 0.0)
    k = cell_frac(cmax, opts["cell_headroom"])
    if standard:  # the cell's tanh reads the table with shift k - frac (§11.4: small tables only)
        k = min(k, opts["table_frac"] + max_table_shift(opts["table"]))

    if h_act.name not in BOUNDED:
        raise QuantizationError(
            f"node '{name}': the cell output activation (h) {h_act} is unbounded; the integer LSTM "
            f"supports {', '.join(BOUNDED)} there (no float fallback)"
        )
    # peepholes: int16 per gate
    if dr.p is not None:
        p = np.asarray(dr.p, dtype=np.float64)
        pmax = np.max(np.abs(p), axis=1)
        sp = np.where(pmax > 0, pmax / 32767.0, 1.0)
        peep = np.clip(np.rint(p / sp[:, None]), -32767, 32767).astype(np.int16)
    else:
        sp = np.ones(3)
        peep = None

    bias = np.asarray(dr.b, dtype=np.float64)
    # P: the requested pre_frac, lowered until every row keeps S_MIN bits below Q(P) in t (the
    # floor error of the two products stays below 2^-(S_MIN - 1) LSB) and every bound holds; the
    # standard table also needs P - frac <= MAX_TABLE_SHIFT (§11.4)
    P = opts["pre_frac"]
    if standard:
        P = min(P, opts["table_frac"] + MAX_TABLE_SHIFT)
    while True:
        # a row of zero weights contributes nothing and must not limit the row's shift
        fx = np.where(wq.any(axis=1), sw * sx * 2.0 ** (P - px), 0.0)
        fh = np.where(rq.any(axis=1), sr * sh * 2.0 ** (P - ph), 0.0)
        s, mx, mh, bt, tb = _gate_rows(wq, rq, px, ph, fx, fh, bias * 2.0**P)
        pm, psh = multipliers(sp * 2.0 ** (P - k), f"node '{name}' peephole requantization")
        t_ok = (s >= S_MIN).all() and tb.max(initial=0) <= INT32_MAX
        if t_ok:
            zb = pre_activation_bound(tb, s, peep, pm, psh)
            t_ok = zb.max(initial=0) <= INT32_MAX
        clip_ok = node.clip is None or node.clip * 2.0**P <= INT32_MAX
        if t_ok and clip_ok:
            break
        if P <= MIN_AUTO_PRE_FRAC:
            raise QuantizationError(
                f"node '{name}': the gate arithmetic does not fit int32 even with {P} fraction bits "
                "(inputs or weights of an extreme range)"
            )
        P -= 1
    H = node.hidden_size
    if standard:
        lut_f = lut_g = lut_h = None
        qf = qg = qh = GATE_Q
    else:
        z_real = zb / 2.0**P  # proven bound of |z| per row, real units
        clip = node.clip if node.clip is not None else math.inf
        lim_f = min(clip, float(np.max(np.concatenate([z_real[: 2 * H], z_real[3 * H :]]))))
        lim_g = min(clip, float(np.max(z_real[2 * H : 3 * H])))
        lut_f = _gate_lut(f_act, P, lim_f, opts, name, "gate (f)")
        lut_g = _gate_lut(g_act, P, lim_g, opts, name, "cell input (g)")
        lut_h = _gate_lut(h_act, k, 2.0 ** (15 - k), opts, name, "cell output (h)")
        qf, qg, qh = lut_f.q, lut_g.q, lut_h.q

    m = max(k, qg)
    a_fc, a_ig, s_c = m - k, m - qg, qf + m - k
    hm, hs = multiplier(2.0 ** -(qf + qh) / sh, f"node '{name}' hidden requantization")
    if hidden_bound(hm, hs, zph) > INT32_MAX:
        raise QuantizationError(f"node '{name}': hidden requantization overflows int32 (scale too small)")

    h0 = np.clip(np.rint(np.asarray(dr.initial_h, np.float64) / sh) + zph, -128, 127).astype(np.int8)
    c0 = np.clip(np.rint(np.asarray(dr.initial_c, np.float64) * 2.0**k), -32768, INT16_MAX).astype(np.int16)
    qd = QLstmDirection(
        w=wq, r=rq, pre_x=px, pre_h=ph, mult_x=mx.astype(np.int32), mult_h=mh.astype(np.int32),
        bias=as_int32(bt, f"node '{name}': gate bias"), shift=s.astype(np.int32), peep=peep, peep_mult=pm,
        peep_shift=psh, cell_frac=k, lut_f=lut_f, lut_g=lut_g, lut_h=lut_h, a_fc=a_fc, a_ig=a_ig, s_c=s_c,
        h_mult=hm, h_shift=hs, initial_h=h0, initial_c=c0, reverse=dr.reverse,
    )
    return qd, P


def _hidden_range_bound(node: LstmNode) -> float:
    """sup |h| = sup |f_act| * sup |h_act| over all directions (h = o * h_act(c))."""
    from ..ir.reference import apply_activation

    probe = np.concatenate([np.linspace(-64.0, 64.0, 1 << 14), [-1e6, 1e6]])
    b = 0.0
    for d in node.directions:
        f_act, _, h_act = d.activations
        b = max(b, float(np.max(np.abs(apply_activation(f_act, probe)))) *
                float(np.max(np.abs(apply_activation(h_act, probe)))))
    return b


def quantize_lstm(node: LstmNode, k: int, calib: Calibration, src: tuple[float, int], opts: dict) -> QLstm:
    """Float LSTM node ``k`` reading an int8 input ``src = (scale, zero_point)`` -> integer layer
    (one ``P`` for all its directions: the smallest any of them needs)."""
    sx, zpx = src
    lo, hi = head_range(*calib.range(k, "output"), opts["range_margin"])
    bound = _hidden_range_bound(node)
    if math.isfinite(bound):
        lo, hi = max(lo, -bound), min(hi, bound)
    for dr in node.directions:
        if dr.initial_h.size:
            lo = min(lo, float(dr.initial_h.min()))
            hi = max(hi, float(dr.initial_h.max()))
    sh, zph = int8_params(lo, hi)
    p_req = opts["pre_frac"]
    while True:
        dirs = []
        p_used = p_req
        for d in range(node.num_directions):
            qd, p = _quantize_direction(node, d, k, calib, sx, zpx, sh, zph, dict(opts, pre_frac=p_req))
            dirs.append(qd)
            p_used = min(p_used, p)
        if p_used == p_req:
            break
        p_req = p_used  # one P per layer: redo every direction at the smallest one
    clip_q = None if node.clip is None else int(np.rint(node.clip * 2.0**p_req))
    table = opts["table"] if any(d.standard for d in dirs) else None
    return QLstm(
        name=node.name, src=node.src, input_size=node.input_size, hidden_size=node.hidden_size,
        directions=tuple(dirs), pre_frac=p_req, input_zero_point=zpx, table=table, table_frac=opts["table_frac"],
        clip_q=clip_q,
        input_forget=node.input_forget,
        sequence_lens=node.sequence_lens, sequence_lens_is_input=node.sequence_lens_is_input,
        scale=sh, zero_point=zph, kind=node.kind,
    )


def quantize_lstm_state(node: LstmStateNode, k: int, src_q: int, lq: QLstm, calib: Calibration,
                        margin: float) -> QLstmState:
    """Y_h (the layer's int8 h) or Y_c (the int16 cells requantized to int8, §10) of layer ``lq``
    (integer node ``src_q``)."""
    if node.which == "h":
        return QLstmState(node.name, src_q, "h", node.features, lq.scale, lq.zero_point)
    # |c| <= 2^15: the scale must keep 2^15 * 2^-k / s (plus rounding, zp) within int32
    s_min = max(2.0 ** (15 - d.cell_frac) for d in lq.directions) / 2.0**30
    s, zp = int8_params_min_scale(*head_range(*calib.range(k, "output"), margin), s_min)
    pairs = [multiplier(2.0**-d.cell_frac / s, f"node '{node.name}'") for d in lq.directions]
    if state_c_bound([p[0] for p in pairs], [p[1] for p in pairs], zp) > INT32_MAX:
        raise QuantizationError(f"node '{node.name}': cell requantization overflows int32")
    return QLstmState(node.name, src_q, "c", node.features, s, zp, tuple(p[0] for p in pairs),
                      tuple(p[1] for p in pairs))


__all__ = ["DEFAULT_PRE_FRAC", "MAX_CELL_FRAC", "MIN_AUTO_PRE_FRAC", "MIN_PRE_FRAC", "S_MIN", "cell_frac",
           "gate_shifts", "matrix_bits", "pre_shift", "quantize_lstm", "quantize_lstm_state"]
