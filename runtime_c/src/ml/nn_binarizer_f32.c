#include "nn.h"

void nn_binarizer_f32(const nn_binarizer_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = in[i] > p->threshold ? 1.0f : 0.0f;
    }
}
