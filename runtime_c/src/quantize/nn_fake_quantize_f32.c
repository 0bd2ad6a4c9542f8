#include <math.h>

#include "nn.h"

void nn_fake_quantize_f32(const nn_fake_quantize_f32_params *p, const float *in, const float *scale,
                          const float *zero_point, float *out)
{
    const float qmin = p->qmin, qmax = p->qmax;
    int32_t o, c, i;
    for (o = 0; o < p->outer; ++o) {
        for (c = 0; c < p->channels; ++c) {
            const float s = scale[c], z = zero_point[c];
            for (i = 0; i < p->inner; ++i) {
                float v = rintf(*in++ / s) + z;
                v = v < qmin ? qmin : v;
                v = v > qmax ? qmax : v;
                *out++ = (v - z) * s;
            }
        }
    }
}
