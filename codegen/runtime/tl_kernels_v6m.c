/*
 * tl_kernels_v6m.c - the Armv6-M (M0, M0+) assembly kernels of the LSTM step on biased weights
 * (TL_W16_BIAS, TL_W8_BIAS != 0: GCC-compatible compiler, __ARM_ARCH_6M__, no TL_PORTABLE; see
 * tl_lstm.h): the quad kernels tl_mac4_w16 and tl_mac4_w8, and the rare hooks of the fast step
 * (tl_kernels_v6m_unit.c). On every other target this file is empty. The file layout is described in
 * tl_lstm_internal.h.
 *
 * The matrix-vector work is done by two loops with a register interface, one per weight width,
 * shared by the C-callable tl_mac4_* below and the fast step's unit loop:
 *
 *   in:  r0 = the weights, r1 = v (int16 pairs, quad order), r7 = iterations (>= 1),
 *        r8-r11 = the accumulators of gates i, f, g, o
 *   out: r0, r1 advanced past the unit's weights and v, r8-r11 += the four row sums;
 *        r2-r7 and the flags clobbered, r12 and the stack untouched; returns with bx lr.
 *
 * Per quad (4 inputs x 4 gates = 16 MACs): one LDM of v (two int16 pairs) split into r4, r2, r5, r3
 * (inputs 4q, 4q+2, 4q+1, 4q+3), then per MAC one LDRH / LDRB with an immediate offset, one MULS and
 * one ADD into a high register. The int16 loop (the default weights) does two quads per iteration,
 * 109 instructions per 32 MACs (3.41 per MAC; r7 = ceil(quads / 2)); an odd quad count enters at
 * `_odd`: the weight pointer one quad (32 bytes) early and into the loop's second half, whose
 * offsets then address the first quad (the loop still leaves the pointer past the unit's weights).
 * The int8 loop does one quad per iteration, 56 instructions per 16 MACs (3.5 per MAC, r7 = quads):
 * half the code, for the weights chosen to save flash.
 * The sums wrap modulo 2^32 back to the exact int32 result once the caller's start value (minus the
 * weight bias times sum(v), tl_acc_start) is in the accumulator.
 */
#include "tl_lstm_internal.h"

#if defined(TL_V6M_ASM)
/* one gate of a quad: 4 MACs of the int16 weights at [r0 + o0..o3] (quad order) with v in r4, r2, r5, r3 */
#define TL_V6M_G16(acc, o0, o1, o2, o3)                                                                   \
    "    ldrh r6, [r0, #" o0 "]\n    muls r6, r4, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o1 "]\n    muls r6, r2, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o2 "]\n    muls r6, r5, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrh r6, [r0, #" o3 "]\n    muls r6, r3, r6\n    add " acc ", " acc ", r6\n"
/* one gate of a quad: 4 MACs of the int8 weight bytes at [r0 + o0..o3] (natural order: inputs 0..3) */
#define TL_V6M_G8(acc, o0, o1, o2, o3)                                                                    \
    "    ldrb r6, [r0, #" o0 "]\n    muls r6, r4, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o1 "]\n    muls r6, r5, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o2 "]\n    muls r6, r2, r6\n    add " acc ", " acc ", r6\n"                 \
    "    ldrb r6, [r0, #" o3 "]\n    muls r6, r3, r6\n    add " acc ", " acc ", r6\n"
/* the next quad of v: two int16 pairs split into r4, r2 (inputs 4q, 4q+2) and r5, r3 (4q+1, 4q+3) */
#define TL_V6M_V                                                                                          \
    "    ldm r1!, {r2, r3}\n    sxth r4, r2\n    asrs r2, r2, #16\n    sxth r5, r3\n    asrs r3, r3, #16\n"
/* a second global entry inside a kernel */
#define TL_V6M_ENTRY(name) ".global " name "\n.hidden " name "\n.thumb_func\n.type " name ", %function\n" name ":\n"

