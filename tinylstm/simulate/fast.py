"""Fast path of the bit-exact simulator: the integers of ``simulate.lstm_step``, far fewer passes.

``simulate.run_lstm`` runs each LSTM direction here when :func:`plan_direction` proves two things
once per layer, and through the checked reference kernels otherwise (or when
``simulate.CHECKED`` is set). The results are the same integers, bit for bit.

1. **No stored value can overflow.** The bounds of docs/quantization.md §11 are recomputed here
   from the model's own integers, over every int8 input and hidden state and every int16 cell:
   every value the reference path range-checks provably fits its C type, so the checks are
   dropped. A model that breaks a bound runs checked, which raises ``SimulatorOverflow`` where a
   value really overflows.
2. **Float64 arithmetic yields the exact integers.**

   - Matrix products run in float64 BLAS with the zero point folded into the input:
     ``sum_k W[r,k] (x[k] - zp) == eff_bias[r] + sum_k W[r,k] x[k]`` when
     ``eff_bias == -zp sum_k W`` (checked).
   - ``requant(acc, mult, shift)`` is ``rint(acc F)``, ``F = mult 2^-shift``, half to even. The
     weights are stored pre-scaled by ``F``, so one product gives ``y``, an approximation of
     ``acc F`` within ``tol`` (bound below). Where ``|y - rint(y)| <= 0.5 - tol``, the exact value
     lies strictly within 0.5 of ``rint(y)`` and rounds to it. Every other element is recomputed
     in int64 by the reference ``requant``: exact ties, whose ``y`` may be off, and near-ties.
     That is about ``2 tol`` of the elements (``tol`` is 1e-9 to 1e-7 on the benchmark models,
     where 0 or 1 element in 10^7 takes that path). Integer biases join the product through a
     constant-1 input: ``rint(v + b) == rint(v) + b``, except at ties, which take the exact path.
   - ``t = y + 1.5 * 2^52`` rounds ``|y| < 2^51`` to an integer (IEEE default rounding: ties to
     even), and the bits of ``t`` are ``bits(1.5 * 2^52) + rint(y)``: an int64 table index with
     one integer subtraction.
   - The cell update ``round_shift((f c << a_fc) + (i g << a_ig), s_c)`` is exact in float64 when
     that sum stays below 2^53 times its lowest possible set bit (checked). Gate values are
     carried scaled by powers of two (exact), so that update needs no extra multiplication.
   - Table lookups gather from a memo of ``lut_eval`` at every input up to where the table is
     constant. The gather's index clamp also applies the LSTM ``clip``.

Error bound of a scaled dot product ``y = fl(sum_k a_k fl(B_k F))`` with integers ``a_k, B_k``,
``K`` terms, any summation order, with or without FMA (Higham, *Accuracy and Stability of
Numerical Algorithms*, §3.1): ``|y - F sum_k a_k B_k| <= gamma_(K+1) sum_k |a_k B_k| F`` with
``gamma_n = n u / (1 - n u)``, ``u = 2^-53``. ``tol`` is ``4 (K + 2) u`` times the proven bound
on ``sum_k |a_k B_k| F``, a margin of more than 2 over the bound. (The bound holds for the
classical O(n^3) GEMM of OpenBLAS, MKL and numpy's own loops, not for Strassen-type products.)

Layout: rows are processed longest first, so the rows still running at a step are a prefix of
the batch. Gate arrays are gate-major ``(4, rows, H)`` in the order i, f, o, g: the three gates
of ``lut_f`` are adjacent and every block is contiguous.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import INT16_MAX, INT16_MIN, INT32_MAX, Lut, lut_eval, requant

#: Adding this to a float64 ``|y| < 2^51`` rounds it to an integer, half to even.
MAGIC = 1.5 * 2.0**52
MAGIC_BITS = int(np.array(MAGIC).view(np.int64))
_U = 2.0**-53
#: Largest memo half-width (inputs) for a gate table: 2^23 + 1 int32 entries.
MEMO_LIMIT = 1 << 22
#: Elements of the input-side block computed at once (a few time steps).
CHUNK_ELEMENTS = 1 << 15


def real_factor(mult: int, shift: int) -> float:
    """``mult * 2^-shift`` as a float64: exact (``mult < 2^31``, ``shift <= 62``)."""
    return float(mult) * 2.0 ** (-int(shift))


def _requant_bound(a: int, mult: int, shift: int) -> int:
    """Largest ``|requant(acc, mult, shift)|`` over ``|acc| <= a``."""
    return ((a * mult) >> shift) + 1


def _tol(k: int, bound: float) -> float:
    return 4.0 * (k + 2) * _U * (bound + 1.0)


# ---------------------------------------------------------------------------------------
# memos of lut_eval
# ---------------------------------------------------------------------------------------
_memos: dict[tuple, np.ndarray] = {}


def lut_memo(table: Lut, clamp: int | None = None) -> tuple[int, np.ndarray] | None:
    """``(L, M)`` with ``M[x + L] == lut_eval(sat(x, -L, L))`` for every int ``x`` (int32).

    ``L`` is where the table becomes constant (``n << shift`` for a half table, ``n/2 << shift``
    for a full one), lowered to ``clamp`` (the LSTM ``clip``) when that is smaller: then the
    gather also applies ``sat(z, -clip, clip)``. ``None`` when ``L`` exceeds :data:`MEMO_LIMIT`.
    """
    lim = (table.n if table.sym else table.n // 2) << table.shift
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
class Plan:
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


def plan_direction(layer, d) -> Plan | None:
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
    xmax = max(128 + zp_x, 127 - zp_x)  # max |x - zp| over int8 x
    hmax = max(128 + zp_h, 127 - zp_h)
    a_x = [int(v) * xmax for v in np.abs(w).sum(axis=1)]
    a_h = [int(v) * hmax for v in np.abs(r).sum(axis=1)]
    mx, sx = [int(v) for v in d.mult_x], [int(v) for v in d.shift_x]
    mh, sh = [int(v) for v in d.mult_h], [int(v) for v in d.shift_h]
    bias = [int(v) for v in d.bias]
    if max(a_x + a_h) > INT32_MAX:  # the accumulators (int32 in C)
        return None
    rx = [_requant_bound(a, m, s) for a, m, s in zip(a_x, mx, sx, strict=True)]
    rh = [_requant_bound(a, m, s) for a, m, s in zip(a_h, mh, sh, strict=True)]
    # peepholes: requant(pq * c) over every int16 c
    peep = pf = None
    pk = [0] * G
    thr_p = 0.5
    if d.peep is not None:
        peep = d.peep.astype(np.int64)
        pm, ps = [int(v) for v in d.peep_mult], [int(v) for v in d.peep_shift]
        pf = peep * np.array([real_factor(pm[g], ps[g]) for g in range(3)])[:, None]
        for g, rows in enumerate((range(0, H), range(H, 2 * H), range(3 * H, G))):
            b = _requant_bound(int(np.abs(peep[g]).max(initial=0)) * 32768, pm[g], ps[g])
            if b > INT32_MAX:
                return None
            thr_p = min(thr_p, 0.5 - _tol(1, b))
            for row in rows:
                pk[row] = b
    # z = requant_x + bias + requant_h (+ peephole): every partial sum fits int32
    zb = [x + h + abs(b) + p for x, h, b, p in zip(rx, rh, bias, pk, strict=True)]
    if max(zb) > INT32_MAX:
        return None
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
    # hidden: requant(o a) and zp_h + result (int32)
    ro = _requant_bound(big_f * big_h, int(d.h_mult), int(d.h_shift))
    if ro + abs(zp_h) > INT32_MAX or big_f * big_h > 2**52:
        return None
    fx = np.array([real_factor(m, s) for m, s in zip(mx, sx, strict=True)])
    fh = np.array([real_factor(m, s) for m, s in zip(mh, sh, strict=True)])
    lrow = np.full(G, lf, np.int64)
    lrow[2 * H : 3 * H] = lg
    bias_l = np.array(bias, dtype=np.int64) + lrow
    # the input matmul also adds bias + L (through a constant-1 input): its terms are bounded
    # by the requant bound plus |bias| + L; MAGIC needs |z| + L < 2^51
    thr_x = 0.5 - _tol(w.shape[1] + 1, max(x + abs(b) + lf + lg for x, b in zip(rx, bias, strict=True)))
    thr_h = 0.5 - _tol(H, max(rh))
    thr_o = 0.5 - _tol(1, ro)
    if min(thr_x, thr_h, thr_o, thr_p) < 0.25 or max(zb) + lf + lg >= 2**50:
        return None
    orig = np.array([[g * H + j for j in range(H)] for g in BLOCKS], dtype=np.int64)  # (4, H)
    wtf = np.concatenate([(w.T * fx[None, :])[None], bias_l[None, None, :].astype(np.float64)], axis=1)
    sf = 2.0 ** (d.a_fc - d.s_c)
    sg = 2.0 ** (d.a_ig - d.a_fc)
    return Plan(
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


def plans(layer) -> tuple[Plan | None, ...]:
    """Plans of every direction of ``layer``, cached per layer object (the model's arrays are
    treated as immutable, as the C side treats its const tables)."""
    p = _plans.get(layer)
    if p is None:
        p = _plans[layer] = tuple(plan_direction(layer, d) for d in layer.directions)
    return p


# ---------------------------------------------------------------------------------------
# rounding with the exact fallback
# ---------------------------------------------------------------------------------------
def _rint(y: np.ndarray, r: np.ndarray, thr: float, exact, *args) -> None:
    """``r = rint(v)`` for the values ``v`` that float64 ``y`` approximates (``y`` is consumed).

    ``rint(y)`` is right wherever ``|y - rint(y)| <= thr`` (module docstring); elsewhere (ties,
    near-ties) ``r`` gets ``exact(*args, *index)``, the reference integer computation."""
    np.rint(y, out=r)
    np.subtract(y, r, out=y)
    if y.max() > thr or y.min() < -thr:
        pos = np.nonzero(np.abs(y) > thr)
        r[pos] = exact(*args, *pos).astype(np.float64)


# ---------------------------------------------------------------------------------------
# one direction
# ---------------------------------------------------------------------------------------
@dataclass
class DirResult:
    """Outputs of one direction in the original row/time order."""

    y: np.ndarray | None  # (B, T, H) int8 h, or None when not asked for
    h: np.ndarray  # (B, H) int64 final h
    c: np.ndarray  # (B, H) int64 final c
    trace: tuple[np.ndarray, ...] | None  # pre, gates, c, h, valid (B, T, ...)


def run_direction(
    layer,
    d,
    p: Plan,
    x: np.ndarray,
    lens: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    need_y: bool = True,
    trace: bool = False,
) -> DirResult:
    """Run direction ``d`` over x (B, T, I) (int8 values) with row lengths ``lens`` (B,).

    h0 (B, H) int8, c0 (B, H) int16: initial states. Rows are processed longest first so
    that the rows still running at a step are a prefix of the batch."""
    B, T, nin = x.shape
    H = p.H
    if bool((lens == T).all()):
        order = np.arange(B)
        lens_s = lens
    else:
        order = np.argsort(-lens, kind="stable")
        lens_s = lens[order]
    steps = int(lens_s[0]) if B else 0
    s_idx = np.arange(steps)
    n_at = (B - np.searchsorted(lens_s[::-1], s_idx, side="right")).tolist()  # rows with length > s
    # time index of each (sorted row, step): reverse starts at each row's last valid step
    if d.reverse:
        t_of = np.maximum(lens_s[:, None] - 1 - s_idx[None, :], 0)  # (B, steps)
    else:
        t_of = np.broadcast_to(s_idx[None, :], (B, steps))
    gather = d.reverse or lens_s is not lens
    # state, sorted order: h - zp_h and c, float64
    hc = (h0[order] - layer.zero_point).astype(np.float64)
    c = c0[order].astype(np.float64)
    # work buffers (flat, so that any row prefix is a contiguous reshape), views per row count
    y_buf, r_buf = np.empty(4 * B * H), np.empty(4 * B * H)
    i_buf = np.empty(4 * B * H, np.int64)
    g_buf = np.zeros(4 * B * H, np.float32)  # zeros: rows not gathered yet (o with peepholes) stay finite
    g64_buf = np.empty(4 * B * H)
    bh = [np.empty(B * H) for _ in range(4)]
    ci_buf = np.empty(B * H, np.int64)
    views: dict[int, tuple] = {}
    chunk = max(1, CHUNK_ELEMENTS // max(1, 4 * B * H))
    zx_buf, yx_buf = np.empty(chunk * 4 * B * H), np.empty(chunk * 4 * B * H)
    zx = zx_buf[:0].reshape(4, 0, H)
    n0 = 0
    full = steps == T and lens_s is lens
    zp = layer.zero_point
    y8 = np.empty((B, T, H), np.int8) if need_y and full else None  # written step by step
    yp = np.zeros((steps, B, H)) if need_y and not full else None  # sorted rows, reordered at the end
    if trace:
        tr_z = np.zeros((steps, B, 4, H), np.int32)  # original gate order i, f, g, o
        tr_g = np.zeros((steps, B, 4, H), np.int32)
        tr_c = np.zeros((steps, B, H), np.int16)
        tr_h = np.zeros((steps, B, H), np.int8)
    memo_f, memo_g, memo_h = p.memo_f, p.memo_g, p.memo_h
    rtf, wtf = p.rtf, p.wtf
    thr_x, thr_h, thr_o = p.thr_x, p.thr_h, p.thr_o
    lo_c, hi_c = MAGIC + INT16_MIN, MAGIC + INT16_MAX
    off_c = MAGIC_BITS - 32768
    one_f = p.one_f
    lo_h, hi_h = p.lo_h, p.hi_h
    input_forget = layer.input_forget
    peep = p.peep is not None
    nsig = 2 if peep else 3  # gates looked up before the cell update: i, f (, o)
    take, multiply, add, subtract, clip = np.take, np.multiply, np.add, np.subtract, np.clip

    for s in range(steps):
        n = n_at[s]
        k = s % chunk
        if k == 0:  # input side of the next `chunk` steps, rows active at step s:
            m = min(chunk, steps - s)  # zx = MAGIC + L + bias + requant(acc_x)
            n0 = n
            xs = x[order[:n, None], t_of[:n, s : s + m]] if gather else x[:, s : s + m]  # (n, m, I)
            xb = np.empty((m, n, nin + 1))  # x - zp_x, then a constant 1 (bias + L)
            xb[:, :, nin] = 1.0
            np.subtract(xs.transpose(1, 0, 2), p.zp_x, out=xb[:, :, :nin], dtype=np.float64)
            xb = xb.reshape(m * n, nin + 1)
            yb = yx_buf[: 4 * m * n * H].reshape(4, m * n, H)
            zx = zx_buf[: 4 * m * n * H].reshape(4, m * n, H)
            np.matmul(xb, wtf, out=yb)  # ~ requant(acc_x) + bias + L
            _rint(yb, zx, thr_x, _exact_x, p, xb, nin)
            zx += MAGIC
        v = views.get(n)
        if v is None:
            nh = n * H
            v = views[n] = (hc[:n], c[:n], y_buf[: 4 * nh].reshape(4, n, H), r_buf[: 4 * nh].reshape(4, n, H),
                            i_buf[: 4 * nh].reshape(4, n, H), g_buf[: 4 * nh].reshape(4, n, H),
                            g64_buf[: 4 * nh].reshape(4, n, H), *(b[:nh].reshape(n, H) for b in bh),
                            ci_buf[:nh].reshape(n, H))
        hn, cn, y4, r4, i4, g32, g64, fcv, igv, tcv, yov, civ = v
        zxv = zx[:, k * n0 : k * n0 + n]
        # gates: zx + requant(R (h - zp_h)) (+ peepholes i, f on the old cell) = MAGIC + L + z
        np.matmul(hn, rtf, out=y4)
        _rint(y4, r4, thr_h, _exact_h, p, hn)
        zxv += r4
        if peep:
            _peephole(p, d, cn, zxv, (0, 1))
        subtract(zxv.view(np.int64), MAGIC_BITS, out=i4)  # z + L: memo index
        take(memo_f, i4[:nsig], mode="clip", out=g32[:nsig])  # i, f (, o) times sf
        take(memo_g, i4[3], mode="clip", out=g32[3])  # g times sg
        np.copyto(g64, g32)
        gi, gg = g64[0], g64[3]
        gf = one_f - gi if input_forget else g64[1]
        # cell: c' = sat16(rint(f c 2^(a_fc - s_c) + i g 2^(a_ig - s_c)))
        multiply(gf, cn, out=fcv)
        multiply(gi, gg, out=igv)
        fcv += igv
        add(fcv, MAGIC, out=tcv)  # rounds, half to even
        clip(tcv, lo_c, hi_c, out=tcv)
        subtract(tcv, MAGIC, out=cn)
        subtract(tcv.view(np.int64), off_c, out=civ)  # c' + 32768
        a = take(memo_h, civ, mode="clip")  # h_act(c') F_o / sf
        if peep:
            _peephole(p, d, cn, zxv, (2,))
            subtract(zxv[2].view(np.int64), MAGIC_BITS, out=i4[2])
            go = take(memo_f, i4[2], mode="clip")
        else:
            go = g64[2]
        # hidden: h - zp_h = sat(requant(o a), -128 - zp_h, 127 - zp_h)
        multiply(go, a, out=yov)  # ~ o a F_o
        _rint(yov, hn, thr_o, _exact_o, p, d, go, civ)
        clip(hn, lo_h, hi_h, out=hn)
        if y8 is not None:
            add(hn, zp, out=y8[:, T - 1 - s if d.reverse else s], casting="unsafe")
        elif yp is not None:
            yp[s, :n] = hn
        if trace:
            z = i4 - p.lcol
            if layer.clip_q is not None:
                np.clip(z, -layer.clip_q, layer.clip_q, out=z)
            for b, g in enumerate(BLOCKS):
                tr_z[s, :n, g] = z[b]
            tr_g[s, :n, 0] = gi / p.sf
            tr_g[s, :n, 1] = gf / p.sf
            tr_g[s, :n, 2] = gg / p.sg
            tr_g[s, :n, 3] = go / p.sf
            tr_c[s, :n] = cn
            tr_h[s, :n] = hn + layer.zero_point

    tr = None
    if trace:
        tr = (tr_z.reshape(steps, B, 4 * H), tr_g.reshape(steps, B, 4 * H), tr_c, tr_h)
    return _finish(layer, order, lens, lens_s, t_of, s_idx, hc, c, y8, yp, T, tr)


def _exact_x(p: Plan, xb: np.ndarray, nin: int, b, row, col) -> np.ndarray:
    """Reference ``requant(acc_x) + bias + L`` at (block, row, unit) positions."""
    g = p.orig[b, col]
    acc = np.einsum("ij,ji->i", xb[row, :nin], p.wt[:, g]).astype(np.int64)
    return requant(acc, p.mult_x[g], p.shift_x[g]) + p.bias_l[g]


def _exact_h(p: Plan, hn: np.ndarray, b, row, col) -> np.ndarray:
    """Reference ``requant(acc_h)`` at (block, row, unit) positions."""
    g = p.orig[b, col]
    acc = np.einsum("ij,ji->i", hn[row], p.rt[:, g]).astype(np.int64)
    return requant(acc, p.mult_h[g], p.shift_h[g])


def _exact_o(p: Plan, d, go: np.ndarray, civ: np.ndarray, row, col) -> np.ndarray:
    """Reference ``requant(o a, h_mult, h_shift)`` at (row, unit) positions."""
    o = (go[row, col].astype(np.float64) / p.sf).astype(np.int64)
    return requant(o * p.memo_hi[civ[row, col]].astype(np.int64), int(d.h_mult), int(d.h_shift))


def _peephole(p: Plan, d, c: np.ndarray, t: np.ndarray, gates: tuple[int, ...]) -> None:
    """``z += requant(pq[g] c, mp[g], sp[g])`` for peephole gates ``g`` (0, 1: i, f on the old
    cell; 2: o on the new cell) into blocks of ``t`` (MAGIC + L + z; o is block 2)."""
    g0, g1 = gates[0], gates[-1] + 1
    yp = c[None, :, :] * p.pf[g0:g1, None, :]  # (len(gates), n, H)
    rp = np.empty_like(yp)

    def exact(gi, row, col):
        g = gi + g0
        return requant(p.peep[g, col] * c[row, col].astype(np.int64), d.peep_mult[g].astype(np.int64),
                       d.peep_shift[g].astype(np.int64))

    _rint(yp, rp, p.thr_p, exact)
    t[g0:g1] += rp


def _finish(layer, order, lens, lens_s, t_of, s_idx, hc, c, y8, yp, T, tr) -> DirResult:
    """Final states and outputs back in the original row and time order."""
    B, H = hc.shape
    steps = s_idx.shape[0]
    zp = layer.zero_point
    h_fin = np.empty((B, H), np.int64)
    c_fin = np.empty((B, H), np.int64)
    h_fin[order] = hc.astype(np.int64) + zp
    c_fin[order] = c.astype(np.int64)
    empty = lens == 0
    if empty.any():  # never ran: zero state (onnxruntime)
        h_fin[empty] = zp
        c_fin[empty] = 0
    valid_s = s_idx[None, :] < lens_s[:, None]  # (B, steps), sorted rows
    rows_o = np.broadcast_to(order[:, None], (B, steps))[valid_s]
    times_o = t_of[valid_s]
    proc_b = np.broadcast_to(np.arange(B)[:, None], (B, steps))[valid_s]
    proc_s = np.broadcast_to(s_idx[None, :], (B, steps))[valid_s]
    yout = y8
    if yp is not None:
        yout = np.full((B, T, H), zp, np.int8)
        yout[rows_o, times_o] = yp[proc_s, proc_b] + zp
    trace = None
    if tr is not None:
        out = []
        for a in tr:
            o = np.zeros((B, T) + a.shape[2:], a.dtype)
            o[rows_o, times_o] = a[proc_s, proc_b]
            out.append(o)
        valid = np.zeros((B, T), bool)
        valid[rows_o, times_o] = True
        trace = (*out, valid)
    return DirResult(yout, h_fin, c_fin, trace)
