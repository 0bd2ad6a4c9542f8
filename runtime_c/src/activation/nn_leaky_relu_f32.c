#include "nn.h"

void nn_leaky_relu_f32(const nn_leaky_relu_f32_params *p, const float *in, float *out)
{
    const float alpha = p->alpha;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        out[i] = x >= 0.0f ? x : alpha * x;
    }
}
