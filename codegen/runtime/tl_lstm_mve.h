/**
 * @file tl_lstm_mve.h
 * @brief tinylstm runtime: the Helium (Armv8.1-M MVE, Cortex-M55) LSTM step, on its own weight layout
 * (docs/quantization.md sec. 5, "Helium layout"; tinylstm/lowering/mve.py decides it).
 *
 * A model generated for the Helium kernels (generate_c(..., target="cortex-m55")) stores the weights
 * of its eligible layers in the Helium layout and calls tl_lstm_step_mve; it compiles only where
 * TL_KERNEL_MVE is defined (model.c has an #error otherwise) and links only against a runtime that
 * defines tl_lstm_layout_mve (tl_lstm_mve.c, compiled with MVE and without TL_PORTABLE), so a model and
 * a runtime built for different layouts never meet. Models generated for the portable layout run on
 * every runtime (on Cortex-M55 with the Armv7E-M kernels).
 *
 * Helium layout of one direction (H hidden, I input; blocks of 4 units, chunks of 8 inputs):
 *   weights  W as [ceil(H/4) blocks][gate i, f, g, o][ceil(I/8) chunks][4 units][8 inputs], R likewise
 *            over H; natural input order, zero-padded; int16 as TL_W16 words or int8 as TL_W8 bytes
 *            (plain two's complement: no weight bias on Armv8.1-M)
 *   units    tl_lstm_unit_t units[4 * ceil(H/4)]: entry 4 b + g holds gate g of the units 4 b + u,
 *            u = 0..3 (bias[u], mult[u] = mx | mh << 16, shift[u]); padding units: 0, 0, 4
 * The step widens x and h to int16 in natural order, (v - zp) << pre, each zero-padded to a multiple
 * of 8 (TL_LSTM_MVE_SCRATCH_BYTES), and computes each block's four units in the four 32-bit lanes:
 * the gate sums with VMULH (mul16(a, m) = high word of a * (m << 16), exact), the standard table's
 * sigmoid and tanh with gather loads, the cell update and h' (spec sec. 6-9, bit for bit).
 */
#ifndef TL_LSTM_MVE_H
#define TL_LSTM_MVE_H

#include <stdint.h>

#include "tl_lstm.h"

/* Armv8.1-M with the integer MVE (Cortex-M55, M85), a GCC-compatible compiler, no TL_PORTABLE. */
#if defined(__GNUC__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(TL_PORTABLE)
#define TL_KERNEL_MVE 1
#endif

/** @brief Scratch bytes of one Helium step: x and h widened to int16, each padded to a multiple of 8. */
#define TL_LSTM_MVE_SCRATCH_BYTES(I, H) (16 * (((I) + 7) / 8) + 16 * (((H) + 7) / 8))

/** @brief Defined (as 1) by tl_lstm_mve.c only where TL_KERNEL_MVE is: the params of a Helium-layout layer
 * point their w16_encoding at it, so such a model fails to link against any other runtime. */
extern const int32_t tl_lstm_layout_mve;

/**
 * @brief tl_lstm_step_s8 (spec sec. 9) on the Helium layout, with the same results: standard table with
 * gate_shift >= 1 and cell_shift >= 1, int8 or int16 weights, no peepholes, clip or coupled gates,
 * h_shift >= 33 (tinylstm/lowering/mve.py). scratch: TL_LSTM_MVE_SCRATCH_BYTES(I, H) bytes, 4-byte
 * aligned; x, h, c and scratch must not overlap. h' is written to h directly (the step reads the
 * widened copy of the old h).
 */
void tl_lstm_step_mve(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch);

/**
 * @brief The stages of tl_lstm_step_mve, for tests: z (4H, gate-major, o without peephole), gates
 * i, f, g (3H, gate-major) and, in place, the new cell c (H) - tl_lstm_gates_s8 and tl_lstm_cell_s16 of
 * the same layer in one call.
 */
void tl_lstm_stages_mve(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, int16_t *c, int32_t *z,
                        int32_t *gates, int16_t *scratch);

/* --- internal: the Helium unit loop (tl_kernels_mve.c) --------------------------------------------- */

/* Everything the unit loop reads, set up by tl_lstm_mve.c; the assembly addresses the fields by the
 * TL_MVE_OFF_* byte offsets below (checked against offsetof at compile time in tl_lstm_mve.c). */
