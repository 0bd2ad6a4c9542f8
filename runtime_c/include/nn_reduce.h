/* ReduceMean, ReduceMax, ReduceSum over any set of axes. Included by nn.h. */
#ifndef NN_REDUCE_H
#define NN_REDUCE_H

#include <stdint.h>

/*
 * The reduction geometry, shared by every reduce kernel. The input is dense; the compiler
 * drops size-1 dimensions and merges neighbouring dimensions that are both kept or both
 * reduced, so global average pooling over [N, C, H, W] becomes one kept dimension (N * C,
 * stride H * W) and one contiguous reduced run (H * W, stride 1).
 *   outer_shape, outer_strides: the kept dimensions and their input strides (elements);
 *     output element j (dense, in order) is the box at sum_d idx_d * outer_strides[d] with
 *     idx the j-th multi-index over outer_shape.
 *   inner_shape, inner_strides: the reduced dimensions spanning each box; the last one is
 *     walked by an inner loop (a contiguous run when its stride is 1), the others by an
 *     odometer.
 *   All four are padded in front to NN_MAX_DIMS with size-1 dimensions (stride 0).
 *   out_size: number of output elements (product of outer_shape), >= 1.
 *   count: number of elements in one box (product of inner_shape), >= 1.
 * `in` and `out` must not overlap.
 */
typedef struct {
    int32_t outer_shape[NN_MAX_DIMS];
    int32_t outer_strides[NN_MAX_DIMS];
    int32_t inner_shape[NN_MAX_DIMS];
    int32_t inner_strides[NN_MAX_DIMS];
    int32_t out_size;
    int32_t count;
} nn_reduce_params;

/* out[j] = sum of the box of j (float accumulation in input order). */
void nn_reduce_sum_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = (sum of the box of j) / count. Calls nn_reduce_sum_f32. */
void nn_reduce_mean_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = largest element of the box of j (NaN inputs: the comparison skips them unless
 * the first element is NaN). */
void nn_reduce_max_f32(const nn_reduce_params *p, const float *in, float *out);

enum { NN_REDUCE_MEAN = 0, NN_REDUCE_MAX = 1, NN_REDUCE_SUM = 2 };

/*
 * int8: acc = sum (mean, sum) or max of (in + input_offset) over the box (int32), then
 * out = clamp(nn_requantize(acc, multiplier, shift) + output_offset, -128, 127); the
 * multiplier and shift hold input_scale / output_scale (and 1 / count for the mean).
 *   r: the geometry (above).
 *   op: NN_REDUCE_MAX takes the maximum; NN_REDUCE_MEAN and NN_REDUCE_SUM the sum.
 *   input_offset: minus the input zero point, in [-127, 128].
 *   multiplier: Q31 multiplier; shift: its power-of-two exponent, in [-31, 30].
 *   output_offset: the output zero point, in [-128, 127].
 * The compiler keeps count * 255 < 2^31.
 */
typedef struct {
    nn_reduce_params r;
    int32_t op;
    int32_t input_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t output_offset;
} nn_reduce_s8_params;

void nn_reduce_s8(const nn_reduce_s8_params *p, const int8_t *in, int8_t *out);

#endif /* NN_REDUCE_H */
