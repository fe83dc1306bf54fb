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

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
/* Armv7E-M: SMLAD on pairs of int16 (two MACs per instruction). The integer sums are exact,
 * so the pairing order does not change any result. Inline asm (GCC/Clang syntax). */
static inline void tl_dot4_s16(const int16_t *w, int32_t n, const int8_t *v, int32_t acc[4])
{
    const int16_t *w0 = w;
    const int16_t *w1 = w + n;
    const int16_t *w2 = w + 2 * n;
    const int16_t *w3 = w + 3 * n;
    int32_t cnt = n >> 2; /* groups of 4 inputs */
    const int8_t *const vend = v + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    if (cnt > 0) {
        /* 4 inputs -> (v0, v1), (v2, v3); 8 SMLAD on word loads of the 4 rows (unaligned ok) */
        int32_t t1, t2, t3;
        __asm__("1:\n\t"
                "ldr    %[t1], [%[v]], #4\n\t"
                "sxtb16 %[t2], %[t1]\n\t"
                "sxtb16 %[t1], %[t1], ror #8\n\t"
                "pkhbt  %[t3], %[t2], %[t1], lsl #16\n\t"
                "pkhtb  %[t1], %[t1], %[t2], asr #16\n\t"
                "ldr    %[t2], [%[w0]], #4\n\t"
                "smlad  %[a0], %[t2], %[t3], %[a0]\n\t"
                "ldr    %[t2], [%[w1]], #4\n\t"
                "smlad  %[a1], %[t2], %[t3], %[a1]\n\t"
                "ldr    %[t2], [%[w2]], #4\n\t"
                "smlad  %[a2], %[t2], %[t3], %[a2]\n\t"
                "ldr    %[t2], [%[w3]], #4\n\t"
                "smlad  %[a3], %[t2], %[t3], %[a3]\n\t"
                "ldr    %[t2], [%[w0]], #4\n\t"
                "smlad  %[a0], %[t2], %[t1], %[a0]\n\t"
                "ldr    %[t2], [%[w1]], #4\n\t"
                "smlad  %[a1], %[t2], %[t1], %[a1]\n\t"
                "ldr    %[t2], [%[w2]], #4\n\t"
                "smlad  %[a2], %[t2], %[t1], %[a2]\n\t"
                "ldr    %[t2], [%[w3]], #4\n\t"
                "smlad  %[a3], %[t2], %[t1], %[a3]\n\t"
                "subs   %[cnt], %[cnt], #1\n\t"
                "bne    1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
                  [w2] "+r"(w2), [w3] "+r"(w3), [v] "+r"(v), [cnt] "+r"(cnt), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
                :
                : "cc", "memory");
    }
    while (v != vend) {
        const int32_t vk = *v++;
        a0 += *w0++ * vk;
        a1 += *w1++ * vk;
        a2 += *w2++ * vk;
        a3 += *w3++ * vk;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* int8 weights: SXTB16 both operands; (w0, w2) x (v0, v2) + (w1, w3) x (v1, v3). */
static inline void tl_dot4_s8(const int8_t *w, int32_t n, const int8_t *v, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w + n;
    const int8_t *w2 = w + 2 * n;
    const int8_t *w3 = w + 3 * n;
    const int8_t *const v4end = v + (n & ~(int32_t)3);
    const int8_t *const vend = v + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    while (v != v4end) {
        /* (w0, w2) x (v0, v2) + (w1, w3) x (v1, v3) per row */
        int32_t t1, t2, t3, t4;
        __asm__("ldr    %[t1], [%[v]], #4\n\t"
                "sxtb16 %[t2], %[t1]\n\t"
                "sxtb16 %[t1], %[t1], ror #8\n\t"
                "ldr    %[t3], [%[w0]], #4\n\t"
                "sxtb16 %[t4], %[t3]\n\t"
                "smlad  %[a0], %[t2], %[t4], %[a0]\n\t"
                "sxtb16 %[t3], %[t3], ror #8\n\t"
                "smlad  %[a0], %[t1], %[t3], %[a0]\n\t"
                "ldr    %[t3], [%[w1]], #4\n\t"
                "sxtb16 %[t4], %[t3]\n\t"
                "smlad  %[a1], %[t2], %[t4], %[a1]\n\t"
                "sxtb16 %[t3], %[t3], ror #8\n\t"
                "smlad  %[a1], %[t1], %[t3], %[a1]\n\t"
                "ldr    %[t3], [%[w2]], #4\n\t"
                "sxtb16 %[t4], %[t3]\n\t"
                "smlad  %[a2], %[t2], %[t4], %[a2]\n\t"
                "sxtb16 %[t3], %[t3], ror #8\n\t"
                "smlad  %[a2], %[t1], %[t3], %[a2]\n\t"
                "ldr    %[t3], [%[w3]], #4\n\t"
                "sxtb16 %[t4], %[t3]\n\t"
                "smlad  %[a3], %[t2], %[t4], %[a3]\n\t"
                "sxtb16 %[t3], %[t3], ror #8\n\t"
                "smlad  %[a3], %[t1], %[t3], %[a3]"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
                  [w2] "+r"(w2), [w3] "+r"(w3), [v] "+r"(v), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4)
                :
                : "cc", "memory");
    }
    while (v != vend) {
        const int32_t vk = *v++;
        a0 += *w0++ * vk;
        a1 += *w1++ * vk;
        a2 += *w2++ * vk;
        a3 += *w3++ * vk;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
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

#endif /* __ARM_FEATURE_DSP */

/* tl_requant forced inline for the hot gate requantizations (-Os would call it). */
TL_ALWAYS_INLINE int32_t tl_requant_hot(int32_t acc, int32_t mult, int32_t shift)
{
    int32_t hi;
    uint32_t lo;
    tl_mul_words(acc, mult, &hi, &lo);
    return tl_round_shift_words(hi, lo, shift);
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
        z[g] = tl_requant_hot(ax[g], row[g].mult_x, row[g].shift_x) + tl_requant_hot(ah[g], row[g].mult_h, row[g].shift_h)
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

/* v * 2^a (a in [0, 62]) as 64-bit words, no 64-bit shift. */
static inline void tl_shl_words(int32_t v, int32_t a, int32_t *hi, uint32_t *lo)
{
    if (a <= 0) {
        *hi = v >> 31;
        *lo = (uint32_t)v;
    } else if (a < 32) {
        *hi = v >> (32 - a);
        *lo = (uint32_t)v << a;
    } else {
        *hi = (int32_t)((uint32_t)v << (a - 32));
        *lo = 0u;
    }
}

/* c' = sat16(round_shift((f*c << a_fc) + (i*g << a_ig), s_c)): one rounding (spec sec. 7),
 * on 32-bit words: the sum (< 2^54) as hi:lo, then the rounded quotient saturated. */
static inline int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old)
{
    int32_t h1, h2, hi;
    uint32_t l1, l2, lo;
    const int32_t s = p->s_c;
    tl_shl_words(gf * c_old, p->a_fc, &h1, &l1);
    tl_shl_words(gi * gg, p->a_ig, &h2, &l2);
    lo = l1 + l2;
    hi = (int32_t)((uint32_t)h1 + (uint32_t)h2 + (lo < l1 ? 1u : 0u));
    if (s <= 0) {
        /* no rounding: the sum itself */
        if (hi != ((int32_t)lo >> 31)) {
            return hi < 0 ? (int16_t)TL_INT16_MIN : (int16_t)TL_INT16_MAX;
        }
        return tl_sat16((int32_t)lo);
    }
    if (s < 32) {
        const int32_t qh = hi >> s; /* floor quotient: qh:ql */
        const uint32_t ql = ((uint32_t)hi << (32 - s)) | (lo >> s);
        const uint32_t half = (uint32_t)1 << (s - 1);
        const uint32_t r = lo & ((half << 1) - 1u);
        int32_t fq;
        if (qh != ((int32_t)ql >> 31)) {
            return qh < 0 ? (int16_t)TL_INT16_MIN : (int16_t)TL_INT16_MAX;
        }
        fq = (int32_t)ql;
        if (fq >= TL_INT16_MAX) {
            return (int16_t)TL_INT16_MAX;
        }
        if (fq < TL_INT16_MIN) {
            return (int16_t)TL_INT16_MIN;
        }
        return (int16_t)(fq + (int32_t)((r + half - 1u + (ql & 1u)) >> s));
    }
    /* s >= 32: the quotient of a sum < 2^54 fits int32 */
    return tl_sat16(tl_round_shift_words(hi, lo, s));
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
