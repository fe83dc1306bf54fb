/**
 * @file tl_heads.h
 * @brief tinylstm runtime: what follows the LSTM layers (docs/quantization.md sec. 5, sec. 10).
 *
 * Mirrors tinylstm/simulate.py: matvec_acc <-> tl_matvec_s8, dense <-> tl_dense_s8,
 * softmax <-> tl_softmax_s8 (Softmax and LogSoftmax). All int8 in, int8 out.
 */
#ifndef TL_HEADS_H
#define TL_HEADS_H

#include <stdint.h>

#include "tl_fixedpoint.h"

/**
 * @brief acc[r] = bias[r] + sum_k w[r, k] * x[k]: W (rows, cols) int8 row-major, x (cols,)
 * int8, bias (rows,) int32 -> acc (rows,) int32 (spec sec. 5).
 */
void tl_matvec_s8(const int8_t *w, const int8_t *x, const int32_t *bias, int32_t rows, int32_t cols,
                  int32_t *acc);

/** @brief A dense layer (Gemm / MatMul + Add, optionally with a fused Relu); const. */
typedef struct {
    int32_t in_features;      /**< F_in */
    int32_t out_features;     /**< F_out */
    const int8_t *weight;     /**< (F_out, F_in) int8, symmetric per row */
    const int32_t *eff_bias;  /**< (F_out,) int32: bias at s_x * s_W[r] minus zp_x * sum_k W[r, k] */
    const int32_t *mult;      /**< (F_out,) acc -> output scale */
    const int8_t *shift;      /**< (F_out,) */
    int32_t zero_point;       /**< zp_y */
    int32_t act_min;          /**< -128, or zp_y with a fused Relu */
    int32_t act_max;          /**< 127 */
} tl_dense_params_t;

/** @brief y[r] = sat(zp_y + requant(acc[r], mult[r], shift[r]), act_min, act_max) (spec sec. 10). */
void tl_dense_s8(const tl_dense_params_t *p, const int8_t *x, int8_t *y);

/** @brief An elementwise activation: y[i] = table[x[i] + 128]; table (256,) int8. */
void tl_table_s8(const int8_t *table, const int8_t *x, int32_t n, int8_t *y);

/** @brief Softmax / LogSoftmax over n features; const. */
typedef struct {
    int32_t features;            /**< n, < 65536 */
    const uint16_t *exp_table;   /**< (256,) rint(2^15 exp(-m s_x)), values in [0, 32768] */
    const int32_t *log2_table;   /**< (257,) rint(2^16 log2(1 + t/256)); LogSoftmax only, else NULL */
    int32_t l_mult;              /**< LogSoftmax: Q(16) log2(S / 2^15) -> output units (s_y) */
    int32_t l_shift;
    int32_t d_mult;              /**< LogSoftmax: x - max (units of s_x) -> output units (s_y) */
    int32_t d_shift;
} tl_softmax_params_t;

/**
 * @brief Softmax (output scale 1/256, zero point -128) when log2_table is NULL, else
 * LogSoftmax (calibrated output scale s_y, zero point 127) (spec sec. 10).
 */
void tl_softmax_s8(const tl_softmax_params_t *p, const int8_t *x, int8_t *y);

/**
 * @brief y[j] = sat8(zp + requant(c[j], mult, shift)): an int16 Q(k) cell state as int8
 * (the LSTM's Y_c output).
 */
void tl_requant_s16_s8(const int16_t *c, int32_t n, int32_t mult, int32_t shift, int32_t zero_point, int8_t *y);

/** @brief y[i] = x[idx[i]] for i < n (feature selection / reordering). */
void tl_gather_s8(const int8_t *x, const uint16_t *idx, int32_t n, int8_t *y);

/** @brief dst[i] = src[i] for i < n. */
void tl_copy_s8(int8_t *dst, const int8_t *src, int32_t n);

/** @brief dst[i] = v for i < n. */
void tl_fill_s8(int8_t *dst, int32_t n, int8_t v);

#endif /* TL_HEADS_H */
