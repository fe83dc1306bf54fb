/**
 * @file tl_gru.h
 * @brief tinylstm runtime: one integer GRU direction (docs/quantization.md sec. 16).
 *
 * Kernels mirror tinylstm/simulate/gru_checked.py: gru_step <-> tl_gru_step_s8, and the stage kernels
 * gru_gates <-> tl_gru_gates_s8, gru_candidate <-> tl_gru_candidate_s8, gru_update <-> tl_gru_update_s16
 * (checked on their own by tests). The arithmetic of the gate rows is the LSTM's (spec sec. 5, sec. 6,
 * sec. 8): the same widening of x, quad kernels, gate sums and tables; the state is int16 Q(k) and
 * owned by the caller, updated in place; the layer's int8 output y is written beside it.
 *
 * Weight layout ("block layout"): hidden units are taken four at a time (a block; H padded to a
 * multiple of 4 with zero rows), and for block b, gate group g (z, r, h) and quad q of the inputs the
 * four units' four weights follow as [b][g][q][unit][4], so one call of the LSTM's quad kernel
 * (tl_mac4_w16 / tl_mac4_w8) computes the accumulators of one gate group of a block, four rows at
 * once, with no padding row when H is a multiple of 4. Within a quad the weights are in quad order
 * (int16) or natural order (int8), as the LSTM's (tl_lstm.h), and stored with the same encodings
 * (TL_W16, TL_W8) and link-time check (TL_W16_ENCODING).
 *
 * Implemented by tl_gru_step.c (the general step and the shared per-unit stages), tl_gru_fast.c (the
 * fast steps), tl_gru_v7em.c (their Armv7E-M block loops) and tl_gru_stages.c (the stage kernels for
 * tests); they call the LSTM's quad kernels.
 */
#ifndef TL_GRU_H
#define TL_GRU_H

#include <stdint.h>

#include "tl_fixedpoint.h"
#include "tl_lstm.h"

/**
 * @brief Scratch bytes of one GRU step: x widened and the state narrowed (int16, quad-padded); without
 * linear_before_reset also the narrowed reset products r h (int16) and the update gate (int32, H).
 */
#define TL_GRU_SCRATCH_BYTES(I, H, LBR)                                                                  \
    (8 * (((I) + 3) / 4) + 8 * (((H) + 3) / 4) + ((LBR) ? 0 : 8 * (((H) + 3) / 4) + 4 * (H)))

/** @brief The constants of one gate row (spec sec. 6): its bias B and multipliers mx | mh << 16. */
typedef struct {
    int32_t bias;  /**< B: gate bias plus the rounding terms, units of t (Q(P + shift)) */
    uint32_t mult; /**< mx | mh << 16, each in [0, 2^15) */
} tl_gru_row_t;

/**
 * @brief The gate constants of one hidden unit j, per row group g in z, r, h (row g*H + j), spec sec. 16.3:
 * t = row[g].bias + mul16(acc_x, mult & 0xFFFF) + (recurrent part), z = t >> shift[g] (Q(P)); the
 * recurrent part of the z and r rows (and of the h row without linear_before_reset) is
 * mul16(acc_h, mult >> 16), that of the h row with linear_before_reset
 * shift_half_up(r (rbias + mul16(acc_h, mult >> 16)), 15). 32 bytes, read in order (bias and mult of a
 * row are one LDRD on Armv7E-M).
 */
typedef struct {
    tl_gru_row_t row[3]; /**< z, r, h */
    int32_t rbias;       /**< Bu: the candidate's recurrent bias (linear_before_reset; else 0) */
    int8_t shift[3];     /**< s in [4, 30]: z = t >> s (floor; B holds the rounding) */
    int8_t unused;       /**< 0 */
} tl_gru_unit_t;

/**
 * @brief A quad kernel of the weights' width, tl_mac4_w16 (TL_W16 words) or tl_mac4_w8 (TL_W8 bytes), as
 * the params hold it: the generated code names the kernel its layer's weights take, so that the fast
 * steps' Armv7E-M block loops (which call it through this pointer) link that one only.
 */
typedef void (*tl_gru_mac_fn)(void);

/** @brief The quad kernels (defined in the tl_kernels_*.c files; tl_lstm_internal.h declares them too). */
void tl_mac4_w16(const uint16_t *w, const int16_t *v, int32_t nq, int32_t *acc);
void tl_mac4_w8(const int8_t *w, const int16_t *v, int32_t nq, int32_t *acc);

