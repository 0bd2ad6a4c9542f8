#include "nn.h"

void nn_reduce_mean_f32(const nn_reduce_params *p, const float *in, float *out)
{
    const float n = (float)p->count;
    int32_t j;
    nn_reduce_sum_f32(p, in, out);
    for (j = 0; j < p->out_size; ++j) {
        out[j] /= n;
    }
}
