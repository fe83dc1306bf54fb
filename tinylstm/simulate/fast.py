"""Fast path of the bit-exact simulator: the integers of ``simulate.lstm_step``, far fewer passes.

``simulate.run_lstm`` runs each LSTM direction here when :func:`.fastplan.plan_direction` proves
two things once per layer, and through the checked reference kernels otherwise (or when
``simulate.CHECKED`` is set). The results are the same integers, bit for bit.

1. **No stored value can overflow.** The bounds of docs/quantization.md §11
   (:mod:`tinylstm.qmodel.bounds`) are evaluated on the model's own integers, over every int8
   input and hidden state and every int16 cell: every value the reference path range-checks
   provably fits its C type, so the checks are dropped. A model that breaks a bound runs
   checked, which raises ``SimulatorOverflow`` where a value really overflows.
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

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import INT16_MAX, INT16_MIN, requant
from .fastplan import BLOCKS, MAGIC, MAGIC_BITS, FastDirection

#: Elements of the input-side block computed at once (a few time steps).
CHUNK_ELEMENTS = 1 << 15


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
    p: FastDirection,
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


def _exact_x(p: FastDirection, xb: np.ndarray, nin: int, b, row, col) -> np.ndarray:
    """Reference ``requant(acc_x) + bias + L`` at (block, row, unit) positions."""
    g = p.orig[b, col]
    acc = np.einsum("ij,ji->i", xb[row, :nin], p.wt[:, g]).astype(np.int64)
    return requant(acc, p.mult_x[g], p.shift_x[g]) + p.bias_l[g]


def _exact_h(p: FastDirection, hn: np.ndarray, b, row, col) -> np.ndarray:
    """Reference ``requant(acc_h)`` at (block, row, unit) positions."""
    g = p.orig[b, col]
    acc = np.einsum("ij,ji->i", hn[row], p.rt[:, g]).astype(np.int64)
    return requant(acc, p.mult_h[g], p.shift_h[g])


def _exact_o(p: FastDirection, d, go: np.ndarray, civ: np.ndarray, row, col) -> np.ndarray:
    """Reference ``requant(o a, h_mult, h_shift)`` at (row, unit) positions."""
    o = (go[row, col].astype(np.float64) / p.sf).astype(np.int64)
    return requant(o * p.memo_hi[civ[row, col]].astype(np.int64), int(d.h_mult), int(d.h_shift))


def _peephole(p: FastDirection, d, c: np.ndarray, t: np.ndarray, gates: tuple[int, ...]) -> None:
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
