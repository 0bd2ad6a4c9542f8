#include "nn.h"

void nn_cast_f32_u8(const nn_cast_params *p, const float *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        /* true unless zero (+0 or -0); NaN fails both comparisons: true */
        out[i] = (uint8_t)!(in[i] >= 0.0f && in[i] <= 0.0f);
    }
}
