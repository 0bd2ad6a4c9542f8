#include "nn.h"
#include "requant.h"

static int32_t nn_lstm_sat16(int64_t v)
{
    return v < -32768 ? -32768 : v > 32767 ? 32767 : (int32_t)v;
}

/* acc + sum_k a[k] * b[k], four products per iteration (integer sums: any order is exact) */
static int32_t nn_lstm_dot_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t acc)
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

void nn_lstm_s8(const nn_lstm_s8_params *p, const int8_t *x, const int8_t *w, const int32_t *wb,
                const int32_t *wm, const int8_t *ws, const int8_t *r, const int32_t *rb, const int32_t *rm,
                const int8_t *rs, const int8_t *h0, const int16_t *c0, int8_t *y, int8_t *y_h, int8_t *y_c,
                int32_t *scratch)
{
    const int32_t hs = p->hidden_size;
    const int32_t rows = 4 * hs;
    const int32_t states = p->batch * hs;
    int32_t *gates = scratch;
    int16_t *c = (int16_t *)(void *)(scratch + rows);
    int8_t *h = (int8_t *)(void *)(c + states);
    int32_t step, bi, n, k;
    for (k = 0; k < states; ++k) {
        h[k] = h0[k];
        c[k] = c0[k];
    }
    for (step = 0; step < p->seq_len; ++step) {
        const int32_t t = p->reverse ? p->seq_len - 1 - step : step;
        for (bi = 0; bi < p->batch; ++bi) {
            const int8_t *xt = x + t * p->x_seq_stride + bi * p->x_batch_stride;
            int8_t *hb = h + bi * hs;
            int16_t *cb = c + bi * hs;
            for (n = 0; n < rows; ++n) {
                const int32_t ax = nn_lstm_dot_s8(xt, w + n * p->input_size, p->input_size, wb[n]);
                const int32_t ah = nn_lstm_dot_s8(hb, r + n * hs, hs, rb[n]);
                gates[n] = nn_lstm_sat16((int64_t)nn_requantize(ax, wm[n], ws[n]) +
                                         nn_requantize(ah, rm[n], rs[n]));
            }
            for (n = 0; n < hs; ++n) {
                const int32_t i = nn_gate_sigmoid_s16((int16_t)gates[n]);
                const int32_t o = nn_gate_sigmoid_s16((int16_t)gates[hs + n]);
                const int32_t f = nn_gate_sigmoid_s16((int16_t)gates[2 * hs + n]);
                const int32_t g = nn_gate_tanh_s16((int16_t)gates[3 * hs + n]);
                int32_t cn, tc;
                cn = nn_lstm_sat16((int64_t)nn_rounding_divide_by_pot(f * cb[n], 15) +
                                   nn_rounding_divide_by_pot(i * g, 30 - p->cell_frac));
                cb[n] = (int16_t)cn;
                tc = p->cell_frac >= 12 ? nn_rounding_divide_by_pot(cn, p->cell_frac - 12)
                                        : nn_lstm_sat16((int64_t)cn * ((int32_t)1 << (12 - p->cell_frac)));
                hb[n] = nn_output_s8(o * nn_gate_tanh_s16((int16_t)tc), p->h_multiplier, p->h_shift,
                                     p->hidden_offset, -128, 127);
            }
            if (y) {
                int8_t *yt = y + p->y_offset + t * p->y_seq_stride + bi * p->y_batch_stride;
                for (n = 0; n < hs; ++n) {
                    yt[n] = hb[n];
                }
            }
        }
    }
    for (bi = 0; bi < p->batch; ++bi) {
        for (n = 0; n < hs; ++n) {
            const int32_t at = p->state_offset + bi * p->state_batch_stride + n;
            if (y_h) {
                y_h[at] = h[bi * hs + n];
            }
            if (y_c) {
                y_c[at] = nn_output_s8(c[bi * hs + n], p->c_multiplier, p->c_shift, p->c_offset, -128, 127);
            }
        }
    }
}
