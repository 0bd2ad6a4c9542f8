#include "nn.h"

void nn_prelu_f32(const nn_prelu_f32_params *p, const float *x, const float *slope, float *out)
{
    const nn_broadcast *v = &p->view;
    int32_t is[NN_MAX_DIMS] = {0};
    int32_t i, os = 0;
    for (i = 0; i < v->size; ++i) {
        const float u = x[i];
        out[i] = u > 0.0f ? u : u * slope[os];
        os = nn_next_offset(is, v->shape, v->b_strides, os);
    }
}
