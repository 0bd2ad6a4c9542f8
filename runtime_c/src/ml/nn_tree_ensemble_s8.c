#include "nn.h"

void nn_tree_ensemble_s8(const nn_tree_ensemble_params *p, const int8_t *in, const uint16_t *feature,
                         const int16_t *threshold, const uint16_t *jump, const int32_t *roots,
                         const int32_t *leaf_base, const int32_t *leaves, const int16_t *tree_target,
                         const int32_t *base, int32_t *out)
{
    int32_t r, t, k;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->features;
        int32_t *acc = out + r * p->outputs;
        for (k = 0; k < p->outputs; ++k) {
            acc[k] = p->aggregate == 2 ? INT32_MAX : p->aggregate == 3 ? INT32_MIN : 0;
        }
        for (t = 0; t < p->trees; ++t) {
            int32_t i = roots[t];
            const int32_t *leaf;
            uint32_t f;
            if (!p->flags) { /* no == branch: the plain walk */
                while ((f = feature[i]) != 0xFFFFu) {
                    i = x[f] <= threshold[i] ? i + 1 : i + (int32_t)jump[i];
                }
            }
            while ((f = feature[i]) != 0xFFFFu) {
                int32_t v = x[f & 0x3FFFu];
                int go = (f & 0x4000u) ? v == threshold[i] : v <= threshold[i];
                i = go ? i + 1 : i + (int32_t)jump[i];
            }
            leaf = leaves + (leaf_base[t] + (int32_t)jump[i]) * p->width;
            for (k = 0; k < p->width; ++k) {
                int32_t o = p->width > 1 ? k : (tree_target ? tree_target[t] : 0);
                int32_t v = leaf[k];
                if (p->aggregate <= 1) {
                    acc[o] += v;
                } else if (p->aggregate == 2) {
                    acc[o] = v < acc[o] ? v : acc[o];
                } else {
                    acc[o] = v > acc[o] ? v : acc[o];
                }
            }
        }
        for (k = 0; k < p->outputs; ++k) {
            acc[k] += base[k];
        }
    }
}
