#include <math.h>

#include "nn.h"

void nn_softplus_f32(const nn_unary_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        const float e = log1pf(expf(-fabsf(x)));
        out[i] = x > 0.0f ? x + e : e;
    }
}
