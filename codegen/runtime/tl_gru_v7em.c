/*
 * tl_gru_v7em.c - the Armv7E-M (M4, M7, M33, M55: the DSP extension) assembly block loop of the fast GRU
 * step: tl_gru_blocks_v7em, for layers with linear_before_reset, no clip and a state format Q(15)
 * (a_h = 0), the common case (PyTorch's nn.GRU). Selected by TL_KERNEL_DSP (tl_fixedpoint.h); on every
 * other target this file is empty. tl_gru_step_fast (tl_gru_fast.c) widens x, narrows h and calls it;
 * its C loop computes the same integers (spec sec. 16) and runs every other fast layer. The file layout
 * is described in tl_gru_internal.h.
 *
 * Per block of four units: the six calls of the LSTM's quad kernel (tl_mac4_w16 or tl_mac4_w8 for each
 * matrix: the x side and the h side of the z, r and h rows, accumulators from 0), then per unit
 * (99 instructions): the r gate's sum (SMLAWB + SMLAWT on an LDRD of bias and multipliers) and
 * sigmoid; the candidate's u = Bu + mul16(acc_h, mh) (SMLAWT), t = B + mul16(acc_x, mx) (SMLAWB) plus
 * the reset product shift_half_up(r u, 15) (SMLAL on 2^14), its shift and tanh; the z gate and its
 * sigmoid; the update sum z h + (2^15 - z) n (MUL, MLA) rounded half to even and saturated (SSAT with
 * the shift); the output from the product's high word (SMMLA; y_shift >= 33, the zero point folded
 * into the rounding term), SSAT to int8. The standard table's lookups are tl_sigmoid_q15 /
 * tl_tanh_q15 for shift >= 1 (spec sec. 8.1), their saturated ends (j >= n) out of line.
 */
#include <stddef.h>

#include "tl_gru_internal.h"

#if defined(TL_KERNEL_DSP)
/* The offsets the assembly uses. */
typedef char tl_gru_v7em_offsets[(offsetof(tl_gru_v7em_t, un) == 0 && offsetof(tl_gru_v7em_t, add) == 28 &&
                                  offsetof(tl_gru_v7em_t, y_mult) == 32 && offsetof(tl_gru_v7em_t, y_round) == 36 &&
                                  offsetof(tl_gru_v7em_t, y_shift) == 40 && offsetof(tl_gru_v7em_t, wx) == 44 &&
                                  offsetof(tl_gru_v7em_t, gx) == 60 && offsetof(tl_gru_v7em_t, mac_x) == 68 &&
                                  offsetof(tl_gru_v7em_t, mac_h) == 72 && offsetof(tl_gru_v7em_t, qx) == 76 &&
                                  offsetof(tl_gru_v7em_t, qh) == 80 &&
                                  offsetof(tl_gru_v7em_t, units) == 84 && offsetof(tl_gru_v7em_t, gz) == 88 &&
                                  offsetof(tl_gru_v7em_t, vr) == 92 && offsetof(tl_gru_v7em_t, r_round) == 96 &&
                                  offsetof(tl_gru_v7em_t, t_round) == 104 && sizeof(tl_gru_unit_t) == 32 &&
                                  offsetof(tl_gru_unit_t, rbias) == 24 && offsetof(tl_gru_unit_t, shift) == 28)
                                     ? 1
                                     : -1];

/* The frame (below the nine saved registers): the block's accumulators [sp, #0..95] (x side z, r, h
 * rows at 0, 16, 32; h side at 48, 64, 80), the driver's registers r4-r11 [sp, #96], the end of the
 * unit loop's accumulators [sp, #128], y_mult and y_round [sp, #132], y_shift - 32 [sp, #140].
 * Driver registers: r4 k, r5 W, r6 R (advanced per gate group), r7 x, r8 h (widened / narrowed),
 * r9 and r10 the bytes of a gate group of W and of R, r11 the kernel for W, then for R. Unit loop registers: r0 the unit's
 * accumulators (advanced), r4 its constants, r5 h, r6 y (advanced), r7 the table D, r8 its shift,
 * r9 the mask 2^shift - 1, r10 its segments n, r11 2^shift; r1-r3, r12, lr temporaries. */