__asm__(TL_ASM_FUNC_BEGIN("tl_v6m_k16_odd")
        "    subs r0, #32\n"
        "    b 2f\n"
        TL_V6M_ENTRY("tl_v6m_k16")
        "1:\n" TL_V6M_V
        TL_V6M_G16("r8", "0", "2", "4", "6") TL_V6M_G16("r9", "8", "10", "12", "14")
        TL_V6M_G16("r10", "16", "18", "20", "22") TL_V6M_G16("r11", "24", "26", "28", "30")
        "2:\n" TL_V6M_V
        TL_V6M_G16("r8", "32", "34", "36", "38") TL_V6M_G16("r9", "40", "42", "44", "46")
        TL_V6M_G16("r10", "48", "50", "52", "54") TL_V6M_G16("r11", "56", "58", "60", "62")
        "    adds r0, #64\n"
        "    subs r7, #1\n"
        "    bne 1b\n"
        "    bx lr\n"
        TL_ASM_FUNC_END("tl_v6m_k16_odd"));

__asm__(TL_ASM_FUNC_BEGIN("tl_v6m_k8")
        "1:\n" TL_V6M_V
        TL_V6M_G8("r8", "0", "1", "2", "3") TL_V6M_G8("r9", "4", "5", "6", "7")
        TL_V6M_G8("r10", "8", "9", "10", "11") TL_V6M_G8("r11", "12", "13", "14", "15")
        "    adds r0, #16\n"
        "    subs r7, #1\n"
        "    bne 1b\n"
        "    bx lr\n"
        TL_ASM_FUNC_END("tl_v6m_k8"));

/* The C-callable quad kernels (tl_lstm_internal.h) around the two loops: r4 = the entry, r7 = the
 * iterations (int16: (nq + 1) / 2, the `_odd` entry for an odd nq; int8: nq), acc[0..3] to and
 * from r8-r11 (saved). */
__asm__(TL_ASM_FUNC_BEGIN("tl_mac4_w16")
        "    push {r3-r7, lr}\n"
        "    adds r7, r2, #1\n"
        "    lsrs r7, r7, #1\n"
        "    ldr r4, =tl_v6m_k16\n"
        "    bcs 1f\n"
        "    ldr r4, =tl_v6m_k16_odd\n"
        "1:  b 2f\n"
        TL_V6M_ENTRY("tl_mac4_w8")
        "    push {r3-r7, lr}\n"
        "    movs r7, r2\n"
        "    ldr r4, =tl_v6m_k8\n"
        "2:  cmp r7, #0\n"
        "    ble 3f\n"
        "    mov r12, r4\n"
        "    mov r2, r8\n"
        "    mov r4, r9\n"
        "    mov r5, r10\n"
        "    mov r6, r11\n"
        "    push {r2, r4, r5, r6}\n"
        "    ldm r3!, {r2, r4, r5, r6}\n"
        "    mov r8, r2\n"
        "    mov r9, r4\n"
        "    mov r10, r5\n"
        "    mov r11, r6\n"
        "    blx r12\n"
        "    ldr r3, [sp, #16]\n"
        "    mov r2, r8\n"
        "    mov r4, r9\n"
        "    mov r5, r10\n"
        "    mov r6, r11\n"
        "    stm r3!, {r2, r4, r5, r6}\n"
        "    pop {r2, r4, r5, r6}\n"
        "    mov r8, r2\n"
        "    mov r9, r4\n"
        "    mov r10, r5\n"
        "    mov r11, r6\n"
        "3:  pop {r3-r7, pc}\n"
        "    .ltorg\n"
        TL_ASM_FUNC_END("tl_mac4_w16"));

/*
 * The rare hooks of the fast step's unit loop (tl_kernels_v6m_unit.c calls them through its frame:
 * the decimal offsets below are its fields at sp plus what the hook pushed, described there, and
 * those of tl_lstm_params_t from r6 = p, checked there). Hook A replaces sigma(z_i), hook B tanh(c'),
 * for the layers with peepholes, clip or coupled gates, a cell finer than 2^-16 of the table's grid,
 * or an h requantization the loop's folded form does not cover:
 *   A: r0-r3 = z_i, z_f, z_g, z_o -> peepholes on the old cell (i, f), clip (i, f, g), f = 1 - i
 *      as z_f = -z_i (sigma(-z) = 2^15 - sigma(z) exactly), z_o kept for B; returns sigma(z_i) and
 *      the new z_f, z_g in r1, r2.
 *   B: r0 = c' -> peephole on c' and clip of z_o, r11 = o = sigma(z_o), r0 = tanh(c') (on its first
 *      segment when cell_shift > 16: 2 |c'| < 2^17); with a general requantization of h it continues
 *      the loop at tl_v6m_hst with r3 = zp + requant(o tanh(c')).
 * Both keep r8 (A: r7 too), r9 and r12 for the loop.
 */
