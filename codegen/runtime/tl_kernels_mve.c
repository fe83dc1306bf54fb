/*
 * tl_kernels_mve.c - the Helium (Armv8.1-M MVE) unit loop of tl_lstm_step_mve, in assembly:
 * tl_mve_units (and tl_mve_units_trace, the same loop storing each block's z and gates for the stage
 * kernel). Selected by TL_KERNEL_MVE (tl_lstm_mve.h, which describes the layout and the context
 * tl_mve_ctx_t); on every other target this file is empty.
 *
 * Per block of four units (one per 32-bit lane; spec sec. 5-9, bit for bit):
 * - Accumulators: per matrix and gate one pass over the chunks of 8 widened inputs with the gate's four
 *   rows: one input load, four weight loads (VLDRH, or VLDRB.S16 for int8 weights) and four
 *   VMLADAVA.S16 (8 MACs each) per chunk, 10 instructions per 32 MACs with the loop's LE. VMLADAV's
 *   destination must be an even register (r4, r6, r8, r10); one STM stores the four sums. The sums are
 *   exact (the quantizer proves they fit int32), so the order of the products changes nothing.
 * - Gates: t = B + VMULH(acc_x, mx << 16) + VMULH(acc_h, mh << 16) (VMULH is the high word of the
 *   64-bit product, its floor: mul16 exactly; VSHLLB / VSHLLT split the packed mult), z = t >> s. The
 *   standard table's sigmoid and tanh: u = |z| (tanh: 2 |z|) clamped to n 2^sh - 1 (D[n-1] == D[n]),
 *   two gather loads D[j], D[j+1], d = D[j] + (((D[j+1] - D[j]) r + add) >> sh), the sign from a VCMP
 *   made first (VPSEL).
 * - Cell: the fast step's 32-bit form (tl_lstm_mve.c), saturated by VQMOVNB.S32; h': VMULH (the
 *   high word of requant), VQMOVNB twice (sat8). The last block's lanes past H are predicated off
 *   (VCTP) for the loads and stores of c and h.
 * Registers in the gate part: r0 context, r1 units, r2 a gate's units entry, r3 table, r4 table + 1,
 * r5 -(P - frac), r6 c, r7 h, r8 units left, r9 2^15, r10 sigmoid's rounding term; q4 a gate, q5 the
 * cell, q6 / q7 the table's cap and mask, q0-q3 work.
 */
#include "tl_lstm_mve.h"

#if defined(TL_KERNEL_MVE)
#define TL_MVE_S_(x) #x
#define TL_MVE_S(x) TL_MVE_S_(x)
#define TL_MVE_O(name) TL_MVE_S(TL_MVE_OFF_##name)

/* one chunk: q0 = 8 inputs from r5, four weight vectors from r1 (post-incremented); LD loads 8 int16
 * (WB "16" bytes) or 8 int8 sign-extended (WB "8"); OP starts (vmladav) or adds (vmladava) */
#define TL_MVE_CHUNK(LD, WB, OP)                                                                        \
    "    vldrh.u16 q0, [r5], #16\n"                                                                    \
    "    " LD " q1, [r1], #" WB "\n"                                                                   \
    "    " OP ".s16 r4, q0, q1\n"                                                                      \
    "    " LD " q2, [r1], #" WB "\n"                                                                   \
    "    " OP ".s16 r6, q0, q2\n"                                                                      \
    "    " LD " q3, [r1], #" WB "\n"                                                                   \
    "    " OP ".s16 r8, q0, q3\n"                                                                      \
    "    " LD " q1, [r1], #" WB "\n"                                                                   \
    "    " OP ".s16 r10, q0, q1\n"

