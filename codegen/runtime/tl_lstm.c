/*
 * tl_lstm.c - the fused integer LSTM step (docs/quantization.md sec. 5-sec. 9; memory layout: sec. 5).
 *
 * A step first widens x and h to int16 in the scratch, in "quad order": inputs 4q..4q+3 are
 * stored as (4q, 4q+2, 4q+1, 4q+3), zero-padded to a multiple of 4. Then, per hidden unit j,
 * one pass over x and one over h give the four gate accumulators (weights [unit][quad][gate],
 * see tl_lstm.h), and the requantization to Q(P), peepholes, clip, table activations, the cell
 * update and the hidden output of unit j follow at once. Only c[j] is read by unit j, so the
 * cell is updated in place; the new h goes to the scratch because every unit reads the old h.
 *
 * The integer sums are exact (the quantizer proves they fit int32), so the order in which a
 * kernel adds its products changes no result: the Armv7E-M (SMLAD) and Armv6-M assembly
 * kernels and the x86 SSE2 one below are bit-identical to the portable C (-DTL_PORTABLE). The
 * fast step's whole unit loop is assembly on Armv7E-M (tl_lstm_units_v7em); it computes the
 * same integer operations in the same rounding forms as the C loop beside it.
 */
#include "tl_lstm.h"

#include <stddef.h>

const int32_t TL_W16_ENCODING = TL_W16_BIAS;

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP \
    && !defined(TL_PORTABLE)
#define TL_KERNEL_DSP 1
#elif defined(__SSE2__) && !defined(TL_PORTABLE)
/* x86 hosts (validation builds): PMADDWD, the 8-lane cousin of SMLAD */
#define TL_KERNEL_SSE2 1
#include <emmintrin.h>
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

/* acc[g] += sum over nq quads of the four rows g = 0..3 of w (quad order) times v (quad order). */
#if defined(TL_KERNEL_SSE2)
/* Two gates per 8-lane PMADDWD against v's quad repeated: lanes (g: w0 v0 + w1 v1, g: w2 v2 + w3 v3,
 * g+1: ..., g+1: ...); the lane pairs are added at the end. Partial sums are bounded like the
 * whole sum (spec sec. 11), so no lane overflows. */
static void tl_mac4_sum(__m128i a01, __m128i a23, int32_t *acc)
{
    int32_t t[8];
    _mm_storeu_si128((__m128i *)(void *)t, a01);
    _mm_storeu_si128((__m128i *)(void *)(t + 4), a23);
    acc[0] += t[0] + t[1];
    acc[1] += t[2] + t[3];
    acc[2] += t[4] + t[5];
    acc[3] += t[6] + t[7];
}

static void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc)
{
    __m128i a01 = _mm_setzero_si128(), a23 = _mm_setzero_si128();
    for (; nq > 0; --nq, w += 16, v += 4) {
        const __m128i vq = _mm_loadl_epi64((const __m128i *)(const void *)v);
        const __m128i vv = _mm_unpacklo_epi64(vq, vq);
        a01 = _mm_add_epi32(a01, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)w), vv));
        a23 = _mm_add_epi32(a23, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 8)), vv));
    }
    tl_mac4_sum(a01, a23, acc);
}

/* int8 weights (natural order in a quad): sign-extend to int16 and put v back in natural order. */
static void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc)
{
    __m128i a01 = _mm_setzero_si128(), a23 = _mm_setzero_si128();
    for (; nq > 0; --nq, w += 16, v += 4) {
        const __m128i vq = _mm_shufflelo_epi16(_mm_loadl_epi64((const __m128i *)(const void *)v), 0xD8);
        const __m128i vv = _mm_unpacklo_epi64(vq, vq);
        const __m128i wb = _mm_loadu_si128((const __m128i *)(const void *)w);
        const __m128i w01 = _mm_srai_epi16(_mm_unpacklo_epi8(wb, wb), 8);
        const __m128i w23 = _mm_srai_epi16(_mm_unpackhi_epi8(wb, wb), 8);
        a01 = _mm_add_epi32(a01, _mm_madd_epi16(w01, vv));
        a23 = _mm_add_epi32(a23, _mm_madd_epi16(w23, vv));
    }
    tl_mac4_sum(a01, a23, acc);
}
#elif defined(TL_KERNEL_DSP)
/* One quad of the Armv7E-M kernels (assembly text shared by tl_mac4_w16 and the fast step's unit
 * loop): r4-r7 += the four gates' weights at r0 (advanced) times v at r1 (advanced); one LDM of v
 * (two int16 pairs), two LDM of four weight words, eight SMLAD (two MACs each). */
