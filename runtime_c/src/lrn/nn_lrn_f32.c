#include <math.h>

#include "nn.h"

void nn_lrn_f32(const nn_lrn_f32_params *p, const float *in, float *out)
{
    const int32_t plane = p->channels * p->inner;
    int32_t n, c, i, k;
    for (n = 0; n < p->batches; ++n) {
        const float *x = in + n * plane;
        float *y = out + n * plane;
        for (c = 0; c < p->channels; ++c) {
            const int32_t lo = c - p->before < 0 ? 0 : c - p->before;
            const int32_t hi = c + p->after > p->channels - 1 ? p->channels - 1 : c + p->after;
            for (k = 0; k < p->inner; ++k) {
                float sum = 0.0f;
                for (i = lo; i <= hi; ++i) {
                    const float v = x[i * p->inner + k];
                    sum += v * v;
                }
                y[c * p->inner + k] = x[c * p->inner + k] / powf(p->bias + p->scale * sum, p->beta);
            }
        }
    }
}
