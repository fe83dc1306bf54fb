/*
 * tl_gru_step.c - the general integer GRU step tl_gru_step_s8 (docs/quantization.md sec. 16; weight
 * layout: tl_gru.h), and the per-unit stages it shares with the fast step (tl_gru_fast.c) and the
 * stage kernels (tl_gru_stages.c). The file layout is described in tl_gru_internal.h.
 *
 * A step first widens x, (x - zp_x) << pre_x, and narrows the int16 state, shift_half_up(h, q), into
 * the scratch in quad order (spec sec. 5, sec. 16.3). Then, per block of four hidden units, one quad-kernel
 * call per gate group and input vector gives the accumulators of the block's rows, and the gate sums,
 * the gates (standard or custom tables), the candidate, the update and the int8 output of each unit
 * of the block follow at once. Only h[j] is read by unit j once the narrowed state is in the scratch,
 * so the state is updated in place.
 *
 * With linear_before_reset the candidate's recurrent part r (Bu + mul16(R_h v_h, mh)) needs the
 * unit's own reset gate only: one pass over the blocks. Without it the candidate's matvec reads
 * v_r = shift_half_up(r h, 15 + q), the reset gates of every unit: a first pass computes the update
 * gates (kept in the scratch) and v_r, a second one the candidates, the update and the output.
 */
#include "tl_gru_internal.h"

uint32_t tl_gru_narrow(const int16_t *h, int32_t n, int32_t q, int16_t *dst)
{
    const int32_t half = (int32_t)1 << (q - 1); /* q in [1, 15]: |h| + half fits int32 */
    int32_t k;
    uint32_t sum = 0u; /* modulo 2^32; only the biased weights (Armv6-M) need it */
#define TL_NARROW(v) ((int16_t)(((int32_t)(v) + half) >> q))
    for (k = 0; k + 4 <= n; k += 4) {
        dst[k] = TL_NARROW(h[k]);
        dst[k + 1] = TL_NARROW(h[k + 2]);
        dst[k + 2] = TL_NARROW(h[k + 1]);
        dst[k + 3] = TL_NARROW(h[k + 3]);
#if TL_W16_BIAS != 0
        sum += (uint32_t)(dst[k] + dst[k + 1]) + (uint32_t)(dst[k + 2] + dst[k + 3]);
#endif
    }
    if (k < n) { /* the last quad: its padding zero, then its elements one by one */
        dst[k + 1] = 0;
        dst[k + 2] = 0;
        dst[k + 3] = 0;
        for (; k < n; ++k) {
            const int32_t v = TL_NARROW(h[k]);
            dst[tl_gru_slot(k)] = (int16_t)v;
            sum += (uint32_t)v;
        }
    }
#undef TL_NARROW
    return sum;
}

uint32_t tl_gru_reset_vec(const int32_t *r, const int16_t *h, int32_t n, int32_t q, int16_t *dst)
{
    const int32_t s = TL_GRU_GATE_Q + q;
    int32_t k;
    uint32_t sum = 0u;
    for (k = 0; k < n; ++k) {
        /* |r h| <= 2^30 and + 2^(14 + q) <= 2^29: int32 (spec sec. 16.6) */
        const int32_t v = tl_shift_half_up(r[k] * (int32_t)h[k], s);
        dst[tl_gru_slot(k)] = (int16_t)v;
        sum += (uint32_t)v;
    }
    for (; (k & 3) != 0; ++k) {
        dst[tl_gru_slot(k)] = 0;
    }
    return sum;
}

int32_t tl_gru_act_f(const tl_gru_params_t *p, int32_t z)
{
    return p->table != 0 ? tl_sigmoid_q15(z, p->table, p->table_n, p->gate_shift) : tl_lut_eval(z, &p->luts[0]);
}

int32_t tl_gru_act_g(const tl_gru_params_t *p, int32_t z)
{
    return p->table != 0 ? tl_tanh_q15(z, p->table, p->table_n, p->gate_shift) : tl_lut_eval(z, &p->luts[1]);
}

/* v * 2^a on the 64-bit words hi:lo, a in [0, 31] (no 64-bit shift: libgcc would be called on Armv6-M). */
static void tl_gru_shl(int32_t *hi, uint32_t *lo, int32_t a)
{
    if (a > 0) {
        *hi = (int32_t)(((uint32_t)*hi << a) | (*lo >> (32 - a)));
        *lo <<= a;
    }
}

/* sat16(round_shift(hi:lo, s)) for a sum hi:lo below 2^56 in magnitude, s in [0, 62]. */
static int16_t tl_gru_round16(int32_t hi, uint32_t lo, int32_t s)
{
    if (s <= 0) {
        if (hi != ((int32_t)lo >> 31)) {
            return hi < 0 ? (int16_t)TL_INT16_MIN : (int16_t)TL_INT16_MAX;
        }
        return tl_sat16((int32_t)lo);
    }
    if (s < 32) {
        return tl_cell_round_hot(hi, lo, s);
    }
    return tl_sat16(tl_round_shift_words(hi, lo, s)); /* the quotient is below 2^24 */
}

