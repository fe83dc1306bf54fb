/*
 * tl_gru_stages.c - the GRU step's stages as kernels of their own, for tests (tl_gru.h):
 * tl_gru_gates_s8, tl_gru_candidate_s8 (spec sec. 16.3) and tl_gru_update_s16 (spec sec. 16.4), built
 * from the same per-unit stages as tl_gru_step_s8 (tl_gru_step.c). Generated models do not call them
 * (--gc-sections drops them). The file layout is described in tl_gru_internal.h.
 */
#include "tl_gru_internal.h"

void tl_gru_gates_s8(const tl_gru_params_t *p, const int8_t *x, const int16_t *h, int32_t *z, int32_t *gates,
                     int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2, qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    const tl_gru_unit_t *un = p->units;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    const uint32_t sh = tl_gru_narrow(h, n_h, p->state_shift, vh);
    const int32_t x0 = tl_acc_start(sx, p->wx16 != 0), h0 = tl_acc_start(sh, p->wh16 != 0);
    int32_t b, u, g;
    for (b = 0; b < qh; ++b) {
        int32_t ax[2][4], ah[2][4];
        for (g = 0; g < 2; ++g) {
            tl_gru_mac(p->wx, p->wx16, (3 * b + g) * 16 * qx, qx, vx, x0, ax[g]);
            tl_gru_mac(p->wh, p->wh16, (3 * b + g) * 16 * qh, qh, vh, h0, ah[g]);
        }
        for (u = 0; u < 4 && 4 * b + u < n_h; ++u, ++un) {
            const int32_t j = 4 * b + u;
            for (g = 0; g < 2; ++g) {
                z[g * n_h + j] = tl_gru_preact(p, un, g, ax[g][u], ah[g][u]);
                gates[g * n_h + j] = tl_gru_act_f(p, z[g * n_h + j]);
            }
        }
    }
}

void tl_gru_candidate_s8(const tl_gru_params_t *p, const int8_t *x, const int16_t *h, const int32_t *r,
                         int32_t *z, int32_t *n, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2, qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    const tl_gru_unit_t *un = p->units;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    /* the candidate's matvec input: the narrowed state, or the narrowed reset products */
    const uint32_t sh = p->linear_before_reset ? tl_gru_narrow(h, n_h, p->state_shift, vh)
                                               : tl_gru_reset_vec(r, h, n_h, p->state_shift, vh);
    const int32_t x0 = tl_acc_start(sx, p->wx16 != 0), h0 = tl_acc_start(sh, p->wh16 != 0);
    int32_t b, u;
    for (b = 0; b < qh; ++b) {
        int32_t ax[4], ah[4];
        tl_gru_mac(p->wx, p->wx16, (3 * b + 2) * 16 * qx, qx, vx, x0, ax);
        tl_gru_mac(p->wh, p->wh16, (3 * b + 2) * 16 * qh, qh, vh, h0, ah);
        for (u = 0; u < 4 && 4 * b + u < n_h; ++u, ++un) {
            const int32_t j = 4 * b + u;
            z[j] = p->linear_before_reset ? tl_gru_preact_lbr(p, un, ax[u], ah[u], r[j])
                                          : tl_gru_preact(p, un, 2, ax[u], ah[u]);
            n[j] = tl_gru_act_g(p, z[j]);
        }
    }
}

void tl_gru_update_s16(const tl_gru_params_t *p, const int32_t *z, const int32_t *n, int16_t *h)
{
    int32_t j;
    for (j = 0; j < p->hidden_size; ++j) {
        h[j] = tl_gru_update_unit(p, z[j], n[j], h[j]);
    }
}
