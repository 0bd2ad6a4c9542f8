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

/*
 * int8: the same loops and strides with integer arithmetic (requant.h):
 *   acc = bias[n] + sum_k in[...] * weight[n * in_features + k]                  (int32)
 *   out[...] = clamp(nn_requantize(acc, multiplier[n], shift[n]) + output_offset,
 *                    act_min, act_max)
 * weight: int8 in [-127, 127], per output channel scales folded into multiplier (Q31) and
 * shift (in [-31, 30]), one of each per output channel.
 * bias: int32, never NULL; the compiler folds the input zero point into it
 *   (bias[n] = bias_q[n] - input_zero_point * sum_k weight[n, k]), so the inner loop is a
 *   plain dot product. The compiler proves |acc| < 2^31 for every input.
 * output_offset: the output zero point, in [-128, 127]; act_min <= act_max, both in
 *   [-128, 127] (a fused Relu/Clip narrows them).
 */
typedef struct {
    int32_t rows;
    int32_t in_features;
    int32_t out_features;
    int32_t in_row_stride;
    int32_t in_col_stride;
    int32_t out_row_stride;
    int32_t out_col_stride;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} nn_fc_s8_params;

void nn_fc_s8(const nn_fc_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
              const int32_t *multiplier, const int8_t *shift, int8_t *out);

/*
 * int16 activations with int8 weights (TFLite's 16x8 scheme): the same loops and strides,
 *   acc = bias[n] + sum_k in[...] * weight[n * in_features + k]
 *   out[...] = clamp(requantize(acc, multiplier[n], shift[n]), act_min, act_max)
 * in and out int16 with zero point 0 (symmetric: no offsets); weight int8 in [-127, 127]; bias
 * int32, never NULL; act_min <= act_max in [-32768, 32767].
 * nn_fc_s16 accumulates in int32 and requantizes with nn_requantize: the compiler chooses it
 * when |bias[n]| + 32768 * sum_k |weight[n, k]| < 2^31 for every n. nn_fc_acc64_s16
 * accumulates in int64 and requantizes with nn_requantize64 (requant.h), for the other layers.
 */
typedef struct {
    int32_t rows;
    int32_t in_features;
    int32_t out_features;
    int32_t in_row_stride;
    int32_t in_col_stride;
    int32_t out_row_stride;
    int32_t out_col_stride;
    int32_t act_min;
    int32_t act_max;
} nn_fc_s16_params;

void nn_fc_s16(const nn_fc_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
               const int32_t *multiplier, const int8_t *shift, int16_t *out);
void nn_fc_acc64_s16(const nn_fc_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                     const int32_t *multiplier, const int8_t *shift, int16_t *out);

#endif /* NN_FC_H */
