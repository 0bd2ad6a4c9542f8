#include "nn.h"

void nn_neg_f32(const nn_unary_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = -in[i];
    }
}
