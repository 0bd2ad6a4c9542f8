#include <math.h>

#include "nn.h"

void nn_sigmoid_f32(const nn_unary_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        if (x >= 0.0f) {
            out[i] = 1.0f / (1.0f + expf(-x));
        } else {
            const float e = expf(x);
            out[i] = e / (1.0f + e);
        }
    }
}
