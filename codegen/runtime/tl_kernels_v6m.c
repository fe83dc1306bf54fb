/*
 * tl_kernels_v6m.c - the Armv6-M (M0, M0+) assembly kernels of the LSTM step: tl_mac4_w16 and
 * tl_mac4_w8 on biased weights (TL_W16_BIAS, TL_W8_BIAS != 0: GCC-compatible compiler,
 * __ARM_ARCH_6M__, no TL_PORTABLE; see tl_lstm.h). On every other target this file is empty. The
 * file layout is described in tl_lstm_internal.h.
 */
#include "tl_lstm_internal.h"

#if !defined(TL_KERNEL_DSP) && !defined(TL_KERNEL_SSE2) && TL_W16_BIAS != 0
/* one gate of the Armv6-M kernel: 4 MACs of the weights at [r0 + o0..o3] with v in r4, r2, r5, r3 */
#define TL_V6M_GATE(acc, o0, o1, o2, o3)                                                                  \
    "    ldrh r6, [r0, #" o0 "]\n    muls r6, r4, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o1 "]\n    muls r6, r2, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o2 "]\n    muls r6, r5, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o3 "]\n    muls r6, r3, r6\n    add " acc ", " acc ", r6\n"

/* Both kernels: per quad, one LDM of v (two int16 pairs) split into r4, r2, r5, r3 (inputs 0, 2, 1, 3
 * of the quad: v is in quad order), then one load + MULS + ADD per MAC into r8-r11; 56 instructions per
 * 16 MACs. The loop ends when v reaches v + 4 nq (in r12). */
#define TL_V6M_PROLOGUE                                                                                   \
    "    cmp r2, #0\n"                                                                                    \
    "    bgt 2f\n"                                                                                        \
    "    bx lr\n"                                                                                         \
    "2:  push {r3-r7, lr}\n"                                                                              \
    "    mov r4, r8\n"                                                                                    \
    "    mov r5, r9\n"                                                                                    \
    "    mov r6, r10\n"                                                                                   \
    "    mov r7, r11\n"                                                                                   \
    "    push {r4-r7}\n"                                                                                  \
    "    ldm r3!, {r4-r7}\n"                                                                              \
    "    mov r8, r4\n"                                                                                    \
    "    mov r9, r5\n"                                                                                    \
    "    mov r10, r6\n"                                                                                   \
    "    mov r11, r7\n"                                                                                   \
    "    lsls r2, r2, #3\n"                                                                               \
    "    adds r2, r1, r2\n"                                                                               \
    "    mov r12, r2\n"                                                                                   \
    "1:  ldm r1!, {r2, r3}\n"                                                                             \
    "    sxth r4, r2\n"                                                                                   \
    "    asrs r2, r2, #16\n"                                                                              \
    "    sxth r5, r3\n"                                                                                   \
    "    asrs r3, r3, #16\n"
#define TL_V6M_EPILOGUE                                                                                   \
    "    cmp r1, r12\n"                                                                                   \
    "    bne 1b\n"                                                                                        \
    "    ldr r3, [sp, #16]\n"                                                                             \
    "    mov r4, r8\n"                                                                                    \
    "    mov r5, r9\n"                                                                                    \
    "    mov r6, r10\n"                                                                                   \
    "    mov r7, r11\n"                                                                                   \
    "    stm r3!, {r4-r7}\n"                                                                              \
    "    pop {r4-r7}\n"                                                                                   \
    "    mov r8, r4\n"                                                                                    \
    "    mov r9, r5\n"                                                                                    \
    "    mov r10, r6\n"                                                                                   \
    "    mov r11, r7\n"                                                                                   \
    "    pop {r3-r7, pc}\n"

/* one gate of tl_mac4_w8: 4 MACs of the weight bytes at [r0 + o0..o3] (natural order: inputs 0..3)
 * with v in r4, r5, r2, r3 */
#define TL_V6M_GATE8(acc, o0, o1, o2, o3)                                                                 \
    "    ldrb r6, [r0, #" o0 "]\n    muls r6, r4, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o1 "]\n    muls r6, r5, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o2 "]\n    muls r6, r2, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o3 "]\n    muls r6, r3, r6\n    add " acc ", " acc ", r6\n"

/* Armv6-M: no SMLAD, and LDRSH has no immediate offset; the weights are biased uint16
 * (TL_W16_BIAS: the caller starts the accumulators at -32768 * sum(v), and every sum wraps
 * modulo 2^32 to the exact int32 result). Per quad: LDM of v and four splits, then LDRH + MULS +
 * ADD per MAC with the accumulators in r8-r11: 56 instructions per 16 MACs. */
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w16")
        TL_V6M_PROLOGUE
        TL_V6M_GATE("r8", "0", "2", "4", "6")
        TL_V6M_GATE("r9", "8", "10", "12", "14")
        TL_V6M_GATE("r10", "16", "18", "20", "22")
        TL_V6M_GATE("r11", "24", "26", "28", "30")
        "    adds r0, #32\n"
        TL_V6M_EPILOGUE
        TL_ASM_FUNC_END("tl_mac4_w16"));

/* int8 weights: the bytes are w + 128 (TL_W8), read with LDRB (immediate offset); the caller starts
 * the accumulators at -128 * sum(v). 56 instructions per 16 MACs, as tl_mac4_w16. */
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w8")
        TL_V6M_PROLOGUE
        TL_V6M_GATE8("r8", "0", "1", "2", "3")
        TL_V6M_GATE8("r9", "4", "5", "6", "7")
        TL_V6M_GATE8("r10", "8", "9", "10", "11")
        TL_V6M_GATE8("r11", "12", "13", "14", "15")
        "    adds r0, #16\n"
        TL_V6M_EPILOGUE
        TL_ASM_FUNC_END("tl_mac4_w8"));
#else
typedef char tl_kernels_v6m_unused; /* ISO C: a translation unit declares something */
#endif
