/*
 * tl_kernels_v6m_unit.c - tl_lstm_step_fast on Armv6-M (M0, M0+; TL_V6M_ASM, tl_lstm_internal.h):
 * the unit loop in assembly, with the same results as the C unit loop of tl_lstm_fast.c (its
 * reference on every other core). On every other target this file is empty. The file layout is
 * described in tl_lstm_internal.h.
 *
 * All of it is assembly (the C below only checks the offsets it uses): per step the frame from p and
 * the widened x and h, then one loop over the hidden units; the frame and the steps of a unit are
 * described above the code. The quad kernels and the rare hooks are in tl_kernels_v6m.c.
 */
#include "tl_lstm_internal.h"

#if defined(TL_V6M_ASM)
#include <stddef.h>

/* The frame of tl_lstm_step_fast (bytes from sp in the unit loop):
 *   0, 20  the x and h passes, loaded by one LDM (tl_v6m_pass): the next unit's weights, v, the
 *          accumulators' start (minus the weight bias times sum(v), modulo 2^32), the kernel's
 *          entry (int16: its loop, or its `_odd` entry for an odd quad count), the loop
 *          iterations (int16: ceil(quads / 2), int8: quads)
 *   40 the next unit's constants   44 its cell   48 j - H   52 h + H (h' is stored into h: it was
 *      widened first)
 *   56 16 - gate_shift   60 (n << gate_shift) - 1: the gates' clamp (sigma on |z|, tanh on 2 |z|)
 *   64 16 - cell_shift   68 (n << cell_shift) - 1: the cell's clamp (on 2 |c'|)
 *   72, 76 the cell: a = a_fc + a_ig, 32 - a   120, 124 r = 15 - a_ig, 2^(r - 1)
 *   80, 84 h_mult >> 16, h_mult & 0xFFFF   88 2^(h_shift - 33) + zp_h 2^(h_shift - 32)   92 h_shift - 32
 *   96, 100 hooks A (sigma(z_i)) and B (tanh(c'))   104 the table (also in r12)   108 p
 *   112 the next unit's peepholes (i, f, o) or NULL   116 z_o from hook A to hook B   128 padding
 * The assembly reads these fields of tl_lstm_params_t and tl_lstm_unit_t by offset: */
#define TL_V6M_AT(f, off) (offsetof(tl_lstm_params_t, f) == (off))
typedef char tl_v6m_check_params[(TL_V6M_AT(hidden_size, 4) && TL_V6M_AT(wx, 8) && TL_V6M_AT(wx16, 12) && TL_V6M_AT(wh, 16)
                                  && TL_V6M_AT(wh16, 20) && TL_V6M_AT(units, 28) && TL_V6M_AT(x_zero_point, 32)
                                  && TL_V6M_AT(pre_x, 36) && TL_V6M_AT(h_zero_point, 40) && TL_V6M_AT(pre_h, 44)
                                  && TL_V6M_AT(peep, 48) && TL_V6M_AT(peep_mult, 52) && TL_V6M_AT(peep_shift, 64)
                                  && TL_V6M_AT(has_clip, 76) && TL_V6M_AT(clip_q, 80) && TL_V6M_AT(input_forget, 84)
                                  && TL_V6M_AT(table, 88) && TL_V6M_AT(table_n, 92) && TL_V6M_AT(gate_shift, 96)
                                  && TL_V6M_AT(cell_shift, 100) && TL_V6M_AT(a_fc, 112) && TL_V6M_AT(a_ig, 116)
                                  && TL_V6M_AT(h_mult, 124) && TL_V6M_AT(h_shift, 128) && TL_W16_BIAS == 1 << 15
                                  && TL_W8_BIAS == 1 << 7 && offsetof(tl_lstm_unit_t, mult) == 16
                                  && offsetof(tl_lstm_unit_t, shift) == 32 && sizeof(tl_lstm_unit_t) == 36)
                                     ? 1
                                     : -1];

