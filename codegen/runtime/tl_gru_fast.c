/*
 * tl_gru_fast.c - the fast GRU steps: tl_gru_step_s8 for the layers of the standard table (sigmoid,
 * tanh: docs/quantization.md sec. 8.1, sec. 16) with gate_shift >= 1, a state format k <= 15 (so the
 * update shifts z h only: a_n = 0, s_u = 15 + a_h) and y_shift >= 33, with the same results. Four
 * entries, so that a model links only the code its layers take (tinylstm/lowering/gru.py picks):
 *
 *   tl_gru_step_fast            linear_before_reset = 1, clip or not, any a_h
 *   tl_gru_step_fast_lbr0       linear_before_reset = 0, clip or not, any a_h
 *   tl_gru_step_fast_q15        linear_before_reset = 1, no clip, a_h = 0 (a state bounded by 1) and
 *                               y_shift - 32 <= 22: PyTorch's nn.GRU; on Armv7E-M the assembly block
 *                               loop tl_gru_blocks_v7em (tl_gru_v7em.c)
 *   tl_gru_step_fast_q15_lbr0   the same for linear_before_reset = 0 (tl_gru_blocks0_v7em)
 *
 * The C block loops (tl_gru_loop1, tl_gru_loop0 below) serve all four, specialised at the q15 entries
 * (no clip, a_h = 0 as constants). Per block of four units: the quad-kernel calls of its gate groups
 * (x, then h; int16 or int8 weights), then per unit the gate sums (SMLAWB + SMLAWT on Armv7E-M), the
 * standard table's sigmoid and tanh in their short forms (tl_std_sigmoid, tl_std_tanh), the reset
 * product, the update on 32-bit words (tl_gru_std_update) and the int8 output, inlined. The file
 * layout is described in tl_gru_internal.h.
 */
#include "tl_gru_internal.h"

/* sat16 and sat8 (SSAT on Armv7E-M). */
TL_ALWAYS_INLINE int32_t tl_gru_sat16(int32_t x)
{
#if defined(TL_KERNEL_DSP)
    int32_t r;
    __asm__("ssat %0, #16, %1" : "=r"(r) : "r"(x));
    return r;
#else
    return x < TL_INT16_MIN ? TL_INT16_MIN : (x > TL_INT16_MAX ? TL_INT16_MAX : x);
#endif
}

TL_ALWAYS_INLINE int32_t tl_gru_sat8(int32_t x)
{
#if defined(TL_KERNEL_DSP)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
#else
    return x < TL_INT8_MIN ? TL_INT8_MIN : (x > TL_INT8_MAX ? TL_INT8_MAX : x);
#endif
}

/*
 * The update of the standard layers (spec sec. 16.4) with q_f = q_g = 15 and k <= 15: a_n = 0,
 * s = 15 + a, a = a_h; h' = sat16(round_shift((z h << a) + (2^15 - z) n, s)), half to even, on 32-bit
 * words. With A = z h and B = (2^15 - z) n (|A|, |B| <= 2^30): sum = A 2^a + B = S 2^a + (B & (2^a - 1))
 * with S = A + (B >> a) (|S| <= 2^30 + 2^29, or the convex 2^15 max(|h|, |n|) for a = 0), so the floor
 * quotient is S >> 15 and the remainder ((S & (2^15 - 1)) << a) | (B & (2^a - 1)); + 1 when the
 * remainder is above half, or half and the quotient odd (spec sec. 2). z = 2^15 gives h' = h exactly.
 */
TL_ALWAYS_INLINE int32_t tl_gru_std_update(int32_t gz, int32_t n, int32_t h, int32_t a, int32_t s)
{
    const int32_t pa = gz * h, pb = (TL_ONE_Q15 - gz) * n;
    if (TL_LIKELY(a == 0)) {
        /* k = 15 (every state bounded by 1): S = A + B, round_shift(S, 15) = (S + 2^14 - 1 + q0) >> 15
         * with q0 the parity of the floor quotient (spec sec. 2) */
        const int32_t sum = pa + pb;
        return tl_gru_sat16((sum + 0x3FFF + ((sum >> 15) & 1)) >> 15);
    } else {
        const int32_t sum = pa + (pb >> a);
        const uint32_t rem = (((uint32_t)sum & 0x7FFFu) << a) | ((uint32_t)pb & (((uint32_t)1 << a) - 1u));
        const int32_t q = sum >> 15;
        return tl_gru_sat16(q + (int32_t)((rem + ((uint32_t)1 << (s - 1)) - 1u + ((uint32_t)q & 1u)) >> s));
    }
}

