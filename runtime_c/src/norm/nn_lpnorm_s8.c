#include "nn.h"

void nn_lpnorm_s8(const nn_lpnorm_params *p, const int8_t *in, int8_t *out)
{
    int32_t o, i, k;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *x = in + o * p->size * p->inner + i;
            int8_t *y = out + o * p->size * p->inner + i;
            int32_t s = 0, e = 0, right;
            int64_t scale = 0;
            for (k = 0; k < p->size; ++k) {
                const int32_t v = x[k * p->inner] + p->input_offset;
                s += p->p == 1 ? (v < 0 ? -v : v) : v * v;
            }
            if (s > 0) {
                const int64_t inv = nn_inv_sqrt(s, &e);
                scale = p->p == 1 ? (inv * inv) >> 30 : inv;
            }
            right = p->p == 1 ? 2 * e - 37 : e - 7; /* >= 23 when s > 0 */
            for (k = 0; k < p->size; ++k) {
                int32_t q = 0;
                if (s > 0) {
                    const int64_t v = x[k * p->inner] + p->input_offset;
                    q = (int32_t)((v * scale + ((int64_t)1 << (right - 1))) >> right);
                }
                y[k * p->inner] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
            }
        }
    }
}
