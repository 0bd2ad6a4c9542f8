#include <math.h>

#include "nn.h"

static float nn_gru_sigmoid(float v)
{
    if (v >= 0.0f) {
        return 1.0f / (1.0f + expf(-v));
    } else {
        const float e = expf(v);
        return e / (1.0f + e);
    }
}

void nn_gru_f32(const nn_gru_f32_params *p, const float *x, const float *w, const float *r, const float *b,
                const float *rb, const float *h0, float *y, float *y_h, float *scratch)
{
    const int32_t hs = p->hidden_size;
    float *gates = scratch;          /* z, r, the h gate's sum, then r * h or the recurrent sum */
    float *extra = scratch + 3 * hs;
    float *h = scratch + 4 * hs;
    int32_t step, bi, n, k;
    for (k = 0; k < p->batch * hs; ++k) {
        h[k] = h0 ? h0[k] : 0.0f;
    }
    for (step = 0; step < p->seq_len; ++step) {
        const int32_t t = p->reverse ? p->seq_len - 1 - step : step;
        for (bi = 0; bi < p->batch; ++bi) {
            const float *xt = x + t * p->x_seq_stride + bi * p->x_batch_stride;
            float *hb = h + bi * hs;
            for (n = 0; n < 3 * hs; ++n) {
                const float *wn = w + n * p->input_size;
                float acc = b ? b[n] : 0.0f;
                for (k = 0; k < p->input_size; ++k) {
                    acc += xt[k] * wn[k];
                }
                if (n < 2 * hs) {
                    const float *rn = r + n * hs;
                    for (k = 0; k < hs; ++k) {
                        acc += hb[k] * rn[k];
                    }
                    acc = nn_gru_sigmoid(acc);
                }
                gates[n] = acc;
            }
            if (p->linear_before_reset) {
                for (n = 0; n < hs; ++n) {
                    const float *rn = r + (2 * hs + n) * hs;
                    float acc = rb ? rb[n] : 0.0f;
                    for (k = 0; k < hs; ++k) {
                        acc += hb[k] * rn[k];
                    }
                    extra[n] = gates[hs + n] * acc;
                }
                for (n = 0; n < hs; ++n) {
                    gates[2 * hs + n] = gates[2 * hs + n] + extra[n];
                }
            } else {
                for (k = 0; k < hs; ++k) {
                    extra[k] = gates[hs + k] * hb[k];
                }
                for (n = 0; n < hs; ++n) {
                    const float *rn = r + (2 * hs + n) * hs;
                    float acc = gates[2 * hs + n];
                    for (k = 0; k < hs; ++k) {
                        acc += extra[k] * rn[k];
                    }
                    gates[2 * hs + n] = acc;
                }
            }
            for (n = 0; n < hs; ++n) {
                const float z = gates[n];
                const float nt = tanhf(gates[2 * hs + n]);
                const float keep = z * hb[n];
                hb[n] = (1.0f - z) * nt + keep;
            }
            if (y) {
                float *yt = y + p->y_offset + t * p->y_seq_stride + bi * p->y_batch_stride;
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
