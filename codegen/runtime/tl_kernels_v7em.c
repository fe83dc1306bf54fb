/*
 * tl_kernels_v7em.c - the Armv7E-M (M4, M7, M33, M55: the DSP extension) assembly kernels of the LSTM
 * step: tl_mac4_w16 and tl_mac4_w8 (the general step's two passes per unit, SMLAD) and
 * tl_lstm_units_v7em (the fast step's whole unit loop). Selected by TL_KERNEL_DSP
 * (tl_lstm_internal.h: GCC-compatible compiler, Thumb-2, __ARM_FEATURE_DSP, no TL_PORTABLE); on
 * every other target this file is empty. The file layout is described in tl_lstm_internal.h.
 *
 * The integer sums are exact (the quantizer proves they fit int32), so the order in which these
 * kernels add their products changes no result: they are bit-identical to the portable C
 * (tl_kernels_portable.c, tl_lstm_fast.c).
 */
#include "tl_lstm_internal.h"

#if defined(TL_KERNEL_DSP)
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

/*
 * The unit loop of tl_lstm_step_fast in Armv7E-M assembly (M4, M7, M33, M55): per hidden unit,
 * the two SMLAD passes (x, then h) with the four gate accumulators in registers, the eight
 * requantizations (SMULL, spec sec. 2 odd form), the four gate tables, the cell update (SMULL +
 * SMLAL, round half to even on the 64-bit sum, SSAT) and h' (table, SMULL, SSAT). It computes
 * exactly what the C unit loop of tl_lstm_fast.c computes; the emitter only calls
 * tl_lstm_step_fast for layers whose flags make these short forms exact (TL_LSTM_FAST_REQUANT |
 * _LUT | _CELL, tl_lstm.h). Everything it needs per step is in a tl_v7em_ctx_t built by
 * tl_lstm_step_fast; its offsets used below are checked at compile time (tl_lstm_internal.h).
 */
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
#else
typedef char tl_kernels_v7em_unused; /* ISO C: a translation unit declares something */
#endif
