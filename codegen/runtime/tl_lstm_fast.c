/*
 * tl_lstm_fast.c - the fast LSTM step tl_lstm_step_fast: tl_lstm_step_s8 for the common case (int16
 * weights, no peepholes, clip or coupled gate; odd multipliers, symmetric uint16 tables, Q(15) gate
 * tables: the TL_LSTM_FAST_* flags of tl_lstm.h), with the same results. The file layout is
 * described in tl_lstm_internal.h.
 *
 * On Armv7E-M (M4, M7, M33, M55) the whole unit loop is the assembly routine tl_lstm_units_v7em
 * (tl_kernels_v7em.c); this file only widens x and h and fills the block of per-step constants it
 * reads. Elsewhere the unit loop is the C below, with the requantization, table lookups and the
 * cell update in their short exact forms; it computes the same integer operations in the same
 * rounding forms as the assembly.
 */
#include "tl_lstm_internal.h"

#if defined(TL_KERNEL_DSP)
static void tl_v7em_lut_init(tl_v7em_lut_t *d, const tl_lut_t *lut)
{
    d->t = lut->u16;
    d->n = lut->n;
    d->shift = lut->shift;
    d->mask = (int32_t)(((uint32_t)1 << lut->shift) - 1u);
    d->half = lut->shift > 0 ? (int32_t)(((uint32_t)1 << (lut->shift - 1)) - 1u) : 0;
    d->two_t0 = 2 * (int32_t)lut->u16[0];
}
#endif

void tl_lstm_step_fast(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    int8_t *const hn = (int8_t *)(vh + 4 * qh);
    int32_t j;
#if defined(TL_KERNEL_DSP)
    tl_v7em_ctx_t k;
    (void)tl_unpack_quads(x, p->input_size, vx); /* TL_W16_BIAS == 0 here: no corrections */
    (void)tl_unpack_quads(h, n_h, vh);
    k.wx = p->wx16;
    k.wh = p->wh16;
    k.vx = vx;
    k.vh = vh;
    k.vh_end = vh + 4 * qh;
    k.u = p->units;
    k.c = c;
    k.hn = hn;
    k.hn_end = hn + n_h;
    tl_v7em_lut_init(&k.lut[0], &p->lut_f);
    tl_v7em_lut_init(&k.lut[1], &p->lut_g);
    tl_v7em_lut_init(&k.lut[2], &p->lut_h);
    k.cell[0] = p->a_fc;
    k.cell[1] = p->a_ig;
    k.cell[2] = p->s_c;
    k.cell[3] = (int32_t)(((uint32_t)1 << (p->s_c - 1)) - 1u);
    k.cell[4] = 32 - p->s_c;
    k.hq[0] = p->h_mult;
    k.hq[1] = p->h_shift - 33;
    k.hq[2] = p->h_zero_point;
    if (n_h > 0) {
        tl_lstm_units_v7em(&k);
    }
#else
    const tl_lstm_unit_t *u = p->units;
    const uint16_t *wx = p->wx16; /* int16 weights: one of the emitter's conditions */
    const uint16_t *wh = p->wh16;
    const uint32_t bx = tl_unpack_quads(x, p->input_size, vx);
    const uint32_t bh = tl_unpack_quads(h, n_h, vh);
    for (j = 0; j < n_h; ++j, ++u, wx += 16 * qx, wh += 16 * qh) {
        int32_t ax[4], ah[4], z[4];
        int32_t g, gi, gf, gg, go, act;
        for (g = 0; g < 4; ++g) { /* modulo 2^32: the bias corrections of TL_W16_BIAS */
            ax[g] = (int32_t)((uint32_t)u->effb_x[g] + bx);
            ah[g] = (int32_t)((uint32_t)u->effb_h[g] + bh);
        }
        tl_mac4_w16(wx, vx, qx, ax);
        tl_mac4_w16(wh, vh, qh, ah);
        for (g = 0; g < 4; ++g) {
            z[g] = tl_requant_odd(ax[g], u->mult_x[g], u->rshift_x[g]) + tl_requant_odd(ah[g], u->mult_h[g], u->rshift_h[g])
                   + u->bias[g];
        }
        gi = tl_lut_sym16(z[0], &p->lut_f);
        gf = tl_lut_sym16(z[1], &p->lut_f);
        gg = tl_lut_sym16(z[2], &p->lut_g);
        go = tl_lut_sym16(z[3], &p->lut_f);
        /* cell (spec sec. 7): one rounding of the exact sum */
        c[j] = tl_unit_cell(p, gi, gf, gg, c[j]);
        act = tl_lut_sym16(c[j], &p->lut_h);
        hn[j] = tl_sat8(p->h_zero_point + tl_requant_odd(go * act, p->h_mult, p->h_shift - 33));
    }
#endif
    for (j = 0; j < n_h; ++j) {
        h[j] = hn[j];
    }
}
