/*
 * tl_lstm_mve.c - the Helium (Armv8.1-M MVE) LSTM step tl_lstm_step_mve and its stage kernel
 * tl_lstm_stages_mve (tests), on the Helium layout (tl_lstm_mve.h). Selected by TL_KERNEL_MVE; on every
 * other target this file is empty (and tl_lstm_layout_mve undefined, so a Helium model fails to link).
 *
 * The step widens x and h (below), fills the unit loop's context with the step's constants and runs
 * the unit loop (tl_kernels_mve.c, assembly), which computes four units per block in the four 32-bit
 * lanes, spec sec. 6-9 bit for bit:
 *   t = B + mul16(acc_x, mx) + mul16(acc_h, mh), z = t >> s       mul16(a, m) = VMULH(a, m << 16)
 *   sigmoid, tanh from the standard table (sec. 8.1)              inputs clamped to n 2^sh - 1, which
 *                                                                 equals "j >= n: D[n]" as D[n-1] == D[n]
 *   c' = sat16(round_shift((f c << a_fc) + (i g << a_ig), s_c))     the 32-bit form of the fast step
 *                                                                 (tl_lstm_fast.c, tl_std_cell)
 *   h' = sat8(zp_h + requant(o tanh(c'), m, s)), s >= 33         (hi(o a, m) + 2^(s-33)) >> (s - 32)
 * The cell form: with A = f c and B = i g, either a_ig = 0 (k <= 15, a = a_fc, s_c = 15 + a):
 * S = A + (B >> a), q = S >> 15, remainder ((S & 0x7FFF) << a) | (B & (2^a - 1)); or a_fc = 0 (k > 15,
 * b = a_ig, s_c = 15): S = A + ((B & (2^(15-b) - 1)) << b), q = (B >> (15 - b)) + (S >> 15), remainder
 * S & 0x7FFF; then q + ((rem + 2^(s_c-1) - 1 + (q & 1)) >> s_c) rounds half to even.
 */
#include <stddef.h>

#include "tl_lstm_mve.h"

#if defined(TL_KERNEL_MVE)
#include <arm_mve.h>

const int32_t tl_lstm_layout_mve = 1;

/* The assembly addresses the context by these offsets. */
#define TL_MVE_AT(field, off) (offsetof(tl_mve_ctx_t, field) == (off))
typedef char tl_mve_ctx_layout[(TL_MVE_AT(wx, TL_MVE_OFF_WX) && TL_MVE_AT(wh, TL_MVE_OFF_WH)
                                && TL_MVE_AT(vx, TL_MVE_OFF_VX) && TL_MVE_AT(vh, TL_MVE_OFF_VH)
                                && TL_MVE_AT(nx1, TL_MVE_OFF_NX1) && TL_MVE_AT(nh1, TL_MVE_OFF_NH1)
                                && TL_MVE_AT(wide, TL_MVE_OFF_WIDE) && TL_MVE_AT(units, TL_MVE_OFF_UNITS)
                                && TL_MVE_AT(c, TL_MVE_OFF_C) && TL_MVE_AT(h, TL_MVE_OFF_H)
                                && TL_MVE_AT(left, TL_MVE_OFF_LEFT) && TL_MVE_AT(table, TL_MVE_OFF_TABLE)
                                && TL_MVE_AT(g_nsh, TL_MVE_OFF_G_NSH) && TL_MVE_AT(g_add_sig, TL_MVE_OFF_G_ADD_SIG)
                                && TL_MVE_AT(g_add_tanh, TL_MVE_OFF_G_ADD_TANH)
                                && TL_MVE_AT(c_nsh, TL_MVE_OFF_C_NSH) && TL_MVE_AT(c_add, TL_MVE_OFF_C_ADD)
                                && TL_MVE_AT(cell_s1, TL_MVE_OFF_CELL_S1) && TL_MVE_AT(cell_s2, TL_MVE_OFF_CELL_S2)
                                && TL_MVE_AT(cell_mask, TL_MVE_OFF_CELL_MASK)
                                && TL_MVE_AT(cell_round, TL_MVE_OFF_CELL_ROUND)
                                && TL_MVE_AT(cell_form, TL_MVE_OFF_CELL_FORM)
                                && TL_MVE_AT(cell_nsc, TL_MVE_OFF_CELL_NSC) && TL_MVE_AT(h_round, TL_MVE_OFF_H_ROUND)
                                && TL_MVE_AT(h_nsh, TL_MVE_OFF_H_NSH) && TL_MVE_AT(zp_h, TL_MVE_OFF_ZP_H)
                                && TL_MVE_AT(g_cap, TL_MVE_OFF_G_CAP) && TL_MVE_AT(g_mask, TL_MVE_OFF_G_MASK)
                                && TL_MVE_AT(c_cap, TL_MVE_OFF_C_CAP) && TL_MVE_AT(c_mask, TL_MVE_OFF_C_MASK)
                                && TL_MVE_AT(h_mult, TL_MVE_OFF_H_MULT) && TL_MVE_AT(acc, TL_MVE_OFF_ACC)
                                && sizeof(tl_mve_ctx_t) == TL_MVE_CTX_BYTES
                                && offsetof(tl_mve_trace_t, z) == TL_MVE_OFF_TRACE_Z
                                && offsetof(tl_mve_trace_t, gates) == TL_MVE_OFF_TRACE_G)
                                   ? 1
                                   : -1];

