/**
 * @file tl_lstm.h
 * @brief tinylstm runtime: one integer LSTM direction (docs/quantization.md sec. 5-sec. 9).
 *
 * Kernels mirror tinylstm/simulate/checked.py: lstm_step <-> tl_lstm_step_s8, and the stage kernels
 * lstm_gates <-> tl_lstm_gates_s8, lstm_cell <-> tl_lstm_cell_s16 (checked on their own by tests).
 *
 * Read-only parameters (tl_lstm_params_t, const, in flash) are kept apart from the mutable
 * state (h, c: owned by the caller). Each weight matrix is int8 or int16 (per-row symmetric,
 * up to 16 bits: the quantizer picks the widest whose int32 accumulation is proven safe).
 *
 * Weight layout ("quad layout", docs/quantization.md sec. 5): for hidden unit j, quad q of the
 * inputs (inputs 4q..4q+3, zero-padded to a multiple of 4) and gate g (i, f, g, o), four
 * consecutive weights at [j][q][g][0..3]. int16 weights are in quad order (4q, 4q+2, 4q+1,
 * 4q+3), int8 weights in natural order; the step widens x and h to int16 in quad order,
 * (x - zp_x) << pre_x and (h - zp_h) << pre_h (spec sec. 5), so one pass over the inputs computes
 * all four gate accumulators of a unit with paired 16-bit MACs, starting from 0.
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
 * @brief int16 LSTM weights are stored as uint16 words TL_W16(w), int8 ones as bytes TL_W8(w). On
 * Armv6-M (no signed byte or halfword load with an immediate offset) they carry a bias: the
 * unsigned word or byte is w + 32768 resp. w + 128, which the kernels' callers remove once per step
 * (the accumulators start at -32768 * sum(v) resp. -128 * sum(v)); elsewhere the word or byte is the
 * two's complement weight itself.
 * Define TL_PORTABLE (for the runtime and the model) to build the portable C kernels only.
 */
#if defined(__GNUC__) && defined(__ARM_ARCH_6M__) && !defined(TL_PORTABLE)
#define TL_W16_BIAS 32768
#define TL_W8_BIAS 128
#else
#define TL_W16_BIAS 0
#define TL_W8_BIAS 0
#endif
/** @brief An int16 weight literal as stored in flash (see TL_W16_BIAS). */
#define TL_W16(w) ((uint16_t)((w) + TL_W16_BIAS))
/** @brief An int8 weight literal as stored in flash (an int8_t whose byte is w + TL_W8_BIAS: with the
 * bias, w ^ -128 flips the byte's top bit, which adds 128 modulo 256). */
#if TL_W8_BIAS != 0
#define TL_W8(w) ((int8_t)((w) ^ -128))
#else
#define TL_W8(w) ((int8_t)(w))
#endif

/* Link-time check of the encoding (both widths): tl_lstm_step.c defines the symbol of its TL_W16_BIAS
 * and every generated params struct points at the symbol of the model's, so a model and a runtime
 * compiled with different encodings (say, -DTL_PORTABLE for only one of them on Armv6-M) fail to
 * link instead of computing with wrongly decoded weights. */
#if TL_W16_BIAS != 0
#define TL_W16_ENCODING tl_w16_encoding_biased
#else
#define TL_W16_ENCODING tl_w16_encoding_plain
#endif
/** @brief Defined in tl_lstm_step.c as TL_W16_BIAS (see TL_W16_ENCODING). */
extern const int32_t TL_W16_ENCODING;

/** @brief Scratch bytes of one step: x and h widened to int16 (quad-padded) and the new h. */
#define TL_LSTM_SCRATCH_BYTES(I, H) (8 * (((I) + 3) / 4) + 8 * (((H) + 3) / 4) + (H))

/**
 * @brief The gate constants of one hidden unit j, per gate g in i, f, g, o (row g*H + j), spec sec. 6:
 * t = bias + mul16(acc_x, mult & 0xFFFF) + mul16(acc_h, mult >> 16), z = t >> shift (Q(P)).
 * 36 bytes; on Armv7E-M the two products are one SMLAWB and one SMLAWT on the packed mult word.
 */
