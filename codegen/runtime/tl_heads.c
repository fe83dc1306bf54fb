/*
 * tl_heads.c - dense, elementwise tables, softmax and log-softmax on int8 (docs/quantization.md sec. 5, sec. 10).
 */
#include "tl_heads.h"
#include "tl_lstm_mve.h" /* TL_KERNEL_MVE: the dot product on Helium (tl_kernels_mve.c) */

#if defined(TL_KERNEL_DSP) && !defined(TL_KERNEL_MVE)
/* A 32-bit word read from any address (Armv7E-M loads words unaligned). */
typedef uint32_t tl_u32_unaligned __attribute__((aligned(1), may_alias));

/* Four MACs per iteration: bytes 0, 2 and 1, 3 of w and x sign-extended in pairs (SXTB16, and with
 * ROR 8), two SMLAD; the same int32 sum as the byte loop (no overflow: spec sec. 11). */
static inline int32_t tl_dot4_s8(uint32_t w, uint32_t x, int32_t acc)
{
    uint32_t we, wo, xe, xo;
    __asm__("sxtb16 %0, %1" : "=r"(we) : "r"(w));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(wo) : "r"(w));
    __asm__("sxtb16 %0, %1" : "=r"(xe) : "r"(x));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(xo) : "r"(x));
    __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(we), "r"(xe));
    __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(wo), "r"(xo));
    return acc;
}
#endif

static inline int32_t tl_dot_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t acc)
{
#if defined(TL_KERNEL_MVE)
    return tl_mve_dot_s8(w, x, n, acc);
#else
    int32_t k = 0;
#if defined(TL_KERNEL_DSP)
    for (; k + 4 <= n; k += 4) {
        acc = tl_dot4_s8(*(const tl_u32_unaligned *)(const void *)(w + k),
                         *(const tl_u32_unaligned *)(const void *)(x + k), acc);
    }
#endif
    for (; k < n; ++k) {
        acc += (int32_t)w[k] * x[k];
    }
    return acc;
#endif
}

void tl_matvec_s8(const int8_t *w, const int8_t *x, const int32_t *bias, int32_t rows, int32_t cols,
                  int32_t *acc)
{
    int32_t r;
    for (r = 0; r < rows; ++r) {
        acc[r] = tl_dot_s8(w + r * cols, x, cols, bias[r]);
    }
}

void tl_dense_s8(const tl_dense_params_t *p, const int8_t *x, int8_t *y)
{
    const int32_t cols = p->in_features;
    int32_t r;
    for (r = 0; r < p->out_features; ++r) {
        const int32_t acc = tl_dot_s8(p->weight + r * cols, x, cols, p->eff_bias[r]);
        const int32_t v = p->zero_point + tl_requant(acc, p->mult[r], p->shift[r]);
        y[r] = (int8_t)tl_sat(v, p->act_min, p->act_max);
    }
}

void tl_table_s8(const int8_t *table, const int8_t *x, int32_t n, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        y[i] = table[(int32_t)x[i] + 128];
    }
}

void tl_softmax_s8(const tl_softmax_params_t *p, const int8_t *x, int8_t *y)
{
    const int32_t n = p->features;
    int32_t xm = TL_INT8_MIN;
    int32_t sum = 0;
    int32_t j;
    for (j = 0; j < n; ++j) {
        xm = x[j] > xm ? x[j] : xm;
    }
    for (j = 0; j < n; ++j) {
        sum += p->exp_table[xm - x[j]]; /* S <= n * 2^15 < 2^31 */
    }
    if (p->log2_table == 0) {
        /* y = sat8(-128 + div_round(E << 8, S)) */
        for (j = 0; j < n; ++j) {
            const int32_t e = (int32_t)p->exp_table[xm - x[j]];
            y[j] = tl_sat8(-128 + tl_div_round(e * 256, sum));
        }
    } else {
        /* l2 = log2(S / 2^15) in Q(16) by table interpolation; L = ln(S / 2^15) in units of s_y */
        const int32_t *t = p->log2_table;
        int32_t b = 15, sh, idx, fr, rr, l2, big_l;
        while (b < 30 && (sum >> (b + 1)) != 0) {
            ++b;
        }
        rr = sum - ((int32_t)1 << b);
        sh = b - 8;
        idx = rr >> sh;
        fr = rr & (((int32_t)1 << sh) - 1);
        l2 = (b - 15) * 65536 + t[idx] + tl_round_shift32((t[idx + 1] - t[idx]) * fr, sh);
        big_l = tl_requant(l2, p->l_mult, p->l_shift);
        for (j = 0; j < n; ++j) {
            /* D = (x - max) in units of s_y; y = sat8(127 + D - L) */
            y[j] = tl_sat8(127 + tl_requant((int32_t)x[j] - xm, p->d_mult, p->d_shift) - big_l);
        }
    }
}

void tl_requant_s16_s8(const int16_t *c, int32_t n, int32_t mult, int32_t shift, int32_t zero_point, int8_t *y)
{
    int32_t j;
    for (j = 0; j < n; ++j) {
        y[j] = tl_sat8(zero_point + tl_requant(c[j], mult, shift));
    }
}

void tl_gather_s8(const int8_t *x, const uint16_t *idx, int32_t n, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        y[i] = x[idx[i]];
    }
}

void tl_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

void tl_fill_s8(int8_t *dst, int32_t n, int8_t v)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = v;
    }
}
