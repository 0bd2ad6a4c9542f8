#include <math.h>

#include "nn.h"

void nn_norm_f32(const nn_norm_params *p, const float *in, const float *gamma, const float *beta, float *out)
{
    const float count = (float)p->size;
    int32_t r, k;
    for (r = 0; r < p->rows; ++r) {
        const float *x = in + r * p->size;
        float *y = out + r * p->size;
        const int32_t c = p->per_row ? r % p->channels : 0;
        float mean = 0.0f, var = 0.0f, inv;
        for (k = 0; k < p->size; ++k) {
            mean += x[k];
        }
        mean /= count;
        for (k = 0; k < p->size; ++k) {
            const float d = x[k] - mean;
            var += d * d;
        }
        var /= count;
        inv = 1.0f / sqrtf(var + p->epsilon);
        for (k = 0; k < p->size; ++k) {
            const int32_t i = p->per_row ? c : k;
            const float v = (x[k] - mean) * inv * gamma[i];
            y[k] = beta ? v + beta[i] : v;
        }
    }
}
