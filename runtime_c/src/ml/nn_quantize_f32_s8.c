#include "nn.h"

void nn_quantize_f32_s8(const nn_quantize_f32_params *p, const float *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        float v = in[i] * p->inv_scale;
        int32_t q;
        if (!(v >= v)) { /* NaN */
            v = 0.0f;
        }
        v = v < -1e6f ? -1e6f : v;
        v = v > 1e6f ? 1e6f : v;
        q = (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f) + p->zero_point;
        q = q < -128 ? -128 : q;
        q = q > 127 ? 127 : q;
        out[i] = (int8_t)q;
    }
}