/* A word of the frame, by its decimal offset. */
#define TL_F(off) "[sp, #" #off "]"
/* a second global entry in the section */
#define TL_V6M_FN(name) ".global " name "\n.hidden " name "\n.thumb_func\n.type " name ", %function\n" name ":\n"
/* t += mul16(acc, the 15-bit multiplier at [r7 + off]) = acc_hi m + ((acc_lo m) >> 16) */
#define TL_V6M_MUL16(t, acc, off)                                                                         \
    "    ldrh r4, [r7, #" #off "]\n    mov r5, " acc "\n    asrs r6, r5, #16\n    uxth r5, r5\n"        \
    "    muls r6, r4\n    muls r5, r4\n    lsrs r5, r5, #16\n    adds " t ", " t ", r6\n"                \
    "    adds " t ", " t ", r5\n"

/*
 * Per step: the frame from p (the two passes by tl_v6m_prep, which widens x and h), then per unit:
 *   1. the x pass (tl_v6m_pass: the quad kernel into r8-r11), t = B + mul16(acc_x, mx) (tl_v6m_comb),
 *   2. the h pass, t += mul16(acc_h, mh), z = t >> s (spec sec. 6),
 *   3. i = sigma(z_i) through hook A, f, o = sigma, g = tanh (tl_v6m_sig, tl_v6m_tanh),
 *   4. the cell update (spec sec. 7),
 *   5. tanh(c') through hook B, h' = sat8(zp + requant(o tanh(c'))) from requant's high word (16-bit
 *      halves) with the zero point folded into its rounding term.
 * The standard table's interpolation (spec sec. 8.1) is computed on u << (16 - shift), so the segment
 * is u' >> 16, the fraction u' & 0xFFFF and the rounding a fixed shift: the same floors on a finer
 * grid. Inputs beyond the table are clamped to its last point, where D[n - 1] = D[n] = 0 gives the
 * same value (the model checker verifies the table; n <= 2^15). Hooks A and B are tl_v6m_sig and
 * tl_v6m_tanh for the common layers, tl_v6m_rare_a / _b (tl_kernels_v6m.c) for the layers with
 * peepholes, clip or coupled gates, cell_shift > 16, or h_shift outside [33, 55].
 * Registers across a unit: r12 = the table; after the gate sums r7 = 16 - shift and r8 = the clamp of
 * the activations, r9 = 2^15, r10 = i, r11 = o.
 */
