/**
 * @file tl_lstm.h
 * @brief tinylstm runtime: one integer LSTM direction (docs/quantization.md sec. 5-sec. 9).
 *
 * Kernels mirror tinylstm/simulate.py: lstm_step <-> tl_lstm_step_s8, and the stage kernels
 * lstm_gates <-> tl_lstm_gates_s8, lstm_cell <-> tl_lstm_cell_s16 (checked on their own by tests).
 *
 * Read-only parameters (tl_lstm_params_t, const, in flash) are kept apart from the mutable
 * state (h, c: owned by the caller). Each weight matrix is int8 or int16 (per-row symmetric,
 * up to 16 bits: the quantizer picks the widest whose int32 accumulation is proven safe).
 *
 * Weight layout ("quad layout", docs/quantization.md sec. 5): for hidden unit j, quad q of the
 * inputs (inputs 4q..4q+3, zero-padded to a multiple of 4) and gate g (i, f, g, o), four
 * consecutive weights at [j][q][g][0..3]. int16 weights are in quad order (4q, 4q+2, 4q+1,
 * 4q+3), int8 weights in natural order; the step widens x and h to int16 in quad order, so one
 * pass over the inputs computes all four pre-activations of a unit with paired 16-bit MACs.
 * A step needs TL_LSTM_SCRATCH_BYTES(I, H) bytes of 4-byte aligned scratch.
 *
 * Implemented by tl_lstm_step.c, tl_lstm_fast.c, tl_lstm_stages.c and the per-architecture
 * kernels tl_kernels_*.c (compile them all; the file layout is described in tl_lstm_internal.h).
 */
#ifndef TL_LSTM_H
#define TL_LSTM_H

#include <stdint.h>

#include "tl_fixedpoint.h"

/**
 * @brief int16 LSTM weights are stored as uint16 words TL_W16(w). On Armv6-M (no signed
 * halfword load with an immediate offset) they carry a bias of 32768 (w + 32768 in [0, 65535]),
 * which the kernel removes once per step (it subtracts 32768 * sum(v)); elsewhere the word is
 * the two's complement int16 itself.
 * Define TL_PORTABLE (for the runtime and the model) to build the portable C kernels only.
 */
#if defined(__GNUC__) && defined(__ARM_ARCH_6M__) && !defined(TL_PORTABLE)
#define TL_W16_BIAS 32768
#else
#define TL_W16_BIAS 0
#endif
/** @brief An int16 weight literal as stored in flash (see TL_W16_BIAS). */
#define TL_W16(w) ((uint16_t)((w) + TL_W16_BIAS))

/* Link-time check of the encoding: tl_lstm_step.c defines the symbol of its TL_W16_BIAS and every
 * generated params struct points at the symbol of the model's, so a model and a runtime compiled
 * with different encodings (say, -DTL_PORTABLE for only one of them on Armv6-M) fail to link
 * instead of computing with wrongly decoded weights. */
#if TL_W16_BIAS != 0
#define TL_W16_ENCODING tl_w16_encoding_biased
#else
#define TL_W16_ENCODING tl_w16_encoding_plain
#endif
/** @brief Defined in tl_lstm_step.c as TL_W16_BIAS (see TL_W16_ENCODING). */
extern const int32_t TL_W16_ENCODING;

/** @brief Scratch bytes of one step: x and h widened to int16 (quad-padded) and the new h. */
#define TL_LSTM_SCRATCH_BYTES(I, H) (8 * (((I) + 3) / 4) + 8 * (((H) + 3) / 4) + (H))

/** @brief tl_lstm_params_t.fast: every gate-row and h multiplier is odd (or 0) with shift >= 33. */
#define TL_LSTM_FAST_REQUANT 1
/** @brief tl_lstm_params_t.fast: the tables lut_f, lut_g and lut_h are symmetric uint16 tables whose
 * interpolation sum plus its rounding term, |T[j+1] - T[j]| (2^shift - 1) + 2^shift, is below 2^31. */
#define TL_LSTM_FAST_LUT 2
/** @brief tl_lstm_params_t.fast: lut_f and lut_g are Q(15), so the cell update's shifted factors and
 * its rounded quotient fit int32 (a_fc, a_ig <= 15, 1 <= s_c <= 31). */
#define TL_LSTM_FAST_CELL 4

