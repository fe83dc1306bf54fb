/*
 * tl_lstm_internal.h - what the LSTM runtime files share; not part of the API (include tl_lstm.h).
 *
 * The LSTM runtime is split the CMSIS-NN way, one kernel family per file:
 *
 *   tl_lstm_step.c           the general step tl_lstm_step_s8 (every layer), and the per-unit stages
 *                            the steps share (widening of x and h, peepholes and clip, gates from
 *                            the standard or the custom tables, cell rounding); defines
 *                            TL_W16_ENCODING
 *   tl_lstm_fast.c           the fast step tl_lstm_step_fast (the standard table's layers: one unit
 *                            loop with the gate sums, sigmoid, tanh, cell and h' inlined)
 *   tl_lstm_stages.c         the stage kernels for tests: tl_lstm_gates_s8, tl_lstm_cell_s16
 *   tl_kernels_v7em.c        Armv7E-M (M4, M7, M33, M55) assembly: the SMLAD quad kernels
 *   tl_kernels_v7em_unit.c   Armv7E-M assembly: tl_lstm_step_fast, the whole step in one routine
 *                            (its offsets, quad macros, frame and lookup macros: tl_kernels_v7em_unit.h)
 *   tl_kernels_v6m.c         Armv6-M (M0, M0+) assembly: the quad kernels on biased int16 and int8 weights
 *   tl_kernels_v6m_unit.c    Armv6-M assembly: tl_lstm_step_fast's unit loop
 *   tl_kernels_sse2.c        x86 SSE2 (host validation builds): PMADDWD quad kernels
 *   tl_kernels_portable.c    portable C quad kernels (everything else, and -DTL_PORTABLE)
 *
 * Each kernel file compiles to nothing but a typedef off its architecture, so every build lists
 * the same files. Exactly one file defines each of tl_mac4_w16 and tl_mac4_w8, selected by
 * TL_KERNEL_DSP (tl_fixedpoint.h), TL_KERNEL_SSE2 (below) and TL_W16_BIAS / TL_W8_BIAS (tl_lstm.h).
 * All names are tl_-prefixed.
 *
 * The helpers defined here are forced inline (TL_ALWAYS_INLINE); the per-unit stages only declared
 * here (peepholes and clip, the gates, the Armv6-M cell) stay out of line in tl_lstm_step.c, so a
 * model links one copy of each, and of the tl_fixedpoint.h helpers they call (tl_requant,
 * tl_lut_eval, the general sigmoid and tanh).
 *
 * Host tests define TL_NO_LONG_MUL (with TL_PORTABLE) to run the Armv6-M arithmetic (16-bit-half
 * products, 32-bit cell words) on the build machine.
 */
#ifndef TL_LSTM_INTERNAL_H
#define TL_LSTM_INTERNAL_H

#include <stdint.h>

#include "tl_lstm.h"

#if !defined(TL_KERNEL_DSP) && defined(__SSE2__) && !defined(TL_PORTABLE)
/* x86 hosts (validation builds): PMADDWD, the 8-lane cousin of SMLAD */
#define TL_KERNEL_SSE2 1
#endif
#if !defined(TL_KERNEL_DSP) && !defined(TL_KERNEL_SSE2) && TL_W16_BIAS != 0
/* Armv6-M (biased weights): the assembly of tl_kernels_v6m.c, and tl_lstm_step_fast is the assembly
 * unit loop of tl_kernels_v6m_unit.c */
#define TL_V6M_ASM 1
#endif

/* The text around a hand-written Thumb function `name` (a string literal): its own section (so
 * --gc-sections drops it when unused), unified syntax, a hidden global symbol with type and size. */
#define TL_ASM_FUNC_BEGIN(name)                                                                          \
    ".pushsection .text." name ",\"ax\",%progbits\n"                                                     \
    ".syntax unified\n"                                                                                  \
    ".thumb\n"                                                                                           \
    ".balign 4\n"                                                                                        \
    ".global " name "\n"                                                                                 \
    ".hidden " name "\n"                                                                                 \
    ".thumb_func\n"                                                                                      \
    ".type " name ", %function\n" name ":\n"
#define TL_ASM_FUNC_END(name) ".size " name ", .-" name "\n.popsection\n"

/* --- the quad kernels (tl_kernels_*.c) ---------------------------------------------------------- */

/* acc[g] += sum over nq quads of the four rows g = 0..3 of w (quad order) times v (quad order):
 * int16 weights as TL_W16 words (quad order), or int8 weights as TL_W8 bytes (natural order within
 * a quad); with a weight bias (Armv6-M) the sums include bias * sum(v), which the caller's start
 * value cancels (tl_unit_acc). */