#define TL_V7EM_QUAD                                                                                    \
    "    ldm r1!, {r8, r9}\n"                                                                            \
    "    ldm r0!, {r10, r11, r12, lr}\n"                                                                 \
    "    smlad r4, r10, r8, r4\n"                                                                        \
    "    smlad r4, r11, r9, r4\n"                                                                        \
    "    smlad r5, r12, r8, r5\n"                                                                        \
    "    smlad r5, lr, r9, r5\n"                                                                         \
    "    ldm r0!, {r10, r11, r12, lr}\n"                                                                 \
    "    smlad r6, r10, r8, r6\n"                                                                        \
    "    smlad r6, r11, r9, r6\n"                                                                        \
    "    smlad r7, r12, r8, r7\n"                                                                        \
    "    smlad r7, lr, r9, r7\n"

/* Armv7E-M: one quad per iteration, 13 instructions per 16 MACs. */
void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc);
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w16")
        "    cmp r2, #0\n"
        "    it le\n"
        "    bxle lr\n"
        "    push {r4-r11, lr}\n"
        "    ldm r3, {r4-r7}\n"
        "1:\n" TL_V7EM_QUAD
        "    subs r2, r2, #1\n"
        "    bne 1b\n"
        "    stm r3, {r4-r7}\n"
        "    pop {r4-r11, pc}\n"
        TL_ASM_FUNC_END("tl_mac4_w16"));

/* int8 weights, natural order in a quad: SXTB16 gives the pairs (w0, w2) and (w1, w3) that
 * match v's quad order. 20 instructions per 16 MACs. */
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc);
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w8")
        "    cmp r2, #0\n"
        "    it le\n"
        "    bxle lr\n"
        "    push {r3-r11, lr}\n"
        "    ldm r3, {r4-r7}\n"
        "1:  ldm r1!, {r8, r9}\n"
        "    ldm r0!, {r10, r11, r12, lr}\n"
        "    sxtb16 r3, r10\n"
        "    smlad r4, r3, r8, r4\n"
        "    sxtb16 r3, r10, ror #8\n"
        "    smlad r4, r3, r9, r4\n"
        "    sxtb16 r3, r11\n"
        "    smlad r5, r3, r8, r5\n"
        "    sxtb16 r3, r11, ror #8\n"
        "    smlad r5, r3, r9, r5\n"
        "    sxtb16 r3, r12\n"
        "    smlad r6, r3, r8, r6\n"
        "    sxtb16 r3, r12, ror #8\n"
        "    smlad r6, r3, r9, r6\n"
        "    sxtb16 r3, lr\n"
        "    smlad r7, r3, r8, r7\n"
        "    sxtb16 r3, lr, ror #8\n"
        "    smlad r7, r3, r9, r7\n"
        "    subs r2, r2, #1\n"
        "    bne 1b\n"
        "    ldr r3, [sp]\n"
        "    stm r3, {r4-r7}\n"
        "    pop {r3-r11, pc}\n"
        TL_ASM_FUNC_END("tl_mac4_w8"));
#else
#if TL_W16_BIAS != 0
/* one gate of the Armv6-M kernel: 4 MACs of the weights at [r0 + o0..o3] with v in r4, r2, r5, r3 */
#define TL_V6M_GATE(acc, o0, o1, o2, o3)                                                                  \
    "    ldrh r6, [r0, #" o0 "]\n    muls r6, r4, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o1 "]\n    muls r6, r2, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o2 "]\n    muls r6, r5, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o3 "]\n    muls r6, r3, r6\n    add " acc ", " acc ", r6\n"

