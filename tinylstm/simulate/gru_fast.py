"""Fast path of the integer GRU (docs/quantization.md §16): the integers of ``gru_checked.gru_step``
with fewer numpy passes and no per-value checks, bit for bit.

:func:`plan_gru` proves once per direction, from the model's integers, the two conditions of
:mod:`.fast` (the LSTM's fast path): no stored value can leave its C type for any input (the §16
bounds of :mod:`tinylstm.qmodel.bounds`, with the tables' actual maxima), and every float64 value
below is an exact integer times a power of two, with numerators below 2^53:

- the multipliers are folded into the weights, ``W^T 2^pre_x mult_x 2^-16`` and
  ``R^T mult_h 2^-16``: a matmul gives ``acc m 2^-16`` exactly (numerators ``A m < 2^46``), and
  ``mul16 = floor`` of it;
- ``z = (tx + mul16(acc_h, m_h)) >> s = floor((tx + acc_h m_h 2^-16) 2^-s)`` for an integer ``tx``
  (a floor of a floor drops the inner one);
- the reset products ``shift_half_up(r u, 15)`` and ``shift_half_up(r h, 15 + q)`` are floors of
  ``(r u + 2^14) 2^-15`` with ``|r u| < 2^46``.

The narrowed state and the int8 output are gathers from memos over every int16 state; gate values
are gathers from the memos of :func:`.fastplan.gate_memo` (whose index clamp applies ``clip``);
the update runs in int64 as in the checked kernel.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import INT16_MAX, INT16_MIN, INT32_MAX, requant, sat8, shift_half_up
from ..qmodel.bounds import (
    cell_sum_bound,
    gru_gate_sum_bound,
    pre_activation_bound,
    state_acc_bound,
    state_c_bound,
    widened_acc_bound,
)
from ..qmodel.nodes import MAX_GATE_SHIFT, MAX_PRE, MAX_STATE_SHIFT, MIN_STATE_SHIFT, S_MIN
from .fastplan import EXACT, gate_memo

#: Elements of the input-side block computed at once (a few time steps).
CHUNK_ELEMENTS = 1 << 16
_STATES = np.arange(INT16_MIN, INT16_MAX + 1, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class FastGru:
    """What the fast loop needs for one GRU direction (H hidden, I input), gate-major: block ``b`` of
    each array is gate z, r, h (the per-gate matmuls are small, like the LSTM's). Float arrays hold
    integers scaled by powers of two only."""

    H: int
    wx: np.ndarray = field(repr=False)  # (3, I, H) float64  W^T 2^pre_x mult_x 2^-16 (exact)
    bias: np.ndarray = field(repr=False)  # (3, 1, H) float64  B
    rr: np.ndarray = field(repr=False)  # (3, H, H) float64  R^T mult_h 2^-16 (exact)
    inv_s: np.ndarray = field(repr=False)  # (3, 1, H) float64  2^-s
    rbias: np.ndarray = field(repr=False)  # (H,) float64  the candidate's recurrent bias (linear_before_reset)
    lim: tuple[int, int]  # memo half-widths L_f, L_g
    memo_f: np.ndarray = field(repr=False)  # (2 L_f + 1,) z, r gate at z + L_f
    memo_g: np.ndarray = field(repr=False)  # (2 L_g + 1,) candidate at z + L_g
    memo_v: np.ndarray = field(repr=False)  # (65536,) float64  the narrowed state at h + 32768
    memo_y: np.ndarray = field(repr=False)  # (65536,) int8  the int8 output at h + 32768
    one: int  # 2^q_f


def _blocks(a: np.ndarray, H: int) -> np.ndarray:
    """(K, 3H) -> (3, K, H) contiguous."""
    return np.ascontiguousarray(a.reshape(a.shape[0], 3, H).transpose(1, 0, 2))


def plan_gru(layer, d) -> FastGru | None:  # noqa: C901 - one check per stored value
    """The fast-path plan of direction ``d`` of ``layer`` (QGru), or None when a condition of this
    module cannot be proven (then the checked kernels run)."""
    H = layer.hidden_size
    G = 3 * H
    zp_x, zp_y, q = int(layer.input_zero_point), int(layer.zero_point), int(d.state_shift)
    w, r = d.w.astype(np.int64), d.r.astype(np.int64)
    mx, mh, bias, s, rb = (np.asarray(v, np.int64) for v in (d.mult_x, d.mult_h, d.bias, d.shift, d.rbias))
    if w.ndim != 2 or w.shape[0] != G or r.shape != (G, H) or any(v.shape != (G,) for v in (mx, mh, bias, s)):
        return None
    if rb.shape != (H,) or not (-128 <= zp_x <= 127 and -128 <= zp_y <= 127 and 0 <= d.pre_x <= MAX_PRE):
        return None
    if not MIN_STATE_SHIFT <= q <= MAX_STATE_SHIFT or min(mx.min(), mh.min()) < 0 or max(mx.max(), mh.max()) >= 2**15:
        return None
    if s.min() < S_MIN or s.max() > MAX_GATE_SHIFT:
        return None
    # §16: accumulators, gate sums t and pre-activations z fit int32
    a_x, a_h = widened_acc_bound(w, d.pre_x), state_acc_bound(r, q)
    if max(int(a_x.max()), int(a_h.max())) > INT32_MAX:
        return None
    tb = gru_gate_sum_bound(w, r, d.pre_x, q, mx, mh, bias, rb)
    if int(tb.max()) > INT32_MAX or float(pre_activation_bound(tb, s, None, mx[:0], mx[:0]).max()) > INT32_MAX:
        return None
    mf, mg = gate_memo(layer, d, "f"), gate_memo(layer, d, "g")
    if mf is None or mg is None:
        return None
    qf = d.gate_q[0]
    big_f, big_g = int(np.abs(mf[1].astype(np.int64)).max()), int(np.abs(mg[1].astype(np.int64)).max())
    one = 1 << qf
    big_1mz = max(abs(one - int(mf[1].min())), abs(one - int(mf[1].max())))
    # the reset products (|r| <= 2^15 keeps r h + half in int32 and the narrowed r h in int16), the
    # update sum (int64, its rounding shift) and the output requantization (int32)
    if big_f > 2**15 or min(d.a_h, d.a_n, d.s_u) < 0 or d.s_u > 62:
        return None
    if cell_sum_bound(big_f, big_1mz, big_g, d.a_h, d.a_n) >= 2**62:
        return None
    if not (0 <= d.y_mult < 2**31 and 0 <= d.y_shift <= 62) or state_c_bound([d.y_mult], [d.y_shift], zp_y) > INT32_MAX:
        return None
    # float64 exactness (module docstring)
    if int((a_x * mx).max()) >= EXACT or int((a_h * mh).max()) >= EXACT or int(tb.max()) >= 2**36:
        return None
    memo_v = shift_half_up(_STATES, q).astype(np.float64)
    memo_y = sat8(zp_y + requant(_STATES, d.y_mult, d.y_shift)).astype(np.int8)
    return FastGru(
        H=H, wx=_blocks(w.T * (mx * (1 << d.pre_x)) * 2.0**-16, H), bias=_blocks(bias[None].astype(np.float64), H),
        rr=_blocks(r.T * mh * 2.0**-16, H), inv_s=_blocks(np.exp2(-s.astype(np.float64))[None], H),
        rbias=rb.astype(np.float64), lim=(mf[0], mg[0]), memo_f=mf[1], memo_g=mg[1], memo_v=memo_v, memo_y=memo_y,
        one=one,
    )


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plans(layer) -> tuple[FastGru | None, ...]:
    """Plans of every direction of ``layer``, cached per layer object."""
    p = _plans.get(layer)
    if p is None:
        p = _plans[layer] = tuple(plan_gru(layer, d) for d in layer.directions)
    return p


@dataclass
class GruResult:
    """Outputs of one direction in the original row/time order."""

    y: np.ndarray | None  # (B, T, H) int8, or None when not asked for
    h: np.ndarray  # (B, H) int64 final int8 output (zp for rows of length 0)
    trace: tuple[np.ndarray, ...] | None  # pre, gates, state, h, valid (B, T, ...)


def run_gru_direction(layer, d, p: FastGru, x: np.ndarray, lens: np.ndarray, *, need_y: bool = True,  # noqa: C901
                      trace: bool = False) -> GruResult:
    """Run direction ``d`` of ``layer`` over x (B, T, I) (int8 values) with row lengths ``lens`` (B,)."""
    B, T, nin = x.shape
    H = p.H
    order = np.argsort(-lens, kind="stable")  # longest first: the rows running at a step are a prefix
    lens_s = lens[order]
    steps = int(lens_s[0]) if B else 0
    s_idx = np.arange(steps)
    n_at = (B - np.searchsorted(lens_s[::-1], s_idx, side="right")).tolist()
    t_of = np.maximum(lens_s[:, None] - 1 - s_idx[None, :], 0) if d.reverse else np.broadcast_to(s_idx, (B, steps))
    zp_x, zp_y = layer.input_zero_point, layer.zero_point
    clip_q = layer.clip_q
    h = np.broadcast_to(d.initial_h.astype(np.int64), (B, H)).copy()  # the int16 state, sorted rows
    yo = np.full((B, H), zp_y, np.int64)  # the last output of each sorted row
    y8 = np.full((B, T, H), zp_y, np.int8) if need_y else None
    if trace:
        tr = (np.zeros((B, T, 3 * H), np.int32), np.zeros((B, T, 3 * H), np.int32), np.zeros((B, T, H), np.int16),
              np.zeros((B, T, H), np.int8), np.zeros((B, T), bool))
    (lf, lg), memo_f, memo_g = p.lim, p.memo_f, p.memo_g
    half_r, sh_r = float(1 << (15 + d.state_shift) >> 1), 2.0 ** -(15 + d.state_shift)
    a_h, a_n, s_u = d.a_h, d.a_n, d.s_u
    chunk = max(1, CHUNK_ELEMENTS // max(1, 3 * H * B))
    tx_blk = np.zeros((3, 0, H))
    n0 = 0
    for st in range(steps):
        n = n_at[st]
        k = st % chunk
        if k == 0:  # input side B + mul16(acc_x, mult_x) of the next `chunk` steps, rows active now
            m = min(chunk, steps - st)
            n0 = n
            xs = x[order[:n, None], t_of[:n, st : st + m]]  # (n, m, I)
            xb = (xs.transpose(1, 0, 2).astype(np.float64) - zp_x).reshape(m * n, nin)  # x may be int8
            tx_blk = np.floor(np.matmul(xb, p.wx)) + p.bias  # (3, m n0, H): step k is rows k n0 .. k n0 + n
        tx = tx_blk[:, k * n0 : k * n0 + n]
        hn = h[:n]
        v = p.memo_v[hn + 32768]
        # update and reset gates: z = floor((tx + acc_h m_h 2^-16) 2^-s)
        z_zr = np.floor((tx[:2] + np.matmul(v, p.rr[:2])) * p.inv_s[:2]).astype(np.int64)  # (2, n, H)
        g_zr = np.take(memo_f, z_zr + lf, mode="clip").astype(np.int64)  # the clamp applies clip
        gz, gr = g_zr[0], g_zr[1]
        if layer.linear_before_reset:  # t = tx + shift_half_up(r u, 15), u = rbias + mul16(acc_h, m_h)
            u = np.floor(np.matmul(v, p.rr[2:])[0]) + p.rbias
            rec = np.floor((gr * u + 16384.0) * 2.0**-15)
            z_h = np.floor((tx[2] + rec) * p.inv_s[2]).astype(np.int64)
        else:  # the matvec reads shift_half_up(r h, 15 + q)
            v_rh = np.floor((gr * hn + half_r) * sh_r)
            z_h = np.floor((tx[2] + np.matmul(v_rh, p.rr[2:])[0]) * p.inv_s[2]).astype(np.int64)
        gn = np.take(memo_g, z_h + lg, mode="clip").astype(np.int64)
        # update: sat16(round_shift((z h << a_h) + ((2^q_f - z) n << a_n), s_u)), half to even
        acc = (gz * hn << a_h) + ((p.one - gz) * gn << a_n)
        if s_u:
            acc = (acc + ((1 << (s_u - 1)) - 1) + ((acc >> s_u) & 1)) >> s_u
        h[:n] = hn = np.clip(acc, INT16_MIN, INT16_MAX)
        yo[:n] = yn = p.memo_y[hn + 32768]
        rows, times = order[:n], t_of[:n, st]
        if y8 is not None:
            y8[rows, times] = yn
        if trace:
            zc = np.concatenate([z_zr[0], z_zr[1], z_h], axis=1)
            tr[0][rows, times] = zc if clip_q is None else np.clip(zc, -clip_q, clip_q)
            tr[1][rows, times] = np.concatenate([gz, gr, gn], axis=1)
            tr[2][rows, times], tr[3][rows, times], tr[4][rows, times] = hn, yn, True
    h_fin = np.empty((B, H), np.int64)
    h_fin[order] = yo
    return GruResult(y8, h_fin, tr if trace else None)
