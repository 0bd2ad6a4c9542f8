#include <math.h>

#include "nn.h"

void nn_reduce_l2_f32(const nn_reduce_params *p, const float *in, float *out)
{
    int32_t j;
    nn_reduce_sumsquare_f32(p, in, out);
    for (j = 0; j < p->out_size; ++j) {
        out[j] = sqrtf(out[j]);
    }
}
