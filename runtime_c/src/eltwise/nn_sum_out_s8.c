#include "nn.h"
#include "requant.h"

void nn_sum_out_s8(const nn_sum_out_s8_params *p, const int32_t *acc, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s8(acc[i], p->out_multiplier, p->out_shift, p->out_offset, p->act_min, p->act_max);
    }
}
