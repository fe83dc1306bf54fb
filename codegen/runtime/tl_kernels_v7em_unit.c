/*
 * tl_kernels_v7em_unit.c - tl_lstm_step_fast on Armv7E-M (M4, M7, M33, M55: the DSP extension) in
 * assembly: the whole step (widening of x and h, the unit loop with the matmul inlined, the gate sums,
 * the standard table's sigmoid and tanh, the cell update, h') in one routine. Selected by TL_KERNEL_DSP
 * (tl_fixedpoint.h); on every other target this file is empty and tl_lstm_fast.c's C unit loop, which
 * computes the same integers (docs/quantization.md sec. 5-9), is the step. The file layout is
 * described in tl_lstm_internal.h.
 *
 * Per step the routine widens x and h into the scratch ((v - zp) << pre per halfword: EOR 0x80, UXTB16,
 * LSL, SSUB16), writes the per-step constants into its stack frame (layout F_* in the header) and runs
 * the unit loop. Per hidden unit (no peephole, no clip, standard h scale: 127 instructions outside
 * the matmul loops, 2 more for each lookup beyond the table's grid; QEMU profile of an H = 64 step):
 *  - matmul: `ldm sp, {r0, r1, r8-r12, pc}` loads the weight and input pointers, zeroes the four
 *    gate accumulators (r8-r11), loads the end pointer and jumps into a 4-quad loop (entered in the
 *    middle for a count that is not a multiple of 4, Duff-style); the loop returns through the word
 *    stored after the input vector (`ldr pc, [r1]`), so all 14 registers are free for it. int16
 *    weights: 11 instructions per quad (16 MACs: LDM of x, two LDM of weights, 8 SMLAD; x and the
 *    weights in low registers, so the LDMs are 16-bit), int8: 18 (8 SXTB16 more);
 *  - t = B + mul16(acc_x, mx) + mul16(acc_h, mh): SMLAWB after the x pass, SMLAWT after the h pass,
 *    z = t >> s (ASR by the shift bytes);
 *  - a standard-table lookup (spec sec. 8.1) at the fixed scale 2^14: x = |z| << (15 - gs) holds the
 *    index j and the fraction r (14 bits); one unaligned LDR reads (D[j], D[j+1]), EOR 0x80008000 makes
 *    them signed (D - 2^15), one SMLAD with (2^14 - r, r) (MLA r, 0xFFFF, 2^14) interpolates, ASR 15
 *    (sigmoid) or 14 (tanh) rounds once, and the sign costs EOR + RSB on z's sign mask, no branch.
 *    |z| beyond the grid takes a branch to the last segment (D[n-1] = D[n] = 0 for every table);
 *  - the cell: f c 2^17 + i g 2^(k+2) with SMULL + SMLAL (= the spec's sum scaled so that s_c = 32),
 *    rounded half to even from the high word (LSRS, SBCS, ADC), SSAT 16;
 *  - tanh(c') at the cell's own shift (MLA form: the cell shift may pass 14), the sign moved onto o;
 *  - h' = SMMLA (high word + rounding + zero point << shift), ASR, SSAT 8, written to h directly (x and
 *    h were widened before the first unit).
 * Peepholes, clip, coupled gates and an h scale outside the common range take three hooks (one
 * `ldr pc` each on the common path) to the rare paths at the end of the routine (assembly too: the
 * peepholes' and h's general requantization, the clip, f = 1 - i as sigma(-z_i)).
 * tl_kernels_v7em_unit.h holds the parameter offsets the routine reads, the matmul's quad macros, the
 * frame layout and the gate lookups' assembler macros.
 */
#include "tl_lstm_internal.h"

#if defined(TL_KERNEL_DSP)
#include "tl_kernels_v7em_unit.h"

