/*
 * tl_lstm_step.c - the general integer LSTM step tl_lstm_step_s8 (docs/quantization.md sec. 5-sec. 9;
 * memory layout: sec. 5), and the per-unit stages it shares with the fast step (tl_lstm_fast.c) and
 * the stage kernels (tl_lstm_stages.c). The file layout is described in tl_lstm_internal.h.
 *
 * A step first widens x and h to int16 in the scratch, (x - zp_x) << pre_x and (h - zp_h) << pre_h,
 * in "quad order": inputs 4q..4q+3 are stored as (4q, 4q+2, 4q+1, 4q+3), zero-padded to a multiple
 * of 4. Then, per hidden unit j, one pass over x and one over h give the four gate accumulators
 * (weights [unit][quad][gate], see tl_lstm.h; the quad kernels are in tl_kernels_*.c), and the gate
 * sums t = B + mul16(acc_x, mx) + mul16(acc_h, mh), z = t >> s (Q(P)), peepholes, clip, the gates
 * (standard or custom tables), the cell update and the hidden output of unit j follow at once. Only c[j] is read by unit j, so the cell is updated in place; the new h goes to the
 * scratch because every unit reads the old h.
 *
 * The integer sums are exact (the quantizer proves they fit int32), so the order in which a
 * kernel adds its products changes no result: the Armv7E-M (SMLAD), Armv6-M and x86 SSE2
 * kernels are bit-identical to the portable C ones (-DTL_PORTABLE).
 *
 * The shared per-unit stages are external (tl_-prefixed, declared in tl_lstm_internal.h) because
 * the fast step and the stage kernels call them too; they stay out of line as before the split.
 */
#include "tl_lstm_internal.h"

const int32_t TL_W16_ENCODING = TL_W16_BIAS; /* and TL_W8_BIAS: both biased or neither */
typedef char tl_assert_w8_bias[(TL_W8_BIAS != 0) == (TL_W16_BIAS != 0) ? 1 : -1];

uint32_t tl_unpack_quads(const int8_t *src, int32_t n, int32_t zp, int32_t pre, int16_t *dst)
{
    int32_t k;
    uint32_t sum = 0u; /* modulo 2^32 (a long row of widened values may pass int32) */
    /* (v - zp) << pre on the unsigned word (a left shift of a negative int is undefined in C99);
     * |v - zp| << pre <= 255 << 7 fits int16 */
#define TL_WIDEN(v) ((int16_t)(int32_t)((uint32_t)((int32_t)(v) - zp) << pre))
    for (k = 0; k + 4 <= n; k += 4, dst += 4) {
        dst[0] = TL_WIDEN(src[k]);
        dst[1] = TL_WIDEN(src[k + 2]);
        dst[2] = TL_WIDEN(src[k + 1]);
        dst[3] = TL_WIDEN(src[k + 3]);
        sum += (uint32_t)(dst[0] + dst[1]) + (uint32_t)(dst[2] + dst[3]);
    }
    if (k < n) {
        const int32_t r = n - k;
        dst[0] = TL_WIDEN(src[k]);
        dst[1] = 0;
        dst[2] = 0;
        dst[3] = 0;
        if (r > 2) {
            dst[1] = TL_WIDEN(src[k + 2]);
        }
        if (r > 1) {
            dst[2] = TL_WIDEN(src[k + 1]);
        }
        sum += (uint32_t)(dst[0] + dst[1] + dst[2]);
    }
#undef TL_WIDEN
    return sum;
}

int32_t tl_requant_ext(int32_t acc, int32_t mult, int32_t shift)
{
    return tl_requant(acc, mult, shift);
}

void tl_unit_peep_clip(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4])
{
    if (p->peep != 0) {
        const int16_t *pj = p->peep + 3 * j;
        z[0] += tl_requant_ext((int32_t)pj[0] * c_old, p->peep_mult[0], p->peep_shift[0]);
        z[1] += tl_requant_ext((int32_t)pj[1] * c_old, p->peep_mult[1], p->peep_shift[1]);
    }
    if (p->has_clip) {
        z[0] = tl_sat(z[0], -p->clip_q, p->clip_q);
        z[1] = tl_sat(z[1], -p->clip_q, p->clip_q);
        z[2] = tl_sat(z[2], -p->clip_q, p->clip_q);
    }
}

int32_t tl_unit_peep_clip_o(const tl_lstm_params_t *p, int32_t j, int32_t c_new, int32_t zo)
{
    if (p->peep != 0) {
        zo += tl_requant_ext((int32_t)p->peep[3 * j + 2] * c_new, p->peep_mult[2], p->peep_shift[2]);
    }
    return p->has_clip ? tl_sat(zo, -p->clip_q, p->clip_q) : zo;
}

