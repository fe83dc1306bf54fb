/*
 * tl_lstm_fast.c - the fast LSTM step tl_lstm_step_fast: tl_lstm_step_s8 for the layers of the
 * standard table (sigmoid, tanh, tanh: docs/quantization.md sec. 8.1) with gate_shift >= 1 and
 * cell_shift >= 1, with the same results. The file layout is described in tl_lstm_internal.h.
 *
 * On Armv7E-M (TL_KERNEL_DSP) the step is the assembly routine of tl_kernels_v7em_unit.c, on
 * Armv6-M (TL_V6M_ASM) that of tl_kernels_v6m_unit.c, which compute the same integers; this C unit
 * loop is the step on every other target (and the reference the assemblies mirror). Per hidden
 * unit the two quad-kernel passes (x, then h; int16 or int8 weights), the four gate sums, the
 * standard table's sigmoid and tanh inlined in their short forms (tl_std_sigmoid, tl_std_tanh
 * below), the cell update and h'.
 * Peepholes, clip and the coupled input/forget gate take a branch off the common path (the
 * per-unit stages of tl_lstm_step.c). Everything constant over a step is read into locals first
 * (the block an assembly unit loop would keep in registers or its frame):
 *
 *   table, table_n                 the standard table D[0..n]
 *   gate_shift, gate_mask          P - frac, 2^gate_shift - 1   (sigmoid adds 2^gate_shift, tanh half of it)
 *   cell_shift, cell_mask          k - frac, 2^cell_shift - 1   (tanh of the cell)
 *   a_fc, a_ig, s_c                the cell update (a_fc <= 15 and a_ig = 0, or a_fc = 0 and a_ig <= 8)
 *   h_mult, h_shift, h_zero_point  the hidden output
 */
#include "tl_lstm_internal.h"

/*
 * The cell update of the standard layers (spec sec. 7): q_f = q_g = 15, so with m = max(k, 15) either
 * a_ig = 0 and s_c = 15 + a_fc (k <= 15), or a_fc = 0, a_ig in [1, 8] and s_c = 15 (k > 15);
 * c' = sat16(round_shift((f c << a_fc) + (i g << a_ig), s_c)), rounded half to even, on 32-bit words
 * (no 64-bit product on any core; as short as SMULL + SMLAL and a 64-bit rounding on Armv7E-M).
 * With A = f c and B = i g (|A|, |B| <= 2^30):
 * k <= 15 (a = a_fc): sum = A 2^a + B = (A + (B >> a)) 2^a + (B & (2^a - 1)); S = A + (B >> a) fits
 *   int32 (A <= 2^15 (2^15 - 1)), the floor quotient is S >> 15 and the remainder below 2^(15+a) is
 *   ((S & (2^15 - 1)) << a) | (B & (2^a - 1));
 * k > 15 (b = a_ig): sum = A + B 2^b = (B >> (15 - b)) 2^15 + S with S = A + ((B & (2^(15-b) - 1)) << b);
 *   the floor quotient is (B >> (15 - b)) + (S >> 15), the remainder S & (2^15 - 1).
 * Then + 1 when the remainder is above half, or half and the quotient odd (spec sec. 2). */
TL_ALWAYS_INLINE int16_t tl_std_cell(int32_t gi, int32_t gf, int32_t gg, int32_t c_old, int32_t a_fc, int32_t a_ig,
                                     int32_t s_c)
{
    const int32_t a = gf * c_old, b = gi * gg;
    int32_t q;
    uint32_t rem;
    if (a_ig == 0) {
        const int32_t sum = a + (b >> a_fc);
        q = sum >> 15;
        rem = (((uint32_t)sum & 0x7FFFu) << a_fc) | ((uint32_t)b & (((uint32_t)1 << a_fc) - 1u));
    } else {
        const int32_t sum = a + (int32_t)(((uint32_t)b & (((uint32_t)1 << (15 - a_ig)) - 1u)) << a_ig);
        q = (b >> (15 - a_ig)) + (sum >> 15);
        rem = (uint32_t)sum & 0x7FFFu;
    }
    q += (int32_t)((rem + ((uint32_t)1 << (s_c - 1)) - 1u + ((uint32_t)q & 1u)) >> s_c);
    return (int16_t)(q < TL_INT16_MIN ? TL_INT16_MIN : (q > TL_INT16_MAX ? TL_INT16_MAX : q));
}