/* Armv6-M: no SMLAD, and LDRSH has no immediate offset; the weights are biased uint16
 * (TL_W16_BIAS: the caller starts the accumulators at -32768 * sum(v), and every sum wraps
 * modulo 2^32 to the exact int32 result). Per quad: LDM of v and four splits, then LDRH + MULS +
 * ADD per MAC with the accumulators in r8-r11: 56 instructions per 16 MACs. */
void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc);
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w16")
        "    cmp r2, #0\n"
        "    bgt 2f\n"
        "    bx lr\n"
        "2:  push {r3-r7, lr}\n"
        "    mov r4, r8\n"
        "    mov r5, r9\n"
        "    mov r6, r10\n"
        "    mov r7, r11\n"
        "    push {r4-r7}\n"
        "    ldm r3!, {r4-r7}\n"
        "    mov r8, r4\n"
        "    mov r9, r5\n"
        "    mov r10, r6\n"
        "    mov r11, r7\n"
        "    lsls r2, r2, #3\n"
        "    adds r2, r1, r2\n"
        "    mov r12, r2\n"
        "1:  ldm r1!, {r2, r3}\n"
        "    sxth r4, r2\n"
        "    asrs r2, r2, #16\n"
        "    sxth r5, r3\n"
        "    asrs r3, r3, #16\n"
        TL_V6M_GATE("r8", "0", "2", "4", "6")
        TL_V6M_GATE("r9", "8", "10", "12", "14")
        TL_V6M_GATE("r10", "16", "18", "20", "22")
        TL_V6M_GATE("r11", "24", "26", "28", "30")
        "    adds r0, #32\n"
        "    cmp r1, r12\n"
        "    bne 1b\n"
        "    ldr r3, [sp, #16]\n"
        "    mov r4, r8\n"
        "    mov r5, r9\n"
        "    mov r6, r10\n"
        "    mov r7, r11\n"
        "    stm r3!, {r4-r7}\n"
        "    pop {r4-r7}\n"
        "    mov r8, r4\n"
        "    mov r9, r5\n"
        "    mov r10, r6\n"
        "    mov r11, r7\n"
        "    pop {r3-r7, pc}\n"
        TL_ASM_FUNC_END("tl_mac4_w16"));