int16_t tl_gru_update_unit(const tl_gru_params_t *p, int32_t gz, int32_t n, int32_t h)
{
    const int32_t zh = gz * h; /* |z h| <= 2^30 */
    int32_t h1 = zh >> 31, h2;
    uint32_t l1 = (uint32_t)zh, l2, lo;
    tl_mul_words(p->one_f - gz, n, &h2, &l2); /* |(1 - z) n| <= 2^31: 64-bit */
    tl_gru_shl(&h1, &l1, p->a_h);             /* a_h, a_n <= 23: the sum is below 2^55 */
    tl_gru_shl(&h2, &l2, p->a_n);
    lo = l1 + l2;
    return tl_gru_round16((int32_t)((uint32_t)h1 + (uint32_t)h2 + (lo < l1 ? 1u : 0u)), lo, p->s_u);
}

/* One unit's update and output. */
static void tl_gru_finish(const tl_gru_params_t *p, int32_t j, int32_t gz, int32_t n, int16_t *h, int8_t *y)
{
    const int16_t hn = tl_gru_update_unit(p, gz, n, h[j]);
    h[j] = hn;
    y[j] = tl_gru_output(p, hn);
}

void tl_gru_step_s8(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2, qh = (n_h + 3) >> 2;
    const int32_t gx = 16 * qx, gh = 16 * qh; /* weights of one gate group of a block */
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    const tl_gru_unit_t *un = p->units;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    const uint32_t sh = tl_gru_narrow(h, n_h, p->state_shift, vh);
    const int32_t x0 = tl_acc_start(sx, p->wx16 != 0), h0 = tl_acc_start(sh, p->wh16 != 0);
    int32_t b, u, g;
    if (p->linear_before_reset) {
        for (b = 0; b < qh; ++b) {
            int32_t ax[3][4], ah[3][4];
            for (g = 0; g < 3; ++g) {
                tl_gru_mac(p->wx, p->wx16, (3 * b + g) * gx, qx, vx, x0, ax[g]);
                tl_gru_mac(p->wh, p->wh16, (3 * b + g) * gh, qh, vh, h0, ah[g]);
            }
            for (u = 0; u < 4 && 4 * b + u < n_h; ++u, ++un) {
                const int32_t j = 4 * b + u;
                const int32_t gz = tl_gru_act_f(p, tl_gru_preact(p, un, 0, ax[0][u], ah[0][u]));
                const int32_t gr = tl_gru_act_f(p, tl_gru_preact(p, un, 1, ax[1][u], ah[1][u]));
                const int32_t n = tl_gru_act_g(p, tl_gru_preact_lbr(p, un, ax[2][u], ah[2][u], gr));
                tl_gru_finish(p, j, gz, n, h, y);
            }
        }
    } else {
        int16_t *const vr = vh + 4 * qh;
        int32_t *const gzs = (int32_t *)(void *)(vr + 4 * qh);
        const int32_t s_r = TL_GRU_GATE_Q + p->state_shift;
        uint32_t sr = 0u;
        int32_t r0;
        /* pass 1: update gates (kept) and the reset products v_r of every unit */
        for (b = 0; b < qh; ++b) {
            int32_t ax[2][4], ah[2][4];
            for (g = 0; g < 2; ++g) {
                tl_gru_mac(p->wx, p->wx16, (3 * b + g) * gx, qx, vx, x0, ax[g]);
                tl_gru_mac(p->wh, p->wh16, (3 * b + g) * gh, qh, vh, h0, ah[g]);
            }
            for (u = 0; u < 4; ++u) {
                const int32_t j = 4 * b + u;
                int32_t v = 0;
                if (j < n_h) {
                    const int32_t gr = tl_gru_act_f(p, tl_gru_preact(p, un, 1, ax[1][u], ah[1][u]));
                    gzs[j] = tl_gru_act_f(p, tl_gru_preact(p, un, 0, ax[0][u], ah[0][u]));
                    v = tl_shift_half_up(gr * (int32_t)h[j], s_r); /* spec sec. 16.6: int32, |v| <= 2^(15-q) */
                    ++un;
                }
                vr[tl_gru_slot(j)] = (int16_t)v;
                sr += (uint32_t)v;
            }
        }
        /* pass 2: candidates, update, output */
        r0 = tl_acc_start(sr, p->wh16 != 0);
        un = p->units;
        for (b = 0; b < qh; ++b) {
            int32_t ax[4], ar[4];
            tl_gru_mac(p->wx, p->wx16, (3 * b + 2) * gx, qx, vx, x0, ax);
            tl_gru_mac(p->wh, p->wh16, (3 * b + 2) * gh, qh, vr, r0, ar);
            for (u = 0; u < 4 && 4 * b + u < n_h; ++u, ++un) {
                const int32_t j = 4 * b + u;
                tl_gru_finish(p, j, gzs[j], tl_gru_act_g(p, tl_gru_preact(p, un, 2, ax[u], ar[u])), h, y);
            }
        }
    }
}
