#include "nn.h"

void nn_hard_sigmoid_f32(const nn_hard_sigmoid_f32_params *p, const float *in, float *out)
{
    const float alpha = p->alpha, beta = p->beta;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        float y = alpha * in[i] + beta;
        y = y < 0.0f ? 0.0f : y;
        out[i] = y > 1.0f ? 1.0f : y;
    }
}
