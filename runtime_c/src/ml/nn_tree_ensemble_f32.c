#include "nn.h"

void nn_tree_ensemble_f32(const nn_tree_ensemble_params *p, const float *in, const uint16_t *feature,
                          const float *threshold, const uint16_t *jump, const int32_t *roots,
                          const int32_t *leaf_base, const float *leaves, const int16_t *tree_target,
                          const float *base, float *out)
{
    const int32_t outputs = p->outputs, width = p->width, aggregate = p->aggregate;
    int32_t r, t, k;
    for (r = 0; r < p->rows; ++r) {
        const float *x = in + r * p->features;
        float *acc = out + r * outputs;
        for (k = 0; k < outputs; ++k) {
            acc[k] = aggregate == 2 ? 3.402823466e38f : aggregate == 3 ? -3.402823466e38f : 0.0f;
        }
        for (t = 0; t < p->trees; ++t) {
            int32_t i = roots[t];
            const float *leaf;
            uint32_t f;
            if (!p->flags) { /* no == branch, no NaN rule: the plain walk */
                while ((f = feature[i]) != 0xFFFFu) {
                    i = x[f] <= threshold[i] ? i + 1 : i + (int32_t)jump[i];
                }
            }
            while ((f = feature[i]) != 0xFFFFu) {
                float v = x[f & 0x3FFFu];
                int go = v <= threshold[i] && (!(f & 0x4000u) || v >= threshold[i]); /* <=, or == */
                if (!go && (f & 0x8000u) && !(v >= v)) { /* NaN */
                    go = 1;
                }
                i = go ? i + 1 : i + (int32_t)jump[i];
            }
            leaf = leaves + (leaf_base[t] + (int32_t)jump[i]) * width;
            if (width == 1) {
                float *a = acc + (tree_target ? tree_target[t] : 0);
                *a = aggregate <= 1 ? *a + leaf[0] : aggregate == 2 ? (leaf[0] < *a ? leaf[0] : *a)
                                                                    : (leaf[0] > *a ? leaf[0] : *a);
            } else if (aggregate <= 1) {
                for (k = 0; k < width; ++k) {
                    acc[k] += leaf[k];
                }
            } else {
                for (k = 0; k < width; ++k) {
                    acc[k] = aggregate == 2 ? (leaf[k] < acc[k] ? leaf[k] : acc[k])
                                            : (leaf[k] > acc[k] ? leaf[k] : acc[k]);
                }
            }
        }
        for (k = 0; k < outputs; ++k) {
            if (aggregate == 1) {
                acc[k] /= (float)p->trees;
            }
            acc[k] += base[k];
        }
    }
}
