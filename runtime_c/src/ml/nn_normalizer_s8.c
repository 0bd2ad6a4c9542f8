#include "nn.h"
#include "requant.h"

/* round(a / b) for b > 0, half away from zero */
static int64_t nn_round_div_s64(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

/* floor(sqrt(v)) */
static uint64_t nn_isqrt_u64(uint64_t v)
{
    uint64_t root = 0, bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

void nn_normalizer_s8(const nn_normalizer_s8_params *p, const int8_t *in, int8_t *out)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->cols;
        int8_t *y = out + r * p->cols;
        int64_t den = 0;
        int32_t shift_num = 16;
        if (p->mode == 0) {
            den = (int32_t)x[0] + p->input_offset;
            for (c = 1; c < p->cols; ++c) {
                int32_t d = (int32_t)x[c] + p->input_offset;
                den = d > den ? d : den;
            }
        } else if (p->mode == 1) {
            for (c = 0; c < p->cols; ++c) {
                int32_t d = (int32_t)x[c] + p->input_offset;
                den += d < 0 ? -d : d;
            }
        } else {
            uint64_t sum = 0;
            for (c = 0; c < p->cols; ++c) {
                int32_t d = (int32_t)x[c] + p->input_offset;
                sum += (uint64_t)(d * d);
            }
            den = (int64_t)nn_isqrt_u64(sum << 16); /* sqrt(sum) in Q8 */
            shift_num = 24;
        }
        for (c = 0; c < p->cols; ++c) {
            int32_t d = (int32_t)x[c] + p->input_offset;
            if (den == 0) {
                y[c] = nn_output_s8(d, p->copy_multiplier, p->copy_shift, p->output_offset, -128, 127);
            } else {
                int64_t num = (int64_t)d * ((int64_t)1 << shift_num);
                int64_t ratio = den > 0 ? nn_round_div_s64(num, den) : nn_round_div_s64(-num, -den);
                y[c] = nn_output_s8((int32_t)ratio, p->multiplier, p->shift, p->output_offset, -128, 127);
            }
        }
    }
}