#if !defined(TL_KERNEL_DSP) && !defined(TL_V6M_ASM)
void tl_lstm_step_fast(const tl_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    const int32_t n_h = p->hidden_size;
    const int32_t qx = (p->input_size + 3) >> 2;
    const int32_t qh = (n_h + 3) >> 2;
    int16_t *const vx = scratch;
    int16_t *const vh = scratch + 4 * qx;
    int8_t *const hn = (int8_t *)(vh + 4 * qh);
    const tl_lstm_unit_t *u = p->units;
    const uint16_t *wx16 = p->wx16, *wh16 = p->wh16;
    const int8_t *wx8 = p->wx, *wh8 = p->wh;
    /* the per-step constants */
    const uint16_t *const tab = p->table;
    const uint32_t tn = (uint32_t)p->table_n;
    const int32_t gs = p->gate_shift, cs = p->cell_shift;
    const uint32_t gmask = ((uint32_t)1 << gs) - 1u, cmask = ((uint32_t)1 << cs) - 1u;
    const int32_t a_fc = p->a_fc, a_ig = p->a_ig, s_c = p->s_c;
    const int32_t hm = p->h_mult, hs = p->h_shift, zp_h = p->h_zero_point;
    const int32_t cifg = p->input_forget;
    const int32_t rare = p->peep != 0 || p->has_clip;
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, vx);
    const uint32_t sh = tl_unpack_quads(h, n_h, p->h_zero_point, p->pre_h, vh);
    /* the accumulators' start: 0, or the weight biases' corrections (Armv6-M, modulo 2^32) */
    const int32_t ax0 = tl_acc_start(sx, wx16 != 0), ah0 = tl_acc_start(sh, wh16 != 0);
    int32_t j;
    for (j = 0; j < n_h; ++j, ++u) {
        int32_t ax[4], ah[4], z[4];
        int32_t gi, gf, gg, go, act;
        int16_t c_new;
        ax[0] = ax[1] = ax[2] = ax[3] = ax0;
        ah[0] = ah[1] = ah[2] = ah[3] = ah0;
        if (wx16 != 0) {
            tl_mac4_w16(wx16, vx, qx, ax);
            wx16 += 16 * qx;
        } else {
            tl_mac4_w8(wx8, vx, qx, ax);
            wx8 += 16 * qx;
        }
        if (wh16 != 0) {
            tl_mac4_w16(wh16, vh, qh, ah);
            wh16 += 16 * qh;
        } else {
            tl_mac4_w8(wh8, vh, qh, ah);
            wh8 += 16 * qh;
        }
        tl_unit_preact(u, ax, ah, z);
        if (rare) {
            tl_unit_peep_clip(p, j, c[j], z);
        }
        gi = tl_std_sigmoid(z[0], tab, tn, gs, gmask);
        gf = cifg ? TL_ONE_Q15 - gi : tl_std_sigmoid(z[1], tab, tn, gs, gmask);
        gg = tl_std_tanh(z[2], tab, tn, gs, gmask);
        /* cell (spec sec. 7): one rounding of the exact sum */
        c_new = tl_std_cell(gi, gf, gg, c[j], a_fc, a_ig, s_c);
        c[j] = c_new;
        if (rare) {
            z[3] = tl_unit_peep_clip_o(p, j, c_new, z[3]);
        }
        go = tl_std_sigmoid(z[3], tab, tn, gs, gmask);
        act = tl_std_tanh(c_new, tab, tn, cs, cmask);
        hn[j] = tl_sat8(zp_h + tl_requant_hot(go * act, hm, hs));
    }
    for (j = 0; j < n_h; ++j) {
        h[j] = hn[j];
    }
}
#endif /* !TL_KERNEL_DSP && !TL_V6M_ASM */