/* out = sigmoid_q15(z) (z kept; t1, t2 clobbered): d = (V(|z|) + 2^sh) >> (sh + 1), 2^15 - d for z >= 0.
 * SAT: label of the saturated end (j >= n), BACK: where it returns. 17 instructions. */
#define TL_GRU_SIGMOID(z, out, t1, t2, SAT, BACK)                                                        \
    "    eor " t1 ", " z ", " z ", asr #31\n"                                                            \
    "    sub " t1 ", " t1 ", " z ", asr #31\n"                                                           \
    "    lsr " t2 ", " t1 ", r8\n"                                                                       \
    "    cmp " t2 ", r10\n"                                                                              \
    "    bhs " SAT "f\n"                                                                                 \
    "    and " t1 ", " t1 ", r9\n"                                                                       \
    "    ldrh " out ", [r7, " t2 ", lsl #1]\n"                                                           \
    "    add " t2 ", r7, " t2 ", lsl #1\n"                                                               \
    "    ldrh " t2 ", [" t2 ", #2]\n"                                                                    \
    "    sub " t2 ", " t2 ", " out "\n"                                                                  \
    "    mla " t2 ", " t2 ", " t1 ", r11\n"                                                              \
    "    asr " t2 ", " t2 ", r8\n"                                                                       \
    "    add " out ", " out ", " t2 "\n" BACK ":\n"                                                      \
    "    asr " out ", " out ", #1\n"                                                                     \
    "    cmp " z ", #0\n"                                                                                \
    "    it ge\n"                                                                                        \
    "    rsbge " out ", " out ", #32768\n"

/* Its saturated end: d = D[n] + 1 (then halved). */
#define TL_GRU_SIGMOID_SAT(out, SAT, BACK)                                                               \
    SAT ":\n"                                                                                            \
    "    ldrh " out ", [r7, r10, lsl #1]\n"                                                              \
    "    add " out ", " out ", #1\n"                                                                     \
    "    b " BACK "b\n"

/* out = tanh_q15(z) (z kept; t1, t2 clobbered): d = (V(2 |z|) + 2^(sh-1)) >> sh, v = 2^15 - d, -v for
 * z < 0 (v ^ s - s with s = z >> 31). 18 instructions. */
#define TL_GRU_TANH(z, out, t1, t2, SAT, BACK) TL_GRU_TANH_R(z, out, t1, t2, SAT, BACK, TL_GRU_TANH_R11(t1, t2))
/* (d1 - d0) r + 2^(sh-1) into t2, with 2^sh in r11 (the linear_before_reset loop) or 2^(sh-1) in the
 * frame at [sp, #152] (the other one; lr clobbered) */
#define TL_GRU_TANH_R11(t1, t2)                                                                          \
    "    mul " t2 ", " t2 ", " t1 "\n"                                                                   \
    "    add " t2 ", " t2 ", r11, lsr #1\n"
#define TL_GRU_TANH_FRAME(t1, t2)                                                                        \
    "    ldr lr, [sp, #152]\n"                                                                          \
    "    mla " t2 ", " t2 ", " t1 ", lr\n"
#define TL_GRU_TANH_R(z, out, t1, t2, SAT, BACK, ROUND)                                                   \
    "    eor " t1 ", " z ", " z ", asr #31\n"                                                            \
    "    sub " t1 ", " t1 ", " z ", asr #31\n"                                                           \
    "    lsl " t1 ", " t1 ", #1\n"                                                                       \
    "    lsr " t2 ", " t1 ", r8\n"                                                                       \
    "    cmp " t2 ", r10\n"                                                                              \
    "    bhs " SAT "f\n"                                                                                 \
    "    and " t1 ", " t1 ", r9\n"                                                                       \
    "    ldrh " out ", [r7, " t2 ", lsl #1]\n"                                                           \
    "    add " t2 ", r7, " t2 ", lsl #1\n"                                                               \
    "    ldrh " t2 ", [" t2 ", #2]\n"                                                                    \
    "    sub " t2 ", " t2 ", " out "\n"                                                                  \
    ROUND                                                                                                \
    "    asr " t2 ", " t2 ", r8\n"                                                                       \
    "    add " out ", " out ", " t2 "\n" BACK ":\n"                                                      \
    "    rsb " out ", " out ", #32768\n"                                                                 \
    "    eor " out ", " out ", " z ", asr #31\n"                                                         \
    "    sub " out ", " out ", " z ", asr #31\n"

