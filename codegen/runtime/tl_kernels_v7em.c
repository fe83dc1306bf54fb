/*
 * tl_kernels_v7em.c - the Armv7E-M (M4, M7, M33, M55: the DSP extension) assembly kernels of the LSTM
 * step: tl_mac4_w16 and tl_mac4_w8 (the steps' two passes per unit, SMLAD). Selected by TL_KERNEL_DSP
 * (tl_fixedpoint.h: GCC-compatible compiler, Thumb-2, __ARM_FEATURE_DSP, no TL_PORTABLE); on every
 * other target this file is empty. The file layout is described in tl_lstm_internal.h.
 *
 * The integer sums are exact (the quantizer proves they fit int32), so the order in which these
 * kernels add their products changes no result: they are bit-identical to the portable C
 * (tl_kernels_portable.c).
 */
#include "tl_lstm_internal.h"

#if defined(TL_KERNEL_DSP)
/* One quad of tl_mac4_w16: r4-r7 += the four gates' weights at r0 (advanced) times v at r1
 * (advanced); one LDM of v (two int16 pairs), two LDM of four weight words, eight SMLAD (two MACs
 * each). */
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

/* One quad of tl_mac4_w8: as TL_V7EM_QUAD on int8 weights (natural order in a quad): SXTB16 gives the
 * pairs (w0, w2) and (w1, w3) that match v's quad order; r2 holds the sign-extended pair. */
#define TL_V7EM_QUAD8                                                                                   \
    "    ldm r1!, {r8, r9}\n"                                                                            \
    "    ldm r0!, {r10, r11, r12, lr}\n"                                                                 \
    "    sxtb16 r2, r10\n"                                                                               \
    "    smlad r4, r2, r8, r4\n"                                                                         \
    "    sxtb16 r2, r10, ror #8\n"                                                                       \
    "    smlad r4, r2, r9, r4\n"                                                                         \
    "    sxtb16 r2, r11\n"                                                                               \
    "    smlad r5, r2, r8, r5\n"                                                                         \
    "    sxtb16 r2, r11, ror #8\n"                                                                       \
    "    smlad r5, r2, r9, r5\n"                                                                         \
    "    sxtb16 r2, r12\n"                                                                               \
    "    smlad r6, r2, r8, r6\n"                                                                         \
    "    sxtb16 r2, r12, ror #8\n"                                                                       \
    "    smlad r6, r2, r9, r6\n"                                                                         \
    "    sxtb16 r2, lr\n"                                                                                \
    "    smlad r7, r2, r8, r7\n"                                                                         \
    "    sxtb16 r2, lr, ror #8\n"                                                                        \
    "    smlad r7, r2, r9, r7\n"

/* Both kernels: two quads per iteration until v reaches its end (r3 for w16, the stack for w8); an
 * odd count enters at the second quad (LSLS #31 leaves Z clear for odd nq). tl_mac4_w16: 24
 * instructions per 32 MACs; tl_mac4_w8: 40 per 32. */
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w16")
        "    cmp r2, #0\n"
        "    it le\n"
        "    bxle lr\n"
        "    push {r4-r11, lr}\n"
        "    ldm r3, {r4-r7}\n"
        "    lsls r8, r2, #31\n"
        "    add r2, r1, r2, lsl #3\n" /* end of v (ADD.W: the flags stay) */
        "    bne 2f\n"
        "1:\n" TL_V7EM_QUAD
        "2:\n" TL_V7EM_QUAD
        "    cmp r1, r2\n"
        "    bne 1b\n"
        "    stm r3, {r4-r7}\n"
        "    pop {r4-r11, pc}\n"
        TL_ASM_FUNC_END("tl_mac4_w16"));

__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w8")
        "    cmp r2, #0\n"
        "    it le\n"
        "    bxle lr\n"
        "    push {r3-r11, lr}\n"
        "    ldm r3, {r4-r7}\n"
        "    lsls r8, r2, #31\n"
        "    add r3, r1, r2, lsl #3\n" /* end of v (ADD.W: the flags stay) */
        "    bne 2f\n"
        "1:\n" TL_V7EM_QUAD8
        "2:\n" TL_V7EM_QUAD8
        "    cmp r1, r3\n"
        "    bne 1b\n"
        "    ldr r3, [sp]\n"
        "    stm r3, {r4-r7}\n"
        "    pop {r3-r11, pc}\n"
        TL_ASM_FUNC_END("tl_mac4_w8"));

#else
typedef char tl_kernels_v7em_unused; /* ISO C: a translation unit declares something */
#endif
