#include <math.h>

#include "nn.h"

void nn_logsoftmax_f32(const nn_softmax_params *p, const float *in, float *out)
{
    int32_t o, i, k;
    if (p->axis_size <= 0) {
        return;
    }
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const float *x = in + o * p->axis_size * p->inner + i;
            float *y = out + o * p->axis_size * p->inner + i;
            float peak = x[0], sum = 0.0f, shift;
            for (k = 1; k < p->axis_size; ++k) {
                peak = x[k * p->inner] > peak ? x[k * p->inner] : peak;
            }
            for (k = 0; k < p->axis_size; ++k) {
                sum += expf(x[k * p->inner] - peak);
            }
            shift = logf(sum);
            for (k = 0; k < p->axis_size; ++k) {
                y[k * p->inner] = x[k * p->inner] - peak - shift;
            }
        }
    }
}
