"""Fast path of the bit-exact simulator: the integers of ``checked.lstm_step``, vectorised over the
batch with far fewer numpy passes (integer spec v2, docs/quantization.md §5–§9).

``checked.run_lstm`` runs each LSTM direction here when :func:`.fastplan.plan_direction` proves two
things once per direction, and through the checked reference kernels otherwise (or when
``checked.CHECKED`` is set). The results are the same integers, bit for bit.

1. **No stored value can leave its C type.** The §11 bounds (:mod:`tinylstm.qmodel.bounds`) hold
   on the model's own integers over every int8 input and hidden state and every int16 cell, with
   the tables' actual maxima for the gate values: every value the checked path range-checks
   provably fits, so the checks are dropped. A model that breaks a bound runs checked, which
   raises ``SimulatorOverflow`` where a value really overflows.
2. **Every float64 value is exact.** Each is an integer times a power of two whose numerator
   stays below 2^53 (proven per direction), so every product and sum is exact, whatever the BLAS
   summation order, with or without FMA:

   - ``mul16(acc, m) = floor(acc m / 2^16)``: the multipliers and the final shift are folded into
     the weights, ``W^T 2^pre_x m_x 2^-16`` and ``R^T 2^pre_h m_h 2^-(16+s)``; the matmuls of
     ``x - zp_x`` and ``h - zp_h`` give ``acc_x m_x 2^-16`` and ``acc_h m_h 2^-(16+s)``
     (numerators below ``A m < 2^46``).
   - ``z = (B + mul16(acc_x, m_x) + mul16(acc_h, m_h)) >> s = floor((tx + acc_h m_h 2^-16) 2^-s)``
     with ``tx = B + floor(acc_x m_x 2^-16)`` (the input side, a few steps at once: one matmul,
     ``B`` riding on a constant-1 input, and one floor): a floor of a floor,
     ``floor(floor(y) / 2^s) = floor(y / 2^s)``, drops the inner one.
   - The outer floor is a rounding: ``y = (tx + acc_h m_h 2^-16) 2^-s`` is a multiple of
     ``2^-(16+s)``, so ``y - 1/2 + 2^-(17+s)`` is never a tie and rounds to ``floor(y)`` (the input
     side adds ``-2^(s-1)`` to ``B`` and ``2^-17`` before its scaling by ``2^-s``). Adding
     ``1.5 * 2^52 + L`` rounds it (IEEE round to nearest) and leaves ``MAGIC_BITS + z + L`` in the
     bits: the memo index, after one integer subtraction.
   - The cell update ``round_shift((f c << a_fc) + (i g << a_ig), s_c)``: the sum scaled by
     ``2^-s_c`` is exact, and adding ``1.5 * 2^52`` rounds it half to even; the bits of the sum
     give the int16 index of ``h_act(c)``.

   Peepholes, the hidden requantization and the saturations run in int64 as in the checked
   path. Gate values are gathers from memos of ``sigmoid_q15`` / ``tanh_q15`` (or the custom
   ``lut_eval``) at every pre-activation up to where the function is constant; the gather's
   index clamp also applies the LSTM ``clip``.

Layout: rows are processed longest first, so the rows still running at a step are a prefix of
the batch. Gate arrays are gate-major ``(4, rows, H)`` in the order i, f, o, g: the three sigmoid
gates are adjacent and every block is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fastplan import BLOCKS, MAGIC, MAGIC_BITS, FastDirection

#: Elements of the input-side block computed at once (a few time steps).
CHUNK_ELEMENTS = 1 << 16


@dataclass
class DirResult:
    """Outputs of one direction in the original row/time order."""

    y: np.ndarray | None  # (B, T, H) int8 h, or None when not asked for
    h: np.ndarray  # (B, H) int64 final h
    c: np.ndarray  # (B, H) int64 final c
    trace: tuple[np.ndarray, ...] | None  # pre, gates, c, h, valid (B, T, ...)


def _peephole(p: FastDirection, g: slice, ci: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``requant(pq[g] c, mp[g], sp[g])`` (int64) for the cell index ``ci = c + 32768``."""
    np.multiply(p.peep[g], ci, out=out)
    out -= p.peep_c[g]
    m, half, sh = p.peep_q[g, 0], p.peep_q[g, 1], p.peep_q[g, 2]
    out *= m
    out += half
    out >>= sh
    return out


