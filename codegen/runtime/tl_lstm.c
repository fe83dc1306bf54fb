/*
 * tl_lstm.c - the fused integer LSTM step and its stage kernels (docs/quantization.md sec. 5-sec. 9).
 *
 * Per hidden unit j: one pass over x and one over h give the four gate accumulators
 * (weights unit-major, rows i, f, g, o consecutive); then requantization to Q(P), peepholes,
 * clip, table activations, the cell update and the hidden output of unit j. Only c[j] is
 * read by unit j, so the cell is updated in place; the new h goes to the scratch because
 * every unit reads the old h.
 */
#include "tl_lstm.h"

/* acc[g] += sum_k w[g*n + k] * v[k] for the four consecutive rows g = 0..3 (int32). */
static inline void tl_dot4_s8(const int8_t *w, int32_t n, const int8_t *v, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w + n;
    const int8_t *w2 = w + 2 * n;
    const int8_t *w3 = w + 3 * n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t k;
    for (k = 0; k < n; ++k) {
        const int32_t vk = v[k];
        a0 += w0[k] * vk;
        a1 += w1[k] * vk;
        a2 += w2[k] * vk;
        a3 += w3[k] * vk;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* The same with int16 weights (products < 2^23, sums proven to fit int32). */
static inline void tl_dot4_s16(const int16_t *w, int32_t n, const int8_t *v, int32_t acc[4])
{
    const int16_t *w0 = w;
    const int16_t *w1 = w + n;
    const int16_t *w2 = w + 2 * n;
    const int16_t *w3 = w + 3 * n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t k;
    for (k = 0; k < n; ++k) {
        const int32_t vk = v[k];
        a0 += w0[k] * vk;
        a1 += w1[k] * vk;
        a2 += w2[k] * vk;
        a3 += w3[k] * vk;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* z[g] (g = i, f, g, o) of unit j: requant(acc_x) + requant(acc_h) + bias, Q(P) (spec sec. 6). */
static inline void tl_unit_preact(const tl_lstm_params_t *p, int32_t j, const int8_t *x, const int8_t *h,
                                  int32_t z[4])
{
    const int32_t n_in = p->input_size;
    const int32_t n_h = p->hidden_size;
    const tl_lstm_row_t *row = p->rows + 4 * j;
    int32_t ax[4], ah[4];
    int32_t g;
    for (g = 0; g < 4; ++g) {
        ax[g] = row[g].effb_x;
        ah[g] = row[g].effb_h;
    }
    if (p->wx16 != 0) {
        tl_dot4_s16(p->wx16 + 4 * n_in * j, n_in, x, ax);
    } else {
        tl_dot4_s8(p->wx + 4 * n_in * j, n_in, x, ax);
    }
    if (p->wh16 != 0) {
        tl_dot4_s16(p->wh16 + 4 * n_h * j, n_h, h, ah);
    } else {
        tl_dot4_s8(p->wh + 4 * n_h * j, n_h, h, ah);
    }
    for (g = 0; g < 4; ++g) {
        z[g] = tl_requant(ax[g], row[g].mult_x, row[g].shift_x) + tl_requant(ah[g], row[g].mult_h, row[g].shift_h)
               + row[g].bias;
    }
}

/* Peepholes on the old cell for i and f, clip of i, f, g; then the gates i, f, g (Q(q)). */
static inline void tl_unit_gates(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4],
                                 int32_t *gi, int32_t *gf, int32_t *gg)
{
    if (p->peep != 0) {
        const int16_t *pj = p->peep + 3 * j;
        z[0] += tl_requant((int32_t)pj[0] * c_old, p->peep_mult[0], p->peep_shift[0]);
        z[1] += tl_requant((int32_t)pj[1] * c_old, p->peep_mult[1], p->peep_shift[1]);
    }
    if (p->has_clip) {
        z[0] = tl_sat(z[0], -p->clip_q, p->clip_q);
        z[1] = tl_sat(z[1], -p->clip_q, p->clip_q);
        z[2] = tl_sat(z[2], -p->clip_q, p->clip_q);
    }
    *gi = tl_lut_eval(z[0], &p->lut_f);
    *gf = p->input_forget ? p->one_f - *gi : tl_lut_eval(z[1], &p->lut_f);
    *gg = tl_lut_eval(z[2], &p->lut_g);
}

/* c' = sat16(round_shift((f*c << a_fc) + (i*g << a_ig), s_c)): one rounding (spec sec. 7). */
static inline int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old)
{
    const int64_t fc = (int64_t)(gf * c_old) * ((int64_t)1 << p->a_fc);
    const int64_t ig = (int64_t)(gi * gg) * ((int64_t)1 << p->a_ig);
    return tl_sat16(tl_round_shift(fc + ig, p->s_c));
}

void tl_lstm_step_s8(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int8_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    int32_t j;
    for (j = 0; j < n_h; ++j) {
        int32_t z[4];
        int32_t gi, gf, gg, go, act;
        int16_t c_new;
        /* 1: gate pre-activations and i, f, g */
        tl_unit_preact(p, j, x, h, z);
        tl_unit_gates(p, j, c[j], z, &gi, &gf, &gg);
        /* 2: cell */
        c_new = tl_unit_cell(p, gi, gf, gg, c[j]);
        c[j] = c_new;
        /* 3-4: output gate: peephole on the NEW cell, then clip */
        if (p->peep != 0) {
            z[3] += tl_requant((int32_t)p->peep[3 * j + 2] * c_new, p->peep_mult[2], p->peep_shift[2]);
        }
        if (p->has_clip) {
            z[3] = tl_sat(z[3], -p->clip_q, p->clip_q);
        }
        /* 5-7: o, h_act(c'), h' = sat8(zp_h + requant(o * a)) */
        go = tl_lut_eval(z[3], &p->lut_f);
        act = tl_lut_eval(c_new, &p->lut_h);
        scratch[j] = tl_sat8(p->h_zero_point + tl_requant(go * act, p->h_mult, p->h_shift));
    }
    for (j = 0; j < n_h; ++j) {
        h[j] = scratch[j];
    }
}

void tl_lstm_gates_s8(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, const int16_t *c,
                      int32_t *z, int32_t *gates)
{
    const int32_t n_h = p->hidden_size;
    int32_t j, g;
    for (j = 0; j < n_h; ++j) {
        int32_t zj[4];
        tl_unit_preact(p, j, x, h, zj);
        tl_unit_gates(p, j, c[j], zj, &gates[j], &gates[n_h + j], &gates[2 * n_h + j]);
        for (g = 0; g < 4; ++g) {
            z[g * n_h + j] = zj[g];
        }
    }
}

void tl_lstm_cell_s16(const tl_lstm_params_t *p, const int32_t *gates, int16_t *c)
{
    const int32_t n_h = p->hidden_size;
    int32_t j;
    for (j = 0; j < n_h; ++j) {
        c[j] = tl_unit_cell(p, gates[j], gates[n_h + j], gates[2 * n_h + j], c[j]);
    }
}
