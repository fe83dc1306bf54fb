/*
 * tl_kernels_v7em_unit.h - what the Armv7E-M assembly step (tl_kernels_v7em_unit.c) is built from,
 * besides the routine's own text: the tl_lstm_params_t offsets it reads (checked at compile time), the
 * matmul's quad macros, its stack frame's layout and the assembler macros of the gate lookups.
 * Included by tl_kernels_v7em_unit.c only, under TL_KERNEL_DSP; not part of the API.
 */
#ifndef TL_KERNELS_V7EM_UNIT_H
#define TL_KERNELS_V7EM_UNIT_H

#include <stddef.h>

#include "tl_lstm_internal.h"

/* The offsets the routine reads (tl_lstm.h): checked at compile time. */
#define TL_OFF(f) offsetof(tl_lstm_params_t, f)
typedef char tl_v7em_unit_offsets[(TL_OFF(input_size) == 0 && TL_OFF(hidden_size) == 4 && TL_OFF(wx) == 8 &&
                                   TL_OFF(wx16) == 12 && TL_OFF(wh) == 16 && TL_OFF(wh16) == 20 &&
                                   TL_OFF(units) == 28 && TL_OFF(x_zero_point) == 32 && TL_OFF(pre_x) == 36 &&
                                   TL_OFF(h_zero_point) == 40 && TL_OFF(pre_h) == 44 && TL_OFF(peep) == 48 &&
                                   TL_OFF(peep_mult) == 52 && TL_OFF(peep_shift) == 64 && TL_OFF(has_clip) == 76 &&
                                   TL_OFF(clip_q) == 80 && TL_OFF(input_forget) == 84 && TL_OFF(table) == 88 &&
                                   TL_OFF(table_n) == 92 && TL_OFF(gate_shift) == 96 && TL_OFF(cell_shift) == 100 &&
                                   TL_OFF(a_fc) == 112 && TL_OFF(a_ig) == 116 && TL_OFF(h_mult) == 124 &&
                                   TL_OFF(h_shift) == 128 && sizeof(tl_lstm_unit_t) == 36 &&
                                   offsetof(tl_lstm_unit_t, mult) == 16 && offsetof(tl_lstm_unit_t, shift) == 32)
                                      ? 1
                                      : -1];
#undef TL_OFF

/* One quad of int16 weights (38 bytes, the loop entry depends on it): r8-r11 += the four gates'
 * weights at r0 times x at r1 (both advanced); x in r2-r3 and the weights in r4-r7 (16-bit LDMs). */
#define TL_U_Q16                                                                                         \
    "    ldm r1!, {r2, r3}\n"                                                                            \
    "    ldm r0!, {r4-r7}\n"                                                                             \
    "    smlad r8, r4, r2, r8\n"                                                                         \
    "    smlad r8, r5, r3, r8\n"                                                                         \
    "    smlad r9, r6, r2, r9\n"                                                                         \
    "    smlad r9, r7, r3, r9\n"                                                                         \
    "    ldm r0!, {r4-r7}\n"                                                                             \
    "    smlad r10, r4, r2, r10\n"                                                                       \
    "    smlad r10, r5, r3, r10\n"                                                                       \
    "    smlad r11, r6, r2, r11\n"                                                                       \
    "    smlad r11, r7, r3, r11\n"
/* One quad of int8 weights (68 bytes), natural order in a quad: SXTB16 pairs (w0, w2) and (w1, w3). */
#define TL_U_Q8G(acc, w)                                                                                 \
    "    sxtb16 lr, " w "\n"                                                                             \
    "    smlad " acc ", lr, r2, " acc "\n"                                                               \
    "    sxtb16 lr, " w ", ror #8\n"                                                                     \
    "    smlad " acc ", lr, r3, " acc "\n"
#define TL_U_Q8                                                                                          \
    "    ldm r1!, {r2, r3}\n"                                                                            \
    "    ldm r0!, {r4-r7}\n" TL_U_Q8G("r8", "r4") TL_U_Q8G("r9", "r5") TL_U_Q8G("r10", "r6")              \
        TL_U_Q8G("r11", "r7")

/*
 * The frame (sp-relative, FRAME bytes below the 9 pushed registers):
 *   F_X    0  x pass: weights, x, 0, 0, 0, 0, x end, loop entry   (ldm sp, {r0, r1, r8-r12, pc})
 *   F_T   32  the next unit's pointer, mx | mh << 16 of gates 0-2, t after the x pass (4), that of
 *             gate 3, the shift bytes
 *   F_H   72  h pass, as F_X
 *   F_G  104  gate lookups: table, 15 - gs, n 2^gs - 1, 0xFFFF, 2^14, 2^13, A, B (cell: i << A, g << B)
 *   F_TL 136  tanh(c') and h': cs - 1, 2^(cs-1) - 1, 2^(cs-2) (0 for cs = 1), n 2^(cs-1) - 1,
 *             h_mult, 2^(hs-33) + zp << (hs-32), hs - 32, h + H
 *   F_CO 168  c - 2 h (so that c[j] is at F_CO + 2 (h + j)); F_HP 172: h + j
 *   F_HK 176  hooks 1-3 (after z, after the cell, before h's requantization); F_P 188: p; F_H0 192: h
 *   F_VH 196  x of h when H < 8 (2 quads and the return word; with H >= 8 it follows x's return word
 *             in the scratch)
 */