__asm__(TL_ASM_FUNC_BEGIN("tl_lstm_step_fast")
        "    push {r4-r7, lr}\n"
        "    mov r4, r8\n"
        "    mov r5, r9\n"
        "    mov r6, r10\n"
        "    mov r7, r11\n"
        "    push {r4-r7}\n"
        "    sub sp, #132\n"           /* scratch at sp + 168; sp stays 8-byte aligned */
        "    mov r6, r0\n"             /* p */
        "    str r0, " TL_F(108) "\n"
        "    str r3, " TL_F(44) "\n"
        "    ldr r4, [r6, #4]\n"
        "    adds r5, r2, r4\n"
        "    str r5, " TL_F(52) "\n"
        "    negs r4, r4\n"
        "    str r4, " TL_F(48) "\n"
        "    mov r12, r2\n"
        "    movs r0, r1\n"            /* the x pass */
        "    ldr r1, [r6]\n"
        "    ldr r2, [sp, #168]\n"
        "    mov r7, sp\n"
        "    bl tl_v6m_prep\n"
        "    mov r0, r12\n"            /* the h pass: vh after vx, fields at p + 8 */
        "    ldr r1, [r6, #4]\n"
        "    add r7, sp, #20\n"
        "    adds r6, #8\n"
        "    bl tl_v6m_prep\n"
        "    subs r6, #8\n"
        "    ldr r0, [r6, #28]\n"
        "    str r0, " TL_F(40) "\n"
        "    ldr r4, [r6, #48]\n"      /* r4: a rare layer */
        "    str r4, " TL_F(112) "\n"
        "    ldr r0, [r6, #76]\n"
        "    orrs r4, r0\n"
        "    ldr r0, [r6, #84]\n"
        "    orrs r4, r0\n"
        "    movs r5, r6\n"
        "    adds r5, #88\n"
        "    ldm r5!, {r0-r3}\n"       /* table, n, gate_shift, cell_shift */
        "    str r0, " TL_F(104) "\n"
        "    mov r12, r0\n"
        "    movs r0, #16\n"
        "    subs r7, r0, r2\n"
        "    str r7, " TL_F(56) "\n"
        "    subs r7, r0, r3\n"
        "    str r7, " TL_F(64) "\n"
        "    lsrs r7, r7, #31\n"       /* cell_shift > 16: a rare layer */
        "    orrs r4, r7\n"
        "    movs r0, r1\n"
        "    lsls r0, r2\n"
        "    subs r0, #1\n"
        "    str r0, " TL_F(60) "\n"
        "    lsls r1, r3\n"
        "    subs r1, #1\n"
        "    str r1, " TL_F(68) "\n"
        "1:  adds r5, #8\n"
        "    ldm r5, {r0, r1, r2, r3, r5}\n" /* a_fc, a_ig, s_c, h_mult, h_shift */
        "    movs r2, #15\n"
        "    subs r2, r2, r1\n"
        "    str r2, " TL_F(120) "\n"    /* r */
        "    subs r2, #1\n"
        "    movs r7, #1\n"
        "    lsls r7, r2\n"
        "    str r7, " TL_F(124) "\n"    /* 2^(r-1) */
        "    orrs r0, r1\n"
        "    str r0, " TL_F(72) "\n"     /* a */
        "    movs r1, #32\n"
        "    subs r1, r1, r0\n"
        "    str r1, " TL_F(76) "\n"
        "    asrs r0, r3, #16\n"
        "    str r0, " TL_F(80) "\n"
        "    uxth r3, r3\n"
        "    str r3, " TL_F(84) "\n"
        "    subs r5, #32\n"
        "    str r5, " TL_F(92) "\n"
        "    subs r1, r5, #1\n"
        "    movs r2, #1\n"
        "    lsls r2, r1\n"
        "    ldr r3, [r6, #40]\n"
        "    lsls r3, r5\n"
        "    adds r2, r2, r3\n"
        "    str r2, " TL_F(88) "\n"
        "    cmp r1, #23\n"            /* h_shift - 32 outside [1, 23]: a rare layer */
        "    movs r1, #0\n"
        "    adcs r1, r1\n"
        "    orrs r4, r1\n"
        "    adr r0, 9f\n"
        "    cmp r4, #0\n"
        "    beq 6f\n"
        "    adds r0, #8\n"
        "6:  ldm r0!, {r1, r2}\n"
        "    str r1, " TL_F(96) "\n"
        "    str r2, " TL_F(100) "\n"
        /* 1. x pass, t = B + mul16(acc_x, mx) */
        "7:  mov r1, sp\n"
        "    bl tl_v6m_pass\n"
        "    str r0, " TL_F(0) "\n"
        "    ldr r7, " TL_F(40) "\n"
        "    ldm r7!, {r0-r3}\n"
        "    bl tl_v6m_comb\n"
        "    push {r0-r3}\n"
        /* 2. h pass, t += mul16(acc_h, mh), z = t >> s */
        "    add r1, sp, #36\n"
        "    bl tl_v6m_pass\n"
        "    str r0, " TL_F(36) "\n"
        "    ldr r7, " TL_F(56) "\n"
        "    pop {r0-r3}\n"
        "    adds r7, #18\n"
        "    bl tl_v6m_comb\n"
        "    ldrb r4, [r7, #14]\n"
        "    asrs r0, r4\n"
        "    ldrb r4, [r7, #15]\n"
        "    asrs r1, r4\n"
        "    ldrb r4, [r7, #16]\n"
        "    asrs r2, r4\n"
        "    ldrb r4, [r7, #17]\n"
        "    asrs r3, r4\n"
        "    adds r7, #18\n"
        "    str r7, " TL_F(40) "\n"
        /* 3. the gates: i (hook A), f, o, g */
        "    ldr r7, " TL_F(56) "\n"
        "    ldr r4, " TL_F(60) "\n"
        "    mov r8, r4\n"
        "    ldr r4, =32768\n"
        "    mov r9, r4\n"
        "    ldr r4, " TL_F(96) "\n"
        "    blx r4\n"
        "    mov r10, r0\n"
        "    movs r0, r1\n"
        "    bl tl_v6m_sig\n"
        "    movs r1, r0\n"
        "    movs r0, r3\n"
        "    bl tl_v6m_sig\n"
        "    mov r11, r0\n"
        "    movs r0, r2\n"
        "    bl tl_v6m_tanh\n"
        /* 4. the cell (spec sec. 7), with A = f c, B = i g and one of a_fc, a_ig zero:
         * c' = round((A 2^a_fc + B 2^a_ig) / 2^(15 + a_fc)) = round((P + Q 2^-a) / 2^r), where
         * P = A, Q = B, a = a_fc, r = 15 (a_ig = 0), or P = B, Q = A, a = a_ig, r = 15 - a_ig (2:) */
        "    mov r2, r10\n"
        "    muls r0, r2\n"
        "    ldr r4, " TL_F(44) "\n"
        "    ldrh r5, [r4]\n"
        "    sxth r5, r5\n"
        "    muls r1, r5\n"
        "    ldr r6, " TL_F(72) "\n"
        "    ldr r7, " TL_F(76) "\n"
        "    ldr r5, " TL_F(120) "\n"
        "    cmp r5, #15\n"
        "    bne 2f\n"
        "4:  movs r2, r0\n"
        "    asrs r2, r6\n"
        "    adds r1, r1, r2\n"      /* S = P + (Q >> a) */
        "    movs r3, r1\n"          /* the quotient's parity, or the bits of Q below 2^a: */
        "    lsrs r3, r5\n"
        "    lsls r3, r3, #31\n"
        "    lsls r0, r7\n"
        "    orrs r3, r0\n"
        "    subs r3, #1\n"          /* C = either is set */
        "    sbcs r3, r3\n"          /* 0 or -1 */
        "    adds r1, r1, r3\n"
        "    ldr r3, " TL_F(124) "\n"
        "    adds r1, r1, r3\n"
        "    asrs r1, r5\n"          /* (S + 2^(r-1) - 1 + (odd or sticky)) >> r: half to even */
        "    sxth r3, r1\n"
        "    cmp r3, r1\n"
        "    bne 3f\n"
        "5:  strh r1, [r4]\n"
        "    adds r4, #2\n"
        "    str r4, " TL_F(44) "\n"
        /* 5. a = tanh(c') (hook B), h' = sat8(zp + requant(o a)) */
        "    ldr r7, " TL_F(64) "\n"
        "    ldr r4, " TL_F(68) "\n"
        "    mov r8, r4\n"
        "    movs r0, r1\n"
        "    ldr r4, " TL_F(100) "\n"
        "    blx r4\n"
        "    mov r1, r11\n"
        "    muls r0, r1\n"          /* p = o a; the high word of p h_mult on 16-bit halves: */
        "    ldr r1, " TL_F(80) "\n"
        "    ldr r2, " TL_F(84) "\n"
        "    asrs r3, r0, #16\n"
        "    uxth r0, r0\n"
        "    movs r4, r3\n"
        "    muls r4, r2\n"
        "    muls r2, r0\n"
        "    lsrs r2, r2, #16\n"
        "    muls r0, r1\n"
        "    adds r0, r0, r2\n"
        "    muls r3, r1\n"
        "    uxth r2, r4\n"
        "    adds r0, r0, r2\n"
        "    lsrs r0, r0, #16\n"
        "    asrs r4, r4, #16\n"
        "    adds r3, r3, r4\n"
        "    adds r3, r3, r0\n"
        "    ldr r1, " TL_F(88) "\n"
        "    adds r3, r3, r1\n"
        "    ldr r1, " TL_F(92) "\n"
        "    asrs r3, r1\n"
        TL_V6M_FN("tl_v6m_hst")      /* r3 = zp + requant(o a) (also from tl_v6m_rare_b) */
        "    sxtb r1, r3\n"
        "    cmp r1, r3\n"
        "    bne 6f\n"
        "1:  ldr r4, " TL_F(48) "\n"
        "    ldr r5, " TL_F(52) "\n"
        "    strb r3, [r5, r4]\n"
        "    adds r4, #1\n"
        "    str r4, " TL_F(48) "\n"
        "    bne 7b\n"
        "    add sp, #132\n"
        "    pop {r4-r7}\n"
        "    mov r8, r4\n"
        "    mov r9, r5\n"
        "    mov r10, r6\n"
        "    mov r11, r7\n"
        "    pop {r4-r7, pc}\n"
        "2:  eors r0, r1\n"          /* a_ig > 0: P = B, Q = A */
        "    eors r1, r0\n"
        "    eors r0, r1\n"
        "    b 4b\n"
        "3:  asrs r1, r1, #31\n"     /* sat16 */
        "    ldr r3, =0x7FFF\n"
        "    eors r1, r3\n"
        "    b 5b\n"
        "6:  asrs r3, r3, #31\n"     /* sat8 */
        "    movs r1, #127\n"
        "    eors r3, r1\n"
        "    b 1b\n"
        "    .balign 4\n"
        "9:  .word tl_v6m_sig, tl_v6m_tanh, tl_v6m_rare_a, tl_v6m_rare_b\n"
        "    .ltorg\n"
        /* tl_v6m_prep: r0 = src, r1 = n, r2 = v, r6 = p (+ 8 for h), r7 = the pass -> the pass, src
         * widened into v: (src - zp) << pre in quad order (inputs 4q..4q+3 at slots 0, 2, 1, 3: the
         * slot pointer moves +4, -2, +4, +2 bytes), the last quad zero-padded, and the accumulators'
         * start from its sum; returns r2 = v + 8 quads; clobbers r0-r5 */
        TL_V6M_FN("tl_v6m_prep")
        "    push {r6, r7, lr}\n"
        "    str r2, [r7, #4]\n"
        "    adds r4, r1, #3\n"
        "    lsrs r4, r4, #2\n"        /* quads */
        "    lsls r3, r4, #3\n"
        "    adds r3, r2, r3\n"
        "    push {r3}\n"
        "    movs r5, #0\n"
        "    subs r3, #8\n"
        "    str r5, [r3]\n"
        "    str r5, [r3, #4]\n"
        "    adr r5, 8f\n"
        "    ldr r3, [r6, #12]\n"
        "    cmp r3, #0\n"
        "    beq 1f\n"
        "    adds r4, #1\n"            /* int16: ceil(quads / 2) iterations, `_odd` for odd quads */
        "    lsrs r4, r4, #1\n"
        "    bcs 2f\n"
        "    adds r5, #4\n"
        "    b 2f\n"
        "1:  ldr r3, [r6, #8]\n"      /* int8: one quad per iteration */
        "    adds r5, #8\n"
        "2:  str r4, [r7, #16]\n"
        "    str r3, [r7]\n"
        "    ldr r5, [r5]\n"
        "    str r5, [r7, #12]\n"
        "    ldr r3, [r6, #32]\n"
        "    ldr r4, [r6, #36]\n"
        "    movs r5, #2\n"
        "    movs r7, #0\n"
        "3:  ldrb r6, [r0]\n"
        "    sxtb r6, r6\n"
        "    subs r6, r6, r3\n"
        "    lsls r6, r4\n"
        "    strh r6, [r2]\n"
        "    adds r7, r7, r6\n"
        "    adds r2, #4\n"
        "    subs r1, #1\n"
        "    beq 4f\n"
        "    ldrb r6, [r0, #1]\n"
        "    sxtb r6, r6\n"
        "    subs r6, r6, r3\n"
        "    lsls r6, r4\n"
        "    strh r6, [r2]\n"
        "    adds r7, r7, r6\n"
        "    subs r2, r2, r5\n"
        "    negs r5, r5\n"
        "    adds r0, #2\n"
        "    subs r1, #1\n"
        "    bne 3b\n"
        "4:  pop {r2, r6}\n"
        "    movs r5, #15\n"          /* minus the weight bias (2^15, 2^7) times the sum */
        "    ldr r3, [r6, #12]\n"
        "    cmp r3, #0\n"
        "    bne 5f\n"
        "    movs r5, #7\n"
        "5:  lsls r7, r5\n"
        "    negs r0, r7\n"
        "    pop {r7}\n"
        "    str r0, [r7, #8]\n"
        "    pop {pc}\n"
        "    .balign 4\n"
        "8:  .word tl_v6m_k16, tl_v6m_k16_odd, tl_v6m_k8\n"
        /* tl_v6m_pass: r1 = a pass -> its kernel with r0, r1, r7 and r8-r11 = the start */
        TL_V6M_FN("tl_v6m_pass")
        "    ldm r1, {r0, r1, r2, r3, r7}\n"
        "    mov r8, r2\n"
        "    mov r9, r2\n"
        "    mov r10, r2\n"
        "    mov r11, r2\n"
        "    bx r3\n"
        /* tl_v6m_comb: r0-r3 += mul16(r8-r11, the halfwords at r7 + 0, 4, 8, 12); clobbers r4-r6 */
        TL_V6M_FN("tl_v6m_comb")
        TL_V6M_MUL16("r0", "r8", 0) TL_V6M_MUL16("r1", "r9", 4) TL_V6M_MUL16("r2", "r10", 8)
        TL_V6M_MUL16("r3", "r11", 12)
        "    bx lr\n"
        /* sigma(z) = z >= 0 ? 2^15 - d : d, d = (Y + 1) >> 1, Y = D[j] + ((D[j+1] - D[j]) r' >> 16) on
         * u' = min(|z|, r8) << r7 = j 2^16 + r' (r0 -> r0; clobbers r4-r6) */
        TL_V6M_FN("tl_v6m_sig")
        "    asrs r4, r0, #31\n"
        "    eors r0, r4\n"
        "    subs r0, r0, r4\n"
        "    cmp r0, r8\n"
        "    bls 1f\n"
        "    mov r0, r8\n"
        "1:  lsls r0, r7\n"
        "    lsrs r5, r0, #16\n"
        "    uxth r0, r0\n"
        "    lsls r5, r5, #1\n"
        "    add r5, r12\n"
        "    ldrh r6, [r5]\n"
        "    ldrh r5, [r5, #2]\n"
        "    subs r5, r5, r6\n"
        "    muls r0, r5\n"
        "    asrs r0, r0, #16\n"
        "    adds r0, r0, r6\n"      /* Y */
        "    mvns r4, r4\n"
        "    lsrs r4, r4, #16\n"
        "    eors r0, r4\n"          /* z >= 0: 2^16 - 1 - Y */
        "    adds r0, #1\n"
        "    asrs r0, r0, #1\n"
        "    bx lr\n"
        /* tanh(z) = z >= 0 ? v : -v, v = 2^15 - L, L = D[j] + ((D[j+1] - D[j]) r' + 2^15 >> 16) on
         * u' = min(2 |z|, r8) << r7 = j 2^16 + r' (r0 -> r0; clobbers r4-r6) */
        TL_V6M_FN("tl_v6m_tanh")
        "    asrs r4, r0, #31\n"
        "    eors r0, r4\n"
        "    subs r0, r0, r4\n"
        "    lsls r0, r0, #1\n"
        "    cmp r0, r8\n"
        "    bls 1f\n"
        "    mov r0, r8\n"
        "1:  lsls r0, r7\n"
        "    lsrs r5, r0, #16\n"
        "    uxth r0, r0\n"
        "    lsls r5, r5, #1\n"
        "    add r5, r12\n"
        "    ldrh r6, [r5]\n"
        "    ldrh r5, [r5, #2]\n"
        "    subs r5, r5, r6\n"
        "    muls r0, r5\n"
        "    add r0, r9\n"
        "    asrs r0, r0, #16\n"
        "    adds r0, r0, r6\n"      /* L */
        "    negs r0, r0\n"
        "    add r0, r9\n"
        "    eors r0, r4\n"
        "    subs r0, r0, r4\n"
        "    bx lr\n"
        TL_ASM_FUNC_END("tl_lstm_step_fast"));
#else
typedef char tl_kernels_v6m_unit_unused; /* ISO C: a translation unit declares something */
#endif