#else
static void tl_mac4_w16(const uint16_t *wu, const int16_t *v, int32_t nq, int32_t *acc)
{
    const int16_t *w = (const int16_t *)wu; /* TL_W16_BIAS == 0: the words are the int16 weights */
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; nq > 0; --nq, w += 16, v += 4) {
        const int32_t v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
        a0 += w[0] * v0 + w[1] * v1 + w[2] * v2 + w[3] * v3;
        a1 += w[4] * v0 + w[5] * v1 + w[6] * v2 + w[7] * v3;
        a2 += w[8] * v0 + w[9] * v1 + w[10] * v2 + w[11] * v3;
        a3 += w[12] * v0 + w[13] * v1 + w[14] * v2 + w[15] * v3;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif

/* int8 weights in natural order within a quad; v in quad order (v[1] is input 2, v[2] input 1). */
static void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; nq > 0; --nq, w += 16, v += 4) {
        const int32_t v0 = v[0], v1 = v[2], v2 = v[1], v3 = v[3];
        a0 += w[0] * v0 + w[1] * v1 + w[2] * v2 + w[3] * v3;
        a1 += w[4] * v0 + w[5] * v1 + w[6] * v2 + w[7] * v3;
        a2 += w[8] * v0 + w[9] * v1 + w[10] * v2 + w[11] * v3;
        a3 += w[12] * v0 + w[13] * v1 + w[14] * v2 + w[15] * v3;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* n int8 values -> int16 in quad order, zero-padded to a multiple of 4. Returns the bias
 * correction of int16 weights for these values: -TL_W16_BIAS * sum (modulo 2^32; 0 unless
 * Armv6-M). */
static uint32_t tl_unpack_quads(const int8_t *src, int32_t n, int16_t *dst)
{
    int32_t k, sum = 0;
    for (k = 0; k + 4 <= n; k += 4, dst += 4) {
        dst[0] = src[k];
        dst[1] = src[k + 2];
        dst[2] = src[k + 1];
        dst[3] = src[k + 3];
        sum += src[k] + src[k + 1] + src[k + 2] + src[k + 3];
    }
    if (k < n) {
        const int32_t r = n - k;
        dst[0] = src[k];
        dst[1] = r > 2 ? src[k + 2] : 0;
        dst[2] = r > 1 ? src[k + 1] : 0;
        dst[3] = 0;
        sum += dst[0] + dst[1] + dst[2];
    }
    return 0u - (uint32_t)TL_W16_BIAS * (uint32_t)sum;
}

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

/* tl_requant forced inline for the hot gate requantizations (-Os would call it). */
TL_ALWAYS_INLINE int32_t tl_requant_hot(int32_t acc, int32_t mult, int32_t shift)
{
    int32_t hi;
    uint32_t lo;
    tl_mul_words(acc, mult, &hi, &lo);
    return tl_round_shift_words(hi, lo, shift);
}

/* A point-symmetric uint16 half table (sigmoid, tanh: the common case of tl_lut_eval). */
static int32_t tl_lut_sym16(int32_t x, const tl_lut_t *lut)
{
    const uint16_t *t = lut->u16;
    const int32_t sh = lut->shift;
    const int32_t u = x < 0 ? -x : x;
    const int32_t j = u >> sh;
    int32_t v;
    if (j >= lut->n) {
        v = t[lut->n];
    } else {
        const uint32_t mask = ((uint32_t)1 << sh) - 1u;
        const int32_t t0 = t[j];
        const int32_t d = ((int32_t)t[j + 1] - t0) * (int32_t)((uint32_t)u & mask);
        const int32_t q = d >> sh; /* d / 2^sh rounded half to even (tl_round_shift32) */
        v = t0 + q + (int32_t)((((uint32_t)d & mask) + (mask >> 1) + ((uint32_t)q & 1u)) >> sh);
    }
    return x < 0 ? 2 * (int32_t)t[0] - v : v;
}

/* z[g] (g = i, f, g, o) of a unit from its accumulators: requant(acc_x) + requant(acc_h) + bias. */
static void tl_unit_preact(const tl_lstm_unit_t *u, int32_t fast, const int32_t ax[4], const int32_t ah[4],
                           int32_t z[4])
{
    int32_t g;
    if (fast) {
        for (g = 0; g < 4; ++g) {
            z[g] = tl_requant_odd(ax[g], u->mult_x[g], u->rshift_x[g]) + tl_requant_odd(ah[g], u->mult_h[g], u->rshift_h[g])
                   + u->bias[g];
        }
    } else {
        for (g = 0; g < 4; ++g) {
            z[g] = tl_requant_hot(ax[g], u->mult_x[g], u->rshift_x[g] + 33)
                   + tl_requant_hot(ah[g], u->mult_h[g], u->rshift_h[g] + 33)
                   + u->bias[g];
        }
    }
}

/* Peepholes on the old cell for i and f, clip of i, f, g; then the gates i, f, g (Q(q)). */
static void tl_unit_gates(const tl_lstm_params_t *p, int32_t j, int32_t c_old, int32_t z[4], int32_t *gi,
                          int32_t *gf, int32_t *gg)
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
    if (p->fast & TL_LSTM_FAST_LUT) {
        *gi = tl_lut_sym16(z[0], &p->lut_f);
        *gf = p->input_forget ? p->one_f - *gi : tl_lut_sym16(z[1], &p->lut_f);
        *gg = tl_lut_sym16(z[2], &p->lut_g);
    } else {
        *gi = tl_lut_eval(z[0], &p->lut_f);
        *gf = p->input_forget ? p->one_f - *gi : tl_lut_eval(z[1], &p->lut_f);
        *gg = tl_lut_eval(z[2], &p->lut_g);
    }
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

/* sat16(round_shift(hi:lo, s)) for the cell's sum hi:lo (< 2^54 in magnitude), on 32-bit words. */
static int16_t tl_cell_round(int32_t hi, uint32_t lo, int32_t s)
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

#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
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

/* c' = sat16(round_shift((f*c << a_fc) + (i*g << a_ig), s_c)): one rounding (spec sec. 7),
 * on 32-bit words: the sum (< 2^54) as hi:lo, then the rounded quotient saturated. */
static int16_t tl_unit_cell(const tl_lstm_params_t *p, int32_t gi, int32_t gf, int32_t gg, int32_t c_old)
{
    int32_t h1, h2;
    uint32_t l1, l2, lo;
    tl_shl_words(gf * c_old, p->a_fc, &h1, &l1);
    tl_shl_words(gi * gg, p->a_ig, &h2, &l2);
    lo = l1 + l2;
    return tl_cell_round((int32_t)((uint32_t)h1 + (uint32_t)h2 + (lo < l1 ? 1u : 0u)), lo, p->s_c);
}
#else
/* The same with a 32x32 -> 64 multiply: for shifts up to 15 the sum is one SMULL + SMLAL of
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

void tl_lstm_step_s8(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    int8_t *const hn = (int8_t *)(vh + 4 * qh);
    const tl_lstm_unit_t *u = p->units;
    const int32_t fast_rq = p->fast & TL_LSTM_FAST_REQUANT;
    int32_t j;
    const uint32_t bx = tl_unpack_quads(x, p->input_size, vx);
    const uint32_t bh = tl_unpack_quads(h, n_h, vh);
    for (j = 0; j < n_h; ++j, ++u) {
        int32_t ax[4], ah[4], z[4];
        int32_t gi, gf, gg, go, act, rq;
        int16_t c_new;
        /* 1: gate pre-activations and i, f, g */
        tl_unit_acc(p, j, u, vx, vh, bx, bh, ax, ah);
        tl_unit_preact(u, fast_rq, ax, ah, z);
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
        if (p->fast & TL_LSTM_FAST_LUT) {
            go = tl_lut_sym16(z[3], &p->lut_f);
            act = tl_lut_sym16(c_new, &p->lut_h);
        } else {
            go = tl_lut_eval(z[3], &p->lut_f);
            act = tl_lut_eval(c_new, &p->lut_h);
        }
        rq = fast_rq ? tl_requant_odd(go * act, p->h_mult, p->h_shift - 33) : tl_requant(go * act, p->h_mult, p->h_shift);
        hn[j] = tl_sat8(p->h_zero_point + rq);
    }
    for (j = 0; j < n_h; ++j) {
        h[j] = hn[j];
    }
}

