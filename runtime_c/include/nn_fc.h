/* Fully connected (Gemm, MatMul with one constant operand). Included by nn.h. */
#ifndef NN_FC_H
#define NN_FC_H

#include <stdint.h>

/*
 * For r in [0, rows), n in [0, out_features):
 *   out[r * out_row_stride + n * out_col_stride] =
 *       clamp(bias[n] + sum_k in[r * in_row_stride + k * in_col_stride] * weight[n * in_features + k])
 * weight: [out_features, in_features], row-major. bias: [out_features] or NULL.
 * The strides let one kernel compute x @ W (in_col_stride = 1, out_col_stride = 1) and
 * W @ x (rows are the columns of x). `in` and `out` must not overlap.
 */
typedef struct {
    int32_t rows;
    int32_t in_features;
    int32_t out_features;
    int32_t in_row_stride;
    int32_t in_col_stride;
    int32_t out_row_stride;
    int32_t out_col_stride;
    float act_min;
    float act_max;
} nn_fc_f32_params;

void nn_fc_f32(const nn_fc_f32_params *p, const float *in, const float *weight,
               const float *bias, float *out);

#endif /* NN_FC_H */
