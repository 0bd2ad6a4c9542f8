#include "nn.h"

/* exp_table interpolated at d in [0, 65535] (nn_logsoftmax_s16 in nn_softmax.h) */
static int32_t nn_logsoftmax_exp_s16(const int32_t *exp_table, int32_t d)
{
    const int32_t base = exp_table[d >> 7];
    return base + (((exp_table[(d >> 7) + 1] - base) * (d & 127) + 64) >> 7);
}

void nn_logsoftmax_s16(const nn_logsoftmax_s16_params *p, const int16_t *in, const int32_t *exp_table, int16_t *out)
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
            int64_t lse;
            for (k = 1; k < p->axis_size; ++k) {
                peak = x[k * p->inner] > peak ? x[k * p->inner] : peak;
            }
            for (k = 0; k < p->axis_size; ++k) {
                sum += nn_logsoftmax_exp_s16(exp_table, peak - x[k * p->inner]);
            }
            lse = ((int64_t)(nn_log2_q16(sum) - (15 << 16)) * p->ln2_steps + (1 << 15)) >> 16;
            for (k = 0; k < p->axis_size; ++k) {
                const int64_t steps = (int64_t)(peak - x[k * p->inner]) * p->input_steps + lse;
                const int64_t q = -((steps + (1 << 15)) >> 16);
                y[k * p->inner] = (int16_t)(q < -32768 ? -32768 : q);
            }
        }
    }
}