__asm__(TL_V7EM_FRAME TL_V7EM_MACROS
        ".pushsection .text.tl_lstm_step_fast,\"ax\",%progbits\n"
        ".syntax unified\n"
        ".thumb\n"
        ".balign 4\n"
        ".global tl_lstm_step_fast\n"
        ".thumb_func\n"
        ".type tl_lstm_step_fast, %function\n"
        "tl_lstm_step_fast:\n"
        "    push {r4-r11, lr}\n"
        "    sub sp, #FRAME\n"
        "    mov r7, r0\n"             /* p, until the hooks */
        "    str r0, [sp, #F_P]\n"
        "    sub r3, r3, r2, lsl #1\n"
        "    strd r3, r2, [sp, #F_CO]\n" /* c - 2 h, h */
        "    str r2, [sp, #F_H0]\n"
        "    ldr r3, [r0, #4]\n"
        "    add r3, r2\n"
        "    str r3, [sp, #F_TL + 28]\n" /* h + H */
        "    ldr r3, [r0, #28]\n"
        "    str r3, [sp, #F_T]\n"
        /* the passes: x widened into the scratch, then h after x's return word (in the frame if H < 8) */
        "    ldr r12, [sp, #FRAME + 36]\n"
        "    mov r0, r1\n"
        "    ldr r1, [r7]\n"
        "    add r11, r7, #8\n"
        "    adr r8, .Lret_x + 1\n"
        "    mov r9, sp\n"
        "    bl .Lpass\n"
        "    ldr r1, [r7, #4]\n"
        "    add r12, #4\n"
        "    cmp r1, #8\n"
        "    it lo\n"
        "    addlo r12, sp, #F_VH\n"
        "    ldr r0, [sp, #F_H0]\n"
        "    add r11, r7, #16\n"
        "    adr r8, .Lret_h + 1\n"
        "    add r9, sp, #F_H\n"
        "    bl .Lpass\n"
        /* gate lookups: table, 15 - gs, n 2^gs - 1, 0xFFFF, 2^14, 2^13, A, B with k = 15 - a_fc + a_ig */
        "    add r0, r7, #88\n"
        "    ldm r0, {r0-r3}\n"         /* table, n, gs, cs */
        "    lsls r1, r2\n"
        "    subs r3, r1, #1\n"
        "    movs r1, #15\n"
        "    subs r1, r2\n"
        "    mov r2, r3\n"
        "    ldrd r4, r5, [r7, #112]\n" /* a_fc, a_ig */
        "    subs r5, r5, r4\n"
        "    adds r5, #17\n"            /* k + 2 */
        "    movs r6, r5\n"
        "    subs r6, #15\n"
        "    it lt\n"
        "    movlt r6, #0\n"            /* A = max(k - 13, 0) */
        "    sub r8, r5, r6\n"          /* B = k + 2 - A <= 15 */
        "    movw r3, #0xFFFF\n"
        "    movs r4, #1\n"
        "    lsls r4, #14\n"
        "    lsrs r5, r4, #1\n"
        "    add r12, sp, #F_G\n"
        "    stm r12, {r0-r6, r8}\n"
        /* tanh(c') and h': cs - 1, 2^(cs-1) - 1, 2^(cs-2), n 2^(cs-1) - 1, h_mult,
         * (2 zp + 1) << (hs - 33) = 2^(hs-33) + zp << (hs-32), hs - 32 (and h + H, above) */
        "    ldr r0, [r7, #100]\n"      /* cs */
        "    subs r0, #1\n"
        "    movs r2, #1\n"
        "    lsls r2, r0\n"
        "    ldr r3, [r7, #92]\n"       /* n */
        "    lsls r3, r0\n"
        "    subs r3, #1\n"
        "    subs r1, r2, #1\n"
        "    lsrs r2, #1\n"
        "    ldrd r4, r6, [r7, #124]\n" /* h_mult, hs */
        "    ldr r5, [r7, #40]\n"
        "    lsls r5, #1\n"
        "    adds r5, #1\n"
        "    subs r6, #33\n"
        "    lsls r5, r6\n"
        "    adds r6, #1\n"
        "    add r7, sp, #F_TL\n"
        "    stm r7!, {r0-r6}\n"
        /* hooks: peepholes, clip and coupled gates; the general requantization of h' unless
         * 33 <= h_shift <= 54 (then hi + the rounding term + zp << (hs - 32) cannot overflow) */
        "    ldr r7, [sp, #F_P]\n"
        "    adr r1, .Lh1 + 1\n"
        "    adr r2, .Lh2 + 1\n"
        "    adr r3, .Lh3 + 1\n"
        "    ldr r0, [r7, #48]\n"
        "    ldr r4, [r7, #76]\n"
        "    orrs r0, r4\n"
        "    ldr r4, [r7, #84]\n"
        "    orrs r0, r4\n"
        "    beq 1f\n"
        "    adr r1, .Lrare1 + 1\n"
        "    adr r2, .Lrare2 + 1\n"
        "1:  subs r4, r6, #1\n"         /* hs - 33 */
        "    cmp r4, #21\n"
        "    bls 2f\n"
        "    adr r3, .Lrare3 + 1\n"
        "2:  add r0, sp, #F_HK1\n"
        "    stm r0!, {r1-r3}\n"
        /* ---- the unit loop ---- */
        ".Lunit:\n"
        "    ldm sp, {r0, r1, r8-r12, pc}\n" /* x pass */
        ".Lret_x:\n"
        "    str r0, [sp]\n"
        "    ldr r3, [sp, #F_T]\n"
        "    ldm r3!, {r0-r2, r4-r7, r12, lr}\n" /* B, mx | mh << 16, shift bytes; r3: the next unit */
        "    smlawb r8, r8, r5, r0\n"
        "    smlawb r9, r9, r6, r1\n"
        "    smlawb r10, r10, r7, r2\n"
        "    smlawb r11, r11, r12, r4\n"
        "    add r0, sp, #F_T\n"
        "    stm r0!, {r3, r5-r12, lr}\n"
        "    ldm r0, {r0, r1, r8-r12, pc}\n" /* h pass */
        ".Lret_h:\n"
        "    str r0, [sp, #F_H]\n"
        "    add r0, sp, #F_T + 4\n"
        "    ldm r0, {r0-r7, lr}\n"
        "    smlawt r7, r11, r7, r6\n"
        "    smlawt r6, r10, r2, r5\n"
        "    smlawt r5, r9, r1, r4\n"
        "    smlawt r4, r8, r0, r3\n"
        "    asr r4, r4, lr\n"
        "    lsr lr, lr, #8\n"
        "    asr r5, r5, lr\n"
        "    lsr lr, lr, #8\n"
        "    asr r6, r6, lr\n"
        "    lsr lr, lr, #8\n"
        "    asr r7, r7, lr\n"          /* z of i, f, g, o */
        "    ldr pc, [sp, #F_HK1]\n"
        ".Lsi:\n"                       /* |z| beyond the grid: the last segment (D[n-1] = D[n] = 0) */
        "    mov r0, r8\n"
        "    b .Lbi\n"
        ".Lsf:\n"
        "    mov r0, r8\n"
        "    b .Lbf\n"
        ".Lsg:\n"
        "    lsr r0, r8, #1\n"
        "    b .Lbg\n"
        ".Lh1:\n"
        "    add r0, sp, #F_G\n"
        "    ldm r0, {r2, r3, r8-r12, lr}\n"
        "    tl_sig r4, .Lsi, .Lbi\n"
        "    add r4, r1, #16384\n"
        "    lsl r4, r4, r12\n"         /* i << A */
        "    tl_sig r5, .Lsf, .Lbf\n"
        "    lsls r5, r1, #1\n"
        "    add r5, r5, #32768\n"      /* 2 f */
        "    tl_tanh r6, .Lsg, .Lbg\n"
        "    lsl r6, r1, lr\n"          /* g << B */
        /* c' = sat16(round_half_even((2f (c << 16) + (i << A)(g << B)) / 2^32)) */
        "    ldrd lr, r12, [sp, #F_CO]\n"
        "    ldrsh r0, [lr, r12, lsl #1]\n"
        "    lsls r0, r0, #16\n"
        "    smull r0, r1, r5, r0\n"
        "    smlal r0, r1, r4, r6\n"
        "    lsrs r4, r1, #1\n"         /* C = quotient odd */
        "    sbcs r4, r0, #0x80000000\n" /* carry: remainder above half, or half and odd */
        "    adc r1, r1, #0\n"
        "    ssat r4, #16, r1\n"
        "    strh r4, [lr, r12, lsl #1]\n"
        "    ldr pc, [sp, #F_HK2]\n"
        ".Lso:\n"
        "    mov r0, r8\n"
        "    b .Lbo\n"
        ".Lh2:\n"
        "    tl_sig r7, .Lso, .Lbo\n"
        "    add r7, r1, #16384\n"
        "    eor r7, r7, r4, asr #31\n"
        "    sub r7, r7, r4, asr #31\n" /* o with the sign of c' */
        "    add r0, sp, #F_TL\n"
        "    ldm r0, {r3, r5, r6, r8-r11, lr}\n"
        "    eor r0, r4, r4, asr #31\n"
        "    sub r0, r0, r4, asr #31\n" /* |c'| */
        "    cmp r0, r8\n"
        "    bhi .Lsc\n"
        ".Lbc:\n"
        "    lsr r1, r0, r3\n"          /* j = 2|c'| >> cs */
        "    ands r0, r5\n"
        "    ldr r1, [r2, r1, lsl #1]\n"
        "    uxth r4, r1\n"
        "    rsb r1, r4, r1, lsr #16\n"
        "    mla r0, r1, r0, r6\n"
        "    asrs r0, r3\n"
        "    adds r0, r4\n"             /* d */
        "    rsb r0, r0, #32768\n"
        "    muls r0, r7\n"             /* o tanh(c') */
        "    ldr pc, [sp, #F_HK3]\n"
        ".Lsc:\n"
        "    mov r0, r8\n"
        "    b .Lbc\n"
        ".Lh3:\n"
        "    smmla r1, r0, r9, r10\n"
        "    asr r1, r1, r11\n"
        ".Lh3sat:\n"
        "    ssat r1, #8, r1\n"
        "    strb r1, [r12], #1\n"
        "    str r12, [sp, #F_HP]\n"
        "    cmp r12, lr\n"
        "    bne .Lunit\n"
        "    add sp, #FRAME\n"
        "    pop {r4-r11, pc}\n"
        /* ---- the matmul loops ---- */
        "    .balign 4\n"
        ".Lmm16:\n" TL_U_Q16 TL_U_Q16 TL_U_Q16 TL_U_Q16
        "    cmp r1, r12\n"
        "    bne .Lmm16\n"
        "    ldr pc, [r1]\n"
        ".Lmm8:\n" TL_U_Q8 TL_U_Q8 TL_U_Q8 TL_U_Q8
        "    cmp r1, r12\n"
        "    bne .Lmm8\n"
        "    ldr pc, [r1]\n"
        /* ---- subroutines of the prologue ---- */
        /* a pass: widen n (r1) int8 values at r0 to (v - zp) << pre (zp, pre at r11 + 24) at r12 in quad
         * order, zero-padded to whole quads (r12 returns the end), then write the pass's block at r9:
         * weights (int16 at r11 + 4 or NULL, int8 at r11), x, zeros, end, the loop entry for the quad
         * count; the return address r8 goes to the end. Clobbers r0-r6, r8, r10. */
        ".Lpass:\n"
        "    ldrd r2, r3, [r11, #24]\n"
        "    mov r10, r12\n"
        "    adds r2, #128\n"
        "    lsls r2, r3\n"
        "    orr r2, r2, r2, lsl #16\n" /* (zp + 128) << pre in both halves */
        "    adds r1, r0\n"
        "    subs r4, r1, #4\n"
        "    b 2f\n"
        "1:  ldr r5, [r0], #4\n"
        "3:  eor r5, r5, #0x80808080\n" /* v + 128 */
        "    uxtb16 r6, r5, ror #8\n"
        "    uxtb16 r5, r5\n"
        "    lsls r5, r3\n"
        "    lsls r6, r3\n"
        "    ssub16 r5, r5, r2\n"
        "    ssub16 r6, r6, r2\n"
        "    stm r12!, {r5, r6}\n"
        "2:  cmp r0, r4\n"
        "    bls 1b\n"
        "    cmp r0, r1\n"              /* the last 1-3 values, from the end */
        "    beq 4f\n"
        "    movs r5, #0\n"
        "5:  ldrb r6, [r1, #-1]!\n"
        "    orr r5, r6, r5, lsl #8\n"
        "    cmp r1, r0\n"
        "    bne 5b\n"
        "    b 3b\n"
        "4:  str r8, [r12]\n"
        "    sub r4, r10, r12\n"
        "    ubfx r4, r4, #3, #2\n"     /* (-quads) & 3: the blocks to skip */
        "    ldrd r1, r0, [r11]\n"
        "    adr r5, .Lmm16 + 1\n"
        "    movs r6, #38\n"
        "    cbnz r0, 6f\n"
        "    mov r0, r1\n"
        "    adds.n r5, #.Lmm8 - .Lmm16\n"
        "    movs r6, #68\n"
        "6:  mla r8, r4, r6, r5\n"
        "    mov r1, r10\n"
        "    mov r6, r12\n"
        "    movs r2, #0\n"
        "    movs r3, #0\n"
        "    movs r4, #0\n"
        "    movs r5, #0\n"
        "    stm r9, {r0-r6, r8}\n"
        "    bx lr\n"
        /* ---- the rare paths (hooks), spec sec. 6 and 9 ---- */
        /* r0 = requant(r0, r1, r2) (spec sec. 2, any shift); clobbers r1-r3, r12 */
        ".Lrq:\n"
        "    smull r3, r1, r0, r1\n"    /* hi:lo = r1:r3 */
        "    subs r2, #1\n"
        "    bmi 1f\n"                  /* shift 0: lo */
        "    movs r0, #1\n"
        "    lsl r12, r0, r2\n"         /* 2^(s-1) below 2^32 (else 0: a register shift >= 32) */
        "    adds r3, r12\n"
        "    sub r12, r2, #32\n"
        "    lsl r0, r0, r12\n"         /* 2^(s-33) from s = 33 (a negative amount is >= 224: 0) */
        "    adcs r1, r0\n"
        "    adds r2, #1\n"
        "    lsrs r3, r2\n"
        "    rsb r0, r2, #32\n"
        "    lsl r0, r1, r0\n"
        "    orrs r0, r3\n"             /* s <= 32: hi << (32 - s) | lo >> s */
        "    subs r2, #32\n"
        "    it gt\n"
        "    asrgt r0, r1, r2\n"        /* s > 32: hi >> (s - 32) */
        "    bx lr\n"
        "1:  mov r0, r3\n"
        "    bx lr\n"
        /* r0 = requant(peep[3 j + g] c, peep_mult[g], peep_shift[g]) for g in r0, c in r1 (spec sec. 6) */
        ".Lpeep:\n"
        "    ldr r2, [sp, #F_HP]\n"
        "    ldr r3, [sp, #F_H0]\n"
        "    subs r2, r3\n"
        "    add r2, r2, r2, lsl #1\n"
        "    adds r2, r0\n"
        "    ldr r3, [sp, #F_P]\n"
        "    add r0, r3, r0, lsl #2\n"
        "    ldr r3, [r3, #48]\n"
        "    ldrsh r2, [r3, r2, lsl #1]\n"
        "    muls r1, r2\n"
        "    ldr r2, [r0, #64]\n"
        "    ldr r0, [r0, #52]\n"
        "    b .Lrq\n"
        /* after z: the peepholes of i and f on the old cell, clip of i, f, g, and f = 1 - i as
         * sigma(-z_i) (exact: sigma(-z) = 2^15 - sigma(z)). r0-r3, r8-r12, lr are free. */
        ".Lrare1:\n"
        "    ldr r0, [sp, #F_P]\n"
        "    ldr r0, [r0, #48]\n"
        "    cbz r0, 1f\n"
        "    ldrd r2, r1, [sp, #F_CO]\n"
        "    ldrsh r10, [r2, r1, lsl #1]\n" /* c */
        "    movs r0, #0\n"
        "    mov r1, r10\n"
        "    bl .Lpeep\n"
        "    add r4, r0\n"
        "    movs r0, #1\n"
        "    mov r1, r10\n"
        "    bl .Lpeep\n"
        "    add r5, r0\n"
        "1:  ldr r0, [sp, #F_P]\n"
        "    ldrd r1, r0, [r0, #76]\n"  /* has_clip, clip_q */
        "    cbz r1, 2f\n"
        "    add r3, sp, #F_T + 4\n"    /* free until the next unit's x pass */
        "    stm r3!, {r4-r6}\n"
        "    movs r2, #3\n"
        "3:  subs r3, #4\n"
        "    ldr r1, [r3]\n"
        "    tl_clip r1, r0\n"
        "    str r1, [r3]\n"
        "    subs r2, #1\n"
        "    bne 3b\n"
        "    ldm r3!, {r4-r6}\n"
        "2:  ldr r0, [sp, #F_P]\n"
        "    ldr r0, [r0, #84]\n"
        "    cbz r0, 4f\n"
        "    rsbs r5, r4, #0\n"
        "4:  b .Lh1\n"
        /* after the cell: the o gate's peephole on c' (r4) and its clip (nothing for a coupled gate
         * alone); r2, r3 and r12 are reloaded */
        ".Lrare2:\n"
        "    ldr r6, [sp, #F_P]\n"
        "    ldr r0, [r6, #48]\n"
        "    cbz r0, 1f\n"
        "    movs r0, #2\n"
        "    mov r1, r4\n"
        "    bl .Lpeep\n"
        "    add r7, r0\n"
        "    ldrd r2, r3, [sp, #F_G]\n"
        "    ldr r12, [sp, #F_HP]\n"
        "1:  ldr r0, [r6, #76]\n"
        "    cbz r0, 2f\n"
        "    ldr r0, [r6, #80]\n"
        "    tl_clip r7, r0\n"
        "2:  b .Lh2\n"
        /* h' with the general requantization: r0 = o tanh(c') */
        ".Lrare3:\n"
        "    ldr r6, [sp, #F_P]\n"
        "    ldrd r1, r2, [r6, #124]\n"
        "    bl .Lrq\n"
        "    ldr r3, [r6, #40]\n"
        "    adds r1, r0, r3\n"
        "    ldr r12, [sp, #F_HP]\n"
        "    ldr lr, [sp, #F_TL + 28]\n"
        "    b .Lh3sat\n"
        ".size tl_lstm_step_fast, .-tl_lstm_step_fast\n"
        ".popsection\n"
        ".purgem tl_sig\n"
        ".purgem tl_tanh\n"
        ".purgem tl_clip\n");

#else
typedef char tl_kernels_v7em_unit_unused; /* ISO C: a translation unit declares something */
#endif
