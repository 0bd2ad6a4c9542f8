#include "nn.h"

void nn_clamp_f32(const nn_clamp_f32_params *p, const float *in, float *out)
{
    const float lo = p->lo, hi = p->hi;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        float y = in[i];
        y = y < lo ? lo : y;
        out[i] = y > hi ? hi : y;
    }
}
