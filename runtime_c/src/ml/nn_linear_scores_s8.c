#include "nn.h"

void nn_linear_scores_s8(const nn_linear_scores_s8_params *p, const int8_t *in, const int8_t *weight,
                         const int32_t *bias, int32_t *acc)
{
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->features;
        for (n = 0; n < p->outputs; ++n) {
            const int8_t *w = weight + n * p->features;
            int32_t sum = bias[n];
            for (k = 0; k < p->features; ++k) {
                sum += (int32_t)x[k] * (int32_t)w[k];
            }
            acc[r * p->outputs + n] = sum;
        }
    }
}
