#include <math.h>

#include "nn.h"

void nn_pow_f32(const nn_pow_f32_params *p, const float *in, float *out)
{
    const float e = p->exponent;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        switch (p->mode) {
        case 1: out[i] = x * x; break;
        case 2: out[i] = sqrtf(x); break;
        case 3: out[i] = x; break;
        case 4: out[i] = 1.0f / x; break;
        case 5: out[i] = x * x * x; break;
        default: out[i] = powf(x, e); break;
        }
    }
}
