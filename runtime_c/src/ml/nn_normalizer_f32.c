#include <math.h>

#include "nn.h"

void nn_normalizer_f32(const nn_rows_params *p, const float *in, float *out)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const float *x = in + r * p->cols;
        float *y = out + r * p->cols;
        float d;
        if (p->mode == 0) {
            d = x[0];
            for (c = 1; c < p->cols; ++c) {
                d = x[c] > d ? x[c] : d;
            }
        } else {
            d = 0.0f;
            for (c = 0; c < p->cols; ++c) {
                d += p->mode == 1 ? fabsf(x[c]) : x[c] * x[c];
            }
            if (p->mode == 2) {
                d = sqrtf(d);
            }
        }
        for (c = 0; c < p->cols; ++c) {
            y[c] = !(d >= 0.0f && d <= 0.0f) ? x[c] / d : x[c]; /* d != 0 (NaN divides) */
        }
    }
}
