#include "nn.h"
#include "requant.h"

static int32_t nn_gru_sat16(int64_t v)
{
    return v < -32768 ? -32768 : v > 32767 ? 32767 : (int32_t)v;
}

/* acc + sum_k a[k] * b[k], four products per iteration (integer sums: any order is exact) */
static int32_t nn_gru_dot_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t acc)
{
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        acc += (int32_t)a[k] * b[k] + (int32_t)a[k + 1] * b[k + 1] + (int32_t)a[k + 2] * b[k + 2] +
               (int32_t)a[k + 3] * b[k + 3];
    }
    for (; k < n; ++k) {
        acc += (int32_t)a[k] * b[k];
    }
    return acc;
}

void nn_gru_s8(const nn_gru_s8_params *p, const int8_t *x, const int8_t *w, const int32_t *wb,
               const int32_t *wm, const int8_t *ws, const int8_t *r, const int32_t *rb, const int32_t *rm,
               const int8_t *rs, const int8_t *h0, int8_t *y, int8_t *y_h, int32_t *scratch)
{
    const int32_t hs = p->hidden_size;
    const int32_t zp = p->hidden_offset;
    int32_t *gates = scratch; /* z and r (Q0.15), then the h gate's input part (requantized) */
    int8_t *h = (int8_t *)(void *)(scratch + 3 * hs);
    int8_t *rh = h + p->batch * hs;
    int32_t step, bi, n, k;
    for (k = 0; k < p->batch * hs; ++k) {
        h[k] = h0[k];
    }
    for (step = 0; step < p->seq_len; ++step) {
        const int32_t t = p->reverse ? p->seq_len - 1 - step : step;
        for (bi = 0; bi < p->batch; ++bi) {
            const int8_t *xt = x + t * p->x_seq_stride + bi * p->x_batch_stride;
            int8_t *hb = h + bi * hs;
            for (n = 0; n < 3 * hs; ++n) {
                const int32_t ax = nn_gru_dot_s8(xt, w + n * p->input_size, p->input_size, wb[n]);
                if (n < 2 * hs) {
                    const int32_t ah = nn_gru_dot_s8(hb, r + n * hs, hs, rb[n]);
                    gates[n] = nn_gate_sigmoid_s16(
                        (int16_t)nn_gru_sat16((int64_t)nn_requantize(ax, wm[n], ws[n]) + nn_requantize(ah, rm[n], rs[n])));
                } else {
                    gates[n] = nn_requantize(ax, wm[n], ws[n]);
                }
            }
            if (!p->linear_before_reset) {
                for (k = 0; k < hs; ++k) {
                    rh[k] = (int8_t)(zp + nn_rounding_divide_by_pot(gates[hs + k] * (hb[k] - zp), 15));
                }
            }
            for (n = 0; n < hs; ++n) {
                const int32_t ah = nn_gru_dot_s8(p->linear_before_reset ? hb : rh, r + (2 * hs + n) * hs, hs,
                                                 rb[2 * hs + n]);
                int32_t part = nn_requantize(ah, rm[2 * hs + n], rs[2 * hs + n]);
                int32_t pre;
                if (p->linear_before_reset) {
                    part = nn_rounding_divide_by_pot(gates[hs + n] * nn_gru_sat16(part), 15);
                }
                pre = nn_gru_sat16((int64_t)gates[2 * hs + n] + part);
                gates[2 * hs + n] = nn_gate_tanh_s16((int16_t)pre);
            }
            for (n = 0; n < hs; ++n) {
                const int32_t z = gates[n];
                const int32_t fresh = nn_requantize((32768 - z) * gates[2 * hs + n], p->h_multiplier, p->h_shift);
                const int32_t kept = nn_rounding_divide_by_pot(z * (hb[n] - zp), 15);
                hb[n] = (int8_t)nn_clamp_s32(zp + fresh + kept, -128, 127);
            }
            if (y) {
                int8_t *yt = y + p->y_offset + t * p->y_seq_stride + bi * p->y_batch_stride;
                for (n = 0; n < hs; ++n) {
                    yt[n] = hb[n];
                }
            }
        }
    }
    if (y_h) {
        for (bi = 0; bi < p->batch; ++bi) {
            for (n = 0; n < hs; ++n) {
                y_h[p->state_offset + bi * p->state_batch_stride + n] = h[bi * hs + n];
            }
        }
    }
}