/* Its saturated end: d = D[n]. */
#define TL_GRU_TANH_SAT(out, SAT, BACK)                                                                  \
    SAT ":\n"                                                                                            \
    "    ldrh " out ", [r7, r10, lsl #1]\n"                                                              \
    "    b " BACK "b\n"

/* The update and the output of a unit, gz in r2, n in r1 (r1-r3 clobbered): S = z h + (2^15 - z) n,
 * h' = ssat16((S + 2^14 - 1 + ((S >> 15) & 1)) >> 15) (half to even) stored at r5 (advanced), then
 * y = ssat8((hi(h' y_mult) + y_round) >> (y_shift - 32)) (zp_y inside y_round) stored at r6 (advanced). */
#define TL_GRU_UPDATE_OUTPUT                                                                             \
    "    ldrsh r3, [r5]\n"                                                                               \
    "    mul r3, r2, r3\n"                                                                               \
    "    rsb r2, r2, #32768\n"                                                                           \
    "    mla r3, r2, r1, r3\n"                                                                           \
    "    ubfx r2, r3, #15, #1\n"                                                                         \
    "    add r3, r3, r2\n"                                                                               \
    "    add r3, r3, #16384\n"                                                                           \
    "    sub r3, r3, #1\n"                                                                               \
    "    ssat r3, #16, r3, asr #15\n"                                                                    \
    "    strh r3, [r5], #2\n"                                                                            \
    "    ldrd r1, r2, [sp, #132]\n"                                                                      \
    "    smmla r1, r3, r1, r2\n"                                                                         \
    "    ldr r2, [sp, #140]\n"                                                                           \
    "    asr r1, r1, r2\n"                                                                               \
    "    ssat r1, #8, r1\n"                                                                              \
    "    strb r1, [r6], #1\n"

/* A block's units: min(4, units left) -> the end of the unit loop's accumulators at [sp, #128]; units
 * left -= 4 (r0-r2 clobbered) */
#define TL_GRU_BLOCK_UNITS                                                                               \
    "    ldr r1, [r4, #84]\n"                                                                            \
    "    subs r2, r1, #4\n"                                                                              \
    "    it gt\n"                                                                                        \
    "    movgt r1, #4\n"                                                                                 \
    "    str r2, [r4, #84]\n"                                                                            \
    "    add r0, sp, r1, lsl #2\n"                                                                       \
    "    str r0, [sp, #128]\n"

/* One quad-kernel call of the driver: W (r5, advanced by gx in r9) times x (r7) with the kernel in r11,
 * or R (r6, advanced by gh in r10) times h (r8) with the kernel in r11 once reloaded for the h side,
 * into the accumulators at [sp, #ACC]. */
#define TL_GRU_MAC_X(ACC)                                                                                \
    "    mov r0, r5\n"                                                                                   \
    "    mov r1, r7\n"                                                                                   \
    "    ldr r2, [r4, #76]\n"                                                                            \
    "    add r3, sp, #" ACC "\n"                                                                         \
    "    blx r11\n"                                                                                      \
    "    add r5, r5, r9\n"
#define TL_GRU_MAC_H(ACC)                                                                                \
    "    mov r0, r6\n"                                                                                   \
    "    mov r1, r8\n"                                                                                   \
    "    ldr r2, [r4, #80]\n"                                                                            \
    "    add r3, sp, #" ACC "\n"                                                                         \
    "    blx r11\n"                                                                                      \
    "    add r6, r6, r10\n"

