/**
 * @file tl_fixedpoint.h
 * @brief tinylstm runtime: the integer primitives (docs/quantization.md sec. 1, sec. 2, sec. 8).
 *
 * Each function mirrors the Python function of the same name in tinylstm/fixedpoint.py
 * (round_shift <-> tl_round_shift, mul16 <-> tl_mul16, ...). Two roundings, each with one job
 * (spec sec. 2): round half to even (tl_round_shift: the cell update, the custom tables) and round
 * half up (tl_requant, the gate sums, the standard table). No float, no libm, no stdio, no malloc. C99.
 */
#ifndef TL_FIXEDPOINT_H
#define TL_FIXEDPOINT_H

#include <stdint.h>

/* C99 leaves `>>` of negative values implementation-defined; the spec needs floor shifts. */
typedef char tl_assert_arithmetic_shift[((-1 >> 1) == -1 && (-5 >> 1) == -3) ? 1 : -1];
typedef char tl_assert_arithmetic_shift64[((int64_t)-5 >> 1) == (int64_t)-3 ? 1 : -1];
/* int32 products of int16 values and int32 indexing need a 32-bit int. */
typedef char tl_assert_int_is_32bit[(sizeof(int) == 4) ? 1 : -1];

/* Hot helpers of the step kernel are forced inline (-Os would call them), where supported. */
#if defined(__GNUC__)
#define TL_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define TL_ALWAYS_INLINE static inline
#endif

/* Armv7E-M (M4, M7, M33, M55): the DSP extension's SMLAD, SMLAWB, ... through inline assembly. */
#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP \
    && !defined(TL_PORTABLE)
#define TL_KERNEL_DSP 1
#endif
/* Armv6-M and Armv8-M Baseline: no 32x32 -> 64 multiply (libgcc would be called). Host tests define
 * TL_NO_LONG_MUL themselves to run these paths. */
#if (defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)) && !defined(TL_NO_LONG_MUL)
#define TL_NO_LONG_MUL 1
#endif

/* The common case of a branch, for code layout only (no effect on results). */
#if defined(__GNUC__)
#define TL_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define TL_LIKELY(c) (c)
#endif

#define TL_INT8_MIN (-128)
#define TL_INT8_MAX 127
#define TL_INT16_MIN (-32768)
#define TL_INT16_MAX 32767

/**
 * @brief x / 2^s rounded half to even (spec sec. 2). s in [0, 62]; s == 0 is the identity.
 * Caller guarantees |x| + 2^(s-1) < 2^63.
 */
static inline int64_t tl_round_shift(int64_t x, int32_t s)
{
    if (s <= 0) {
        return x;
    }
    return (x + (((int64_t)1 << (s - 1)) - 1) + ((x >> s) & 1)) >> s;
}

/**
 * @brief round_shift for an int32 value, computed without any intermediate overflow:
 * floor(x / 2^s) plus one when the remainder is above half, or exactly half and the floor
 * is odd. Same result as tl_round_shift((int64_t)x, s). s in [0, 30].
 */
static inline int32_t tl_round_shift32(int32_t x, int32_t s)
{
    int32_t q;
    uint32_t half, r;
    if (s <= 0) {
        return x;
    }
    q = x >> s;
    half = ((uint32_t)1) << (s - 1);
    r = (uint32_t)x & ((half << 1) - 1u); /* x - q * 2^s, in [0, 2^s) */
    /* r + half - 1 + (q & 1) reaches 2^s exactly when rounding up (spec sec. 2); < 2^32 */
    return q + (int32_t)((r + half - 1u + ((uint32_t)q & 1u)) >> s);
}

/**
 * @brief round_shift(p, s) of the 64-bit value p = hi * 2^32 + lo, on its two 32-bit words
 * (a 32-bit core has no cheap variable 64-bit shift). s in [0, 62]. The result is taken
 * modulo 2^32, which is the exact value whenever it fits int32.
 */
static inline int32_t tl_round_shift_words(int32_t hi, uint32_t lo, int32_t s)
{
    uint32_t q, half, r;
    if (s > 32) {
        const int32_t s2 = s - 32; /* 1..30: the low word only decides ties (sticky) */
        const int32_t qs = hi >> s2;
        half = (uint32_t)1 << (s2 - 1);
        r = (uint32_t)hi & ((half << 1) - 1u);
        return qs + (int32_t)((r + half - 1u + ((lo != 0u ? 1u : 0u) | ((uint32_t)qs & 1u))) >> s2);
    }
    if (s <= 0) {
        return (int32_t)lo;
    }
    if (s < 32) {
        q = ((uint32_t)hi << (32 - s)) | (lo >> s);
        half = (uint32_t)1 << (s - 1);
        r = lo & ((half << 1) - 1u);
        return (int32_t)(q + ((r + half - 1u + (q & 1u)) >> s));
    }
    q = (uint32_t)hi; /* s == 32 */
    return (int32_t)(q + ((lo >= 0x80000001u - (q & 1u)) ? 1u : 0u));
}

