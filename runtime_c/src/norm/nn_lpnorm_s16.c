#include "nn.h"

void nn_lpnorm_s16(const nn_lpnorm_params *p, const int16_t *in, int16_t *out)
{
    int32_t o, i, k;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int16_t *x = in + o * p->size * p->inner + i;
            int16_t *y = out + o * p->size * p->inner + i;
            int64_t s = 0, scale = 0;
            int32_t e = 0, right;
            for (k = 0; k < p->size; ++k) {
                const int32_t v = x[k * p->inner];
                s += p->p == 1 ? (v < 0 ? -v : v) : (int64_t)v * v;
            }
            if (s > 0) {
                const int64_t inv = nn_inv_sqrt(s, &e);
                scale = p->p == 1 ? (inv * inv) >> 30 : inv;
            }
            right = p->p == 1 ? 2 * e - 45 : e - 15; /* >= 15 when s > 0 */
            for (k = 0; k < p->size; ++k) {
                int64_t q = 0;
                if (s > 0) {
                    q = ((int64_t)x[k * p->inner] * scale + ((int64_t)1 << (right - 1))) >> right;
                }
                y[k * p->inner] = (int16_t)(q < -32768 ? -32768 : q > 32767 ? 32767 : q);
            }
        }
    }
}
