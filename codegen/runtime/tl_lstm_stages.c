/*
 * tl_lstm_stages.c - the LSTM step's stages as kernels of their own, for tests (tl_lstm.h):
 * tl_lstm_gates_s8 (spec sec. 6) and tl_lstm_cell_s16 (spec sec. 7), built from the same per-unit
 * stages as tl_lstm_step_s8 (tl_lstm_step.c). Generated models do not call them (--gc-sections
 * drops them). The file layout is described in tl_lstm_internal.h.
 */
#include "tl_lstm_internal.h"

void tl_lstm_gates_s8(const tl_lstm_params_t *p, const int8_t *x, const int8_t *h, const int16_t *c, int32_t *z,
                      int32_t *gates, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * ((p->input_size + 3) >> 2);
    const tl_lstm_unit_t *u = p->units;
    int32_t j, g;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    const uint32_t sh = tl_unpack_quads(h, n_h, p->h_zero_point, p->pre_h, vh);
    for (j = 0; j < n_h; ++j, ++u) {
        int32_t ax[4], ah[4], zj[4];
        tl_unit_acc(p, j, vx, vh, sx, sh, ax, ah);
        tl_unit_preact(u, ax, ah, zj);
        tl_unit_gates(p, j, c[j], zj, &gates[j], &gates[n_h + j], &gates[2 * n_h + j]);
        for (g = 0; g < 4; ++g) {
            z[g * n_h + j] = zj[g];
        }
    }
}

void tl_lstm_cell_s16(const tl_lstm_params_t *p, const int32_t *gates, int16_t *c)
{
    const int32_t n_h = p->hidden_size;
    int32_t j;
    for (j = 0; j < n_h; ++j) {
        c[j] = tl_unit_cell(p, gates[j], gates[n_h + j], gates[2 * n_h + j], c[j]);
    }
}