#if defined(TL_NO_LONG_MUL)
/* No 32x32 -> 64 multiply instruction (libgcc would call __aeabi_lmul): four 16x16 products. */
static inline void tl_mul_words(int32_t a, int32_t b, int32_t *hi, uint32_t *lo)
{
    const uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
    const uint32_t a0 = ua & 0xFFFFu, a1 = ua >> 16, b0 = ub & 0xFFFFu, b1 = ub >> 16;
    const uint32_t ll = a0 * b0, lh = a0 * b1, hl = a1 * b0;
    const uint32_t mid = lh + hl;
    const uint32_t c1 = mid < lh ? 0x10000u : 0u;
    const uint32_t l = ll + (mid << 16);
    uint32_t h = a1 * b1 + (mid >> 16) + c1 + (l < ll ? 1u : 0u);
    /* unsigned product -> signed: subtract b * 2^32 when a < 0 and a * 2^32 when b < 0 */
    if (a < 0) {
        h -= ub;
    }
    if (b < 0) {
        h -= ua;
    }
    *hi = (int32_t)h;
    *lo = l;
}
#else
/** @brief (int64)a * b as its two 32-bit words (one SMULL on Armv7-M). */
static inline void tl_mul_words(int32_t a, int32_t b, int32_t *hi, uint32_t *lo)
{
    const int64_t p = (int64_t)a * (int64_t)b;
    *hi = (int32_t)(p >> 32);
    *lo = (uint32_t)((uint64_t)p & 0xFFFFFFFFu);
}
#endif

/**
 * @brief requant(acc, mult, shift) = ((int64)acc * mult + 2^(shift-1)) >> shift: an int32 times a
 * real factor mult * 2^-shift, rounded half up (spec sec. 2). mult in [2^30, 2^31) or 0 (then
 * shift == 0); shift in [0, 62]. The result fits int32 at every call site (spec sec. 11). With
 * shift >= 33 only the product's high word matters: (hi + 2^(shift-33)) >> (shift-32).
 */
static inline int32_t tl_requant(int32_t acc, int32_t mult, int32_t shift)
{
    int32_t hi;
    uint32_t lo, l2, h2;
    tl_mul_words(acc, mult, &hi, &lo);
    if (shift >= 33) {
        return (hi + ((int32_t)1 << (shift - 33))) >> (shift - 32); /* |hi| < 2^30: no overflow */
    }
    if (shift <= 0) {
        return (int32_t)lo;
    }
    l2 = lo + ((uint32_t)1 << (shift - 1)); /* the 64-bit sum hi:lo + 2^(shift-1), modulo 2^64 */
    h2 = (uint32_t)hi + (l2 < lo ? 1u : 0u);
    if (shift == 32) {
        return (int32_t)h2;
    }
    return (int32_t)((h2 << (32 - shift)) | (l2 >> shift)); /* modulo 2^32: exact when it fits */
}

/**
 * @brief mul16(acc, m) = floor(acc * m / 2^16) for an int32 acc and m in [0, 2^15) (spec sec. 2, sec. 6):
 * the gate product. One SMULWB on Armv7E-M; on Armv6-M two 32-bit products of the halves of acc,
 * acc_hi * m + ((acc_lo * m) >> 16) (exact: acc_hi * m * 2^16 is a multiple of 2^16). |result| < 2^30.
 */
TL_ALWAYS_INLINE int32_t tl_mul16(int32_t acc, int32_t m)
{
#if defined(TL_KERNEL_DSP)
    int32_t r;
    __asm__("smulwb %0, %1, %2" : "=r"(r) : "r"(acc), "r"(m));
    return r;
#elif defined(TL_NO_LONG_MUL)
    return (acc >> 16) * m + (int32_t)((((uint32_t)acc & 0xFFFFu) * (uint32_t)m) >> 16);
#else
    return (int32_t)(((int64_t)acc * m) >> 16);
#endif
}

/**
 * @brief shift_half_up(x, s) = (x + 2^(s-1)) >> s: x / 2^s rounded half up (spec sec. 16.1), s in
 * [0, 30]; s == 0 is the identity. The GRU's narrowing of its int16 state and of its reset products.
 * Caller guarantees x + 2^(s-1) fits int32 (spec sec. 16.6).
 */