/* What every fast step computes first: x widened, h narrowed (into the scratch), and the
 * accumulators' start values (0, or the weight biases' corrections on Armv6-M, modulo 2^32). */
typedef struct {
    const int16_t *vx, *vh;
    int32_t x0, h0;
} tl_gru_in_t;

TL_ALWAYS_INLINE tl_gru_in_t tl_gru_inputs(const tl_gru_params_t *p, const int8_t *x, const int16_t *h,
                                         int16_t *scratch)
{
    tl_gru_in_t in;
    int16_t *const vh = scratch + 4 * ((p->input_size + 3) >> 2);
    const uint32_t sx = tl_unpack_quads(x, p->input_size, p->x_zero_point, p->pre_x, scratch);
    const uint32_t sh = tl_gru_narrow(h, p->hidden_size, p->state_shift, vh);
    in.vx = scratch;
    in.vh = vh;
    in.x0 = tl_acc_start(sx, p->wx16 != 0);
    in.h0 = tl_acc_start(sh, p->wh16 != 0);
    return in;
}

/* The per-step constants of the C loops. */
#define TL_GRU_FAST_LOCALS                                                                               \
    const int32_t n_h = p->hidden_size;                                                                  \
    const int32_t qx = (p->input_size + 3) >> 2, qh = (n_h + 3) >> 2;                                    \
    const int32_t gx = 16 * qx, gh = 16 * qh;                                                            \
    const tl_gru_unit_t *un = p->units;                                                                  \
    const uint16_t *const wx16 = p->wx16, *const wh16 = p->wh16;                                         \
    const int8_t *const wx8 = p->wx, *const wh8 = p->wh;                                                 \
    const uint16_t *const tab = p->table;                                                                \
    const uint32_t tn = (uint32_t)p->table_n;                                                            \
    const int32_t gs = p->gate_shift;                                                                    \
    const uint32_t gmask = ((uint32_t)1 << gs) - 1u;                                                     \
    const int32_t s_u = p->s_u, cq = p->clip_q;                                                          \
    /* the output requantization with y_shift >= 33: the product's high word */                          \
    const int32_t ym = p->y_mult, ys = p->y_shift - 32, yr = (int32_t)1 << (p->y_shift - 33);            \
    const int32_t zp_y = p->y_zero_point;                                                                \
    int32_t b, j = 0, ox = 0, oh = 0

/* The linear_before_reset block loop; clip and a_h are constants at the q15 entries. */
TL_ALWAYS_INLINE void tl_gru_loop1(const tl_gru_params_t *p, const tl_gru_in_t in, int16_t *h, int8_t *y,
                                   const int32_t clip, const int32_t a_h)
{
    TL_GRU_FAST_LOCALS;
    for (b = 0; b < qh; ++b) {
        int32_t acc[6][4]; /* x: z, r, h rows; then h: z, r, h rows */
        int32_t g, u;
        const int32_t nu = n_h - 4 * b < 4 ? n_h - 4 * b : 4;
        for (g = 0; g < 3; ++g, ox += gx, oh += gh) {
            tl_gru_mac(wx8, wx16, ox, qx, in.vx, in.x0, acc[g]);
            tl_gru_mac(wh8, wh16, oh, qh, in.vh, in.h0, acc[3 + g]);
        }
        for (u = 0; u < nu; ++u, ++un, ++j) {
            int32_t zz = tl_gate_sum(un->row[0].bias, un->row[0].mult, acc[0][u], acc[3][u]) >> un->shift[0];
            int32_t zr = tl_gate_sum(un->row[1].bias, un->row[1].mult, acc[1][u], acc[4][u]) >> un->shift[1];
            const int32_t uu = tl_gru_mla_h(un->rbias, un->row[2].mult, acc[5][u]);
            const int32_t tx = tl_gru_mla_x(un->row[2].bias, un->row[2].mult, acc[2][u]);
            int32_t gz, gr, zh, hn;
            if (clip) {
                zz = tl_sat(zz, -cq, cq);
                zr = tl_sat(zr, -cq, cq);
            }
            gz = tl_std_sigmoid(zz, tab, tn, gs, gmask);
            gr = tl_std_sigmoid(zr, tab, tn, gs, gmask);
            zh = (tx + tl_gru_reset_prod(gr, uu)) >> un->shift[2];
            if (clip) {
                zh = tl_sat(zh, -cq, cq);
            }
            hn = tl_gru_std_update(gz, tl_std_tanh(zh, tab, tn, gs, gmask), h[j], a_h, s_u);
            h[j] = (int16_t)hn;
            y[j] = (int8_t)tl_gru_sat8(zp_y + ((tl_mul_hi(hn, ym) + yr) >> ys));
        }
    }
}

