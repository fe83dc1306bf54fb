/**
 * @file tl_fixedpoint.h
 * @brief tinylstm runtime: the integer primitives (docs/quantization.md sec. 1, sec. 2, sec. 8).
 *
 * Each function mirrors the Python function of the same name in tinylstm/fixedpoint.py
 * (round_shift <-> tl_round_shift, ...). One rounding rule everywhere: round half to even.
 * No float, no libm, no stdio, no malloc. C99.
 */
#ifndef TL_FIXEDPOINT_H
#define TL_FIXEDPOINT_H

#include <stdint.h>

/* C99 leaves `>>` of negative values implementation-defined; the spec needs floor shifts. */
typedef char tl_assert_arithmetic_shift[((-1 >> 1) == -1 && (-5 >> 1) == -3) ? 1 : -1];
typedef char tl_assert_arithmetic_shift64[((int64_t)-5 >> 1) == (int64_t)-3 ? 1 : -1];
/* int32 products of int16 values and int32 indexing need a 32-bit int. */
typedef char tl_assert_int_is_32bit[(sizeof(int) == 4) ? 1 : -1];

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
    int32_t q, r, half;
    if (s <= 0) {
        return x;
    }
    q = x >> s;
    r = x & (int32_t)((((uint32_t)1) << s) - 1u); /* x - q * 2^s, in [0, 2^s) */
    half = (int32_t)(((uint32_t)1) << (s - 1));
    return q + ((r > half || (r == half && (q & 1) != 0)) ? 1 : 0);
}

/**
 * @brief round_shift((int64)acc * mult, shift): an int32 times a real factor mult * 2^-shift.
 * mult in [2^30, 2^31) or 0 (then shift == 0); shift in [0, 62]. The result fits int32 at
 * every call site (spec sec. 11).
 */
static inline int32_t tl_requant(int32_t acc, int32_t mult, int32_t shift)
{
    /* round_shift(p, shift) of the 64-bit product p, computed on its two 32-bit halves (a
     * 32-bit core has no cheap variable 64-bit shift): floor(p / 2^shift), plus one when the
     * remainder is above half, or exactly half and the floor is odd. The result is taken modulo
     * 2^32, which is the exact value because it fits int32 at every call site. */
    const int64_t p = (int64_t)acc * (int64_t)mult;
    const uint32_t lo = (uint32_t)((uint64_t)p & 0xFFFFFFFFu);
    const int32_t hi = (int32_t)(p >> 32);
    uint32_t q, up;
    if (shift <= 0) {
        return (int32_t)lo;
    }
    if (shift < 32) {
        const uint32_t half = (uint32_t)1 << (shift - 1);
        const uint32_t r = lo & ((half << 1) - 1u);
        q = ((uint32_t)hi << (32 - shift)) | (lo >> shift);
        up = (r > half || (r == half && (q & 1u) != 0u)) ? 1u : 0u;
    } else if (shift == 32) {
        q = (uint32_t)hi;
        up = (lo > 0x80000000u || (lo == 0x80000000u && (q & 1u) != 0u)) ? 1u : 0u;
    } else {
        const int32_t s2 = shift - 32; /* 1..30 */
        const uint32_t half = (uint32_t)1 << (s2 - 1);
        const uint32_t r = (uint32_t)hi & ((half << 1) - 1u); /* high word of the remainder */
        q = (uint32_t)(hi >> s2);
        up = (r > half || (r == half && (lo != 0u || (q & 1u) != 0u))) ? 1u : 0u;
    }
    return (int32_t)(q + up);
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
    int32_t u, j, v;
    if (lut->sym) {
        u = x < 0 ? -x : x;
    } else {
        const int32_t half = (n / 2) << sh;
        if (x < -half) {
            return tl_lut_entry(lut, 0);
        }
        if (x >= half) {
            return tl_lut_entry(lut, n);
        }
        u = x + half;
    }
    j = u >> sh;
    if (j >= n) {
        v = tl_lut_entry(lut, n);
    } else {
        const int32_t t0 = tl_lut_entry(lut, j);
        const int32_t r = u & (int32_t)((((uint32_t)1) << sh) - 1u);
        v = t0 + tl_round_shift32((tl_lut_entry(lut, j + 1) - t0) * r, sh);
    }
    if (lut->sym && x < 0) {
        v = 2 * tl_lut_entry(lut, 0) - v;
    }
    return v;
}

#endif /* TL_FIXEDPOINT_H */
