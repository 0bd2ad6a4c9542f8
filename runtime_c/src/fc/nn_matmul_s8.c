#include "nn.h"
#include "requant.h"

void nn_matmul_s8(const nn_matmul_s8_params *p, const int8_t *a, const int8_t *b, const int32_t *bias,
                  int8_t *out)
{
    int32_t idx_a[NN_MAX_DIMS] = {0}, idx_b[NN_MAX_DIMS] = {0};
    int32_t a_t = 0, b_t = 0, count = 1, t, i, j, k, d;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        count *= p->batch[d];
    }
    for (t = 0; t < count; ++t) {
        for (i = 0; i < p->m; ++i) {
            const int8_t *x = a + a_t + i * p->a_row_stride;
            for (j = 0; j < p->n; ++j) {
                const int8_t *w = b + b_t + j * p->b_col_stride;
                int32_t dot = 0, acc;
                for (k = 0; k < p->k; ++k) {
                    dot += ((int32_t)x[k * p->a_col_stride] + p->a_offset) *
                           ((int32_t)w[k * p->b_row_stride] + p->b_offset);
                }
                acc = p->product_sign < 0 ? -dot : dot;
                if (bias) {
                    acc += bias[i * p->bias_row_stride + j * p->bias_col_stride];
                }
                *out++ = nn_output_s8(acc, p->multiplier, p->shift, p->output_offset, p->act_min, p->act_max);
            }
        }
        a_t = nn_next_offset(idx_a, p->batch, p->a_batch_strides, a_t);
        b_t = nn_next_offset(idx_b, p->batch, p->b_batch_strides, b_t);
    }
}
