#include "nn.h"
#include "requant.h"

void nn_classify_s8(const nn_classify_s8_params *p, const int32_t *acc, const int32_t *labels, const int8_t *lut,
                    int32_t *label, int8_t *scores)
{
    int32_t r, k;
    for (r = 0; r < p->rows; ++r) {
        const int32_t *s = acc + r * p->raw;
        int8_t *y = scores + r * p->classes;
        if (label && p->rule == 0) {
            int32_t best = 0;
            for (k = 1; k < p->raw; ++k) {
                best = s[k] > s[best] ? k : best;
            }
            label[r] = labels[best];
        } else if (label) {
            label[r] = s[p->col] > p->threshold ? labels[1] : labels[0];
        }
        for (k = 0; k < p->classes; ++k) {
            int8_t v = nn_output_s8(s[p->raw == 1 ? 0 : k], p->multiplier, p->shift, p->output_offset, -128, 127);
            y[k] = lut ? lut[(p->raw == 1 ? k : 0) * 256 + (int32_t)v + 128] : v;
        }
    }
}