void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc);
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc);

/* --- the per-unit stages shared by the steps (tl_lstm_step.c) ---------------------------------- */

/* n int8 values v -> (v - zp) << pre as int16 in quad order, zero-padded to a multiple of 4 (spec
 * sec. 5; |v - zp| <= 255, pre <= 7). Returns their sum modulo 2^32: the weight biases' corrections
 * are -TL_W16_BIAS * sum and -TL_W8_BIAS * sum (tl_acc_start; 0 unless Armv6-M). */
uint32_t tl_unpack_quads(const int8_t *src, int32_t n, int32_t zp, int32_t pre, int16_t *dst);

/* The start of a unit's accumulators over inputs whose widened sum is `sum`: 0, or on Armv6-M minus
 * the weight bias times the sum (modulo 2^32: the kernels' sums wrap back to the exact int32). */
TL_ALWAYS_INLINE int32_t tl_acc_start(uint32_t sum, int32_t wide)
{
    return (int32_t)(0u - (wide ? (uint32_t)TL_W16_BIAS : (uint32_t)TL_W8_BIAS) * sum);
}

/* t = B + mul16(acc_x, mx) + mul16(acc_h, mh) (spec sec. 6) with mult = mx | mh << 16: on Armv7E-M
 * one SMLAWB and one SMLAWT (the halves are < 2^15, so their signed reading is the value). */
TL_ALWAYS_INLINE int32_t tl_gate_sum(int32_t bias, uint32_t mult, int32_t ax, int32_t ah)
{
#if defined(TL_KERNEL_DSP)
    int32_t t;
    __asm__("smlawb %0, %1, %2, %3" : "=r"(t) : "r"(ax), "r"(mult), "r"(bias));
    __asm__("smlawt %0, %1, %2, %3" : "=r"(t) : "r"(ah), "r"(mult), "r"(t));
    return t;
#else
    return bias + tl_mul16(ax, (int32_t)(mult & 0xFFFFu)) + tl_mul16(ah, (int32_t)(mult >> 16));
#endif
}

/* z[g] (g = i, f, g, o) of a unit from its accumulators: (B + mul16(ax, mx) + mul16(ah, mh)) >> s. */
TL_ALWAYS_INLINE void tl_unit_preact(const tl_lstm_unit_t *u, const int32_t ax[4], const int32_t ah[4], int32_t z[4])
{
    z[0] = tl_gate_sum(u->bias[0], u->mult[0], ax[0], ah[0]) >> u->shift[0];
    z[1] = tl_gate_sum(u->bias[1], u->mult[1], ax[1], ah[1]) >> u->shift[1];
    z[2] = tl_gate_sum(u->bias[2], u->mult[2], ax[2], ah[2]) >> u->shift[2];
    z[3] = tl_gate_sum(u->bias[3], u->mult[3], ax[3], ah[3]) >> u->shift[3];
}

/* Peepholes on the old cell for i and f, then clip of i, f, g (spec sec. 6): the rarer features. */
void tl_unit_peep_clip(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4]);

/* The output gate's peephole on the new cell, then its clip (spec sec. 9, steps 3-4). */
int32_t tl_unit_peep_clip_o(const tl_lstm_params_t *p, int32_t j, int32_t c_new, int32_t zo);

/* Peepholes and clip (tl_unit_peep_clip), then the gates i, f, g (Q(q)) from the standard table or
 * the custom tables. */
void tl_unit_gates(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4], int32_t *gi, int32_t *gf,
                   int32_t *gg);

#if defined(TL_NO_LONG_MUL)
/* floor(a * b / 2^32) for b in [0, 2^31) without a 64-bit multiply (Armv6-M: MULS only):
 * a = ah 2^16 + al, b = bh 2^16 + bl (al, bl unsigned 16-bit; ah signed, bh >= 0), so
 * a b / 2^16 = ah bh 2^16 + x + y + frac with x = ah bl (|x| < 2^31), y = al bh + floor(al bl / 2^16)
 * (< 2^31), 0 <= frac < 1; x + y is split as (x >> 16) 2^16 + ((x & 0xFFFF) + y) to stay in 32 bits. */
