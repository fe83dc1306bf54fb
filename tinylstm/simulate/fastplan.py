"""When the simulator's fast path applies to an LSTM direction, and what it precomputes.

:func:`plan_direction` proves, once per direction and from the model's own integers, the two
conditions of :mod:`.fast` (its docstring states them): no stored value can overflow (the §11
bounds of :mod:`tinylstm.qmodel.bounds`, with the tables' actual maxima where they are
tighter) and float64 yields the exact integers. It returns the derived arrays the loop of
:func:`.fast.run_direction` reads (a :class:`FastDirection`), or None: then the checked path runs.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import INT16_MAX, INT16_MIN, INT32_MAX, Lut, lut_eval
from ..qmodel.bounds import acc_bound, hidden_bound, peephole_bound, pre_activation_bound, requant_bound

#: Adding this to a float64 ``|y| < 2^51`` rounds it to an integer, half to even.
MAGIC = 1.5 * 2.0**52
MAGIC_BITS = int(np.array(MAGIC).view(np.int64))
_U = 2.0**-53
#: Largest memo half-width (inputs) for a gate table: 2^23 + 1 int32 entries.
MEMO_LIMIT = 1 << 22


def real_factor(mult: int, shift: int) -> float:
    """``mult * 2^-shift`` as a float64: exact (``mult < 2^31``, ``shift <= 62``)."""
    return float(mult) * 2.0 ** (-int(shift))


def _tol(k: int, bound: float) -> float:
    return 4.0 * (k + 2) * _U * (bound + 1.0)


# ---------------------------------------------------------------------------------------
# memos of lut_eval
# ---------------------------------------------------------------------------------------
_memos: dict[tuple, np.ndarray] = {}


def constant_beyond(table: Lut) -> int:
    """The input magnitude beyond which ``lut_eval`` is constant: ``n << shift`` for a half
    table, ``n/2 << shift`` for a full one."""
    return (table.n if table.sym else table.n // 2) << table.shift


def lut_memo(table: Lut, clamp: int | None = None) -> tuple[int, np.ndarray] | None:
    """``(L, M)`` with ``M[x + L] == lut_eval(sat(x, -L, L))`` for every int ``x`` (int32).

    ``L`` is where the table becomes constant (:func:`constant_beyond`), lowered to ``clamp``
    (the LSTM ``clip``) when that is smaller: then the gather also applies
    ``sat(z, -clip, clip)``. ``None`` when ``L`` exceeds :data:`MEMO_LIMIT`.
    """
    lim = constant_beyond(table)
    if clamp is not None:
        lim = min(lim, int(clamp))
    if lim > MEMO_LIMIT:
        return None
    key = (table.table.tobytes(), table.sym, table.shift, table.interp, lim)
    m = _memos.get(key)
    if m is None:
        v = lut_eval(np.arange(-lim, lim + 1, dtype=np.int64), table)
        if v.size and (int(v.min()) < -INT32_MAX - 1 or int(v.max()) > INT32_MAX):
            return None  # the reference path reports it
        if len(_memos) > 8:
            _memos.clear()
        m = _memos[key] = v.astype(np.int32)
    return lim, m


def cell_memo(table: Lut) -> np.ndarray | None:
    """``M[c + 32768] == lut_eval(c)`` for every int16 ``c`` (int32)."""
    key = (table.table.tobytes(), table.sym, table.shift, table.interp, "int16")
    m = _memos.get(key)
    if m is None:
        v = lut_eval(np.arange(INT16_MIN, INT16_MAX + 1, dtype=np.int64), table)
        if int(v.min()) < -INT32_MAX - 1 or int(v.max()) > INT32_MAX:
            return None
        if len(_memos) > 8:
            _memos.clear()
        m = _memos[key] = v.astype(np.int32)
    return m


# ---------------------------------------------------------------------------------------
# the per-direction plan: derived arrays and the proof that the fast path is exact
# ---------------------------------------------------------------------------------------
#: Internal gate-major order: block b holds gate BLOCKS[b] of i, f, g, o, so that the three
#: gates of ``lut_f`` (i, f, o) are adjacent and every (rows, H) block is contiguous.
BLOCKS = (0, 1, 3, 2)


@dataclass(frozen=True, eq=False)
class FastDirection:
    """What the fast loop needs for one direction (H hidden, I input, G = 4H gate rows).

    Internal arrays are gate-major in :data:`BLOCKS` order. Gate values are carried scaled by
    powers of two so that the cell update needs no extra multiplication: ``i, f, o`` by
    ``sf = 2^(a_fc - s_c)``, ``g`` by ``sg = 2^(a_ig - a_fc)`` (exact: only exponents change)."""

    H: int
    zp_x: int  # zero point of the layer input (folded: x - zp_x)
    lo_h: float  # h - zp_h saturates to [lo_h, hi_h]
    hi_h: float
    orig: np.ndarray = field(repr=False)  # (4, H) int64  original gate row of (block, unit)
    wt: np.ndarray = field(repr=False)  # (I, G) float64  W^T, exact, original row order
    wtf: np.ndarray = field(repr=False)  # (4, I + 1, H) float64  W^T F_x (rounded); last row bias + L
    rt: np.ndarray = field(repr=False)  # (H, G) float64  R^T, exact, original row order
    rtf: np.ndarray = field(repr=False)  # (4, H, H) float64  R^T F_h (rounded)
    bias_l: np.ndarray = field(repr=False)  # (G,) int64  gate bias + memo offset L, original order
    lcol: np.ndarray = field(repr=False)  # (4, 1, H) int64  memo offset L per block
    mult_x: np.ndarray = field(repr=False)  # (G,) int64, original order (exact fallback)
    shift_x: np.ndarray = field(repr=False)
    mult_h: np.ndarray = field(repr=False)
    shift_h: np.ndarray = field(repr=False)
    thr_x: float  # |y - rint(y)| above this: recompute exactly
    thr_h: float
    memo_f: np.ndarray = field(repr=False)  # (2 L_f + 1,) float32  lut_f * sf  (i, f, o)
    memo_g: np.ndarray = field(repr=False)  # (2 L_g + 1,) float32  lut_g * sg
    memo_h: np.ndarray = field(repr=False)  # (65536,) float64  lut_h(c) F_o / sf at c + 32768 (rounded)
    memo_hi: np.ndarray = field(repr=False)  # (65536,) int32  lut_h(c) at c + 32768
    sf: float
    sg: float
    one_f: float  # 2^q_f * sf (input_forget: f = one - i)
    thr_o: float
    peep: np.ndarray | None = field(repr=False)  # (3, H) int64 pq (i, f, o), or None
    pf: np.ndarray | None = field(repr=False)  # (3, H) float64 pq F_p[g] (rounded)
    thr_p: float


def _zero_point(eff: np.ndarray, wsum: np.ndarray) -> int | None:
    """``zp`` with ``eff == -zp * wsum`` (every row), or None if there is none."""
    nz = np.nonzero(wsum)[0]
    if nz.size == 0:
        return 0 if not eff.any() else None
    zp = -int(eff[nz[0]]) // int(wsum[nz[0]])
    return zp if np.array_equal(eff, -zp * wsum) else None


def plan_direction(layer, d) -> FastDirection | None:
    """The fast-path plan of direction ``d`` of ``layer`` (QLstm), or None when one of the
    conditions in the module docstring cannot be proven (then the checked path runs)."""
    H = layer.hidden_size
    G = 4 * H
    w = d.w.astype(np.int64)
    r = d.r.astype(np.int64)
    if w.ndim != 2 or w.shape[0] != G or r.shape != (G, H):
        return None
    zp_x = _zero_point(d.effb_x.astype(np.int64), w.sum(axis=1))
    zp_h = int(layer.zero_point)
    if zp_x is None or not np.array_equal(d.effb_h.astype(np.int64), -zp_h * r.sum(axis=1)):
        return None
    if not (-128 <= zp_x <= 127 and -128 <= zp_h <= 127):
        return None
    # the overflow proof (§11): accumulators, requantized terms and pre-activations fit int32
    a_x = acc_bound(w, zp_x)
    a_h = acc_bound(r, zp_h)
    if max(int(a_x.max()), int(a_h.max())) > INT32_MAX:  # the accumulators (int32 in C)
        return None
    rx = requant_bound(a_x, d.mult_x, d.shift_x)
    rh = requant_bound(a_h, d.mult_h, d.shift_h)
    zb = pre_activation_bound(w, r, zp_x, zp_h, d.mult_x, d.shift_x, d.mult_h, d.shift_h, d.bias, d.peep,
                              d.peep_mult, d.peep_shift)
    if zb.max() > INT32_MAX:
        return None
    mx, sx = [int(v) for v in d.mult_x], [int(v) for v in d.shift_x]
    mh, sh = [int(v) for v in d.mult_h], [int(v) for v in d.shift_h]
    bias = [int(v) for v in d.bias]
    # peepholes: requant(pq * c) over every int16 c
    peep = pf = None
    thr_p = 0.5
    if d.peep is not None:
        peep = d.peep.astype(np.int64)
        pm, ps = [int(v) for v in d.peep_mult], [int(v) for v in d.peep_shift]
        pf = peep * np.array([real_factor(pm[g], ps[g]) for g in range(3)])[:, None]
        thr_p = 0.5 - _tol(1, float(peephole_bound(d.peep, d.peep_mult, d.peep_shift).max()))
    # tables
    mf = lut_memo(d.lut_f, layer.clip_q)
    mg = lut_memo(d.lut_g, layer.clip_q)
    mhc = cell_memo(d.lut_h)
    if mf is None or mg is None or mhc is None:
        return None
    (lf, memo_f), (lg, memo_g) = mf, mg
    big_f = int(np.abs(memo_f).max())
    big_g = int(np.abs(memo_g).max())
    big_h = int(np.abs(mhc).max())
    one_q = 1 << d.lut_f.q
    if layer.input_forget:
        big_f = max(big_f, abs(one_q - int(memo_f.min())), abs(one_q - int(memo_f.max())))
    if max(big_f, big_g) > 2**24:  # table values exact in float32
        return None
    # cell: (f c << a_fc) + (i g << a_ig) exact in float64 (and every term below 2^53)
    a_lo = min(d.a_fc, d.a_ig)
    if (big_f * 32768 << d.a_fc) + (big_f * big_g << d.a_ig) > (1 << (53 + a_lo)) or d.s_c > 62:
        return None
    # hidden: zp_h + requant(o a) (int32), o a below the tables' maxima
    ro = hidden_bound(int(d.h_mult), int(d.h_shift), zp_h, big_f * big_h)
    if ro > INT32_MAX or big_f * big_h > 2**52:
        return None
    fx = np.array([real_factor(m, s) for m, s in zip(mx, sx, strict=True)])
    fh = np.array([real_factor(m, s) for m, s in zip(mh, sh, strict=True)])
    lrow = np.full(G, lf, np.int64)
    lrow[2 * H : 3 * H] = lg
    bias_l = np.array(bias, dtype=np.int64) + lrow
    # the input matmul also adds bias + L (through a constant-1 input): its terms are bounded
    # by the requant bound plus |bias| + L; MAGIC needs |z| + L < 2^51
    thr_x = 0.5 - _tol(w.shape[1] + 1, float((rx + np.abs(d.bias.astype(np.float64))).max()) + lf + lg)
    thr_h = 0.5 - _tol(H, float(rh.max()))
    thr_o = 0.5 - _tol(1, ro)
    if min(thr_x, thr_h, thr_o, thr_p) < 0.25 or float(zb.max()) + lf + lg >= 2**50:
        return None
    orig = np.array([[g * H + j for j in range(H)] for g in BLOCKS], dtype=np.int64)  # (4, H)
    wtf = np.concatenate([(w.T * fx[None, :])[None], bias_l[None, None, :].astype(np.float64)], axis=1)
    sf = 2.0 ** (d.a_fc - d.s_c)
    sg = 2.0 ** (d.a_ig - d.a_fc)
    return FastDirection(
        H=H,
        zp_x=zp_x,
        lo_h=float(-128 - zp_h),
        hi_h=float(127 - zp_h),
        orig=orig,
        wt=np.ascontiguousarray(w.T, dtype=np.float64),
        wtf=np.ascontiguousarray(wtf[0][:, orig].transpose(1, 0, 2)),
        rt=np.ascontiguousarray(r.T, dtype=np.float64),
        rtf=np.ascontiguousarray((r.T * fh[None, :])[:, orig].transpose(1, 0, 2)),
        bias_l=bias_l,
        lcol=lrow[orig][:, None, :],
        mult_x=np.array(mx, np.int64),
        shift_x=np.array(sx, np.int64),
        mult_h=np.array(mh, np.int64),
        shift_h=np.array(sh, np.int64),
        thr_x=thr_x,
        thr_h=thr_h,
        memo_f=(memo_f * sf).astype(np.float32),
        memo_g=(memo_g * sg).astype(np.float32),
        memo_h=mhc * (real_factor(int(d.h_mult), int(d.h_shift)) / sf),
        memo_hi=mhc,
        sf=sf,
        sg=sg,
        one_f=one_q * sf,
        thr_o=thr_o,
        peep=peep,
        pf=pf,
        thr_p=thr_p,
    )


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plans(layer) -> tuple[FastDirection | None, ...]:
    """Plans of every direction of ``layer``, cached per layer object (the model's arrays are
    treated as immutable, as the C side treats its const tables)."""
    p = _plans.get(layer)
    if p is None:
        p = _plans[layer] = tuple(plan_direction(layer, d) for d in layer.directions)
    return p