static inline int32_t tl_shift_half_up(int32_t x, int32_t s)
{
    return s <= 0 ? x : (x + ((int32_t)1 << (s - 1))) >> s;
}

/** @brief min(max(x, -128), 127) as int8. */
static inline int8_t tl_sat8(int32_t x)
{
    return (int8_t)(x < TL_INT8_MIN ? TL_INT8_MIN : (x > TL_INT8_MAX ? TL_INT8_MAX : x));
}

/** @brief min(max(x, -32768), 32767) as int16 (int64 input: the cell update's sum). */
static inline int16_t tl_sat16(int64_t x)
{
    return (int16_t)(x < TL_INT16_MIN ? TL_INT16_MIN : (x > TL_INT16_MAX ? TL_INT16_MAX : x));
}

/** @brief min(max(x, lo), hi). */
static inline int32_t tl_sat(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/** @brief num / den rounded half to even; num >= 0, den > 0 (spec sec. 2). */
static inline int32_t tl_div_round(int32_t num, int32_t den)
{
    const uint32_t n = (uint32_t)num, d = (uint32_t)den;
    const uint32_t q = n / d;
    const uint32_t r = n - q * d;
    const uint32_t up = (2u * r > d || (2u * r == d && (q & 1u) != 0u)) ? 1u : 0u;
    return (int32_t)(q + up);
}

/**
 * @brief A lookup table with linear interpolation (spec sec. 8), read-only (flash).
 *
 * Entries T[0..n] are int32 values; tables whose entries all lie in [0, 65535] are stored as
 * uint16 (u16 set, i32 NULL), the others as int32 (i32 set, u16 NULL). Inputs are
 * Q(in_frac) with in_frac = x_frac + shift; (n << shift) < 2^31 (quantizer: domain <= 64,
 * in_frac <= 24).
 */
typedef struct {
    const uint16_t *u16; /**< (n + 1,) entries, or NULL */
    const int32_t *i32;  /**< (n + 1,) entries, or NULL */
    int32_t n;           /**< segments, a power of two */
    int32_t sym;         /**< 1: point-symmetric half table on [0, X]; 0: full table on [-X/2, X/2] */
    int32_t shift;       /**< input fraction bits minus grid fraction bits (>= 0) */
} tl_lut_t;

/** @brief Entry j of a table. */
static inline int32_t tl_lut_entry(const tl_lut_t *lut, int32_t j)
{
    return lut->u16 != 0 ? (int32_t)lut->u16[j] : lut->i32[j];
}

/**
 * @brief Evaluate a table at x (int32, Q(in_frac)) -> int32 Q(q) (spec sec. 8).
 * sym tables need x > -2^31 (spec sec. 11.4).
 */
static inline int32_t tl_lut_eval(int32_t x, const tl_lut_t *lut)
{
    const int32_t sh = lut->shift;
    const int32_t n = lut->n;
    const uint16_t *t16 = lut->u16;
    const int32_t *t32 = lut->i32;
    int32_t u, j, v, t0, t1;
    if (t16 != 0 && lut->sym) {
        /* the common case (sigmoid, tanh): point-symmetric uint16 half table */
        u = x < 0 ? -x : x;
        j = u >> sh;
        if (j >= n) {
            v = t16[n];
        } else {
            t0 = t16[j];
            v = t0 + tl_round_shift32(((int32_t)t16[j + 1] - t0) * (u & (int32_t)((((uint32_t)1) << sh) - 1u)), sh);
        }
        return x < 0 ? 2 * (int32_t)t16[0] - v : v;
    }
    if (lut->sym) {
        u = x < 0 ? -x : x;
    } else {
        const int32_t half = (n / 2) << sh;
        if (x < -half) {
            return t16 != 0 ? (int32_t)t16[0] : t32[0];
        }
        if (x >= half) {
            return t16 != 0 ? (int32_t)t16[n] : t32[n];
        }
        u = x + half;
    }
    j = u >> sh;
    if (j >= n) {
        j = n;
    }
    if (t16 != 0) {
        t0 = t16[j];
        t1 = j < n ? (int32_t)t16[j + 1] : t0;
    } else {
        t0 = t32[j];
        t1 = j < n ? t32[j + 1] : t0;
    }
    v = t0 + tl_round_shift32((t1 - t0) * (u & (int32_t)((((uint32_t)1) << sh) - 1u)), sh);
    if (lut->sym && x < 0) {
        v = 2 * (t16 != 0 ? (int32_t)t16[0] : t32[0]) - v;
    }
    return v;
}

/* ---- the standard table (spec sec. 8.1): sigmoid and tanh from D[j] = rint(2^16 (1 - sigmoid(j 2^-frac))) ---- */

/** @brief 1.0 in the gates' format Q(15). */
#define TL_ONE_Q15 32768

/**
 * @brief lut_u16: the standard table D[0..n] (uint16, n a power of two) interpolated at u >= 0, not
 * rounded (spec sec. 8.1): shift >= 1: j = u >> shift, V = D[j] 2^shift + (D[j+1] - D[j]) (u & (2^shift - 1)),
 * and D[n] 2^shift for j >= n; shift <= 0 (an input coarser than the grid): V = D[min(u << -shift, n)].
 * V must fit int32 (shift <= 15); tl_sigmoid_q15 and tl_tanh_q15 never form it.
 */
static inline int32_t tl_lut_u16(const uint16_t *table, int32_t n, uint32_t u, int32_t shift)
{
    uint32_t j;
    int32_t d0;
    if (shift <= 0) {
        /* u << -shift >= n exactly when u > (n - 1) >> -shift; below, the shift cannot overflow */
        return table[u > ((uint32_t)n - 1u) >> -shift ? (uint32_t)n : u << -shift];
    }
    j = u >> shift;
    if (j >= (uint32_t)n) {
        return (int32_t)((uint32_t)table[n] << shift);
    }
    d0 = table[j];
    return (int32_t)((uint32_t)d0 << shift) + ((int32_t)table[j + 1] - d0) * (int32_t)(u & (((uint32_t)1 << shift) - 1u));
}

/**
 * @brief floor((lut_u16(u) + add) / 2^shift) for shift >= 1, add >= 0, without forming V:
 * D[j] + (((D[j+1] - D[j]) r + add) >> shift) (D[j] 2^shift is a multiple of 2^shift). D decreases,
 * so the product lies in (-2^31, 0] (spec sec. 11.4) and adding add <= 2^30 cannot overflow.
 */
static inline int32_t tl_lut_u16_div(const uint16_t *table, int32_t n, uint32_t u, int32_t shift, int32_t add)
{
    const uint32_t j = u >> shift;
    int32_t d0;
    if (j >= (uint32_t)n) {
        return (int32_t)table[n] + (add >> shift);
    }
    d0 = table[j];
    return d0 + ((((int32_t)table[j + 1] - d0) * (int32_t)(u & (((uint32_t)1 << shift) - 1u)) + add) >> shift);
}

/**
 * @brief sigmoid_q15: sigma(z) in Q(15) from the standard table (spec sec. 8.1), z with `shift`
 * fraction bits below the grid: d = (V(|z|) + 2^s) >> (s + 1), s = max(shift, 0) (one rounding,
 * half up); 2^15 - d for z >= 0, d below. |z| < 2^31.
 */
static inline int32_t tl_sigmoid_q15(int32_t z, const uint16_t *table, int32_t n, int32_t shift)
{
    const uint32_t u = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    int32_t d;
    if (shift > 0) {
        d = tl_lut_u16_div(table, n, u, shift, (int32_t)1 << shift) >> 1;
    } else {
        d = (tl_lut_u16(table, n, u, shift) + 1) >> 1;
    }
    return z >= 0 ? TL_ONE_Q15 - d : d;
}

/**
 * @brief tanh_q15: tanh(z) = 2 sigma(2z) - 1 in Q(15) from the standard table (spec sec. 8.1):
 * d = (V(2 min(|z|, n 2^shift)) + 2^(s-1)) >> s, s = max(shift, 0) (no rounding for s = 0),
 * v = 2^15 - d; v for z >= 0, -v below. The gates' g (shift = P - frac) and the cell's output
 * (shift = k - frac). |z| < 2^31.
 */
static inline int32_t tl_tanh_q15(int32_t z, const uint16_t *table, int32_t n, int32_t shift)
{
    uint32_t u = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    int32_t v;
    if (shift > 0) {
        const uint32_t cap = (uint32_t)n << shift; /* 2^(P+4) resp. 2^(k+4) < 2^31 */
        u = u > cap ? cap : u;
        v = TL_ONE_Q15 - tl_lut_u16_div(table, n, 2u * u, shift, (int32_t)1 << (shift - 1));
    } else {
        const uint32_t cap = (uint32_t)n >> -shift;
        u = u > cap ? cap : u;
        v = TL_ONE_Q15 - tl_lut_u16(table, n, 2u * u, shift);
    }
    return z >= 0 ? v : -v;
}

#endif /* TL_FIXEDPOINT_H */