__asm__(TL_ASM_FUNC_BEGIN("tl_v6m_rare_a")
        "    push {r0-r3, lr}\n"       /* the frame at sp + 20 */
        "    ldr r6, [sp, #128]\n"     /* p */
        "    str r3, [sp, #136]\n"     /* z_o */
        "    ldr r0, [sp, #132]\n"     /* peepholes */
        "    cmp r0, #0\n"
        "    beq 1f\n"
        "    movs r0, #0\n"
        "    bl 7f\n"
        "    ldr r1, [sp]\n"
        "    adds r0, r0, r1\n"
        "    str r0, [sp]\n"
        "    movs r0, #1\n"
        "    bl 7f\n"
        "    ldr r1, [sp, #4]\n"
        "    adds r0, r0, r1\n"
        "    str r0, [sp, #4]\n"
        "1:  mov r2, sp\n"             /* clip z_i, z_f, z_g */
        "2:  ldr r0, [r2]\n"
        "    bl tl_v6m_clip\n"
        "    stm r2!, {r0}\n"
        "    add r0, sp, #12\n"
        "    cmp r2, r0\n"
        "    bne 2b\n"
        "    ldr r0, [r6, #84]\n"      /* coupled input and forget gates */
        "    cmp r0, #0\n"
        "    beq 3f\n"
        "    ldr r0, [sp]\n"
        "    negs r0, r0\n"
        "    str r0, [sp, #4]\n"
        "3:  pop {r0-r3}\n"
        "    pop {r4}\n"
        "    mov lr, r4\n"
        "    b tl_v6m_sig\n"
        "7:  ldr r1, [sp, #64]\n"      /* the peephole of gate r0 on the old cell */
        "    ldrh r1, [r1]\n"
        "    sxth r1, r1\n"
        "    ldr r2, [sp, #132]\n"
        /* tl_v6m_peep: r0 = gate, r1 = cell, r2 = the unit's peepholes -> requant(p[gate] cell) */
        TL_V6M_ENTRY("tl_v6m_peep")
        "    lsls r3, r0, #1\n"
        "    ldrsh r3, [r2, r3]\n"
        "    muls r3, r1\n"
        "    lsls r4, r0, #2\n"
        "    adds r4, r4, r6\n"
        "    ldr r1, [r4, #52]\n"
        "    ldr r2, [r4, #64]\n"
        "    movs r0, r3\n"
        /* tl_v6m_req: r0 = requant(r0, r1, r2) (spec sec. 2: mult in [2^30, 2^31) or 0, shift in
         * [0, 62]) from the product's two words on 16-bit halves; clobbers r1-r5 */
        TL_V6M_ENTRY("tl_v6m_req")
        "    asrs r4, r0, #16\n"
        "    uxth r0, r0\n"
        "    lsrs r5, r1, #16\n"
        "    uxth r1, r1\n"
        "    movs r3, r4\n"
        "    muls r3, r1\n"            /* x = ah bl */
        "    muls r1, r0\n"            /* al bl */
        "    muls r0, r5\n"            /* al bh */
        "    muls r4, r5\n"            /* ah bh */
        "    lsrs r5, r1, #16\n"
        "    adds r5, r5, r0\n"        /* y = al bh + (al bl >> 16) */
        "    adds r0, r0, r3\n"
        "    lsls r0, r0, #16\n"
        "    adds r1, r1, r0\n"        /* lo */
        "    uxth r0, r3\n"
        "    adds r5, r5, r0\n"
        "    lsrs r5, r5, #16\n"
        "    asrs r3, r3, #16\n"
        "    adds r4, r4, r3\n"
        "    adds r4, r4, r5\n"        /* hi */
        "    cmp r2, #33\n"           /* shift >= 33: the same on hi alone: (hi + 2^(shift-33)) >> */
        "    blt 1f\n"                /* (shift - 32), with the 64-bit value sign(hi):hi */
        "    movs r1, r4\n"
        "    asrs r4, r4, #31\n"
        "    subs r2, #32\n"
        "1:  subs r3, r2, #1\n"        /* (hi:lo + 2^(shift-1)) >> shift modulo 2^32 (the register */
        "    movs r0, #1\n"            /* shifts by 32 or more give 0: shift 0 gives lo) */
        "    lsls r0, r3\n"
        "    adds r1, r1, r0\n"
        "    movs r0, #0\n"
        "    adcs r4, r0\n"
        "    lsrs r1, r2\n"
        "    movs r0, #32\n"
        "    subs r0, r0, r2\n"
        "    lsls r4, r0\n"
        "    orrs r1, r4\n"
        "    movs r0, r1\n"
        "    bx lr\n"
        /* tl_v6m_clip: r0 = sat(r0, -clip_q, clip_q) when p (r6) has clip; clobbers r1 */
        TL_V6M_ENTRY("tl_v6m_clip")
        "    ldr r1, [r6, #76]\n"
        "    cmp r1, #0\n"
        "    beq 2f\n"
        "    ldr r1, [r6, #80]\n"
        "    cmp r0, r1\n"
        "    ble 1f\n"
        "    movs r0, r1\n"
        "1:  negs r1, r1\n"
        "    cmp r0, r1\n"
        "    bge 2f\n"
        "    movs r0, r1\n"
        "2:  bx lr\n"
        TL_V6M_ENTRY("tl_v6m_rare_b")
        "    push {r0, lr}\n"          /* the frame at sp + 8 */
        "    ldr r6, [sp, #116]\n"
        "    ldr r0, [sp, #124]\n"     /* z_o */
        "    ldr r2, [sp, #120]\n"
        "    cmp r2, #0\n"
        "    beq 1f\n"
        "    movs r7, r0\n"
        "    movs r0, #2\n"
        "    ldr r1, [sp]\n"
        "    bl tl_v6m_peep\n"
        "    adds r0, r0, r7\n"
        "    ldr r2, [sp, #120]\n"
        "    adds r2, #6\n"            /* the next unit's peepholes */
        "    str r2, [sp, #120]\n"
        "1:  bl tl_v6m_clip\n"
        "    ldr r7, [sp, #64]\n"      /* o = sigma(z_o) with the gates' constants */
        "    ldr r1, [sp, #68]\n"
        "    mov r8, r1\n"
        "    bl tl_v6m_sig\n"
        "    mov r11, r0\n"
        "    ldr r7, [sp, #72]\n"
        "    ldr r1, [sp, #76]\n"
        "    mov r8, r1\n"
        "    pop {r0}\n"               /* c'; the frame at sp + 4 */
        "    ldr r6, [sp, #112]\n"     /* p (tl_v6m_sig clobbered r6) */
        "    ldr r1, [r6, #100]\n"
        "    cmp r1, #16\n"
        "    bgt 2f\n"
        "    bl tl_v6m_tanh\n"
        "    b 3f\n"
        "2:  asrs r7, r0, #31\n"       /* cell_shift > 16: 2 |c'| < 2^cs, segment 0, and D0 = 2^15: */
        "    eors r0, r7\n"            /* tanh(c') = -+requant((D1 - D0) 2 |c'|, 2^30, cs + 30) */
        "    subs r0, r0, r7\n"
        "    lsls r0, r0, #1\n"
        "    mov r5, r12\n"
        "    ldrh r3, [r5, #2]\n"
        "    ldrh r5, [r5]\n"
        "    subs r3, r3, r5\n"
        "    muls r0, r3\n"
        "    movs r2, #30\n"
        "    adds r2, r2, r1\n"
        "    movs r1, #1\n"
        "    lsls r1, r1, #30\n"
        "    bl tl_v6m_req\n"
        "    negs r0, r0\n"
        "    eors r0, r7\n"
        "    subs r0, r0, r7\n"
        "3:  ldr r1, [sp, #96]\n"      /* h_shift - 32 outside [1, 23]: the general requantization */
        "    subs r1, #1\n"
        "    cmp r1, #22\n"
        "    bhi 4f\n"
        "    pop {pc}\n"
        "4:  mov r1, r11\n"
        "    muls r0, r1\n"
        "    ldr r6, [sp, #112]\n"
        "    ldr r1, [r6, #124]\n"
        "    ldr r2, [sp, #96]\n"
        "    adds r2, #32\n"
        "    bl tl_v6m_req\n"
        "    ldr r3, [r6, #40]\n"
        "    adds r3, r3, r0\n"        /* zp + requant(o a): saturated and stored by the loop */
        "    pop {r1}\n"
        "    ldr r5, =tl_v6m_hst\n"
        "    bx r5\n"
        "    .ltorg\n"
        TL_ASM_FUNC_END("tl_v6m_rare_a"));
#else
typedef char tl_kernels_v6m_unused; /* ISO C: a translation unit declares something */
#endif
