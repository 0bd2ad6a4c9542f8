#include "nn.h"

void nn_cast_s32_f32(const nn_cast_params *p, const int32_t *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (float)in[i];
    }
}