TL_ALWAYS_INLINE int32_t tl_mul_hi_pos(int32_t a, int32_t b)
{
#if defined(__GNUC__) && !defined(TL_PORTABLE)
    /* the same 17 instructions in five low registers (GCC spills the C form heavily) */
    int32_t ah, bh, x;
    __asm__(".syntax unified\n\t"
            "asrs %[ah], %[a], #16\n\t"
            "uxth %[a], %[a]\n\t"         /* al */
            "lsrs %[bh], %[b], #16\n\t"
            "uxth %[b], %[b]\n\t"         /* bl */
            "movs %[x], %[ah]\n\t"
            "muls %[x], %[b]\n\t"         /* x = ah bl */
            "muls %[b], %[a]\n\t"         /* al bl */
            "lsrs %[b], %[b], #16\n\t"
            "muls %[a], %[bh]\n\t"        /* al bh */
            "adds %[a], %[a], %[b]\n\t"   /* y */
            "muls %[ah], %[bh]\n\t"       /* ah bh */
            "uxth %[b], %[x]\n\t"
            "adds %[a], %[a], %[b]\n\t"
            "lsrs %[a], %[a], #16\n\t"
            "asrs %[x], %[x], #16\n\t"
            "adds %[ah], %[ah], %[x]\n\t"
            "adds %[ah], %[ah], %[a]"
            : [ah] "=&l"(ah), [bh] "=&l"(bh), [x] "=&l"(x), [a] "+l"(a), [b] "+l"(b)
            :
            : "cc");
    return ah;
#else
    const int32_t ah = a >> 16;
    const uint32_t al = (uint32_t)a & 0xFFFFu;
    const int32_t bh = b >> 16;
    const uint32_t bl = (uint32_t)b & 0xFFFFu;
    const int32_t x = ah * (int32_t)bl;
    const uint32_t y = al * (uint32_t)bh + ((al * bl) >> 16);
    return ah * bh + (x >> 16) + (int32_t)((((uint32_t)x & 0xFFFFu) + y) >> 16);
#endif
}
#endif

/* floor(a * b / 2^32) for b in [0, 2^31): the high word of the product (SMULL on Armv7-M). */
TL_ALWAYS_INLINE int32_t tl_mul_hi(int32_t a, int32_t b)
{
#if defined(TL_NO_LONG_MUL)
    return tl_mul_hi_pos(a, b);
#else
    return (int32_t)(((int64_t)a * (int64_t)b) >> 32);
#endif
}

/* tl_requant out of line (tl_lstm_step.c): one copy for the steps' rarer requantizations. */
int32_t tl_requant_ext(int32_t acc, int32_t mult, int32_t shift);

/* tl_requant forced inline for the hidden output: with shift >= 33 (every layer whose h scale is not
 * tiny) only the high word of the product (spec sec. 2), else the general form, out of line. */
TL_ALWAYS_INLINE int32_t tl_requant_hot(int32_t acc, int32_t mult, int32_t shift)
{
    if (TL_LIKELY(shift >= 33)) {
        return (tl_mul_hi(acc, mult) + ((int32_t)1 << (shift - 33))) >> (shift - 32);
    }
    return tl_requant_ext(acc, mult, shift);
}

/* sat16(round_shift(hi:lo, s)) for s in [1, 31], forced inline: the usual cell shift. */
TL_ALWAYS_INLINE int16_t tl_cell_round_hot(int32_t hi, uint32_t lo, int32_t s)
{
    const int32_t qh = hi >> s; /* floor quotient: qh:ql */
    const uint32_t ql = ((uint32_t)hi << (32 - s)) | (lo >> s);
    const uint32_t mask = ((uint32_t)1 << s) - 1u;
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
    /* + 1 when the remainder is above half, or exactly half and the quotient odd (spec sec. 2) */
    return (int16_t)(fq + (int32_t)(((lo & mask) + (mask >> 1) + (ql & 1u)) >> s));
}

#if defined(TL_NO_LONG_MUL)
/* c' = sat16(round_shift((f*c << a_fc) + (i*g << a_ig), s_c)): one rounding (spec sec. 7),
 * on 32-bit words (tl_lstm_step.c). */
int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old);
#else
/* sat16(round_shift(hi:lo, s)) for the cell's sum hi:lo (< 2^54 in magnitude), any s (tl_lstm_step.c). */
int16_t tl_cell_round(int32_t hi, uint32_t lo, int32_t s);

/* c' = sat16(round_shift((f*c << a_fc) + (i*g << a_ig), s_c)): one rounding (spec sec. 7).
 * With a 32x32 -> 64 multiply: for shifts up to 15 the sum is one SMULL + SMLAL of
 * f * (c << a_fc) and i * (g << a_ig) (|c|, |g| <= 2^15: the shifted factors fit int32); else
 * 64-bit shifts on uint64 (a shift of a negative int64 is undefined in C99). */
