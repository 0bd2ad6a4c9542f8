#include "nn.h"
#include "requant.h"

void nn_matmul_s16(const nn_matmul_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out)
{
    int32_t idx_a[NN_MAX_DIMS] = {0}, idx_b[NN_MAX_DIMS] = {0};
    int32_t a_t = 0, b_t = 0, count = 1, t, i, j, k, d;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        count *= p->batch[d];
    }
    for (t = 0; t < count; ++t) {
        for (i = 0; i < p->m; ++i) {
            const int16_t *x = a + a_t + i * p->a_row_stride;
            for (j = 0; j < p->n; ++j) {
                const int16_t *w = b + b_t + j * p->b_col_stride;
                int64_t acc = 0;
                for (k = 0; k < p->k; ++k) {
                    acc += (int32_t)x[k * p->a_col_stride] * w[k * p->b_row_stride];
                }
                *out++ = nn_output64_s16(p->product_sign < 0 ? -acc : acc, p->multiplier, p->shift, p->act_min,
                                         p->act_max);
            }
        }
        a_t = nn_next_offset(idx_a, p->batch, p->a_batch_strides, a_t);
        b_t = nn_next_offset(idx_b, p->batch, p->b_batch_strides, b_t);
    }
}
