#include "nn.h"
#include "requant.h"

void nn_norm_s8(const nn_norm_s8_params *p, const int8_t *in, const int8_t *gamma, const int32_t *beta, int8_t *out)
{
    int32_t r, k;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->size;
        int8_t *y = out + r * p->size;
        const int32_t c = p->per_row ? r % p->channels : 0;
        int32_t s1 = 0, s2 = 0, e, right;
        int64_t t, half;
        int32_t inv;
        for (k = 0; k < p->size; ++k) {
            s1 += x[k];
            s2 += x[k] * x[k];
        }
        t = (int64_t)p->size * s2 - (int64_t)s1 * s1 + p->epsilon;
        inv = nn_inv_sqrt(t, &e);
        right = e - p->z_bits; /* >= 6: t >= 1 gives e >= 30 and z_bits <= 24 */
        half = (int64_t)1 << (right - 1);
        for (k = 0; k < p->size; ++k) {
            const int32_t i = p->per_row ? c : k;
            const int32_t d = p->size * x[k] - s1;
            const int32_t z = (int32_t)(((int64_t)d * inv + half) >> right);
            const int32_t acc = z * gamma[i] + beta[i];
            y[k] = nn_output_s8(acc, p->multiplier, p->shift, p->output_offset, -128, 127);
        }
    }
}
