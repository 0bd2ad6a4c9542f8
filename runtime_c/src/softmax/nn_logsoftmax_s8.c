#include "nn.h"

void nn_logsoftmax_s8(const nn_logsoftmax_s8_params *p, const int8_t *in, const int32_t *exp_table,
                      const int32_t *diff_table, int8_t *out)
{
    int32_t o, i, k;
    if (p->axis_size <= 0) {
        return;
    }
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *x = in + o * p->axis_size * p->inner + i;
            int8_t *y = out + o * p->axis_size * p->inner + i;
            int32_t peak = x[0], sum = 0, lse;
            for (k = 1; k < p->axis_size; ++k) {
                peak = x[k * p->inner] > peak ? x[k * p->inner] : peak;
            }
            for (k = 0; k < p->axis_size; ++k) {
                sum += exp_table[peak - x[k * p->inner]];
            }
            lse = (int32_t)(((int64_t)(nn_log2_q16(sum) - (p->exp_bits << 16)) * 726817 + (1 << 15)) >> 16);
            for (k = 0; k < p->axis_size; ++k) {
                const int32_t q = 127 - ((diff_table[peak - x[k * p->inner]] + lse + (1 << 15)) >> 16);
                y[k * p->inner] = (int8_t)(q < -128 ? -128 : q);
            }
        }
    }
}