/* n int8 values -> (v - zp) << pre as int16, zero-padded to a multiple of 8 (spec sec. 5). */
static void tl_mve_widen(const int8_t *src, int32_t n, int32_t zp, int32_t pre, int16_t *dst)
{
    int32_t k;
    for (k = 0; k < n; k += 8) {
        const mve_pred16_t live = vctp16q((uint32_t)(n - k));
        const int16x8_t v = vshlq_r_s16(vsubq_n_s16(vldrbq_z_s16(src + k, live), (int16_t)zp), pre);
        vstrhq_s16(dst + k, vpselq_s16(v, vdupq_n_s16(0), live));
    }
}

static void tl_mve_fill(int32_t *dst, int32_t v)
{
    dst[0] = dst[1] = dst[2] = dst[3] = v;
}

/* The context of one step: x and h widened into the scratch, the constants of the unit loop. */
static void tl_mve_setup(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, int16_t *c, int8_t *h_out,
                         int16_t *scratch, tl_mve_ctx_t *k)
{
    const int32_t nx = (p->input_size + 7) >> 3, nh = (p->hidden_size + 7) >> 3;
    const int32_t gs = p->gate_shift, cs = p->cell_shift;
    const uint32_t n = (uint32_t)p->table_n;
    k->wx = p->wx16 != 0 ? (const void *)p->wx16 : (const void *)p->wx;
    k->wh = p->wh16 != 0 ? (const void *)p->wh16 : (const void *)p->wh;
    k->vx = scratch;
    k->vh = scratch + 8 * nx;
    k->nx1 = nx - 1;
    k->nh1 = nh - 1;
    k->wide = (p->wx16 != 0 ? 1 : 0) | (p->wh16 != 0 ? 2 : 0);
    k->units = p->units;
    k->c = c;
    k->h = h_out;
    k->left = p->hidden_size;
    k->table = p->table;
    k->g_nsh = -gs;
    k->g_add_sig = (int32_t)1 << gs;
    k->g_add_tanh = (int32_t)1 << (gs - 1);
    k->c_nsh = -cs;
    k->c_add = (int32_t)1 << (cs - 1);
    k->cell_form = p->a_ig != 0;
    k->cell_s1 = p->a_ig != 0 ? p->a_ig : -p->a_fc;
    k->cell_s2 = p->a_ig != 0 ? p->a_ig - 15 : p->a_fc;
    k->cell_mask = (int32_t)(((uint32_t)1 << (p->a_ig != 0 ? 15 - p->a_ig : p->a_fc)) - 1u);
    k->cell_round = (int32_t)(((uint32_t)1 << (p->s_c - 1)) - 1u);
    k->cell_nsc = -p->s_c;
    k->h_round = (int32_t)1 << (p->h_shift - 33);
    k->h_nsh = 32 - p->h_shift;
    k->zp_h = p->h_zero_point;
    tl_mve_fill(k->g_cap, (int32_t)((n << gs) - 1u));
    tl_mve_fill(k->g_mask, (int32_t)(((uint32_t)1 << gs) - 1u));
    tl_mve_fill(k->c_cap, (int32_t)((n << cs) - 1u));
    tl_mve_fill(k->c_mask, (int32_t)(((uint32_t)1 << cs) - 1u));
    tl_mve_fill(k->h_mult, p->h_mult);
    tl_mve_widen(x, p->input_size, p->x_zero_point, p->pre_x, scratch);
    tl_mve_widen(h, p->hidden_size, p->h_zero_point, p->pre_h, scratch + 8 * nx);
}

void tl_lstm_step_mve(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    tl_mve_ctx_t k;
    tl_mve_setup(p, x, h, c, h, scratch, &k); /* the old h is read (widened) before h' is written */
    tl_mve_units(&k);
}

void tl_lstm_stages_mve(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, int16_t *c, int32_t *z,
                        int32_t *gates, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    int8_t h_new[4];
    tl_mve_trace_t t;
    int32_t j, g, u;
    tl_mve_setup(p, x, h, c, h_new, scratch, &t.k);
    for (j = 0; j < n_h; j += 4) {
        const int32_t m = n_h - j < 4 ? n_h - j : 4;
        t.k.left = m; /* one block per call */
        t.k.h = h_new;
        tl_mve_units_trace(&t);
        for (u = 0; u < m; ++u) {
            for (g = 0; g < 4; ++g) {
                z[g * n_h + j + u] = t.z[4 * g + u];
            }
            for (g = 0; g < 3; ++g) {
                gates[g * n_h + j + u] = t.gates[4 * g + u];
            }
        }
    }
}

#else
typedef char tl_lstm_mve_unused; /* ISO C: a translation unit declares something */
#endif