TL_ALWAYS_INLINE int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old)
{
    int64_t sum;
    if (p->a_fc <= 15 && p->a_ig <= 15) {
        sum = (int64_t)gf * (int64_t)(c_old * ((int32_t)1 << p->a_fc))
              + (int64_t)gi * (int64_t)(gg * ((int32_t)1 << p->a_ig));
    } else {
        sum = (int64_t)((uint64_t)(int64_t)(gf * c_old) << p->a_fc) + (int64_t)((uint64_t)(int64_t)(gi * gg) << p->a_ig);
    }
    if (p->s_c >= 1 && p->s_c <= 31) {
        return tl_cell_round_hot((int32_t)(sum >> 32), (uint32_t)((uint64_t)sum & 0xFFFFFFFFu), p->s_c);
    }
    return tl_cell_round((int32_t)(sum >> 32), (uint32_t)((uint64_t)sum & 0xFFFFFFFFu), p->s_c);
}
#endif

/* The four gate accumulators of unit j from the widened x (vx) and h (vh), starting from 0 (spec
 * sec. 5) or the weight biases' corrections (Armv6-M); sx, sh: the sums from tl_unpack_quads. */
TL_ALWAYS_INLINE void tl_unit_acc(const tl_lstm_params_t *p, int32_t j, const int16_t *vx, const int16_t *vh,
                                  uint32_t sx, uint32_t sh, int32_t ax[4], int32_t ah[4])
{
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (p->hidden_size + 3) >> 2;
    const int32_t x0 = tl_acc_start(sx, p->wx16 != 0), h0 = tl_acc_start(sh, p->wh16 != 0);
    int32_t g;
    for (g = 0; g < 4; ++g) {
        ax[g] = x0;
        ah[g] = h0;
    }
    if (p->wx16 != 0) {
        tl_mac4_w16(p->wx16 + 16 * qx * j, vx, qx, ax);
    } else {
        tl_mac4_w8(p->wx + 16 * qx * j, vx, qx, ax);
    }
    if (p->wh16 != 0) {
        tl_mac4_w16(p->wh16 + 16 * qh * j, vh, qh, ah);
    } else {
        tl_mac4_w8(p->wh + 16 * qh * j, vh, qh, ah);
    }
}

/* The standard table's sigmoid and tanh in their short forms (spec sec. 8.1), shared by the LSTM's and
 * the GRU's fast steps (tl_lstm_fast.c, tl_gru_fast.c). */
/* floor((V(u) + add) / 2^sh) of the standard table, sh >= 1 (tl_lut_u16_div with the mask hoisted). */
TL_ALWAYS_INLINE int32_t tl_std_div(const uint16_t *t, uint32_t n, uint32_t u, int32_t sh, uint32_t mask, int32_t add)
{
    const uint32_t j = u >> sh;
    if (TL_LIKELY(j < n)) {
        const int32_t d0 = t[j];
        return d0 + ((((int32_t)t[j + 1] - d0) * (int32_t)(u & mask) + add) >> sh);
    }
    return (int32_t)t[n] + (add >> sh);
}

/* tl_sigmoid_q15 for sh >= 1: d = floor((V(|z|) + 2^sh) / 2^(sh+1)); 2^15 - d for z >= 0, else d. */
TL_ALWAYS_INLINE int32_t tl_std_sigmoid(int32_t z, const uint16_t *t, uint32_t n, int32_t sh, uint32_t mask)
{
    const uint32_t u = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    const int32_t d = tl_std_div(t, n, u, sh, mask, (int32_t)(mask + 1u)) >> 1;
    return z >= 0 ? TL_ONE_Q15 - d : d;
}

/* tl_tanh_q15 for sh >= 1: v = 2^15 - floor((V(2 |z|) + 2^(sh-1)) / 2^sh); v for z >= 0, else -v.
 * No clamp of |z| at n 2^sh is needed: |z| < 2^31 so 2 |z| fits uint32, and beyond the clamp
 * j = (2 |z|) >> sh >= n gives D[n] either way. */
TL_ALWAYS_INLINE int32_t tl_std_tanh(int32_t z, const uint16_t *t, uint32_t n, int32_t sh, uint32_t mask)
{
    const uint32_t u = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    const int32_t v = TL_ONE_Q15 - tl_std_div(t, n, 2u * u, sh, mask, (int32_t)((mask + 1u) >> 1));
    return z >= 0 ? v : -v;
}

#endif /* TL_LSTM_INTERNAL_H */