#if defined(TL_KERNEL_DSP)
/*
 * The unit loop of tl_lstm_step_fast in Armv7E-M assembly (M4, M7, M33, M55): per hidden unit,
 * the two SMLAD passes (x, then h) with the four gate accumulators in registers, the eight
 * requantizations (SMULL, spec sec. 2 odd form), the four gate tables, the cell update (SMULL +
 * SMLAL, round half to even on the 64-bit sum, SSAT) and h' (table, SMULL, SSAT). It computes
 * exactly what the C loop below computes; the emitter only calls tl_lstm_step_fast for layers
 * whose flags make these short forms exact (TL_LSTM_FAST_REQUANT | _LUT | _CELL, tl_lstm.h).
 * Everything it needs per step is in a tl_v7em_ctx_t built by tl_lstm_step_fast; the offsets
 * below are checked at compile time.
 */
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
__asm__(/* the quads [r1, r2) (at least one), two per iteration: an odd count enters at the second */
        ".macro tl_v7em_mm\n"
        "    sub r8, r2, r1\n"
        "    tst r8, #8\n"
        "    bne 3f\n"
        "2:\n" TL_V7EM_QUAD
        "3:\n" TL_V7EM_QUAD
        "    cmp r1, r2\n"
        "    bne 2b\n"
        ".endm\n"
        /* acc = tl_requant_odd(acc, m, rshift byte of r12 at bit rot) */
        ".macro tl_v7em_rq1 acc, m, rot\n"
        "    smull r0, \\acc, \\acc, \\m\n"
        "    sxtb r1, r12, ror #\\rot\n"
        "    asr \\acc, \\acc, r1\n"
        "    add \\acc, \\acc, #1\n"
        "    asr \\acc, \\acc, #1\n"
        ".endm\n"
        /* r4-r7 requantized with the multipliers at [r12 + mo] and the rshift bytes at [r12 + so] */
        ".macro tl_v7em_rq4 mo, so\n"
        "    add r0, r12, #\\mo\n"
        "    ldm r0, {r8-r11}\n"
        "    ldr r12, [r12, #\\so]\n"
        "    tl_v7em_rq1 r4, r8, 0\n"
        "    tl_v7em_rq1 r5, r9, 8\n"
        "    tl_v7em_rq1 r6, r10, 16\n"
        "    tl_v7em_rq1 r7, r11, 24\n"
        ".endm\n"
        /* x = tl_lut_sym16(x) with the table in r8-r12, lr (tl_v7em_lut_t); r0-r2 scratch */
        ".macro tl_v7em_lut x\n"
        "    eor r0, \\x, \\x, asr #31\n"
        "    sub r0, r0, \\x, asr #31\n" /* u = |x| */
        "    lsr r1, r0, r10\n"          /* j */
        "    cmp r1, r9\n"
        "    bhs 8f\n"
        "    add r1, r8, r1, lsl #1\n"
        "    ldrh r2, [r1]\n"            /* T[j] */
        "    ldrh r1, [r1, #2]\n"
        "    and r0, r0, r11\n"          /* u & mask */
        "    sub r1, r1, r2\n"
        "    mul r1, r1, r0\n"           /* d = (T[j+1] - T[j]) (u & mask) */
        "    lsr r0, r1, r10\n"
        "    and r0, r0, #1\n"
        "    add r1, r1, r12\n"
        "    add r1, r1, r0\n"
        "    asr r1, r1, r10\n"          /* round half to even of d / 2^shift */
        "    add r2, r2, r1\n"
        "    b 9f\n"
        "8:  ldrh r2, [r8, r9, lsl #1]\n" /* T[n] */
        "9:  cmp \\x, #0\n"
        "    ite lt\n"
        "    rsblt \\x, r2, lr\n"
        "    movge \\x, r2\n"
        ".endm\n"
        TL_ASM_FUNC_BEGIN("tl_lstm_units_v7em")
        "    push {r4-r11, lr}\n"
        "    mov r3, r0\n"
        "1:  ldr r12, [r3, #20]\n"
        "    ldm r12, {r4-r7}\n"         /* effb_x */
        "    ldr r0, [r3, #0]\n"
        "    ldr r1, [r3, #8]\n"
        "    ldr r2, [r3, #12]\n"
        "    tl_v7em_mm\n"
        "    str r0, [r3, #0]\n"
        "    ldr r12, [r3, #20]\n"
        "    tl_v7em_rq4 32, 80\n"
        "    add r0, r3, #140\n"
        "    stm r0, {r4-r7}\n"
        "    ldr r12, [r3, #20]\n"
        "    add r12, r12, #16\n"
        "    ldm r12, {r4-r7}\n"         /* effb_h */
        "    ldr r0, [r3, #4]\n"
        "    ldr r1, [r3, #12]\n"
        "    ldr r2, [r3, #16]\n"
        "    tl_v7em_mm\n"
        "    str r0, [r3, #4]\n"
        "    ldr r12, [r3, #20]\n"
        "    tl_v7em_rq4 48, 84\n"
        "    add r0, r3, #140\n"
        "    ldm r0, {r8-r11}\n"
        "    add r4, r4, r8\n"
        "    add r5, r5, r9\n"
        "    add r6, r6, r10\n"
        "    add r7, r7, r11\n"
        "    ldr r12, [r3, #20]\n"
        "    add r0, r12, #64\n"
        "    ldm r0, {r8-r11}\n"         /* bias */
        "    add r4, r4, r8\n"
        "    add r5, r5, r9\n"
        "    add r6, r6, r10\n"
        "    add r7, r7, r11\n"          /* z: i, f, g, o */
        "    add r12, r12, #88\n"
        "    str r12, [r3, #20]\n"
        "    add r0, r3, #36\n"
        "    ldm r0, {r8-r12, lr}\n"
        "    tl_v7em_lut r4\n"
        "    tl_v7em_lut r5\n"
        "    tl_v7em_lut r7\n"
        "    add r0, r3, #60\n"
        "    ldm r0, {r8-r12, lr}\n"
        "    tl_v7em_lut r6\n"
        /* cell: sat16(round_shift(f * (c << a_fc) + i * (g << a_ig), s_c)), the quotient fits int32 */
        "    add r0, r3, #108\n"
        "    ldm r0, {r8-r12}\n"
        "    ldr r2, [r3, #24]\n"
        "    ldrsh r1, [r2]\n"
        "    lsl r1, r1, r8\n"
        "    lsl r6, r6, r9\n"
        "    smull r0, r1, r5, r1\n"
        "    smlal r0, r1, r4, r6\n"
        "    lsr r6, r0, r10\n"
        "    and r6, r6, #1\n"
        "    add r6, r6, r11\n"
        "    adds r0, r0, r6\n"
        "    adc r1, r1, #0\n"
        "    lsr r0, r0, r10\n"
        "    lsl r1, r1, r12\n"
        "    orr r6, r0, r1\n"
        "    ssat r6, #16, r6\n"
        "    strh r6, [r2], #2\n"
        "    str r2, [r3, #24]\n"
        /* h' = sat8(zp + requant(o * h_act(c'))) */
        "    add r0, r3, #84\n"
        "    ldm r0, {r8-r12, lr}\n"
        "    tl_v7em_lut r6\n"
        "    mul r6, r6, r7\n"
        "    add r0, r3, #128\n"
        "    ldm r0, {r8-r10}\n"
        "    smull r0, r1, r6, r8\n"
        "    asr r1, r1, r9\n"
        "    add r1, r1, #1\n"
        "    add r1, r10, r1, asr #1\n"
        "    ssat r1, #8, r1\n"
        "    ldr r0, [r3, #28]\n"
        "    strb r1, [r0], #1\n"
        "    str r0, [r3, #28]\n"
        "    ldr r1, [r3, #32]\n"
        "    cmp r0, r1\n"
        "    bne 1b\n"
        "    pop {r4-r11, pc}\n"
        TL_ASM_FUNC_END("tl_lstm_units_v7em")
        ".purgem tl_v7em_mm\n"
        ".purgem tl_v7em_rq1\n"
        ".purgem tl_v7em_rq4\n"
        ".purgem tl_v7em_lut\n");

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

void tl_lstm_gates_s8(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, const int16_t *c, int32_t *z,
                      int32_t *gates, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * ((p->input_size + 3) >> 2);
    const tl_lstm_unit_t *u = p->units;
    int32_t j, g;
    const uint32_t bx = tl_unpack_quads(x, p->input_size, vx);
    const uint32_t bh = tl_unpack_quads(h, n_h, vh);
    for (j = 0; j < n_h; ++j, ++u) {
        int32_t ax[4], ah[4], zj[4];
        tl_unit_acc(p, j, u, vx, vh, bx, bh, ax, ah);
        tl_unit_preact(u, p->fast & TL_LSTM_FAST_REQUANT, ax, ah, zj);
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
