/* ReduceMean, ReduceMax, ReduceSum over any set of axes. Included by nn.h. */
#ifndef NN_REDUCE_H
#define NN_REDUCE_H

#include <stdint.h>

enum { NN_REDUCE_MEAN = 0, NN_REDUCE_MAX = 1, NN_REDUCE_SUM = 2 };

/*
 * Output element j (dense, in order) reduces the input box that starts at
 * sum_d idx_d * outer_strides[d] (idx over outer_shape, the kept dimensions) and spans
 * inner_shape with inner_strides (the reduced dimensions); all padded to NN_MAX_DIMS with
 * size-1 dimensions, strides in elements. count = number of elements in the box.
 */
typedef struct {
    int32_t outer_shape[NN_MAX_DIMS];
    int32_t outer_strides[NN_MAX_DIMS];
    int32_t inner_shape[NN_MAX_DIMS];
    int32_t inner_strides[NN_MAX_DIMS];
    int32_t out_size;
    int32_t count;
    int32_t op; /* NN_REDUCE_* */
} nn_reduce_params;

void nn_reduce_f32(const nn_reduce_params *p, const float *in, float *out);

/*
 * int8: acc = sum (mean, sum) or max of (in + input_offset) over the box (int32), then
 * out = clamp(nn_requantize(acc, multiplier, shift) + output_offset, -128, 127); the
 * multiplier holds input_scale / output_scale (and 1 / count for the mean).
 */
typedef struct {
    nn_reduce_params r;
    int32_t input_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t output_offset;
} nn_reduce_s8_params;

void nn_reduce_s8(const nn_reduce_s8_params *p, const int8_t *in, int8_t *out);

#endif /* NN_REDUCE_H */
