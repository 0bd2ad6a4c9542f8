#include "nn.h"

void nn_matmul_f32(const nn_matmul_f32_params *p, const float *a, const float *b, const float *bias, float *out)
{
    int32_t idx_a[NN_MAX_DIMS] = {0}, idx_b[NN_MAX_DIMS] = {0};
    int32_t a_t = 0, b_t = 0, count = 1, t, i, j, k, d;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        count *= p->batch[d];
    }
    for (t = 0; t < count; ++t) {
        for (i = 0; i < p->m; ++i) {
            const float *x = a + a_t + i * p->a_row_stride;
            for (j = 0; j < p->n; ++j) {
                const float *xk = x, *wk = b + b_t + j * p->b_col_stride;
                float acc = 0.0f;
                for (k = p->k; k > 0; --k) {
                    acc += *xk * *wk;
                    xk += p->a_col_stride;
                    wk += p->b_row_stride;
                }
                acc = p->alpha * acc;
                if (bias) {
                    acc += p->beta * bias[i * p->bias_row_stride + j * p->bias_col_stride];
                }
                acc = acc < p->act_min ? p->act_min : acc;
                acc = acc > p->act_max ? p->act_max : acc;
                *out++ = acc;
            }
        }
        a_t = nn_next_offset(idx_a, p->batch, p->a_batch_strides, a_t);
        b_t = nn_next_offset(idx_b, p->batch, p->b_batch_strides, b_t);
    }
}
