/*
 * tl_kernels_portable.c - the portable C quad kernels of the LSTM step, tl_mac4_w16 and tl_mac4_w8, on
 * every target without an assembly or SSE2 one whose weights are plain two's complement (Armv7-M
 * such as the M3, other CPUs, and -DTL_PORTABLE; Armv6-M's biased kernels are tl_kernels_v6m.c). The
 * file layout is described in tl_lstm_internal.h.
 */
#include "tl_lstm_internal.h"

#if !defined(TL_KERNEL_DSP) && !defined(TL_KERNEL_SSE2)
#if TL_W16_BIAS == 0
void tl_mac4_w16(const uint16_t *wu, const int16_t *v, int32_t nq, int32_t *acc)
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

#if TL_W8_BIAS == 0
/* int8 weights in natural order within a quad; v in quad order (v[1] is input 2, v[2] input 1). */
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc)
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
#else
typedef char tl_kernels_portable_unused; /* ISO C: a translation unit declares something */
#endif
