#include "nn.h"

void nn_argmax_s16(const nn_argmax_params *p, const int16_t *in, int32_t *out)
{
    int32_t o, i, k;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int16_t *x = in + (o * p->length) * p->inner + i;
            int16_t best = x[0];
            int32_t at = 0;
            for (k = 1; k < p->length; ++k) {
                const int16_t value = x[k * p->inner];
                const int better = p->is_min ? (p->select_last ? value <= best : value < best)
                                             : (p->select_last ? value >= best : value > best);
                if (better) {
                    best = value;
                    at = k;
                }
            }
            out[o * p->inner + i] = at;
        }
    }
}
