#include "nn.h"

/* exp_table interpolated at d in [0, 65535] (nn_softmax_s16 in nn_softmax.h) */
static int32_t nn_softmax_exp_s16(const int32_t *exp_table, int32_t d)
{
    const int32_t base = exp_table[d >> 7];
    return base + (((exp_table[(d >> 7) + 1] - base) * (d & 127) + 64) >> 7);
}

void nn_softmax_s16(const nn_softmax_params *p, const int16_t *in, const int32_t *exp_table, int16_t *out)
{
    int32_t o, i, k;
    if (p->axis_size <= 0) {
        return;
    }
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int16_t *x = in + o * p->axis_size * p->inner + i;
            int16_t *y = out + o * p->axis_size * p->inner + i;
            int32_t peak = x[0], sum = 0;
            for (k = 1; k < p->axis_size; ++k) {
                peak = x[k * p->inner] > peak ? x[k * p->inner] : peak;
            }
            for (k = 0; k < p->axis_size; ++k) {
                sum += nn_softmax_exp_s16(exp_table, peak - x[k * p->inner]);
            }
            for (k = 0; k < p->axis_size; ++k) {
                const int32_t q = (32768 * nn_softmax_exp_s16(exp_table, peak - x[k * p->inner]) + sum / 2) / sum;
                y[k * p->inner] = (int16_t)(q > 32767 ? 32767 : q);
            }
        }
    }
}
