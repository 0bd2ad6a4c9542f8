#include "nn.h"

void nn_svm_regressor_f32(const nn_svm_params *p, const float *in, const float *vectors, const float *coef,
                          const float *rho, float *scratch, float *out)
{
    int32_t r, j;
    for (r = 0; r < p->rows; ++r) {
        float acc = 0.0f;
        nn_svm_kernel_f32(p, in + r * p->features, vectors, scratch);
        for (j = 0; j < p->vectors; ++j) {
            acc += coef[j] * scratch[j];
        }
        out[r] = acc + rho[0];
        if (p->classes == 2) { /* a one-class SVM */
            out[r] = out[r] > 0.0f ? 1.0f : -1.0f;
        }
    }
}
