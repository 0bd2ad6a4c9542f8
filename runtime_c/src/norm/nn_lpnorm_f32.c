#include <math.h>

#include "nn.h"

void nn_lpnorm_f32(const nn_lpnorm_params *p, const float *in, float *out)
{
    int32_t o, i, k;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const float *x = in + o * p->size * p->inner + i;
            float *y = out + o * p->size * p->inner + i;
            float norm = 0.0f;
            for (k = 0; k < p->size; ++k) {
                const float v = x[k * p->inner];
                norm += p->p == 1 ? (v < 0.0f ? -v : v) : v * v;
            }
            if (p->p != 1) {
                norm = sqrtf(norm);
            }
            norm = norm < p->epsilon ? p->epsilon : norm;
            for (k = 0; k < p->size; ++k) {
                /* a group of zeros gives zeros; a NaN norm passes through */
                y[k * p->inner] = norm > 0.0f || !(norm <= 0.0f) ? x[k * p->inner] / norm : 0.0f;
            }
        }
    }
}