/* Without linear_before_reset: a pass for the update gates (kept in gzs) and the reset products v_r
 * of every unit, then one for the candidates (R over v_r), the update and the output. */
TL_ALWAYS_INLINE void tl_gru_loop0(const tl_gru_params_t *p, const tl_gru_in_t in, int16_t *h, int8_t *y,
                                   int16_t *vr, int32_t *gzs, const int32_t clip, const int32_t a_h)
{
    const int32_t s_r = TL_GRU_GATE_Q + p->state_shift;
    const int32_t half_r = (int32_t)1 << (s_r - 1);
    uint32_t sr = 0u;
    int32_t r0;
    TL_GRU_FAST_LOCALS;
    for (b = 0; b < qh; ++b, ox += 3 * gx, oh += 3 * gh) {
        int32_t ax[2][4], ah[2][4];
        int32_t u;
        tl_gru_mac(wx8, wx16, ox, qx, in.vx, in.x0, ax[0]);
        tl_gru_mac(wx8, wx16, ox + gx, qx, in.vx, in.x0, ax[1]);
        tl_gru_mac(wh8, wh16, oh, qh, in.vh, in.h0, ah[0]);
        tl_gru_mac(wh8, wh16, oh + gh, qh, in.vh, in.h0, ah[1]);
        for (u = 0; u < 4; ++u, ++j) {
            int32_t v = 0;
            if (j < n_h) {
                int32_t zz = tl_gate_sum(un->row[0].bias, un->row[0].mult, ax[0][u], ah[0][u]) >> un->shift[0];
                int32_t zr = tl_gate_sum(un->row[1].bias, un->row[1].mult, ax[1][u], ah[1][u]) >> un->shift[1];
                if (clip) {
                    zz = tl_sat(zz, -cq, cq);
                    zr = tl_sat(zr, -cq, cq);
                }
                gzs[j] = tl_std_sigmoid(zz, tab, tn, gs, gmask);
                /* |r h| <= 2^30, + 2^(14 + q) <= 2^29: int32 (spec sec. 16.6) */
                v = (tl_std_sigmoid(zr, tab, tn, gs, gmask) * (int32_t)h[j] + half_r) >> s_r;
                ++un;
            }
            vr[tl_gru_slot(j)] = (int16_t)v;
            sr += (uint32_t)v;
        }
    }
    r0 = tl_acc_start(sr, wh16 != 0);
    un = p->units;
    ox = 2 * gx;
    oh = 2 * gh;
    for (b = 0, j = 0; b < qh; ++b, ox += 3 * gx, oh += 3 * gh) {
        int32_t ax[4], ar[4];
        int32_t u;
        const int32_t nu = n_h - 4 * b < 4 ? n_h - 4 * b : 4;
        tl_gru_mac(wx8, wx16, ox, qx, in.vx, in.x0, ax);
        tl_gru_mac(wh8, wh16, oh, qh, vr, r0, ar);
        for (u = 0; u < nu; ++u, ++un, ++j) {
            int32_t zh = tl_gate_sum(un->row[2].bias, un->row[2].mult, ax[u], ar[u]) >> un->shift[2];
            int32_t hn;
            if (clip) {
                zh = tl_sat(zh, -cq, cq);
            }
            hn = tl_gru_std_update(gzs[j], tl_std_tanh(zh, tab, tn, gs, gmask), h[j], a_h, s_u);
            h[j] = (int16_t)hn;
            y[j] = (int8_t)tl_gru_sat8(zp_y + ((tl_mul_hi(hn, ym) + yr) >> ys));
        }
    }
}