#define TL_V7EM_FRAME                                                                                    \
    ".equ F_T, 32\n.equ F_H, 72\n.equ F_G, 104\n.equ F_TL, 136\n.equ F_CO, 168\n.equ F_HP, 172\n"        \
    ".equ F_HK1, 176\n.equ F_HK2, 180\n.equ F_HK3, 184\n.equ F_P, 188\n.equ F_H0, 192\n.equ F_VH, 196\n" \
    ".equ FRAME, 220\n"

/* The gate lookups as assembler macros (tl_sig, tl_tanh), and the rare paths' clip (tl_clip); the
 * routine purges them at its end. */
#define TL_V7EM_MACROS                                                                                   \
    /* r1 = m - (e ^ m), e = sigma(z) - 2^14, m = z's sign mask: sigma = 2^14 + r1. Registers: r2 table, \
     * r3 15 - gs, r8 n 2^gs - 1, r9 0xFFFF, r10 2^14; r0, r1 scratch. \sat: u = r8, back to \back. */   \
    ".macro tl_sig z, sat, back\n"                                                                       \
    "    eor r0, \\z, \\z, asr #31\n"                                                                    \
    "    sub r0, r0, \\z, asr #31\n" /* u = |z| */                                                       \
    "    cmp r0, r8\n"                                                                                   \
    "    bhi \\sat\n"                                                                                    \
    "\\back:\n"                                                                                          \
    "    lsls r0, r3\n"             /* u 2^(15-gs): j at bit 15, r at bits 1-14 */                       \
    "    lsrs r1, r0, #15\n"                                                                             \
    "    ldr r1, [r2, r1, lsl #1]\n" /* D[j] | D[j+1] << 16 */                                           \
    "    ubfx r0, r0, #1, #14\n"                                                                         \
    "    mla r0, r0, r9, r10\n"     /* (2^14 - r) | r << 16 */                                           \
    "    eor r1, r1, #0x80008000\n"                                                                      \
    "    smlad r1, r1, r0, r10\n"   /* V - 2^29 + 2^14 */                                                \
    "    asrs r1, r1, #15\n"                                                                             \
    "    eor r1, r1, \\z, asr #31\n"                                                                     \
    "    rsb r1, r1, \\z, asr #31\n"                                                                     \
    ".endm\n"                                                                                            \
    /* r1 = tanh(z) (Q15) from the table at 2 |z|; also r11 = 2^13. \sat: u = r8 / 2. */                 \
    ".macro tl_tanh z, sat, back\n"                                                                      \
    "    eor r0, \\z, \\z, asr #31\n"                                                                    \
    "    sub r0, r0, \\z, asr #31\n"                                                                     \
    "    cmp r8, r0, lsl #1\n"                                                                           \
    "    blo \\sat\n"                                                                                    \
    "\\back:\n"                                                                                          \
    "    lsls r0, r3\n"             /* (2u) 2^(14-gs): j at bit 14, r at bits 0-13 */                    \
    "    lsrs r1, r0, #14\n"                                                                             \
    "    ldr r1, [r2, r1, lsl #1]\n"                                                                     \
    "    ubfx r0, r0, #0, #14\n"                                                                         \
    "    mla r0, r0, r9, r10\n"                                                                          \
    "    eor r1, r1, #0x80008000\n"                                                                      \
    "    smlad r1, r1, r0, r11\n"   /* V - 2^29 + 2^13 */                                                \
    "    asrs r1, r1, #14\n"        /* d - 2^15 */                                                       \
    "    eor r1, r1, \\z, asr #31\n"                                                                     \
    "    rsb r1, r1, \\z, asr #31\n"                                                                     \
    ".endm\n"                                                                                            \
    /* z = sat(z, -q, q) (the rare paths' clip) */                                                       \
    ".macro tl_clip z, q\n"                                                                              \
    "    cmp \\z, \\q\n"                                                                                 \
    "    it gt\n"                                                                                        \
    "    movgt \\z, \\q\n"                                                                               \
    "    cmn \\z, \\q\n"                                                                                 \
    "    it lt\n"                                                                                        \
    "    rsblt \\z, \\q, #0\n"                                                                           \
    ".endm\n"

#endif /* TL_KERNELS_V7EM_UNIT_H */