/** @brief Requantization constants of one hidden unit j, per gate g in i, f, g, o (row g*H + j). */
typedef struct {
    int32_t effb_x[4]; /**< -zp_x * sum_k W[r, k]: input accumulator start, int32 */
    int32_t effb_h[4]; /**< -zp_h * sum_k R[r, k] */
    int32_t mult_x[4]; /**< acc_x (s_x * s_W[r]) -> Q(P): mult in [2^30, 2^31) (odd, spec sec. 2) or 0 */
    int32_t mult_h[4]; /**< acc_h (s_h * s_R[r]) -> Q(P) */
    int32_t bias[4];   /**< gate bias, Q(P) */
    int8_t rshift_x[4]; /**< right shift paired with mult_x, minus 33: [-33, 29] (33 saves the fast kernels a subtraction) */
    int8_t rshift_h[4]; /**< right shift paired with mult_h, minus 33 */
} tl_lstm_unit_t;

/** @brief Everything one LSTM direction needs; const, fully precomputed at quantize time. */
typedef struct {
    int32_t input_size;        /**< I */
    int32_t hidden_size;       /**< H */
    const int8_t *wx;          /**< input weights W, int8, quad layout (H, ceil(I/4), 4, 4); or NULL */
    const uint16_t *wx16;      /**< the same as TL_W16 words (weights wider than 8 bits), or NULL */
    const int8_t *wh;          /**< recurrent weights R, int8, quad layout (H, ceil(H/4), 4, 4); or NULL */
    const uint16_t *wh16;      /**< the same as TL_W16 words, or NULL */
    int32_t fast;              /**< TL_LSTM_FAST_* flags: which fast paths are exact for this direction */
    const int32_t *w16_encoding; /**< &TL_W16_ENCODING: a link-time check, never read */
    const tl_lstm_unit_t *units; /**< (H,) per-unit constants */
    const int16_t *peep;       /**< (H, 3) peepholes i, f, o (int16, per-gate scale), or NULL */
    int32_t peep_mult[3];      /**< pq * c (Q(k)) -> Q(P), gates i, f, o */
    int32_t peep_shift[3];
    int32_t has_clip;          /**< 1: saturate pre-activations to [-clip_q, clip_q] */
    int32_t clip_q;            /**< clip, Q(P) */
    int32_t input_forget;      /**< 1: f = one_f - i */
    int32_t one_f;             /**< 1.0 in the f table's output format: 2^q_f */
    tl_lut_t lut_f;            /**< i, f, o gates: Q(P) -> Q(q_f) */
    tl_lut_t lut_g;            /**< cell candidate: Q(P) -> Q(q_g) */
    tl_lut_t lut_h;            /**< cell output activation: Q(k) -> Q(q_h) */
    int32_t a_fc;              /**< cell: left shift of f*c   (Q(q_f+k) -> Q(q_f+m)) */
    int32_t a_ig;              /**< cell: left shift of i*g   (Q(q_f+q_g) -> Q(q_f+m)) */
    int32_t s_c;               /**< cell: final right shift   (Q(q_f+m) -> Q(k)) */
    int32_t h_mult;            /**< o * h_act(c) (Q(q_f+q_h)) -> int8 h (s_h) */
    int32_t h_shift;
    int32_t h_zero_point;      /**< zp_h */
} tl_lstm_params_t;

/**
 * @brief One time step (spec sec. 9): x (I) int8, h (H) int8, c (H) int16 Q(k) -> h', c'.
 * c is updated in place; scratch (TL_LSTM_SCRATCH_BYTES(I, H) bytes, 4-byte aligned) holds the
 * widened inputs and the new h, copied to h at the end. x, h, c and scratch must not overlap.
 */
void tl_lstm_step_s8(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch);

/**
 * @brief tl_lstm_step_s8 for the common case, with the same results: requires
 * p->fast == (TL_LSTM_FAST_REQUANT | TL_LSTM_FAST_LUT | TL_LSTM_FAST_CELL), int16 weights (wx16 and
 * wh16), no peepholes, no clip and no coupled input/forget gate (the generated code calls it only
 * then). Table lookups, requantization and the cell update are inlined into one loop; on Armv7E-M
 * the whole unit loop is assembly, and the frame holds a 152-byte block of per-step constants.
 */
void tl_lstm_step_fast(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch);

/**
 * @brief Stage 1 (spec sec. 6), for tests: gate pre-activations z (4H, gate-major: z[g*H + j],
 * int32 Q(P); o without its peephole and clip) and gates i, f, g (3H, gate-major, int32 Q(q)).
 * scratch as for tl_lstm_step_s8.
 */
void tl_lstm_gates_s8(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, const int16_t *c, int32_t *z,
                      int32_t *gates, int16_t *scratch);

/**
 * @brief Stage 2 (spec sec. 7), for tests: c' = sat16(round_shift((f c << a_fc) + (i g << a_ig), s_c)).
 * gates (3H) i, f, g int32 gate-major; c (H) int16 Q(k), updated in place.
 */
void tl_lstm_cell_s16(const tl_lstm_params_t *p, const int32_t *gates, int16_t *c);

#endif /* TL_LSTM_H */
