#include "nn.h"

void nn_cast_u8_f32(const nn_cast_params *p, const uint8_t *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = in[i] ? 1.0f : 0.0f;
    }
}
