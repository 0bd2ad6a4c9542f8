#include "nn.h"

void nn_svm_classifier_f32(const nn_svm_params *p, const float *in, const float *vectors, const float *coef,
                           const float *rho, const int32_t *start, const int32_t *labels, float *scratch,
                           int32_t *label, float *scores)
{
    float *kv = scratch;
    float *votes = scratch + p->vectors;
    int32_t n = p->classes;
    int32_t pairs = n == 2 ? 2 : n * (n - 1) / 2;
    int32_t r, i, j, m;
    for (r = 0; r < p->rows; ++r) {
        float *y = scores + r * pairs;
        int32_t pair = 0, best = 0;
        nn_svm_kernel_f32(p, in + r * p->features, vectors, kv);
        for (i = 0; i < n; ++i) {
            votes[i] = 0.0f;
        }
        for (i = 0; i < n - 1; ++i) {
            for (j = i + 1; j < n; ++j) {
                double sum = 0.0;
                float acc;
                for (m = start[i]; m < start[i + 1]; ++m) {
                    sum += (double)(coef[(j - 1) * p->vectors + m] * kv[m]);
                }
                for (m = start[j]; m < start[j + 1]; ++m) {
                    sum += (double)(coef[i * p->vectors + m] * kv[m]);
                }
                acc = (float)(sum + (double)rho[pair]);
                votes[acc > 0.0f ? i : j] += 1.0f;
                if (n == 2) {
                    y[0] = -acc;
                    y[1] = acc;
                } else {
                    y[pair] = acc;
                }
                ++pair;
            }
        }
        for (i = 1; i < n; ++i) {
            best = votes[i] > votes[best] ? i : best;
        }
        label[r] = labels[best];
    }
}
