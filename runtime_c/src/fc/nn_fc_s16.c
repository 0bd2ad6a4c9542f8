#include "nn.h"
#include "requant.h"

void nn_fc_s16(const nn_fc_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
               const int32_t *multiplier, const int8_t *shift, int16_t *out)
{
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = in + r * p->in_row_stride;
        int16_t *y = out + r * p->out_row_stride;
        for (n = 0; n < p->out_features; ++n) {
            const int8_t *w = weight + n * p->in_features;
            int32_t acc = bias[n];
            for (k = 0; k < p->in_features; ++k) {
                acc += (int32_t)x[k * p->in_col_stride] * w[k];
            }
            y[n * p->out_col_stride] = nn_output_s16(acc, multiplier[n], shift[n], p->act_min, p->act_max);
        }
    }
}
