#include "nn.h"

void nn_softmax_s8(const nn_softmax_params *p, const int8_t *in, const int32_t *exp_table, int8_t *out)
{
    int32_t o, i, k;
    if (p->axis_size <= 0) {
        return;
    }
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *x = in + o * p->axis_size * p->inner + i;
            int8_t *y = out + o * p->axis_size * p->inner + i;
            int32_t peak = x[0], sum = 0;
            for (k = 1; k < p->axis_size; ++k) {
                peak = x[k * p->inner] > peak ? x[k * p->inner] : peak;
            }
            for (k = 0; k < p->axis_size; ++k) {
                sum += exp_table[peak - x[k * p->inner]];
            }
            for (k = 0; k < p->axis_size; ++k) {
                const int32_t q = (256 * exp_table[peak - x[k * p->inner]] + sum / 2) / sum - 128;
                y[k * p->inner] = (int8_t)(q > 127 ? 127 : q);
            }
        }
    }
}
