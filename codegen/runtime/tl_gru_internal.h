/*
 * tl_gru_internal.h - what the GRU runtime files share; not part of the API (include tl_gru.h).
 *
 *   tl_gru_step.c     the general step tl_gru_step_s8 (every layer) and the per-unit stages the
 *                     files share (narrowing of the state, activations, update, output)
 *   tl_gru_fast.c     the fast steps tl_gru_step_fast[_q15][_lbr0] (the standard table's layers: one
 *                     unit loop per block of four units with sigmoid, tanh, the update and the output
 *                     inlined)
 *   tl_gru_stages.c   the stage kernels for tests: tl_gru_gates_s8, tl_gru_candidate_s8, tl_gru_update_s16
 *   tl_gru_v7em.c     Armv7E-M (M4, M7, M33, M55) assembly: the block loops tl_gru_blocks_v7em and
 *                     tl_gru_blocks0_v7em of tl_gru_step_fast_q15[_lbr0] (no clip, state Q(15))
 *
 * The matrix-vector products are the LSTM's quad kernels (tl_mac4_w16, tl_mac4_w8 in tl_kernels_*.c,
 * declared in tl_lstm_internal.h, with its input widening tl_unpack_quads and the Armv6-M weight-bias
 * start tl_acc_start): one call per gate group of a block of four units (the block layout of tl_gru.h).
 * Host tests define TL_NO_LONG_MUL (with TL_PORTABLE) to run the Armv6-M arithmetic on the build machine.
 */
#ifndef TL_GRU_INTERNAL_H
#define TL_GRU_INTERNAL_H

#include <stdint.h>

#include "tl_gru.h"
#include "tl_lstm_internal.h"

/* Fraction bits of a gate value in the reset product (spec sec. 16.3): 1.0 = 2^15 whatever q_f. */
#define TL_GRU_GATE_Q 15

/* The four accumulators of one gate group of a block: start + w . v over nq quads, with w the 16 nq
 * weights at offset `off` of the int16 words w16 or, when w16 is NULL, of the int8 bytes w8. */
TL_ALWAYS_INLINE void tl_gru_mac(const int8_t *w8, const uint16_t *w16, int32_t off, int32_t nq, const int16_t *v,
                                 int32_t start, int32_t acc[4])
{
    acc[0] = start;
    acc[1] = start;
    acc[2] = start;
    acc[3] = start;
    if (w16 != 0) {
        tl_mac4_w16(w16 + off, v, nq, acc);
    } else {
        tl_mac4_w8(w8 + off, v, nq, acc);
    }
}

/* add + mul16(acc, mult & 0xFFFF) (the input side of a gate sum; SMLAWB on Armv7E-M). */
TL_ALWAYS_INLINE int32_t tl_gru_mla_x(int32_t add, uint32_t mult, int32_t acc)
{
#if defined(TL_KERNEL_DSP)
    int32_t t;
    __asm__("smlawb %0, %1, %2, %3" : "=r"(t) : "r"(acc), "r"(mult), "r"(add));
    return t;
#else
    return add + tl_mul16(acc, (int32_t)(mult & 0xFFFFu));
#endif
}

/* add + mul16(acc, mult >> 16) (the recurrent side; SMLAWT on Armv7E-M). */
TL_ALWAYS_INLINE int32_t tl_gru_mla_h(int32_t add, uint32_t mult, int32_t acc)
{
#if defined(TL_KERNEL_DSP)
    int32_t t;
    __asm__("smlawt %0, %1, %2, %3" : "=r"(t) : "r"(acc), "r"(mult), "r"(add));
    return t;
#else
    return add + tl_mul16(acc, (int32_t)(mult >> 16));
#endif
}

/* shift_half_up((int64)g * u, 15) for |g| <= 2^15 and a result that fits int32 (spec sec. 16.6: the
 * linear_before_reset candidate's reset product). Without a 64-bit multiply, u = uh 2^16 + ul with ul
 * unsigned 16-bit: g u + 2^14 = 2 g uh 2^15 + (g ul + 2^14), and |g ul| + 2^14 < 2^31, |g uh| <= 2^30;
 * the final sum is taken modulo 2^32 (exact: the result fits int32). */
TL_ALWAYS_INLINE int32_t tl_gru_reset_prod(int32_t g, int32_t u)
{
#if defined(TL_NO_LONG_MUL)
    const int32_t uh = u >> 16;
    const int32_t ul = (int32_t)((uint32_t)u & 0xFFFFu);
    return (int32_t)(2u * (uint32_t)(g * uh) + (uint32_t)((g * ul + 0x4000) >> 15));
#else
    return (int32_t)(((int64_t)g * u + 0x4000) >> 15);
#endif
}

/* The quad-order position of element k of a vector (inputs 4q..4q+3 are stored 4q, 4q+2, 4q+1, 4q+3). */
TL_ALWAYS_INLINE int32_t tl_gru_slot(int32_t k)
{
    return (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1);
}

/* The int8 output of a new state: sat8(zp_y + requant(h, y_mult, y_shift)) (spec sec. 16.5, step 5). */
TL_ALWAYS_INLINE int8_t tl_gru_output(const tl_gru_params_t *p, int32_t h)
{
    return tl_sat8(p->y_zero_point + tl_requant_hot(h, p->y_mult, p->y_shift));
}

#if defined(TL_KERNEL_DSP)
/* What tl_gru_blocks_v7em reads (tl_gru_v7em.c checks the offsets). The first eight words are the
 * unit loop's registers r4-r11; the loop writes back un, h, y and units. */