/* four passes (gates i, f, g, o) over r9 + 1 chunks of the inputs at r3; weights at r1, sums to r2 */
#define TL_MVE_PASSES(LD, WB)                                                                           \
    "    movs r7, #4\n"                                                                                \
    "5:\n"                                                                                             \
    "    mov r5, r3\n"                                                                                 \
    TL_MVE_CHUNK(LD, WB, "vmladav")                                                                    \
    "    wls lr, r9, 7f\n"                                                                             \
    "6:\n"                                                                                             \
    TL_MVE_CHUNK(LD, WB, "vmladava")                                                                   \
    "    le lr, 6b\n"                                                                                  \
    "7:\n"                                                                                             \
    "    stm r2!, {r4, r6, r8, r10}\n"                                                                 \
    "    subs r7, #1\n"                                                                                \
    "    bne 5b\n"

/* q0 = z of gate G: (B + VMULH(acc_x, mx << 16) + VMULH(acc_h, mh << 16)) >> s */
#define TL_MVE_PREACT(G)                                                                                \
    "    add r2, r1, #(36 * " #G ")\n"                                                                 \
    "    vldrw.u32 q0, [r2, #16]\n"                                                                    \
    "    vshllb.u16 q1, q0, #16\n"                                                                     \
    "    vshllt.u16 q2, q0, #16\n"                                                                     \
    "    vldrw.u32 q0, [r0, #(" TL_MVE_O(ACC) " + 16 * " #G ")]\n"                                     \
    "    vmulh.s32 q1, q0, q1\n"                                                                       \
    "    vldrw.u32 q0, [r0, #(" TL_MVE_O(ACC) " + 64 + 16 * " #G ")]\n"                                \
    "    vmulh.s32 q2, q0, q2\n"                                                                       \
    "    vldrw.u32 q0, [r2]\n"                                                                         \
    "    vadd.i32 q0, q0, q1\n"                                                                        \
    "    vadd.i32 q0, q0, q2\n"                                                                        \
    "    vldrb.s32 q1, [r2, #32]\n"                                                                    \
    "    vneg.s32 q1, q1\n"                                                                            \
    "    vshl.s32 q0, q0, q1\n"

/* the table part of both activations: q2 = D[j] + (((D[j+1] - D[j]) r + ADD) >> sh) for u = q0 (already
 * clamped), NSH = -sh */
#define TL_MVE_LOOKUP(NSH, ADD)                                                                         \
    "    vmov q1, q0\n"                                                                                \
    "    vshl.s32 q1, " NSH "\n"                                                                       \
    "    vand q0, q0, q7\n"                                                                            \
    "    vldrh.u32 q2, [r3, q1, uxtw #1]\n"                                                            \
    "    vldrh.u32 q3, [r4, q1, uxtw #1]\n"                                                            \
    "    vsub.i32 q3, q3, q2\n"                                                                        \
    "    vmlas.s32 q3, q0, " ADD "\n"                                                                  \
    "    vshl.s32 q3, " NSH "\n"                                                                       \
    "    vadd.i32 q2, q2, q3\n"

/* DST = sigmoid(q0): d = (V(|z|) + 2^sh) >> (sh + 1); 2^15 - d for z >= 0, else d */
#define TL_MVE_SIGMOID(DST)                                                                             \
    "    vcmp.s32 ge, q0, zr\n"                                                                        \
    "    vabs.s32 q0, q0\n"                                                                            \
    "    vmin.s32 q0, q0, q6\n"                                                                        \
    TL_MVE_LOOKUP("r5", "r10")                                                                         \
    "    vshr.s32 q2, q2, #1\n"                                                                        \
    "    vneg.s32 q3, q2\n"                                                                            \
    "    vadd.i32 q3, q3, r9\n"                                                                        \
    "    vpsel " DST ", q3, q2\n"

/* q0 = tanh(q0): v = 2^15 - ((V(2 |z|) + 2^(sh-1)) >> sh); v for z >= 0, else -v (2 |z| as unsigned) */
#define TL_MVE_TANH(NSH, ADD)                                                                           \
    "    vcmp.s32 ge, q0, zr\n"                                                                        \
    "    vabs.s32 q0, q0\n"                                                                            \
    "    vshl.i32 q0, q0, #1\n"                                                                        \
    "    vmin.u32 q0, q0, q6\n"                                                                        \
    TL_MVE_LOOKUP(NSH, ADD)                                                                            \
    "    vneg.s32 q2, q2\n"                                                                            \
    "    vadd.i32 q2, q2, r9\n"                                                                        \
    "    vneg.s32 q3, q2\n"                                                                            \
    "    vpsel q0, q2, q3\n"

