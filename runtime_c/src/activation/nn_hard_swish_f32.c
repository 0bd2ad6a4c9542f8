#include "nn.h"

void nn_hard_swish_f32(const nn_unary_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        float y = x / 6.0f + 0.5f;
        y = y < 0.0f ? 0.0f : y;
        y = y > 1.0f ? 1.0f : y;
        out[i] = x * y;
    }
}