typedef struct {
    const void *wx;              /* W of the next block (TL_W16 words or TL_W8 bytes; advanced) */
    const void *wh;              /* R of the next block (advanced) */
    const int16_t *vx;           /* x widened (8 * ceil(I/8) int16) */
    const int16_t *vh;           /* h widened (8 * ceil(H/8) int16) */
    int32_t nx1;                 /* ceil(I/8) - 1: chunks of x after the first */
    int32_t nh1;                 /* ceil(H/8) - 1 */
    int32_t wide;                /* bit 0: W is int16, bit 1: R is int16 */
    const tl_lstm_unit_t *units; /* the next block's four entries (advanced) */
    int16_t *c;                  /* the next block's cells (advanced) */
    int8_t *h;                   /* the next block's h' (advanced) */
    int32_t left;                /* units left (counted down by 4; the loop ends at <= 0) */
    const uint16_t *table;       /* the standard table D[0..n] */
    int32_t g_nsh;               /* -(P - frac) */
    int32_t g_add_sig;           /* 2^(P - frac): sigmoid's rounding term */
    int32_t g_add_tanh;          /* 2^(P - frac - 1): tanh's */
    int32_t c_nsh;               /* -(k - frac) */
    int32_t c_add;               /* 2^(k - frac - 1) */
    int32_t cell_s1;             /* a_ig == 0: -a_fc (B >> a_fc); else a_ig (<< a_ig) */
    int32_t cell_s2;             /* a_ig == 0: a_fc (rem << a_fc); else a_ig - 15 (B >> (15 - a_ig)) */
    int32_t cell_mask;           /* a_ig == 0: 2^a_fc - 1; else 2^(15 - a_ig) - 1 */
    int32_t cell_round;          /* 2^(s_c - 1) - 1 */
    int32_t cell_form;           /* 0: a_ig == 0 (k <= 15); 1: a_fc == 0 (k > 15) */
    int32_t cell_nsc;            /* -s_c */
    int32_t h_round;             /* 2^(h_shift - 33) */
    int32_t h_nsh;               /* 32 - h_shift */
    int32_t zp_h;                /* zp_h */
    int32_t g_cap[4];            /* n 2^(P - frac) - 1, per lane: gate inputs clamped to the last segment */
    int32_t g_mask[4];           /* 2^(P - frac) - 1 */
    int32_t c_cap[4];            /* n 2^(k - frac) - 1 */
    int32_t c_mask[4];           /* 2^(k - frac) - 1 */
    int32_t h_mult[4];           /* h_mult */
    int32_t acc[32];             /* the block's accumulators: acc[4 g + u] of W, acc[16 + 4 g + u] of R */
} tl_mve_ctx_t;

#define TL_MVE_OFF_WX 0
#define TL_MVE_OFF_WH 4
#define TL_MVE_OFF_VX 8
#define TL_MVE_OFF_VH 12
#define TL_MVE_OFF_NX1 16
#define TL_MVE_OFF_NH1 20
#define TL_MVE_OFF_WIDE 24
#define TL_MVE_OFF_UNITS 28
#define TL_MVE_OFF_C 32
#define TL_MVE_OFF_H 36
#define TL_MVE_OFF_LEFT 40
#define TL_MVE_OFF_TABLE 44
#define TL_MVE_OFF_G_NSH 48
#define TL_MVE_OFF_G_ADD_SIG 52
#define TL_MVE_OFF_G_ADD_TANH 56
#define TL_MVE_OFF_C_NSH 60
#define TL_MVE_OFF_C_ADD 64
#define TL_MVE_OFF_CELL_S1 68
#define TL_MVE_OFF_CELL_S2 72
#define TL_MVE_OFF_CELL_MASK 76
#define TL_MVE_OFF_CELL_ROUND 80
#define TL_MVE_OFF_CELL_FORM 84
#define TL_MVE_OFF_CELL_NSC 88
#define TL_MVE_OFF_H_ROUND 92
#define TL_MVE_OFF_H_NSH 96
#define TL_MVE_OFF_ZP_H 100
#define TL_MVE_OFF_G_CAP 104
#define TL_MVE_OFF_G_MASK 120
#define TL_MVE_OFF_C_CAP 136
#define TL_MVE_OFF_C_MASK 152
#define TL_MVE_OFF_H_MULT 168
#define TL_MVE_OFF_ACC 184
#define TL_MVE_CTX_BYTES 312

/* The trace of one block (stage kernel): z of the 4 gates and the gates i, f, g, after the context. */
typedef struct {
    tl_mve_ctx_t k;
    int32_t z[16];     /* z[4 g + u] */
    int32_t gates[12]; /* i, f, g: gates[4 g + u] */
} tl_mve_trace_t;
#define TL_MVE_OFF_TRACE_Z 312
#define TL_MVE_OFF_TRACE_G 376

/* The unit loop of one step: every block of four units, from the accumulators to h' (r0 = k). */
void tl_mve_units(tl_mve_ctx_t *k);
/* The same loop storing each block's z and gates into the trace after the context; run it one
 * block at a time (left <= 4). */
void tl_mve_units_trace(tl_mve_trace_t *t);

/* acc + sum_k w[k] x[k] over n int8 pairs (the Dense heads' dot product on Helium). */
int32_t tl_mve_dot_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t acc);

#endif /* TL_LSTM_MVE_H */
