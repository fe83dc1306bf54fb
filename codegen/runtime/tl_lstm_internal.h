/*
 * tl_lstm_internal.h - what the LSTM runtime files share; not part of the API (include tl_lstm.h).
 *
 * The LSTM runtime is split the CMSIS-NN way, one kernel family per file:
 *
 *   tl_lstm_step.c           the general step tl_lstm_step_s8, and the per-unit stages every step
 *                            shares (widening of x and h, pre-activations, gates, cell rounding,
 *                            the symmetric table); defines TL_W16_ENCODING
 *   tl_lstm_fast.c           the fast step tl_lstm_step_fast (C unit loop, or the Armv7E-M one)
 *   tl_lstm_stages.c         the stage kernels for tests: tl_lstm_gates_s8, tl_lstm_cell_s16
 *   tl_kernels_v7em.c        Armv7E-M (M4, M7, M33, M55) assembly: the SMLAD quad kernels and the
 *                            fast step's whole unit loop tl_lstm_units_v7em
 *   tl_kernels_v6m.c         Armv6-M (M0, M0+) assembly: the int16 quad kernel on biased weights
 *   tl_kernels_sse2.c        x86 SSE2 (host validation builds): PMADDWD quad kernels
 *   tl_kernels_portable.c    portable C quad kernels (everything else, and -DTL_PORTABLE)
 *
 * Each kernel file compiles to nothing but a typedef off its architecture, so every build lists
 * the same files. Exactly one file defines each of tl_mac4_w16 and tl_mac4_w8, selected by
 * TL_KERNEL_DSP, TL_KERNEL_SSE2 (below) and TL_W16_BIAS (tl_lstm.h). All names are tl_-prefixed.
 *
 * Inlining: the functions only declared here were static functions that GCC kept out of line
 * when the runtime was one file (tl_lstm.c), and the ones defined here are forced inline
 * (TL_ALWAYS_INLINE), so the split kept the Cortex-M code (the same calls; function sizes within
 * a few bytes, from register allocation across files). Everything that calls a
 * tl_fixedpoint.h helper out of line (tl_requant, tl_lut_eval) sits in tl_lstm_step.c, so a
 * model links one copy of each.
 */
#ifndef TL_LSTM_INTERNAL_H
#define TL_LSTM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tl_lstm.h"

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP \
    && !defined(TL_PORTABLE)
#define TL_KERNEL_DSP 1
#elif defined(__SSE2__) && !defined(TL_PORTABLE)
/* x86 hosts (validation builds): PMADDWD, the 8-lane cousin of SMLAD */
#define TL_KERNEL_SSE2 1
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
 * int16 weights as TL_W16 words (quad order), or int8 weights (natural order within a quad). */
void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc);
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc);

#if defined(TL_KERNEL_DSP)
/* The fast step's unit loop (tl_kernels_v7em.c). Everything it needs per step is in a
 * tl_v7em_ctx_t that tl_lstm_step_fast builds; the assembly's offsets are checked below. */
typedef struct { /* one table, loaded with one LDM into r8-r12, lr */
    const uint16_t *t; /* half table T[0..n] */
    int32_t n;
    int32_t shift;
    int32_t mask;   /* 2^shift - 1 */
    int32_t half;   /* 2^(shift-1) - 1 (0 when shift == 0) */
    int32_t two_t0; /* 2 T[0]: f(-x) = 2 T[0] - f(x) */
} tl_v7em_lut_t;

typedef struct {
    const uint16_t *wx;      /*   0: x weights of the current unit (advanced by the loop) */
    const uint16_t *wh;      /*   4: h weights of the current unit */
    const int16_t *vx;       /*   8: widened x */
    const int16_t *vh;       /*  12: widened h (= end of vx) */
    const int16_t *vh_end;   /*  16 */
    const tl_lstm_unit_t *u; /*  20: current unit */
    int16_t *c;              /*  24: cell of the current unit */
    int8_t *hn;              /*  28: new h of the current unit */
    int8_t *hn_end;          /*  32 */
    tl_v7em_lut_t lut[3];    /*  36, 60, 84: lut_f, lut_g, lut_h */
    int32_t cell[5];         /* 108: a_fc, a_ig, s_c, 2^(s_c-1) - 1, 32 - s_c */
    int32_t hq[3];           /* 128: h_mult, h_shift - 33, zp_h */
    int32_t zx[4];           /* 140: requantized x parts of the current unit */
} tl_v7em_ctx_t;