/* The scratch of the loop without linear_before_reset: after x and h, v_r (int16, quad order), then the
 * update gates (int32). */
#define TL_GRU_VR(p, scratch) ((scratch) + 4 * (((p)->input_size + 3) >> 2) + 4 * (((p)->hidden_size + 3) >> 2))
#define TL_GRU_GZ(p, scratch) ((int32_t *)(void *)(TL_GRU_VR(p, scratch) + 4 * (((p)->hidden_size + 3) >> 2)))

void tl_gru_step_fast(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch)
{
    tl_gru_loop1(p, tl_gru_inputs(p, x, h, scratch), h, y, p->has_clip, p->a_h);
}

void tl_gru_step_fast_lbr0(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch)
{
    tl_gru_loop0(p, tl_gru_inputs(p, x, h, scratch), h, y, TL_GRU_VR(p, scratch), TL_GRU_GZ(p, scratch), p->has_clip,
                 p->a_h);
}

#if defined(TL_KERNEL_DSP)
/* The constants of the Armv7E-M block loops (tl_gru_internal.h). */
static void tl_gru_v7em_init(tl_gru_v7em_t *k, const tl_gru_params_t *p, int16_t *h, int8_t *y, const tl_gru_in_t in)
{
    const int32_t qx = (p->input_size + 3) >> 2, qh = (p->hidden_size + 3) >> 2;
    const int32_t ys = p->y_shift - 32;
    k->un = p->units;
    k->h = h;
    k->y = y;
    k->table = p->table;
    k->shift = p->gate_shift;
    k->mask = ((uint32_t)1 << p->gate_shift) - 1u;
    k->n = (uint32_t)p->table_n;
    k->add = (int32_t)1 << p->gate_shift;
    k->y_mult = p->y_mult;
    k->y_round = ((int32_t)1 << (ys - 1)) + p->y_zero_point * ((int32_t)1 << ys); /* |.| < 2^30 for ys <= 22 */
    k->y_shift = ys;
    k->wx = p->wx16 != 0 ? (const void *)p->wx16 : (const void *)p->wx;
    k->wh = p->wh16 != 0 ? (const void *)p->wh16 : (const void *)p->wh;
    k->vx = in.vx;
    k->vh = in.vh;
    k->gx = 16 * qx * (p->wx16 != 0 ? 2 : 1);
    k->gh = 16 * qh * (p->wh16 != 0 ? 2 : 1);
    k->mac_x = p->mac_x; /* the generated code's choice: only the kernel the weights take is linked */
    k->mac_h = p->mac_h;
    k->qx = qx;
    k->qh = qh;
    k->units = p->hidden_size;
    k->gz = 0;
    k->vr = 0;
    k->r_round = (int32_t)1 << (TL_GRU_GATE_Q + p->state_shift - 1);
    k->r_shift = TL_GRU_GATE_Q + p->state_shift;
    k->t_round = (int32_t)1 << (p->gate_shift - 1);
}
#endif

void tl_gru_step_fast_q15(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch)
{
    const tl_gru_in_t in = tl_gru_inputs(p, x, h, scratch);
#if defined(TL_KERNEL_DSP)
    tl_gru_v7em_t k;
    tl_gru_v7em_init(&k, p, h, y, in);
    tl_gru_blocks_v7em(&k);
#else
    tl_gru_loop1(p, in, h, y, 0, 0);
#endif
}

void tl_gru_step_fast_q15_lbr0(const tl_gru_params_t *p, const int8_t *x, int16_t *h, int8_t *y, int16_t *scratch)
{
    const tl_gru_in_t in = tl_gru_inputs(p, x, h, scratch);
#if defined(TL_KERNEL_DSP)
    tl_gru_v7em_t k;
    tl_gru_v7em_init(&k, p, h, y, in);
    k.gz = TL_GRU_GZ(p, scratch);
    k.vr = TL_GRU_VR(p, scratch);
    tl_gru_blocks0_v7em(&k);
#else
    tl_gru_loop0(p, in, h, y, TL_GRU_VR(p, scratch), TL_GRU_GZ(p, scratch), 0, 0);
#endif
}
