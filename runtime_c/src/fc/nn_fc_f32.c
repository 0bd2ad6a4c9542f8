#include "nn.h"

void nn_fc_f32(const nn_fc_f32_params *p, const float *in, const float *weight,
               const float *bias, float *out)
{
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const float *x = in + r * p->in_row_stride;
        float *y = out + r * p->out_row_stride;
        for (n = 0; n < p->out_features; ++n) {
            const float *w = weight + n * p->in_features;
            float acc = bias ? bias[n] : 0.0f;
            for (k = 0; k < p->in_features; ++k) {
                acc += x[k * p->in_col_stride] * w[k];
            }
            acc = acc < p->act_min ? p->act_min : acc;
            acc = acc > p->act_max ? p->act_max : acc;
            y[n * p->out_col_stride] = acc;
        }
    }
}