/** @brief Everything one GRU direction needs; const, fully precomputed at quantize time. */
typedef struct {
    int32_t input_size;          /**< I */
    int32_t hidden_size;         /**< H */
    const int8_t *wx;            /**< input weights W as TL_W8 bytes, block layout (ceil(H/4), 3, ceil(I/4), 4, 4); or NULL */
    const uint16_t *wx16;        /**< the same as TL_W16 words, or NULL */
    const int8_t *wh;            /**< recurrent weights R as TL_W8 bytes, block layout (ceil(H/4), 3, ceil(H/4), 4, 4); or NULL */
    const uint16_t *wh16;        /**< the same as TL_W16 words, or NULL */
    const int32_t *w16_encoding; /**< &TL_W16_ENCODING: a link-time check, never read */
    const tl_gru_unit_t *units;  /**< (H,) per-unit gate constants */
    int32_t linear_before_reset; /**< 1: candidate t = ... + shift_half_up(r u, 15), u = Bu + mul16(R_h v_h, mh);
                                      0: t = ... + mul16(R_h v_r, mh), v_r = shift_half_up(r h, 15 + q) */
    int32_t x_zero_point;        /**< zp_x: the widened input is (x - zp_x) << pre_x (spec sec. 5) */
    int32_t pre_x;               /**< [0, 7] */
    int32_t state_shift;         /**< q in [1, 15]: the recurrent matvec reads shift_half_up(h, q) */
    int32_t has_clip;            /**< 1: saturate pre-activations to [-clip_q, clip_q] */
    int32_t clip_q;              /**< clip, Q(P) */
    const uint16_t *table;       /**< the model's standard table D[0..table_n] (spec sec. 8.1), or NULL */
    int32_t table_n;             /**< its segments */
    int32_t gate_shift;          /**< P - table_frac: gate inputs' fraction bits below the grid */
    const tl_lut_t *luts;        /**< table == NULL: (2,) custom tables f (z, r: Q(P) -> Q(q_f)) and g
                                      (candidate: Q(P) -> Q(q_g)) */
    int32_t one_f;               /**< 1.0 in the f activation's output format: 2^q_f */
    int32_t a_h;                 /**< update: left shift of z * h        (Q(q_f+k) -> Q(q_f+m)) */
    int32_t a_n;                 /**< update: left shift of (1 - z) * n  (Q(q_f+q_g) -> Q(q_f+m)) */
    int32_t s_u;                 /**< update: final right shift           (Q(q_f+m) -> Q(k)) */
    int32_t y_zero_point;        /**< zp_y of the int8 output */
    int32_t y_mult;              /**< the state Q(k) -> the int8 output (requant) */
    int32_t y_shift;
    tl_gru_mac_fn mac_x;         /**< (tl_gru_mac_fn)tl_mac4_w16 with wx16, (tl_gru_mac_fn)tl_mac4_w8 with wx */
    tl_gru_mac_fn mac_h;         /**< the same for wh16 / wh */
} tl_gru_params_t;

/**
 * @brief One time step (spec sec. 16.5): x (I) int8, h (H) int16 Q(k) -> h' (in place), y (H) int8.
 * scratch: TL_GRU_SCRATCH_BYTES(I, H, linear_before_reset) bytes, 4-byte aligned. x, h, y and scratch
 * must not overlap. Every layer: standard or custom tables, int8 or int16 weights, clip, both values of
 * linear_before_reset.
 */
void tl_gru_step_s8(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch);

/**
 * @brief tl_gru_step_s8 for the layers of the standard table, with the same results: requires
 * p->table != NULL, p->gate_shift >= 1, p->one_f == 2^15, p->a_n == 0 (k <= 15) and p->y_shift >= 33,
 * and linear_before_reset = 1 (the generated code calls it only then: tinylstm/lowering/gru.py).
 * int8 or int16 weights, clip. Sigmoid, tanh, the update and the output are inlined into one loop.
 */
void tl_gru_step_fast(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch);

/** @brief tl_gru_step_fast for linear_before_reset = 0. */
void tl_gru_step_fast_lbr0(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch);

/**
 * @brief tl_gru_step_fast for the common case: also no clip, p->a_h == 0 (a state bounded by 1: Q(15)) and
 * p->y_shift - 32 <= 22 (PyTorch's nn.GRU). On Armv7E-M its block loop is assembly (tl_gru_v7em.c).
 */
void tl_gru_step_fast_q15(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch);

/** @brief tl_gru_step_fast_q15 for linear_before_reset = 0. */
void tl_gru_step_fast_q15_lbr0(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch);

/**
 * @brief Stage 1 (spec sec. 16.3), for tests: the update and reset gates of x (I) and h (H, int16):
 * pre-activations z (2H: z rows then r rows, int32 Q(P), after clip) and gate values gates (2H, Q(q_f)).
 * scratch as for tl_gru_step_s8.
 */
void tl_gru_gates_s8(const tl_gru_params_t *p, const int8_t *x, const int16_t *h, int32_t *z, int32_t *gates,
                     int16_t *scratch);

/**
 * @brief Stage 2 (spec sec. 16.3), for tests: the candidate of x (I), h (H) and the reset gate r (H,
 * Q(q_f)): pre-activations z (H, int32 Q(P), after clip) and n (H, Q(q_g)). scratch as for tl_gru_step_s8.
 */
void tl_gru_candidate_s8(const tl_gru_params_t *p, const int8_t *x, const int16_t *h, const int32_t *r,
                         int32_t *z, int32_t *n, int16_t *scratch);

/**
 * @brief Stage 3 (spec sec. 16.4), for tests: h' = sat16(round_shift((z h << a_h) + ((2^q_f - z) n << a_n),
 * s_u)) of the update gate z (H), the candidate n (H) and h (H, int16 Q(k), updated in place).
 */
void tl_gru_update_s16(const tl_gru_params_t *p, const int32_t *z, const int32_t *n, int16_t *h);

#endif /* TL_GRU_H */
