"""When the simulator's fast path applies to an LSTM direction, and what it precomputes (spec v2).

:func:`plan_direction` proves, once per direction and from the model's own integers, the two
conditions stated in :mod:`.fast`: no stored value can leave its C type for any input (the §11
bounds of :mod:`tinylstm.qmodel.bounds`, with the tables' actual maxima), and every float64
shortcut of the fast loop yields the exact integers. It returns what the loop of
:func:`.fast.run_direction` reads (a :class:`FastDirection`), or None: then the checked path runs
and reports an overflow where it happens.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import INT16_MAX, INT16_MIN, INT32_MAX, Lut, lut_eval, sigmoid_q15, tanh_q15
from ..qmodel.bounds import (
    WIDENED_MAX,
    cell_sum_bound,
    gate_sum_bound,
    hidden_bound,
    pre_activation_bound,
    widened_acc_bound,
)
from ..qmodel.nodes import MAX_GATE_SHIFT, MAX_PRE, S_MIN

#: Adding this to a float64 ``|y| < 2^51`` rounds it to an integer, half to even, and the bits of
#: the sum are ``MAGIC_BITS + rint(y)``.
MAGIC = 1.5 * 2.0**52
MAGIC_BITS = int(np.array(MAGIC).view(np.int64))
#: Largest memo half-width (inputs) of a gate table: 2^23 + 1 entries.
MEMO_LIMIT = 1 << 22
#: float64 holds every integer below this exactly.
EXACT = 2**53
#: Internal gate-major order: block b holds gate BLOCKS[b] of i, f, g, o, so that the three
#: sigmoid gates (i, f, o) are adjacent and every (rows, H) block is contiguous.
BLOCKS = (0, 1, 3, 2)


# ---------------------------------------------------------------------------------------
# memos: a gate function at every input up to where it is constant
# ---------------------------------------------------------------------------------------
#: Most bytes the memo cache keeps (a plan holds its own memos as long as its layer lives).
CACHE_BYTES = 1 << 27
_memos: dict[tuple, tuple[int, np.ndarray] | None] = {}


def _cached(key: tuple, build):
    """``build()`` (a ``(L, memo)`` pair or None), once per key; the cache is emptied when it
    would exceed :data:`CACHE_BYTES`."""
    if key not in _memos:
        hit = build()
        if sum(v[1].nbytes for v in _memos.values() if v is not None) + (hit[1].nbytes if hit else 0) > CACHE_BYTES:
            _memos.clear()
        _memos[key] = hit
    return _memos[key]


def _flat_from(t: np.ndarray) -> int:
    """Smallest ``j0`` with ``t[j0:]`` all equal (``t`` is not empty)."""
    diff = np.nonzero(t != t[-1])[0]
    return int(diff[-1]) + 1 if diff.size else 0


def constant_beyond(table: Lut) -> int:
    """An input magnitude beyond which ``lut_eval`` is constant on each side (read from the
    table's flat ends: both neighbours of every segment past it are the end value)."""
    t = np.asarray(table.table, np.int64)
    if table.sym:
        return _flat_from(t) << table.shift
    half = table.n // 2
    right = max(_flat_from(t) - half, 0)
    left = max(half - (table.n - _flat_from(t[::-1])), 0)
    return max(right, left) << table.shift


def standard_beyond(table: np.ndarray, shift: int, kind: str) -> int:
    """The same for ``sigmoid_q15`` (``kind`` "sig") or ``tanh_q15`` ("tanh") on the standard table
    ``D`` read with ``shift`` fraction bits below its grid: past the last segment with a
    non-zero end, ``V`` is 0 (tanh reads ``2 |z|``)."""
    u = _flat_from(np.asarray(table, np.int64))
    u = u << shift if shift >= 0 else -(-u >> -shift)  # smallest u whose segment is flat
    return u if kind == "sig" else (u + 1) // 2


def _memo(key: tuple, lim: int, fn) -> tuple[int, np.ndarray] | None:
    """``(L, M)`` with ``M[x + L] == fn(x)`` for ``x`` in [-L, L], ``L = lim``, as uint16 when the
    values fit (sigmoid), else int32, cached; None above MEMO_LIMIT or when a value leaves int32."""
    if lim > MEMO_LIMIT:
        return None

    def build() -> tuple[int, np.ndarray] | None:
        v = fn(np.arange(-lim, lim + 1, dtype=np.int64))
        lo, hi = int(v.min()), int(v.max())
        if lo < -INT32_MAX - 1 or hi > INT32_MAX:
            return None  # the checked path reports it
        return lim, v.astype(np.uint16 if lo >= 0 and hi <= 0xFFFF else np.int32)

    return _cached(key, build)


def gate_memo(layer, d, which: str) -> tuple[int, np.ndarray] | None:
    """The gate function of ``which`` ("f": i, f, o; "g": the cell input) of direction ``d`` at
    every pre-activation in [-L, L], ``L`` no larger than the layer's ``clip`` (the memo's index
    clamp then applies it)."""
    clamp = INT32_MAX if layer.clip_q is None else int(layer.clip_q)
    if d.standard:
        sh = layer.pre_frac - layer.table_frac
        kind = "sig" if which == "f" else "tanh"
        fn = sigmoid_q15 if which == "f" else tanh_q15
        lim = min(standard_beyond(layer.table, sh, kind), clamp)
        return _memo((kind, layer.table.tobytes(), sh, lim), lim, lambda x: fn(x, layer.table, sh))
    lut: Lut = d.lut_f if which == "f" else d.lut_g
    lim = min(constant_beyond(lut), clamp)
    return _memo(("lut", lut.table.tobytes(), lut.sym, lut.shift, lut.interp, lim), lim, lambda x: lut_eval(x, lut))


def cell_memo(layer, d) -> np.ndarray:
    """``h_act(c)`` at every int16 cell ``c`` (index ``c + 32768``), int64."""
    if d.standard:
        sh = d.cell_frac - layer.table_frac
        key = ("cell", layer.table.tobytes(), sh)
        fn = lambda c: tanh_q15(c, layer.table, sh)  # noqa: E731
    else:
        lut = d.lut_h
        key = ("cell", lut.table.tobytes(), lut.sym, lut.shift, lut.interp)
        fn = lambda c: lut_eval(c, lut)  # noqa: E731
    return _cached(key, lambda: (0, fn(np.arange(INT16_MIN, INT16_MAX + 1, dtype=np.int64)).astype(np.int64)))[1]


# ---------------------------------------------------------------------------------------
# the per-direction plan
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FastDirection:
    """What the fast loop needs for one direction (H hidden, I input; gate-major blocks in
    :data:`BLOCKS` order: i, f, o, g). Float arrays hold integers scaled by powers of two only."""

    H: int
    zp_x: int  # the layer input's zero point (the widening subtracts it)
    lo_h: int  # h - zp_h saturates to [lo_h, hi_h]
    hi_h: int
    #: (4, I + 1, H) float64  W^T 2^pre_x mult_x 2^-16 (exact); last row B - 2^(s-1) (times an input 1)
    wx: np.ndarray = field(repr=False)
    inv_s: np.ndarray = field(repr=False)  # (4, 1, H) float64  2^-s
    rh: np.ndarray = field(repr=False)  # (4, H, H) float64  R^T 2^pre_h mult_h 2^-(16+s) (exact)
    magic_l: np.ndarray = field(repr=False)  # (4, 1, 1) float64  MAGIC + L (memo offset) per block
    lim: tuple[int, int]  # memo half-widths L_f, L_g
    memo_f: np.ndarray = field(repr=False)  # (2 L_f + 1,) uint16/int32  i, f, o gate at z + L_f
    memo_g: np.ndarray = field(repr=False)  # (2 L_g + 1,) uint16/int32  g gate at z + L_g
    memo_h: np.ndarray = field(repr=False)  # (65536,) int32  h_act(c) at c + 32768
    cell_k: tuple[float, float]  # 2^(a_ig - a_fc), 2^(a_fc - s_c): (f c + i g k0) k1 is the cell sum 2^-s_c
    one_f: int  # 2^q_f (input_forget: f = one_f - i)
    h_mult: int
    h_half: int  # 2^(h_shift - 1) (0 for h_shift == 0)
    h_shift: int
    peep: np.ndarray | None = field(repr=False)  # (3, 1, H) int64 pq (i, f, o), or None
    peep_c: np.ndarray | None = field(repr=False)  # (3, 1, H) int64 32768 pq (the cell index is c + 32768)
    peep_q: np.ndarray | None = field(repr=False)  # (3, 3, 1, 1) int64 mult, 2^(shift - 1), shift per gate


def _blocks(v: np.ndarray, H: int) -> np.ndarray:
    """A per-row (4H,) vector as (4, 1, H) float64 blocks in :data:`BLOCKS` order."""
    return np.asarray(v, np.float64).reshape(4, 1, H)[list(BLOCKS)]


def plan_direction(layer, d) -> FastDirection | None:  # noqa: C901 - one check per stored value
    """The fast-path plan of direction ``d`` of ``layer`` (QLstm), or None when a condition of
    :mod:`.fast` cannot be proven (then the checked path runs)."""
    H = layer.hidden_size
    G = 4 * H
    zp_x, zp_h = int(layer.input_zero_point), int(layer.zero_point)
    w, r = d.w.astype(np.int64), d.r.astype(np.int64)
    vecs = [np.asarray(v, np.int64) for v in (d.mult_x, d.mult_h, d.bias, d.shift)]
    mx, mh, bias, s = vecs
    if w.ndim != 2 or w.shape[0] != G or r.shape != (G, H) or any(v.shape != (G,) for v in vecs):
        return None
    # widened inputs (int16) and the ranges of the integers the bounds read
    if not (-128 <= zp_x <= 127 and -128 <= zp_h <= 127 and 0 <= d.pre_x <= MAX_PRE and 0 <= d.pre_h <= MAX_PRE):
        return None
    if WIDENED_MAX << MAX_PRE > INT16_MAX or mx.min() < 0 or mh.min() < 0 or max(mx.max(), mh.max()) >= 2**15:
        return None
    if s.min() < S_MIN or s.max() > MAX_GATE_SHIFT:
        return None
    # §11.1 accumulators, §11.3 gate sums t and pre-activations z (with peepholes): int32
    a_x, a_h = widened_acc_bound(w, d.pre_x), widened_acc_bound(r, d.pre_h)
    if max(int(a_x.max()), int(a_h.max())) > INT32_MAX:
        return None
    tb = gate_sum_bound(w, r, d.pre_x, d.pre_h, mx, mh, bias)
    zb = pre_activation_bound(tb, s, d.peep, d.peep_mult, d.peep_shift)
    if int(tb.max()) > INT32_MAX or float(zb.max()) > INT32_MAX:
        return None
    # gate values (int32) from the memos; the cell sum (int64, §11.5); o * h_act(c) (int32) and the
    # hidden requantization (§11.6) from the tables' actual maxima
    mf, mg = gate_memo(layer, d, "f"), gate_memo(layer, d, "g")
    if mf is None or mg is None:
        return None
    memo_h = cell_memo(layer, d)
    qf = d.gate_q[0]
    big_i = int(np.abs(mf[1].astype(np.int64)).max())
    big_f = max(big_i, abs((1 << qf) - int(mf[1].min())), abs((1 << qf) - int(mf[1].max()))) \
        if layer.input_forget else big_i
    big_g, big_h = int(np.abs(mg[1].astype(np.int64)).max()), int(np.abs(memo_h).max())
    hm, hs = int(d.h_mult), int(d.h_shift)
    if max(big_f, big_h) > INT32_MAX or not (0 <= hm < 2**31 and 0 <= hs <= 62):
        return None
    cs = cell_sum_bound(big_f, big_i, big_g, d.a_fc, d.a_ig)
    oa = big_i * big_h
    if min(d.a_fc, d.a_ig, d.s_c) < 0 or d.s_c > 62:
        return None
    if cs >= 2**62 or oa > INT32_MAX or hidden_bound(hm, hs, zp_h, oa) > INT32_MAX:
        return None
    # float64 exactness (module docstring of .fast): the matmul products, the gate sums, the cell
    # sum and its rounding
    if int((a_x * mx).max()) >= EXACT or int((a_h * mh).max()) >= EXACT or int(tb.max()) >= 2**35:
        return None
    if cs >= EXACT << min(d.a_fc, d.a_ig) or cs >> d.s_c >= 2**50:
        return None
    peep = peep_c = peep_q = None
    if d.peep is not None:
        pm, ps = np.asarray(d.peep_mult, np.int64), np.asarray(d.peep_shift, np.int64)
        if pm.shape != (3,) or pm.min() < 0 or pm.max() >= 2**31 or ps.min() < 0 or ps.max() > 62:
            return None
        peep = d.peep.astype(np.int64)[:, None, :]
        peep_c = peep * 32768
        peep_q = np.stack([pm, (np.int64(1) << ps) >> 1, ps], axis=1)[:, :, None, None]
    scale = np.exp2(-(16.0 + s))  # 2^-(16 + s): mul16 and the final shift folded into R
    blk = list(BLOCKS)
    wx = np.concatenate([w.T * (mx * (1 << d.pre_x)) * 2.0**-16, (bias - (np.int64(1) << (s - 1)))[None]])
    wx = wx.reshape(-1, 4, H)[:, blk].transpose(1, 0, 2)
    rh = (r.T * (mh * (1 << d.pre_h)) * scale).reshape(H, 4, H)[:, blk].transpose(1, 0, 2)
    (lf, memo_f), (lg, memo_g) = mf, mg
    return FastDirection(
        H=H, zp_x=zp_x, lo_h=-128 - zp_h, hi_h=127 - zp_h,
        wx=np.ascontiguousarray(wx), inv_s=_blocks(np.exp2(-s.astype(np.float64)), H), rh=np.ascontiguousarray(rh),
        magic_l=MAGIC + np.array([lf, lf, lf, lg], np.float64)[:, None, None],
        lim=(lf, lg), memo_f=memo_f, memo_g=memo_g, memo_h=memo_h.astype(np.int32),
        cell_k=(2.0 ** (d.a_ig - d.a_fc), 2.0 ** (d.a_fc - d.s_c)), one_f=1 << qf,
        h_mult=hm, h_half=(1 << hs) >> 1, h_shift=hs, peep=peep, peep_c=peep_c, peep_q=peep_q,
    )


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plans(layer) -> tuple[FastDirection | None, ...]:
    """Plans of every direction of ``layer``, cached per layer object (the model's arrays are
    treated as immutable, as the C side treats its const tables)."""
    p = _plans.get(layer)
    if p is None:
        p = _plans[layer] = tuple(plan_direction(layer, d) for d in layer.directions)
    return p