#define TL_V7EM_CHECK(name, cond) typedef char tl_v7em_check_##name[(cond) ? 1 : -1]
TL_V7EM_CHECK(unit, sizeof(tl_lstm_unit_t) == 88 && offsetof(tl_lstm_unit_t, effb_h) == 16
                        && offsetof(tl_lstm_unit_t, mult_x) == 32 && offsetof(tl_lstm_unit_t, mult_h) == 48
                        && offsetof(tl_lstm_unit_t, bias) == 64 && offsetof(tl_lstm_unit_t, rshift_x) == 80
                        && offsetof(tl_lstm_unit_t, rshift_h) == 84);
TL_V7EM_CHECK(ctx, offsetof(tl_v7em_ctx_t, u) == 20 && offsetof(tl_v7em_ctx_t, hn_end) == 32
                       && offsetof(tl_v7em_ctx_t, lut) == 36 && sizeof(tl_v7em_lut_t) == 24
                       && offsetof(tl_v7em_ctx_t, cell) == 108 && offsetof(tl_v7em_ctx_t, hq) == 128
                       && offsetof(tl_v7em_ctx_t, zx) == 140);

void tl_lstm_units_v7em(tl_v7em_ctx_t *ctx);
#endif

/* --- the per-unit stages shared by the steps (tl_lstm_step.c) ---------------------------------- */

/* n int8 values -> int16 in quad order, zero-padded to a multiple of 4. Returns the bias
 * correction of int16 weights for these values: -TL_W16_BIAS * sum (modulo 2^32; 0 unless
 * Armv6-M). */
uint32_t tl_unpack_quads(const int8_t *src, int32_t n, int16_t *dst);

/* A point-symmetric uint16 half table (sigmoid, tanh: the common case of tl_lut_eval). */
int32_t tl_lut_sym16(int32_t x, const tl_lut_t *lut);

/* z[g] (g = i, f, g, o) of a unit from its accumulators: requant(acc_x) + requant(acc_h) + bias. */
void tl_unit_preact(const tl_lstm_unit_t *u, int32_t fast, const int32_t ax[4], const int32_t ah[4], int32_t z[4]);

/* Peepholes on the old cell for i and f, clip of i, f, g; then the gates i, f, g (Q(q)). */
void tl_unit_gates(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4], int32_t *gi, int32_t *gf,
                   int32_t *gg);

/*
 * requant(acc, mult, rshift + 33) when mult is odd (or 0) and rshift = shift - 33 >= 0 (the
 * quantizer's "fast" layers, spec sec. 2.1): then acc * mult / 2^shift is never exactly half-way
 * between two integers, so rounding half up equals rounding half to even, and half up needs only
 * the high word of the product: floor((hi + 2^(shift-33)) / 2^(shift-32)) (one add and two shifts).
 */
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
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

TL_ALWAYS_INLINE int32_t tl_requant_odd(int32_t acc, int32_t mult, int32_t rshift)
{
    int32_t hi;
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
    hi = tl_mul_hi_pos(acc, mult); /* mult >= 0 */
#else
    hi = (int32_t)(((int64_t)acc * (int64_t)mult) >> 32);
#endif
    /* floor((hi + 2^(k-1)) / 2^k) with k = shift - 32, as floor((floor(hi / 2^(k-1)) + 1) / 2) */
    return ((hi >> rshift) + 1) >> 1;
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

#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
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

/* The four gate accumulators of unit j (u = p->units + j) from the widened x (vx) and h (vh);
 * bx, bh: the int16 weights' bias corrections from tl_unpack_quads. */
TL_ALWAYS_INLINE void tl_unit_acc(const tl_lstm_params_t *p, int32_t j, const tl_lstm_unit_t *u, const int16_t *vx,
                                  const int16_t *vh, uint32_t bx, uint32_t bh, int32_t ax[4], int32_t ah[4])
{
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (p->hidden_size + 3) >> 2;
    int32_t g;
    for (g = 0; g < 4; ++g) {
        ax[g] = u->effb_x[g];
        ah[g] = u->effb_h[g];
    }
#if TL_W16_BIAS != 0
    for (g = 0; g < 4; ++g) { /* modulo 2^32: the kernels' sums wrap back to the exact int32 */
        ax[g] = (int32_t)((uint32_t)ax[g] + (p->wx16 != 0 ? bx : 0u));
        ah[g] = (int32_t)((uint32_t)ah[g] + (p->wh16 != 0 ? bh : 0u));
    }
#else
    (void)bx;
    (void)bh;
#endif
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

#endif /* TL_LSTM_INTERNAL_H */
