#include <math.h>

#include "nn.h"

void nn_activation_f32(const nn_activation_f32_params *p, const float *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const float x = in[i];
        float y;
        switch (p->kind) {
        case NN_ACT_CLAMP:
            y = x < p->lo ? p->lo : x;
            y = y > p->hi ? p->hi : y;
            break;
        case NN_ACT_LEAKY_RELU:
            y = x >= 0.0f ? x : p->alpha * x;
            break;
        case NN_ACT_SIGMOID:
            if (x >= 0.0f) {
                y = 1.0f / (1.0f + expf(-x));
            } else {
                const float e = expf(x);
                y = e / (1.0f + e);
            }
            break;
        case NN_ACT_TANH:
            y = tanhf(x);
            break;
        case NN_ACT_HARD_SIGMOID:
            y = p->alpha * x + p->beta;
            y = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
            break;
        default: /* NN_ACT_HARD_SWISH */
            y = x / 6.0f + 0.5f;
            y = x * (y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y);
            break;
        }
        out[i] = y;
    }
}
