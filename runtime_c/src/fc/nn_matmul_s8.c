#include "nn.h"
#include "requant.h"

/* sum_k x[k * x_step] * w[k * w_step], raw int8 values (|sum| <= count * 2^14) */
static int32_t nn_matmul_dot_s8(const int8_t *x, int32_t x_step, const int8_t *w, int32_t w_step, int32_t count)
{
    int32_t sum = 0;
    if (x_step == 1) {
        for (; count >= 4; count -= 4) { /* four at a time: one loop test per four products */
            sum += (int32_t)*x++ * *w;
            w += w_step;
            sum += (int32_t)*x++ * *w;
            w += w_step;
            sum += (int32_t)*x++ * *w;
            w += w_step;
            sum += (int32_t)*x++ * *w;
            w += w_step;
        }
        for (; count > 0; --count) {
            sum += (int32_t)*x++ * *w;
            w += w_step;
        }
        return sum;
    }
    for (; count > 0; --count) {
        sum += (int32_t)*x * *w;
        x += x_step;
        w += w_step;
    }
    return sum;
}

static int32_t nn_matmul_sum_s8(const int8_t *x, int32_t step, int32_t count)
{
    int32_t sum = 0;
    for (; count > 0; --count) {
        sum += *x;
        x += step;
    }
    return sum;
}

/*
 * sum_k (x_k + a_offset)(w_k + b_offset) = sum_k x_k w_k + b_offset * sum_k x_k
 *                                          + a_offset * sum_k w_k + k * a_offset * b_offset:
 * the column sums of b (scratch, once per batch) and the row sums of a (once per row) leave a
 * plain dot product in the inner loop. Each of the four terms is at most k * 2^14 in
 * magnitude, so every partial sum stays below k * 2^16 + |bias| < 2^31 (nn_matmul.h).
 */
void nn_matmul_s8(const nn_matmul_s8_params *p, const int8_t *a, const int8_t *b, const int32_t *bias,
                  int32_t *scratch, int8_t *out)
{
    int32_t idx_a[NN_MAX_DIMS] = {0}, idx_b[NN_MAX_DIMS] = {0};
    const int32_t offsets = p->k * p->a_offset * p->b_offset;
    int32_t a_t = 0, b_t = 0, count = 1, t, i, j, d;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        count *= p->batch[d];
    }
    for (t = 0; t < count; ++t) {
        for (j = 0; j < p->n; ++j) {
            scratch[j] = p->a_offset * nn_matmul_sum_s8(b + b_t + j * p->b_col_stride, p->b_row_stride, p->k);
        }
        for (i = 0; i < p->m; ++i) {
            const int8_t *x = a + a_t + i * p->a_row_stride;
            const int32_t row = p->b_offset * nn_matmul_sum_s8(x, p->a_col_stride, p->k) + offsets;
            for (j = 0; j < p->n; ++j) {
                int32_t acc = nn_matmul_dot_s8(x, p->a_col_stride, b + b_t + j * p->b_col_stride, p->b_row_stride,
                                               p->k) + row + scratch[j];
                acc = p->product_sign < 0 ? -acc : acc;
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
