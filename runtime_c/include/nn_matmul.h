/* Matrix product of two run-time operands (MatMul, Gemm without a constant operand). Included by nn.h. */
#ifndef NN_MATMUL_H
#define NN_MATMUL_H

#include <stdint.h>

/*
 * out[t, i, j] = clamp(alpha * sum_k a[t, i, k] * b[t, k, j] + beta * bias[i, j]), dense,
 * row-major [batch..., m, n]; t walks the batch dimensions in row-major order.
 * batch: the output's batch shape, NN_MAX_DIMS entries padded with leading 1s (each >= 1).
 * a_batch_strides / b_batch_strides: element strides of each operand per batch dimension,
 *   0 where the operand broadcasts (NumPy's matmul rule).
 * a[t, i, k] = a[a_t + i * a_row_stride + k * a_col_stride] (a_t from the batch strides);
 * b[t, k, j] = b[b_t + k * b_row_stride + j * b_col_stride]: a transposed operand (Gemm's
 *   transA, transB) is a view, never a copy.
 * bias: NULL, or bias[i * bias_row_stride + j * bias_col_stride] (strides 0 broadcast).
 * m, k, n >= 0 (k = 0 gives alpha * 0 plus the bias). The sum runs over k in order.
 * `out` must not overlap `a`, `b` or `bias`.
 */
typedef struct {
    int32_t batch[NN_MAX_DIMS];
    int32_t a_batch_strides[NN_MAX_DIMS];
    int32_t b_batch_strides[NN_MAX_DIMS];
    int32_t m;
    int32_t k;
    int32_t n;
    int32_t a_row_stride;
    int32_t a_col_stride;
    int32_t b_row_stride;
    int32_t b_col_stride;
    int32_t bias_row_stride;
    int32_t bias_col_stride;
    float alpha;
    float beta;
    float act_min;
    float act_max;
} nn_matmul_f32_params;

void nn_matmul_f32(const nn_matmul_f32_params *p, const float *a, const float *b, const float *bias, float *out);

/*
 * int8: the same views with integer arithmetic (requant.h), both operands per tensor:
 *   dot = sum_k (a[t, i, k] + a_offset) * (b[t, k, j] + b_offset)                 (int32)
 *   acc = bias[i, j] + product_sign * dot           (bias NULL: acc = product_sign * dot)
 *   out[t, i, j] = clamp(nn_requantize(acc, multiplier, shift) + output_offset, act_min, act_max)
 * a_offset, b_offset: minus the operands' zero points, in [-127, 128], so each factor is in
 *   [-255, 255]. product_sign: 1, or -1 for a negative Gemm alpha (|alpha| is in the
 *   multiplier). bias: int32 at the product's scale. The compiler proves
 *   |bias| + k * 2^16 < 2^31, so no partial sum of the expanded form below overflows.
 * multiplier: Q31 in [2^30, 2^31 - 1] (or 0); shift in [-31, 30]; output_offset the output
 *   zero point; act_min <= act_max in [-128, 127].
 * scratch: n int32 values (4-byte aligned, never NULL), the kernel's own working space: the
 *   zero-point terms are expanded (see nn_matmul_s8.c) and the column sums of b kept there.
 */
typedef struct {
    int32_t batch[NN_MAX_DIMS];
    int32_t a_batch_strides[NN_MAX_DIMS];
    int32_t b_batch_strides[NN_MAX_DIMS];
    int32_t m;
    int32_t k;
    int32_t n;
    int32_t a_row_stride;
    int32_t a_col_stride;
    int32_t b_row_stride;
    int32_t b_col_stride;
    int32_t bias_row_stride;
    int32_t bias_col_stride;
    int32_t a_offset;
    int32_t b_offset;
    int32_t product_sign;
    int32_t multiplier;
    int32_t shift;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} nn_matmul_s8_params;

void nn_matmul_s8(const nn_matmul_s8_params *p, const int8_t *a, const int8_t *b, const int32_t *bias,
                  int32_t *scratch, int8_t *out);

/*
 * int16 (both operands symmetric per tensor, zero points 0; no bias): the same views,
 *   acc = product_sign * sum_k a[t, i, k] * b[t, k, j]             (int64: each product <= 2^30,
 *                                                                    k <= 65536 keeps |acc| < 2^47)
 *   out[t, i, j] = clamp(nn_requantize64(acc, multiplier, shift), act_min, act_max)
 */
typedef struct {
    int32_t batch[NN_MAX_DIMS];
    int32_t a_batch_strides[NN_MAX_DIMS];
    int32_t b_batch_strides[NN_MAX_DIMS];
    int32_t m;
    int32_t k;
    int32_t n;
    int32_t a_row_stride;
    int32_t a_col_stride;
    int32_t b_row_stride;
    int32_t b_col_stride;
    int32_t product_sign;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} nn_matmul_s16_params;

void nn_matmul_s16(const nn_matmul_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out);

#endif /* NN_MATMUL_H */