/* The f activation (i, f, o gates) and the g activation (cell candidate) of a pre-activation z,
 * and the h activation of a cell value: the standard table (spec sec. 8.1) or the custom tables. */
static int32_t tl_act_f(const tl_lstm_params_t *p, int32_t z)
{
    return p->table != 0 ? tl_sigmoid_q15(z, p->table, p->table_n, p->gate_shift) : tl_lut_eval(z, &p->luts[0]);
}

static int32_t tl_act_g(const tl_lstm_params_t *p, int32_t z)
{
    return p->table != 0 ? tl_tanh_q15(z, p->table, p->table_n, p->gate_shift) : tl_lut_eval(z, &p->luts[1]);
}

static int32_t tl_act_h(const tl_lstm_params_t *p, int32_t c)
{
    return p->table != 0 ? tl_tanh_q15(c, p->table, p->table_n, p->cell_shift) : tl_lut_eval(c, &p->luts[2]);
}

void tl_unit_gates(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4], int32_t *gi, int32_t *gf,
                   int32_t *gg)
{
    tl_unit_peep_clip(p, j, c_old, z);
    *gi = tl_act_f(p, z[0]);
    *gf = p->input_forget ? p->one_f - *gi : tl_act_f(p, z[1]);
    *gg = tl_act_g(p, z[2]);
}

#if defined(TL_NO_LONG_MUL)
/* Only tl_unit_cell below calls it here (inlined, as a static function called once); elsewhere the
 * inline tl_unit_cell of tl_lstm_internal.h calls the external definition. */
static int16_t tl_cell_round(int32_t hi, uint32_t lo, int32_t s);
#endif

/* sat16(round_shift(hi:lo, s)) for the cell's sum hi:lo (< 2^54 in magnitude), on 32-bit words. */
int16_t tl_cell_round(int32_t hi, uint32_t lo, int32_t s)
{
    if (s <= 0) {
        /* no rounding: the sum itself */
        if (hi != ((int32_t)lo >> 31)) {
            return hi < 0 ? (int16_t)TL_INT16_MIN : (int16_t)TL_INT16_MAX;
        }
        return tl_sat16((int32_t)lo);
    }
    if (s < 32) {
        return tl_cell_round_hot(hi, lo, s);
    }
    /* s >= 32: the quotient of a sum < 2^54 fits int32 */
    return tl_sat16(tl_round_shift_words(hi, lo, s));
}

#if defined(TL_NO_LONG_MUL)
/* v * 2^a (a in [0, 62]) as 64-bit words, no 64-bit shift (libgcc would be called). */
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

/* The sum (< 2^54) as hi:lo, then the rounded quotient saturated. */
int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old)
{
    int32_t h1, h2;
    uint32_t l1, l2, lo;
    tl_shl_words(gf * c_old, p->a_fc, &h1, &l1);
    tl_shl_words(gi * gg, p->a_ig, &h2, &l2);
    lo = l1 + l2;
    return tl_cell_round((int32_t)((uint32_t)h1 + (uint32_t)h2 + (lo < l1 ? 1u : 0u)), lo, p->s_c);
}
#endif

void tl_lstm_step_s8(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    int8_t *const hn = (int8_t *)(vh + 4 * qh);
    const tl_lstm_unit_t *u = p->units;
    int32_t j;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    const uint32_t sh = tl_unpack_quads(h, n_h, p->h_zero_point, p->pre_h, vh);
    for (j = 0; j < n_h; ++j, ++u) {
        int32_t ax[4], ah[4], z[4];
        int32_t gi, gf, gg, go, act;
        int16_t c_new;
        /* 1: gate pre-activations and i, f, g */
        tl_unit_acc(p, j, vx, vh, sx, sh, ax, ah);
        tl_unit_preact(u, ax, ah, z);
        tl_unit_gates(p, j, c[j], z, &gi, &gf, &gg);
        /* 2: cell */
        c_new = tl_unit_cell(p, gi, gf, gg, c[j]);
        c[j] = c_new;
        /* 3-4: output gate: peephole on the NEW cell, then clip */
        z[3] = tl_unit_peep_clip_o(p, j, c_new, z[3]);
        /* 5-7: o, h_act(c'), h' = sat8(zp_h + requant(o * a)) */
        go = tl_act_f(p, z[3]);
        act = tl_act_h(p, c_new);
        hn[j] = tl_sat8(p->h_zero_point + tl_requant_ext(go * act, p->h_mult, p->h_shift));
    }
    for (j = 0; j < n_h; ++j) {
        h[j] = hn[j];
    }
}