def run_direction(  # noqa: C901 - one loop, one block per stage of the step
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
    """Run direction ``d`` of ``layer`` over x (B, T, I) (int8 values) with row lengths ``lens`` (B,);
    h0 (B, H) int8, c0 (B, H) int16: initial states."""
    B, T, nin = x.shape
    H = p.H
    if bool((lens == T).all()):
        order, lens_s = np.arange(B), lens
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
    zp = layer.zero_point
    # state, sorted rows: h - zp_h (float64 for the matmul), c (float64) and c + 32768 (int64)
    hc = (h0[order] - zp).astype(np.float64)
    c = c0[order].astype(np.float64)
    ci_state = c0[order].astype(np.int64) + 32768
    # flat work buffers, so that any row prefix is a contiguous reshape; views per row count
    nb = B * H
    y_buf, gq_buf, pv_buf = np.empty(4 * nb), np.empty(3 * nb, p.memo_f.dtype), np.empty(2 * nb, np.int64)
    row_bufs = (np.empty(nb, p.memo_g.dtype), np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb, np.int32),
                np.empty(nb, np.int64))  # g, f c, i g, cell sum, h_act(c), requantized h
    views: dict[int, tuple] = {}
    chunk = max(1, CHUNK_ELEMENTS // max(1, 4 * nb))
    tile = max(1, 512 // H)  # the per-row scaling runs over (.., tile H) rows: long inner loops
    zx_rows = -(-min(chunk, max(steps, 1)) * B // tile) * tile
    zx_buf = np.zeros(4 * zx_rows * H)
    zx = zx_buf[:0].reshape(4, 0, H)
    inv_s = np.tile(p.inv_s, (1, 1, tile))
    n0 = 0
    full = steps == T and lens_s is lens
    y8 = np.empty((B, T, H), np.int8) if need_y and full else None  # written step by step
    yp = np.zeros((steps, B, H), np.int8) if need_y and not full else None  # sorted rows, reordered at the end
    if trace:
        tr_z = np.zeros((steps, B, 4, H), np.int32)  # original gate order i, f, g, o
        tr_g = np.zeros((steps, B, 4, H), np.int32)
        tr_c = np.zeros((steps, B, H), np.int16)
        tr_h = np.zeros((steps, B, H), np.int8)
        lims = np.array(p.lim)[[0, 0, 0, 1]][:, None, None]
    memo_f, memo_g, memo_h = p.memo_f, p.memo_g, p.memo_h
    rh, magic_l = p.rh, p.magic_l
    k0, k1 = p.cell_k
    lo_c, hi_c = MAGIC - 32768, MAGIC + 32767
    off_c = MAGIC_BITS - 32768
    lo_h, hi_h, h_mult, h_half, h_shift = p.lo_h, p.hi_h, p.h_mult, p.h_half, p.h_shift
    input_forget = layer.input_forget
    peep = p.peep is not None
    take, multiply, add, subtract, clip = np.take, np.multiply, np.add, np.subtract, np.clip
    f64 = np.float64

    for s in range(steps):
        n = n_at[s]
        k = s % chunk
        if k == 0:  # input side of the next `chunk` steps, rows active at step s:
            m = min(chunk, steps - s)  # (B + floor(acc_x m_x 2^-16) - 2^(s-1) + 2^-17) 2^-s
            n0 = n
            xs = x[order[:n, None], t_of[:n, s : s + m]] if gather else x[:, s : s + m]  # (n, m, I)
            xb = np.empty((m, n, nin + 1))
            np.subtract(xs.transpose(1, 0, 2), p.zp_x, out=xb[:, :, :nin], dtype=f64)
            xb[:, :, nin] = 1.0
            rows = -(-m * n // tile) * tile
            zt = zx_buf[: 4 * rows * H].reshape(4, rows, H)
            zx = zt[:, : m * n]
            np.matmul(xb.reshape(m * n, nin + 1), p.wx, out=zx)
            np.floor(zt, out=zt)
            zt += 2.0**-17
            zt.reshape(4, rows // tile, tile * H)[...] *= inv_s
        v = views.get(n)
        if v is None:
            nh = n * H
            y4 = y_buf[: 4 * nh].reshape(4, n, H)
            v = views[n] = (hc[:n], c[:n], ci_state[:n], y4, y4.view(np.int64), gq_buf[: 3 * nh].reshape(3, n, H),
                            *(b[:nh].reshape(n, H) for b in row_bufs), pv_buf[: 2 * nh].reshape(2, n, H))
        hn, cn, ci, y4, i4, gq, gg, fcv, igv, tcv, av, hv, pv = v
        # z + L = rint(tx' + acc_h m_h 2^-(16+s)) + L: the memo index (+ peepholes i, f on the old cell)
        np.matmul(hn, rh, out=y4)
        y4 += zx[:, k * n0 : k * n0 + n]
        y4 += magic_l
        subtract(i4, MAGIC_BITS, out=i4)  # i4 is y4's memory read as int64
        if peep:
            i4[:2] += _peephole(p, slice(0, 2), ci, pv)
        take(memo_f, i4[:3], mode="clip", out=gq)  # i, f, o (the clamp applies clip)
        take(memo_g, i4[3], mode="clip", out=gg)
        gi = gq[0]
        if input_forget:  # f = 2^q_f - i
            subtract(p.one_f, gi, out=fcv, dtype=f64)
            fcv *= cn
        else:
            multiply(gq[1], cn, out=fcv, dtype=f64)
        # cell: c' = sat16(rint((f c + i g 2^(a_ig - a_fc)) 2^(a_fc - s_c)))
        multiply(gi, gg, out=igv, dtype=f64)
        if k0 != 1.0:
            igv *= k0
        fcv += igv
        fcv *= k1
        add(fcv, MAGIC, out=tcv)  # rounds half to even
        clip(tcv, lo_c, hi_c, out=tcv)
        subtract(tcv, MAGIC, out=cn)
        subtract(tcv.view(np.int64), off_c, out=ci)  # c' + 32768
        take(memo_h, ci, out=av)  # h_act(c')
        if peep:  # o: peephole on the new cell, then its gate value
            i4[2] += _peephole(p, slice(2, 3), ci, pv[:1])[0]
            take(memo_f, i4[2], mode="clip", out=gq[2])
        # hidden: h - zp_h = sat(requant(o a, h_mult, h_shift), -128 - zp_h, 127 - zp_h)
        multiply(gq[2], av, out=hv)
        hv *= h_mult
        hv += h_half
        hv >>= h_shift
        clip(hv, lo_h, hi_h, out=hn)
        if y8 is not None:
            add(hn, zp, out=y8[:, T - 1 - s if d.reverse else s], casting="unsafe")
        elif yp is not None:
            add(hn, zp, out=yp[s, :n], casting="unsafe")
        if trace:
            z = i4 - lims
            if layer.clip_q is not None:
                clip(z, -layer.clip_q, layer.clip_q, out=z)
            for b, g in enumerate(BLOCKS):
                tr_z[s, :n, g] = z[b]
            tr_g[s, :n, 0] = gi
            tr_g[s, :n, 1] = p.one_f - gi.astype(np.int64) if input_forget else gq[1]
            tr_g[s, :n, 2] = gg
            tr_g[s, :n, 3] = gq[2]
            tr_c[s, :n] = cn
            tr_h[s, :n] = hn + zp

    tr = None
    if trace:
        tr = (tr_z.reshape(steps, B, 4 * H), tr_g.reshape(steps, B, 4 * H), tr_c, tr_h)
    return _finish(layer, order, lens, lens_s, t_of, s_idx, hc, c, y8, yp, T, tr)


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
        yout[rows_o, times_o] = yp[proc_s, proc_b]
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
