#include "nn.h"
#include "requant.h"

void nn_sum_out_s16(const nn_sum_out_s16_params *p, const int32_t *acc, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s16(acc[i], p->out_multiplier, p->out_shift, p->act_min, p->act_max);
    }
}
