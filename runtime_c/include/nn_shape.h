/* Data movement (Reshape copies, Transpose, Concat, Pad). Element-type generic: sizes are
 * in bytes or elements of `elem_size` bytes, so float32 and int8 models share these kernels.
 * Included by nn.h. */
#ifndef NN_SHAPE_H
#define NN_SHAPE_H

#include <stdint.h>

/* out[0 .. bytes) = in[0 .. bytes); in == out is allowed (nothing to do). */
typedef struct {
    int32_t bytes;
} nn_copy_params;

void nn_copy(const nn_copy_params *p, const void *in, void *out);

/*
 * Transpose: out is dense with shape `shape` (padded in front with 1s to NN_MAX_DIMS);
 * out element (i0..i5) = in[sum_d i_d * strides[d]] (the input's strides permuted, in
 * elements). elem_size: bytes per element (1 or 4, any other works too). No overlap.
 */
typedef struct {
    int32_t size;
    int32_t elem_size;
    int32_t shape[NN_MAX_DIMS];
    int32_t strides[NN_MAX_DIMS];
} nn_transpose_params;

void nn_transpose(const nn_transpose_params *p, const void *in, void *out);

/*
 * One input of a Concat: the output is [outer, out_block] bytes and the input
 * [outer, in_block] bytes; row o of the input goes to out + o * out_block + offset.
 */
typedef struct {
    int32_t outer;
    int32_t in_block;
    int32_t out_block;
    int32_t offset;
} nn_concat_part_params;

void nn_concat_part(const nn_concat_part_params *p, const void *in, void *out);

/*
 * int8 Concat input whose scale or zero point differs from the output's: as nn_concat_part
 * (sizes in elements), each value rescaled:
 *   out = clamp(nn_requantize(in + input_offset, multiplier, shift) + output_offset, -128, 127).
 */
typedef struct {
    nn_concat_part_params part;
    int32_t input_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t output_offset;
} nn_concat_part_s8_params;

void nn_concat_part_s8(const nn_concat_part_s8_params *p, const int8_t *in, int8_t *out);

/*
 * Pad (constant mode): out has shape out_shape, in has in_shape (both padded in front with 1s
 * to NN_MAX_DIMS); input element (i0..i5) lands at out (i0 + begin[0], ..., i5 + begin[5]);
 * every other element is `value` (elem_size bytes, little end first as in memory).
 */
typedef struct {
    int32_t elem_size;
    int32_t in_shape[NN_MAX_DIMS];
    int32_t out_shape[NN_MAX_DIMS];
    int32_t begin[NN_MAX_DIMS];
    uint8_t value[4];
} nn_pad_params;

void nn_pad(const nn_pad_params *p, const void *in, void *out);

#endif /* NN_SHAPE_H */
