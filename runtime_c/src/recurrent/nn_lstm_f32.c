#include <math.h>

#include "nn.h"

static float nn_lstm_sigmoid(float v)
{
    if (v >= 0.0f) {
        return 1.0f / (1.0f + expf(-v));
    } else {
        const float e = expf(v);
        return e / (1.0f + e);
    }
}

void nn_lstm_f32(const nn_lstm_f32_params *p, const float *x, const float *w, const float *r, const float *b,
                 const float *h0, const float *c0, float *y, float *y_h, float *y_c, float *scratch)
{
    const int32_t hs = p->hidden_size;
    const int32_t rows = 4 * hs;
    float *gates = scratch;
    float *h = scratch + rows;
    float *c = h + p->batch * hs;
    int32_t step, bi, n, k;
    for (k = 0; k < p->batch * hs; ++k) {
        h[k] = h0 ? h0[k] : 0.0f;
        c[k] = c0 ? c0[k] : 0.0f;
    }
    for (step = 0; step < p->seq_len; ++step) {
        const int32_t t = p->reverse ? p->seq_len - 1 - step : step;
        for (bi = 0; bi < p->batch; ++bi) {
            const float *xt = x + t * p->x_seq_stride + bi * p->x_batch_stride;
            float *hb = h + bi * hs;
            float *cb = c + bi * hs;
            for (n = 0; n < rows; ++n) {
                const float *wn = w + n * p->input_size;
                const float *rn = r + n * hs;
                float acc = b ? b[n] : 0.0f;
                for (k = 0; k < p->input_size; ++k) {
                    acc += xt[k] * wn[k];
                }
                for (k = 0; k < hs; ++k) {
                    acc += hb[k] * rn[k];
                }
                gates[n] = acc;
            }
            for (n = 0; n < hs; ++n) {
                const float i = nn_lstm_sigmoid(gates[n]);
                const float o = nn_lstm_sigmoid(gates[hs + n]);
                const float f = nn_lstm_sigmoid(gates[2 * hs + n]);
                const float g = tanhf(gates[3 * hs + n]);
                const float fc = f * cb[n];
                const float ig = i * g;
                cb[n] = fc + ig;
                hb[n] = o * tanhf(cb[n]);
            }
            if (y) {
                float *yt = y + p->y_offset + t * p->y_seq_stride + bi * p->y_batch_stride;
                for (n = 0; n < hs; ++n) {
                    yt[n] = hb[n];
                }
            }
        }
    }
    for (bi = 0; bi < p->batch; ++bi) {
        for (n = 0; n < hs; ++n) {
            if (y_h) {
                y_h[p->state_offset + bi * p->state_batch_stride + n] = h[bi * hs + n];
            }
            if (y_c) {
                y_c[p->state_offset + bi * p->state_batch_stride + n] = c[bi * hs + n];
            }
        }
    }
}
