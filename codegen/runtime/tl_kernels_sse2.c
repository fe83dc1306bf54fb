/*
 * tl_kernels_sse2.c - the x86 SSE2 quad kernels of the LSTM step (host validation builds):
 * tl_mac4_w16 and tl_mac4_w8 with PMADDWD, the 8-lane cousin of SMLAD. Selected by TL_KERNEL_SSE2
 * (tl_lstm_internal.h: __SSE2__, no TL_PORTABLE); on every other target this file is empty. The
 * file layout is described in tl_lstm_internal.h.
 */
#include "tl_lstm_internal.h"

#if defined(TL_KERNEL_SSE2)
#include <emmintrin.h>

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

void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc)
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
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc)
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
#else
typedef char tl_kernels_sse2_unused; /* ISO C: a translation unit declares something */
#endif
