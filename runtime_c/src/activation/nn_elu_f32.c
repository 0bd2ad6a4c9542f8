#include <math.h>

#include "nn.h"

void nn_elu_f32(const nn_elu_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        out[i] = x >= 0.0f ? x : p->alpha * (expf(x) - 1.0f);
    }
}