typedef struct {
    int32_t bias[4];  /**< B: gate bias plus the rounding terms, units of t (Q(P + shift)) */
    uint32_t mult[4]; /**< mx | mh << 16: acc_x and acc_h -> t, each in [0, 2^15) */
    int8_t shift[4];  /**< s in [4, 30]: z = t >> s (floor; B holds the rounding) */
} tl_lstm_unit_t;

/** @brief Everything one LSTM direction needs; const, fully precomputed at quantize time. */
typedef struct {
    int32_t input_size;          /**< I */
    int32_t hidden_size;         /**< H */
    const int8_t *wx;            /**< input weights W as TL_W8 bytes, quad layout (H, ceil(I/4), 4, 4); or NULL */
    const uint16_t *wx16;        /**< the same as TL_W16 words (weights wider than 8 bits), or NULL */
    const int8_t *wh;            /**< recurrent weights R as TL_W8 bytes, quad layout (H, ceil(H/4), 4, 4); or NULL */
    const uint16_t *wh16;        /**< the same as TL_W16 words, or NULL */
    const int32_t *w16_encoding; /**< &TL_W16_ENCODING: a link-time check, never read */
    const tl_lstm_unit_t *units; /**< (H,) per-unit gate constants */
    int32_t x_zero_point;        /**< zp_x: the widened input is (x - zp_x) << pre_x (spec sec. 5) */
    int32_t pre_x;               /**< [0, 7] */
    int32_t h_zero_point;        /**< zp_h, of h and of the layer's output: (h - zp_h) << pre_h */
    int32_t pre_h;               /**< [0, 7] */
    const int16_t *peep;         /**< (H, 3) peepholes i, f, o (int16, per-gate scale), or NULL */
    int32_t peep_mult[3];        /**< pq * c (Q(k)) -> Q(P), gates i, f, o */
    int32_t peep_shift[3];
    int32_t has_clip;            /**< 1: saturate pre-activations to [-clip_q, clip_q] */
    int32_t clip_q;              /**< clip, Q(P) */
    int32_t input_forget;        /**< 1: f = one_f - i */
    const uint16_t *table;       /**< the model's standard table D[0..table_n] (spec sec. 8.1), or NULL */
    int32_t table_n;             /**< its segments */
    int32_t gate_shift;          /**< P - table_frac: gate inputs' fraction bits below the grid */
    int32_t cell_shift;          /**< k - table_frac: the cell's */
    const tl_lut_t *luts;        /**< table == NULL: (3,) custom tables f (i, f, o gates: Q(P) -> Q(q_f)),
                                      g (cell candidate: Q(P) -> Q(q_g)), h (cell output: Q(k) -> Q(q_h)) */
    int32_t one_f;               /**< 1.0 in the f activation's output format: 2^q_f */
    int32_t a_fc;                /**< cell: left shift of f*c   (Q(q_f+k) -> Q(q_f+m)) */
    int32_t a_ig;                /**< cell: left shift of i*g   (Q(q_f+q_g) -> Q(q_f+m)) */
    int32_t s_c;                 /**< cell: final right shift   (Q(q_f+m) -> Q(k)) */
    int32_t h_mult;              /**< o * h_act(c) (Q(q_f+q_h)) -> int8 h (s_h) */
    int32_t h_shift;
} tl_lstm_params_t;

/**
 * @brief One time step (spec sec. 9): x (I) int8, h (H) int8, c (H) int16 Q(k) -> h', c'.
 * c is updated in place; scratch (TL_LSTM_SCRATCH_BYTES(I, H) bytes, 4-byte aligned) holds the
 * widened inputs and the new h, copied to h at the end. x, h, c and scratch must not overlap.
 * Every layer: standard or custom tables, int8 or int16 weights, peepholes, clip, coupled gates.
 */
void tl_lstm_step_s8(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch);

/**
 * @brief tl_lstm_step_s8 for the layers of the standard table, with the same results: requires
 * p->table != NULL, p->gate_shift >= 1 and p->cell_shift >= 1 (the generated code calls it only
 * then: tinylstm/lowering/steps.py). int8 or int16 weights, peepholes, clip and coupled gates are
 * handled (the last three on a branch off the common path). The table lookups, gate sums, cell
 * update and hidden requantization are inlined into one unit loop.
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
