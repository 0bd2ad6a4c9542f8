/* ReduceMean, ReduceMax, ReduceSum, ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare,
 * ReduceLogSumExp and ReduceProd over any set of axes. Included by nn.h. */
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

/* out[j] = smallest element of the box of j (NaN as for the maximum). */
void nn_reduce_min_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = sum of |x| over the box of j. */
void nn_reduce_l1_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = sum of x * x over the box of j. */
void nn_reduce_sumsquare_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = sqrtf(sum of x * x over the box of j). Calls nn_reduce_sumsquare_f32. */
void nn_reduce_l2_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = product of the box of j (in input order). */
void nn_reduce_prod_f32(const nn_reduce_params *p, const float *in, float *out);

/* out[j] = m + logf(sum of expf(x - m)) with m the box's maximum (no overflow). Calls
 * nn_reduce_max_f32. */
void nn_reduce_logsumexp_f32(const nn_reduce_params *p, const float *in, float *out);

enum {
    NN_REDUCE_MEAN = 0, NN_REDUCE_MAX = 1, NN_REDUCE_SUM = 2, NN_REDUCE_MIN = 3, NN_REDUCE_L1 = 4,
    NN_REDUCE_SUMSQUARE = 5, NN_REDUCE_L2 = 6
};

/*
 * int8: with v = in + input_offset, acc over the box (int32) is the sum of v (mean, sum), its
 * maximum or minimum, the sum of |v| (L1) or of v * v (sum of squares; L2 then takes
 * round(sqrt(acc) * 2^14) through nn_inv_sqrt: acc / sqrt(acc)); then
 * out = clamp(nn_requantize(acc, multiplier, shift) + output_offset, -128, 127); the
 * multiplier and shift hold input_scale / output_scale (and 1 / count for the mean,
 * input_scale^2 / output_scale for the sum of squares, input_scale / (2^14 output_scale)
 * for L2).
 *   r: the geometry (above).
 *   op: one of the NN_REDUCE_ codes.
 *   input_offset: minus the input zero point, in [-127, 128].
 *   multiplier: Q31 multiplier; shift: its power-of-two exponent, in [-31, 30].
 *   output_offset: the output zero point, in [-128, 127].
 * The compiler keeps count * 255 < 2^31 (count * 256^2 < 2^31 for L2 and the sum of squares).
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

/*
 * int16 (zero points 0) ReduceMean, ReduceSum, ReduceMax, ReduceMin and ReduceL1 (op as above):
 * the box's sum, extreme or sum of |x| in int32 (the compiler keeps count <= 65535, so
 * count * 32768 fits), then out = clamp(nn_requantize(acc, multiplier, shift), -32768, 32767);
 * ReduceSumSquare: the sum of x^2 in int64 (below 2^46) through nn_requantize64.
 */
typedef struct {
    nn_reduce_params r;
    int32_t op;
    int32_t multiplier;
    int32_t shift;
} nn_reduce_s16_params;

void nn_reduce_s16(const nn_reduce_s16_params *p, const int16_t *in, int16_t *out);

/*
 * int8 ReduceLogSumExp: m = the box's maximum, sum = sum of exp_table[m - x] with exp_table[d] =
 * round(exp(-input_scale d) 2^exp_bits) (the compiler keeps sum < 2^29), then in output steps
 * (Q16): a = (m + input_offset) * input_steps, l = ((nn_log2_q16(sum) - exp_bits 2^16) *
 * ln2_steps + 2^15) >> 16, out = clamp(output_offset + ((a + l + 2^15) >> 16), -128, 127), with
 * input_steps = round(input_scale / output_scale 2^16) and ln2_steps = round(ln 2 /
 * output_scale 2^16) (both below 2^31).
 */
typedef struct {
    nn_reduce_params r;
    int32_t exp_bits;
    int32_t input_offset;
    int32_t input_steps;
    int32_t ln2_steps;
    int32_t output_offset;
} nn_reduce_logsumexp_s8_params;

void nn_reduce_logsumexp_s8(const nn_reduce_logsumexp_s8_params *p, const int8_t *in, const int32_t *exp_table,
                            int8_t *out);

#endif /* NN_REDUCE_H */