__asm__(TL_ASM_FUNC_BEGIN("tl_gru_blocks_v7em")
        "    push {r4-r11, lr}\n"
        "    sub sp, #148\n"
        "    mov r4, r0\n"
        "    ldrd r0, r1, [r4, #32]\n" /* y_mult, y_round */
        "    strd r0, r1, [sp, #132]\n"
        "    ldr r0, [r4, #40]\n" /* y_shift - 32 */
        "    str r0, [sp, #140]\n"
        "    add r0, r4, #44\n"
        "    ldm r0, {r5-r11}\n" /* W, R, x, h, bytes of a gate group of W, of R, the kernel for W */
        "2:\n"
        /* the block's accumulators from 0 */
        "    movs r0, #0\n"
        "    movs r1, #0\n"
        "    movs r2, #0\n"
        "    movs r3, #0\n"
        "    mov r12, sp\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        TL_GRU_MAC_X("0") TL_GRU_MAC_X("16") TL_GRU_MAC_X("32")
        "    ldr r11, [r4, #72]\n"
        TL_GRU_MAC_H("48") TL_GRU_MAC_H("64") TL_GRU_MAC_H("80")
        TL_GRU_BLOCK_UNITS
        "    add r0, sp, #96\n"
        "    stm r0, {r4-r11}\n"
        "    ldm r4, {r4-r11}\n" /* un, h, y, the table, its shift, mask, n, 2^shift */
        "    mov r0, sp\n"
        "1:\n"
        /* r gate: zr = (B + mul16(ax, mx) + mul16(ah, mh)) >> s -> r3, gr -> r1 */
        "    ldr r1, [r0, #16]\n"
        "    ldr r2, [r0, #64]\n"
        "    ldrd r3, r12, [r4, #8]\n"
        "    smlawb r3, r1, r12, r3\n"
        "    smlawt r3, r2, r12, r3\n"
        "    ldrsb r12, [r4, #29]\n"
        "    asr r3, r3, r12\n"
        TL_GRU_SIGMOID("r3", "r1", "r2", "r12", "10", "11")
        /* candidate: u = Bu + mul16(ah, mh) (r12), t = B + mul16(ax, mx) + shift_half_up(r u, 15), zh -> r2 */
        "    ldrd r2, r3, [r4, #16]\n"
        "    ldr r12, [r4, #24]\n"
        "    ldr lr, [r0, #80]\n"
        "    smlawt r12, lr, r3, r12\n"
        "    ldr lr, [r0, #32]\n"
        "    smlawb r2, lr, r3, r2\n"
        "    mov r3, #16384\n"
        "    mov lr, #0\n"
        "    smlal r3, lr, r1, r12\n"
        "    lsr r3, r3, #15\n"
        "    orr r3, r3, lr, lsl #17\n"
        "    add r2, r2, r3\n"
        "    ldrsb r3, [r4, #30]\n"
        "    asr r2, r2, r3\n"
        TL_GRU_TANH("r2", "r1", "r3", "r12", "12", "13") /* n -> r1 */
        /* z gate: zz -> r12, gz -> r2; the accumulators and the constants advance to the next unit */
        "    ldr r2, [r0], #4\n"
        "    ldr r3, [r0, #44]\n"
        "    ldrd r12, lr, [r4], #32\n"
        "    smlawb r12, r2, lr, r12\n"
        "    smlawt r12, r3, lr, r12\n"
        "    ldrsb r2, [r4, #-4]\n"
        "    asr r12, r12, r2\n"
        TL_GRU_SIGMOID("r12", "r2", "r3", "lr", "14", "15")
        TL_GRU_UPDATE_OUTPUT
        "    ldr r1, [sp, #128]\n"
        "    cmp r0, r1\n"
        "    bne 1b\n"
        /* the next block */
        "    ldr r12, [sp, #96]\n"
        "    stm r12, {r4-r6}\n" /* un, h, y advanced */
        "    add r0, sp, #96\n"
        "    ldm r0, {r4-r11}\n"
        "    ldr r11, [r4, #68]\n" /* the kernel for W */
        "    ldr r0, [r4, #84]\n"
        "    cmp r0, #0\n"
        "    bgt 2b\n"
        "    add sp, #148\n"
        "    pop {r4-r11, pc}\n"
        TL_GRU_SIGMOID_SAT("r1", "10", "11")
        TL_GRU_TANH_SAT("r1", "12", "13")
        TL_GRU_SIGMOID_SAT("r2", "14", "15")
        TL_ASM_FUNC_END("tl_gru_blocks_v7em"));