/* q5 = c' from q5 = f c (A) and q0 = i g (B), spec sec. 7 in the fast step's 32-bit form */
#define TL_MVE_CELL                                                                                     \
    "    ldrd r11, r12, [r0, #" TL_MVE_O(CELL_S1) "]\n"                                                \
    "    ldrd r2, lr, [r0, #" TL_MVE_O(CELL_MASK) "]\n"                                                \
    "    vdup.32 q2, r2\n"                                                                             \
    "    ldr r2, [r0, #" TL_MVE_O(CELL_FORM) "]\n"                                                     \
    "    cbnz r2, 8f\n"                                                                                \
    "    vmov q1, q0\n"              /* k <= 15: S = A + (B >> a), q = S >> 15 */                      \
    "    vshl.s32 q1, r11\n"                                                                           \
    "    vadd.i32 q5, q5, q1\n"                                                                        \
    "    vshr.s32 q1, q5, #15\n"                                                                       \
    "    vand q0, q0, q2\n"          /* rem = ((S & 0x7FFF) << a) | (B & (2^a - 1)) */                 \
    "    vmov.i32 q2, #0x7fff\n"                                                                       \
    "    vand q5, q5, q2\n"                                                                            \
    "    vshl.s32 q5, r12\n"                                                                           \
    "    vorr q5, q5, q0\n"                                                                            \
    "    b 9f\n"                                                                                       \
    "8:\n"                                                                                             \
    "    vand q2, q0, q2\n"          /* k > 15: S = A + ((B & (2^(15-b) - 1)) << b) */                 \
    "    vshl.s32 q2, r11\n"                                                                           \
    "    vadd.i32 q5, q5, q2\n"                                                                        \
    "    vshl.s32 q0, r12\n"         /* q = (B >> (15 - b)) + (S >> 15), rem = S & 0x7FFF */           \
    "    vshr.s32 q1, q5, #15\n"                                                                       \
    "    vadd.i32 q1, q1, q0\n"                                                                        \
    "    vmov.i32 q2, #0x7fff\n"                                                                       \
    "    vand q5, q5, q2\n"                                                                            \
    "9:\n"                                                                                             \
    "    vmov.i32 q2, #1\n"          /* q + ((rem + 2^(s_c-1) - 1 + (q & 1)) >> s_c), sat16 */         \
    "    vand q2, q1, q2\n"                                                                            \
    "    vadd.i32 q5, q5, q2\n"                                                                        \
    "    vadd.i32 q5, q5, lr\n"                                                                        \
    "    ldr r2, [r0, #" TL_MVE_O(CELL_NSC) "]\n"                                                      \
    "    vshl.s32 q5, r2\n"                                                                            \
    "    vadd.i32 q5, q5, q1\n"                                                                        \
    "    vqmovnb.s32 q5, q5\n"                                                                         \
    "    vmovlb.s16 q5, q5\n"

