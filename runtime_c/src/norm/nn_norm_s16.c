#include "nn.h"
#include "requant.h"

void nn_norm_s16(const nn_norm_s16_params *p, const int16_t *in, const int16_t *gamma, const int32_t *beta,
                 int16_t *out)
{
    int32_t r, k;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = in + r * p->size;
        int16_t *y = out + r * p->size;
        const int32_t c = p->per_row ? r % p->channels : 0;
        int32_t s1 = 0, e, right, inv;
        int64_t s2 = 0, t, half;
        for (k = 0; k < p->size; ++k) {
            s1 += x[k];
            s2 += (int32_t)x[k] * x[k];
        }
        t = (int64_t)p->size * s2 - (int64_t)s1 * s1 + p->epsilon;
        inv = nn_inv_sqrt(t, &e);
        right = e - p->z_bits; /* >= 6: t >= 1 gives e >= 30 and z_bits <= 24 */
        half = (int64_t)1 << (right - 1);
        for (k = 0; k < p->size; ++k) {
            const int32_t i = p->per_row ? c : k;
            const int32_t d = p->size * x[k] - s1;
            const int64_t z = ((int64_t)d * inv + half) >> right;
            y[k] = nn_output64_s16(z * gamma[i] + beta[i], p->multiplier, p->shift, -32768, 32767);
        }
    }
}