/* Without linear_before_reset. Frame: pass 1: the accumulators x z, r [sp, #0, #16], h z, r [#32, #48],
 * the block's v_r (int32, natural order) [#64]; pass 2: x h, v_r h [#0, #16]; then as above [#96..#140],
 * r_round, r_shift [#144], t_round [#152], the first unit's constants and state [#156], the units
 * [#164], the pointers into gz and vr [#168]. In pass 1 r6 walks gz; in pass 2 r6 walks y, r11 gz
 * (tanh reads its rounding term from the frame), r8 (the driver's h side) is vr. */
__asm__(TL_ASM_FUNC_BEGIN("tl_gru_blocks0_v7em")
        "    push {r4-r11, lr}\n"
        "    sub sp, #180\n"
        "    mov r4, r0\n"
        "    ldrd r0, r1, [r4, #32]\n"
        "    strd r0, r1, [sp, #132]\n"
        "    ldr r0, [r4, #40]\n"
        "    str r0, [sp, #140]\n"
        "    ldrd r0, r1, [r4, #96]\n"
        "    strd r0, r1, [sp, #144]\n"
        "    ldr r0, [r4, #104]\n"
        "    str r0, [sp, #152]\n"
        "    ldrd r0, r1, [r4]\n"
        "    strd r0, r1, [sp, #156]\n"
        "    ldr r0, [r4, #84]\n"
        "    str r0, [sp, #164]\n"
        "    ldrd r0, r1, [r4, #88]\n"
        "    strd r0, r1, [sp, #168]\n"
        "    add r0, r4, #44\n"
        "    ldm r0, {r5-r11}\n"
        /* pass 1 */
        "3:\n"
        "    movs r0, #0\n"
        "    movs r1, #0\n"
        "    movs r2, #0\n"
        "    movs r3, #0\n"
        "    mov r12, sp\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        TL_GRU_MAC_X("0") TL_GRU_MAC_X("16")
        "    add r5, r5, r9\n"
        "    ldr r11, [r4, #72]\n"
        TL_GRU_MAC_H("32") TL_GRU_MAC_H("48")
        "    add r6, r6, r10\n"
        TL_GRU_BLOCK_UNITS
        "    add r0, sp, #96\n"
        "    stm r0, {r4-r11}\n"
        "    ldm r4, {r4-r11}\n"
        "    ldr r6, [sp, #168]\n"
        "    mov r0, sp\n"
        "1:\n"
        /* r gate -> r1; v_r = (r h + 2^(14+q)) >> (15+q) into the block's v_r */
        "    ldr r1, [r0, #16]\n"
        "    ldr r2, [r0, #48]\n"
        "    ldrd r3, r12, [r4, #8]\n"
        "    smlawb r3, r1, r12, r3\n"
        "    smlawt r3, r2, r12, r3\n"
        "    ldrsb r12, [r4, #29]\n"
        "    asr r3, r3, r12\n"
        TL_GRU_SIGMOID("r3", "r1", "r2", "r12", "20", "21")
        "    ldrsh r2, [r5], #2\n"
        "    ldrd r3, r12, [sp, #144]\n"
        "    mla r2, r1, r2, r3\n"
        "    asr r2, r2, r12\n"
        "    str r2, [r0, #64]\n"
        /* z gate -> gz (kept) */
        "    ldr r2, [r0], #4\n"
        "    ldr r3, [r0, #28]\n"
        "    ldrd r12, lr, [r4], #32\n"
        "    smlawb r12, r2, lr, r12\n"
        "    smlawt r12, r3, lr, r12\n"
        "    ldrsb r2, [r4, #-4]\n"
        "    asr r12, r12, r2\n"
        TL_GRU_SIGMOID("r12", "r2", "r3", "lr", "22", "23")
        "    str r2, [r6], #4\n"
        "    ldr r1, [sp, #128]\n"
        "    cmp r0, r1\n"
        "    bne 1b\n"
        "    str r6, [sp, #168]\n"
        "    ldr r12, [sp, #96]\n"
        "    stm r12, {r4-r5}\n" /* un, h advanced */
        /* the block's v_r in quad order: (v0, v2), (v1, v3) */
        "    ldrd r0, r1, [sp, #64]\n"
        "    ldrd r2, r3, [sp, #72]\n"
        "    pkhbt r0, r0, r2, lsl #16\n"
        "    pkhbt r1, r1, r3, lsl #16\n"
        "    ldr r12, [sp, #172]\n"
        "    strd r0, r1, [r12], #8\n"
        "    str r12, [sp, #172]\n"
        "    add r0, sp, #96\n"
        "    ldm r0, {r4-r11}\n"
        "    ldr r11, [r4, #68]\n"
        "    ldr r0, [r4, #84]\n"
        "    cmp r0, #0\n"
        "    bgt 3b\n"
        /* pass 2: from the first unit again, W and R at their h rows, R over v_r */
        "    ldr r0, [sp, #164]\n"
        "    str r0, [r4, #84]\n"
        "    ldrd r0, r1, [sp, #156]\n"
        "    strd r0, r1, [r4]\n"
        "    ldr r0, [r4, #88]\n"
        "    str r0, [sp, #168]\n"
        "    ldr r5, [r4, #44]\n"
        "    add r5, r5, r9, lsl #1\n"
        "    ldr r6, [r4, #48]\n"
        "    add r6, r6, r10, lsl #1\n"
        "    ldr r8, [r4, #92]\n"
        "4:\n"
        "    movs r0, #0\n"
        "    movs r1, #0\n"
        "    movs r2, #0\n"
        "    movs r3, #0\n"
        "    mov r12, sp\n"
        "    stm r12!, {r0-r3}\n"
        "    stm r12!, {r0-r3}\n"
        TL_GRU_MAC_X("0")
        "    add r5, r5, r9, lsl #1\n"
        "    ldr r11, [r4, #72]\n"
        TL_GRU_MAC_H("16")
        "    add r6, r6, r10, lsl #1\n"
        TL_GRU_BLOCK_UNITS
        "    add r0, sp, #96\n"
        "    stm r0, {r4-r11}\n"
        "    ldm r4, {r4-r11}\n"
        "    ldr r11, [sp, #168]\n"
        "    mov r0, sp\n"
        "2:\n"
        /* candidate: zh = (B + mul16(ax, mx) + mul16(a_r, mh)) >> s -> r2, n -> r1 */
        "    ldr r1, [r0], #4\n"
        "    ldr r2, [r0, #12]\n"
        "    ldrd r3, r12, [r4, #16]\n"
        "    smlawb r3, r1, r12, r3\n"
        "    smlawt r3, r2, r12, r3\n"
        "    ldrsb r12, [r4, #30]\n"
        "    asr r2, r3, r12\n"
        TL_GRU_TANH_R("r2", "r1", "r3", "r12", "24", "25", TL_GRU_TANH_FRAME("r3", "r12"))
        "    ldr r2, [r11], #4\n"
        TL_GRU_UPDATE_OUTPUT
        "    add r4, r4, #32\n"
        "    ldr r1, [sp, #128]\n"
        "    cmp r0, r1\n"
        "    bne 2b\n"
        "    str r11, [sp, #168]\n"
        "    ldr r12, [sp, #96]\n"
        "    stm r12, {r4-r6}\n"
        "    add r0, sp, #96\n"
        "    ldm r0, {r4-r11}\n"
        "    ldr r11, [r4, #68]\n"
        "    ldr r0, [r4, #84]\n"
        "    cmp r0, #0\n"
        "    bgt 4b\n"
        "    add sp, #180\n"
        "    pop {r4-r11, pc}\n"
        TL_GRU_SIGMOID_SAT("r1", "20", "21")
        TL_GRU_SIGMOID_SAT("r2", "22", "23")
        TL_GRU_TANH_SAT("r1", "24", "25")
        TL_ASM_FUNC_END("tl_gru_blocks0_v7em"));

#else
typedef char tl_gru_v7em_unused; /* ISO C: a translation unit declares something */
#endif