/* The whole loop; ZSTORE(G) / GSTORE(G, Q) store z / a gate for the trace (or nothing). */
#define TL_MVE_UNITS(NAME, ZSTORE, GSTORE)                                                              \
    __asm__(TL_MVE_FUNC_BEGIN(NAME)                                                                     \
            "    push {r4-r11, lr}\n"                                                                  \
            "    vpush {d8-d15}\n"                                                                     \
            "1:\n"                                                                                     \
            "    ldr r1, [r0, #" TL_MVE_O(WX) "]\n"                                                    \
            "    ldr r3, [r0, #" TL_MVE_O(VX) "]\n"                                                    \
            "    ldr r9, [r0, #" TL_MVE_O(NX1) "]\n"                                                   \
            "    ldr r11, [r0, #" TL_MVE_O(WIDE) "]\n"                                                 \
            "    add r2, r0, #" TL_MVE_O(ACC) "\n"                                                     \
            "    tst r11, #1\n"                                                                        \
            "    beq 2f\n"                                                                             \
            TL_MVE_PASSES("vldrh.u16", "16")                                                           \
            "    b 3f\n"                                                                               \
            "2:\n"                                                                                     \
            TL_MVE_PASSES("vldrb.s16", "8")                                                            \
            "3:\n"                                                                                     \
            "    str r1, [r0, #" TL_MVE_O(WX) "]\n"                                                    \
            "    ldr r1, [r0, #" TL_MVE_O(WH) "]\n"                                                    \
            "    ldr r3, [r0, #" TL_MVE_O(VH) "]\n"                                                    \
            "    ldr r9, [r0, #" TL_MVE_O(NH1) "]\n"                                                   \
            "    tst r11, #2\n"                                                                        \
            "    beq 2f\n"                                                                             \
            TL_MVE_PASSES("vldrh.u16", "16")                                                           \
            "    b 3f\n"                                                                               \
            "2:\n"                                                                                     \
            TL_MVE_PASSES("vldrb.s16", "8")                                                            \
            "3:\n"                                                                                     \
            "    str r1, [r0, #" TL_MVE_O(WH) "]\n"                                                    \
            "    ldr r1, [r0, #" TL_MVE_O(UNITS) "]\n"                                                 \
            "    ldrd r3, r5, [r0, #" TL_MVE_O(TABLE) "]\n"                                            \
            "    adds r4, r3, #2\n"                                                                    \
            "    ldrd r6, r7, [r0, #" TL_MVE_O(C) "]\n"                                                \
            "    ldr r8, [r0, #" TL_MVE_O(LEFT) "]\n"                                                  \
            "    ldr r10, [r0, #" TL_MVE_O(G_ADD_SIG) "]\n"                                            \
            "    movw r9, #32768\n"                                                                    \
            "    vldrw.u32 q6, [r0, #" TL_MVE_O(G_CAP) "]\n"                                           \
            "    vldrw.u32 q7, [r0, #" TL_MVE_O(G_MASK) "]\n"                                          \
            "    vctp.32 r8\n"                                                                         \
            "    vpst\n"                                                                               \
            "    vldrht.s32 q5, [r6]\n"                                                                \
            TL_MVE_PREACT(1) ZSTORE(1)                                                                 \
            TL_MVE_SIGMOID("q4") GSTORE(1, "q4")                                                       \
            "    vmul.i32 q5, q5, q4\n"                                                                \
            TL_MVE_PREACT(0) ZSTORE(0)                                                                 \
            TL_MVE_SIGMOID("q4") GSTORE(0, "q4")                                                       \
            TL_MVE_PREACT(2) ZSTORE(2)                                                                 \
            "    ldr r11, [r0, #" TL_MVE_O(G_ADD_TANH) "]\n"                                           \
            TL_MVE_TANH("r5", "r11") GSTORE(2, "q0")                                                   \
            "    vmul.i32 q0, q0, q4\n"                                                                \
            TL_MVE_CELL                                                                                \
            "    vctp.32 r8\n"                                                                         \
            "    vpst\n"                                                                               \
            "    vstrht.32 q5, [r6]\n"                                                                 \
            TL_MVE_PREACT(3) ZSTORE(3)                                                                 \
            TL_MVE_SIGMOID("q4")                                                                       \
            "    vldrw.u32 q6, [r0, #" TL_MVE_O(C_CAP) "]\n"                                           \
            "    vldrw.u32 q7, [r0, #" TL_MVE_O(C_MASK) "]\n"                                          \
            "    ldrd r11, r12, [r0, #" TL_MVE_O(C_NSH) "]\n"                                          \
            "    vmov q0, q5\n"                                                                        \
            TL_MVE_TANH("r11", "r12")                                                                  \
            "    vmul.i32 q0, q0, q4\n"      /* h' = sat8(zp_h + ((hi(o a, m) + round) >> (s - 32))) */ \
            "    vldrw.u32 q1, [r0, #" TL_MVE_O(H_MULT) "]\n"                                          \
            "    vmulh.s32 q0, q0, q1\n"                                                               \
            "    ldrd r11, r12, [r0, #" TL_MVE_O(H_ROUND) "]\n"                                        \
            "    vadd.i32 q0, q0, r11\n"                                                               \
            "    vshl.s32 q0, r12\n"                                                                   \
            "    ldr r11, [r0, #" TL_MVE_O(ZP_H) "]\n"                                                 \
            "    vadd.i32 q0, q0, r11\n"                                                               \
            "    vqmovnb.s32 q0, q0\n"                                                                 \
            "    vqmovnb.s16 q0, q0\n"                                                                 \
            "    vctp.32 r8\n"                                                                         \
            "    vpst\n"                                                                               \
            "    vstrbt.32 q0, [r7]\n"                                                                 \
            "    adds r1, #144\n"                                                                      \
            "    adds r6, #8\n"                                                                        \
            "    adds r7, #4\n"                                                                        \
            "    str r1, [r0, #" TL_MVE_O(UNITS) "]\n"                                                 \
            "    strd r6, r7, [r0, #" TL_MVE_O(C) "]\n"                                                \
            "    subs r8, #4\n"                                                                        \
            "    str r8, [r0, #" TL_MVE_O(LEFT) "]\n"                                                  \
            "    bgt 1b\n"                                                                             \
            "    vpop {d8-d15}\n"                                                                      \
            "    pop {r4-r11, pc}\n"                                                                   \
            TL_MVE_FUNC_END(NAME))

