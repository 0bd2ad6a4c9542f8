#include <math.h>

#include "nn.h"

void nn_svm_kernel_f32(const nn_svm_params *p, const float *x, const float *vectors, float *k)
{
    int32_t j, c;
    for (j = 0; j < p->vectors; ++j) {
        const float *v = vectors + j * p->features;
        float acc = 0.0f;
        if (p->kernel == 2) {
            for (c = 0; c < p->features; ++c) {
                float d = x[c] - v[c];
                acc += d * d;
            }
            k[j] = expf(-p->gamma * acc);
            continue;
        }
        for (c = 0; c < p->features; ++c) {
            acc += x[c] * v[c];
        }
        if (p->kernel == 1) {
            acc = powf(p->gamma * acc + p->coef0, p->degree);
        } else if (p->kernel == 3) {
            acc = tanhf(p->gamma * acc + p->coef0);
        }
        k[j] = acc;
    }
}
