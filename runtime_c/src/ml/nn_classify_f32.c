#include <math.h>

#include "nn.h"

static float nn_logistic_f32(float v)
{
    float e = 1.0f / (1.0f + expf(-fabsf(v)));
    return v < 0.0f ? 1.0f - e : e;
}

void nn_classify_f32(const nn_classify_params *p, const float *raw, const int32_t *labels, int32_t *label,
                     float *scores)
{
    int32_t r, k;
    for (r = p->rows - 1; r >= 0; --r) { /* last row first: scores may expand raw in place */
        const float *s = raw + r * p->raw;
        float *y = scores + r * p->classes;
        if (p->rule == 0) {
            int32_t best = 0;
            for (k = 1; k < p->raw; ++k) {
                best = s[k] > s[best] ? k : best;
            }
            label[r] = labels[best];
        } else {
            label[r] = s[p->col] > p->threshold ? labels[1] : labels[0];
        }
        if (p->expand == 1) {
            float v = s[0];
            y[0] = 1.0f - v;
            y[1] = v;
        } else if (p->expand == 2) {
            float v = s[0];
            y[0] = -v;
            y[1] = v;
        } else if (p->expand == 3) {
            float v = nn_logistic_f32(s[0]);
            y[0] = 1.0f - v;
            y[1] = v;
        } else if (y != s) {
            for (k = 0; k < p->classes; ++k) {
                y[k] = s[k];
            }
        }
        if (p->post == 1) {
            for (k = 0; k < p->classes; ++k) {
                y[k] = nn_logistic_f32(y[k]);
            }
        } else if (p->post >= 2) {
            float vmax = -3.402823466e38f, sum = 0.0f, scale = 0.0f;
            for (k = 0; k < p->classes; ++k) {
                vmax = y[k] > vmax ? y[k] : vmax;
            }
            if (p->post == 3) {
                scale = expf(-vmax);
            }
            for (k = 0; k < p->classes; ++k) {
                if (p->post == 3 && !(y[k] > 1e-7f || y[k] < -1e-7f)) {
                    y[k] = y[k] * scale;
                } else {
                    y[k] = expf(y[k] - vmax);
                    sum += y[k];
                }
            }
            for (k = 0; k < p->classes; ++k) {
                y[k] = y[k] / sum;
            }
        }
    }
}