/* a hidden global Thumb function in its own section (as TL_ASM_FUNC_BEGIN in tl_lstm_internal.h) */
#define TL_MVE_FUNC_BEGIN(name)                                                                         \
    ".pushsection .text." name ",\"ax\",%progbits\n.syntax unified\n.thumb\n.balign 4\n.global " name  \
    "\n.hidden " name "\n.thumb_func\n.type " name ", %function\n" name ":\n"
#define TL_MVE_FUNC_END(name) ".size " name ", .-" name "\n.popsection\n"

#define TL_MVE_NONE(...)
#define TL_MVE_ZSTORE(G) "    vstrw.32 q0, [r0, #(" TL_MVE_S(TL_MVE_OFF_TRACE_Z) " + 16 * " #G ")]\n"
#define TL_MVE_GSTORE(G, Q) "    vstrw.32 " Q ", [r0, #(" TL_MVE_S(TL_MVE_OFF_TRACE_G) " + 16 * " #G ")]\n"

TL_MVE_UNITS("tl_mve_units", TL_MVE_NONE, TL_MVE_NONE);
TL_MVE_UNITS("tl_mve_units_trace", TL_MVE_ZSTORE, TL_MVE_GSTORE);

/* acc + sum of w[k] x[k], k < n: a tail-predicated low-overhead loop (WLSTP / LETP), 16 MACs per
 * VMLADAVA.S8, the last iteration's lanes past n off; the Dense heads' dot product (tl_heads.c). */
int32_t tl_mve_dot_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t acc)
{
    register int32_t a __asm__("r12") = acc; /* VMLADAVA needs an even register */
    __asm__ volatile("    wlstp.8 lr, %[n], 2f\n"
                     "1:\n"
                     "    vldrb.u8 q0, [%[x]], #16\n"
                     "    vldrb.u8 q1, [%[w]], #16\n"
                     "    vmladava.s8 %[a], q0, q1\n"
                     "    letp lr, 1b\n"
                     "2:\n"
                     : [a] "+r"(a), [w] "+r"(w), [x] "+r"(x)
                     : [n] "r"(n)
                     : "lr", "q0", "q1", "memory");
    return a;
}

#else
typedef char tl_kernels_mve_unused; /* ISO C: a translation unit declares something */
#endif