typedef struct {
    const tl_gru_unit_t *un; /* 0: the next block's unit constants */
    int16_t *h;              /* 4: its state */
    int8_t *y;               /* 8: its output */
    const uint16_t *table;   /* 12: the standard table D[0..n] */
    int32_t shift;           /* 16: P - frac >= 1 */
    uint32_t mask;           /* 20: 2^shift - 1 */
    uint32_t n;              /* 24: the table's segments */
    int32_t add;             /* 28: 2^shift */
    int32_t y_mult;          /* 32: the output's requantization, y_shift >= 33: */
    int32_t y_round;         /* 36: 2^(y_shift - 33) + zp_y 2^(y_shift - 32) */
    int32_t y_shift;         /* 40: y_shift - 32, at most 22 */
    const void *wx;          /* 44: W, block layout (TL_W16 words or TL_W8 bytes) */
    const void *wh;          /* 48: R, block layout */
    const int16_t *vx;       /* 52: x widened */
    const int16_t *vh;       /* 56: h narrowed */
    int32_t gx;              /* 60: bytes of one gate group of a block of W */
    int32_t gh;              /* 64: of R */
    void (*mac_x)(void);     /* 68: p->mac_x, tl_mac4_w16 or tl_mac4_w8 for W (called with its own arguments) */
    void (*mac_h)(void);     /* 72: the same for R */
    int32_t qx;              /* 76: quads of x */
    int32_t qh;              /* 80: quads of h */
    int32_t units;           /* 84: units left */
    int32_t *gz;             /* 88: without linear_before_reset: the update gates (H) */
    int16_t *vr;             /* 92: the narrowed reset products, quad order */
    int32_t r_round;         /* 96: 2^(14 + q) */
    int32_t r_shift;         /* 100: 15 + q */
    int32_t t_round;         /* 104: 2^(shift - 1), tanh's rounding term */
} tl_gru_v7em_t;

/* tl_gru_step_fast_q15's block loop (linear_before_reset, no clip, a_h = 0; tl_gru_fast.c): per block
 * the six quad-kernel calls (x: z, r, h rows; h: z, r, h rows, accumulators from 0) and the unit loop. */
void tl_gru_blocks_v7em(tl_gru_v7em_t *k);

/* The same without linear_before_reset: a pass over the blocks for the update gates (kept in gz) and the
 * reset products v_r (in vr), then one for the candidates (R over v_r), the update and the output. */
void tl_gru_blocks0_v7em(tl_gru_v7em_t *k);
#endif

/* --- the per-unit stages shared by the steps and the stage kernels (tl_gru_step.c) -------------- */

/* The state narrowed for the recurrent matvec, shift_half_up(h, q), as int16 in quad order,
 * zero-padded to a multiple of 4; returns the sum modulo 2^32 for the weight-bias start of Armv6-M
 * (tl_acc_start; elsewhere the start is 0 and the sum is not formed: the return value is then
 * meaningless). */
uint32_t tl_gru_narrow(const int16_t *h, int32_t n, int32_t q, int16_t *dst);

/* The reset products without linear_before_reset, v_r = shift_half_up(r h, 15 + q), in quad order,
 * zero-padded; returns their sum modulo 2^32. */
uint32_t tl_gru_reset_vec(const int32_t *r, const int16_t *h, int32_t n, int32_t q, int16_t *dst);

/* z's saturation at +-clip_q (when the layer has clip). */
TL_ALWAYS_INLINE int32_t tl_gru_clip(const tl_gru_params_t *p, int32_t z)
{
    return p->has_clip ? tl_sat(z, -p->clip_q, p->clip_q) : z;
}

/* The pre-activation (after clip) of row group g (0: z, 1: r) of a unit from its accumulators:
 * (B + mul16(ax, mx) + mul16(ah, mh)) >> s; and of the candidate row without linear_before_reset,
 * whose ah is the accumulator over the reset products v_r (g = 2). */
TL_ALWAYS_INLINE int32_t tl_gru_preact(const tl_gru_params_t *p, const tl_gru_unit_t *un, int32_t g, int32_t ax,
                                       int32_t ah)
{
    return tl_gru_clip(p, tl_gate_sum(un->row[g].bias, un->row[g].mult, ax, ah) >> un->shift[g]);
}

/* The candidate's pre-activation (after clip) with linear_before_reset: u = Bu + mul16(ah, mh),
 * t = B + mul16(ax, mx) + shift_half_up(r u, 15), z = t >> s (spec sec. 16.3). */
TL_ALWAYS_INLINE int32_t tl_gru_preact_lbr(const tl_gru_params_t *p, const tl_gru_unit_t *un, int32_t ax, int32_t ah,
                                           int32_t gr)
{
    const int32_t u = tl_gru_mla_h(un->rbias, un->row[2].mult, ah);
    return tl_gru_clip(p, (tl_gru_mla_x(un->row[2].bias, un->row[2].mult, ax) + tl_gru_reset_prod(gr, u)) >> un->shift[2]);
}

/* The f activation (z, r) and the g activation (candidate): the standard table or the custom ones. */
int32_t tl_gru_act_f(const tl_gru_params_t *p, int32_t z);
int32_t tl_gru_act_g(const tl_gru_params_t *p, int32_t z);

/* h' = sat16(round_shift((z h << a_h) + ((one_f - z) n << a_n), s_u)): one rounding (spec sec. 16.4). */
int16_t tl_gru_update_unit(const tl_gru_params_t *p, int32_t gz, int32_t n, int32_t h);

#endif /* TL_GRU_INTERNAL_H */
