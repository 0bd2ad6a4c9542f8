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
 * elements). The compiler drops size-1 dimensions and merges input axes that stay
 * neighbours, so a permutation that keeps the last axis copies whole runs with memcpy
 * (strides[NN_MAX_DIMS - 1] == 1).
 *   size: number of elements (product of shape); nothing is done when it is 0.
 *   elem_size: bytes per element (1 and 4 have fast paths, any other works too).
 * `in` and `out` must not overlap.
 */
typedef struct {
    int32_t size;
    int32_t elem_size;
    int32_t shape[NN_MAX_DIMS];
    int32_t strides[NN_MAX_DIMS];
} nn_transpose_params;

void nn_transpose(const nn_transpose_params *p, const void *in, void *out);

/*
 * One input of a Concat (the compiler emits one call per input, constants as tables): the
 * output is viewed as [outer, out_block] bytes and the input as [outer, in_block] bytes;
 * input row o goes to out + o * out_block + offset.
 *   outer: product of the dimensions before the axis.
 *   in_block: bytes of one input row (its axis length * inner elements * element size).
 *   out_block: bytes of one output row; offset: bytes of the inputs before this one in a row.
 * `in` and `out` must not overlap.
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
 * (sizes in elements, which are bytes), each value rescaled:
 *   out = clamp(nn_requantize(in + input_offset, multiplier, shift) + output_offset, -128, 127).
 *   part: the geometry, as for nn_concat_part.
 *   input_offset: minus the input zero point, in [-127, 128].
 *   multiplier, shift: input_scale / output_scale as a Q31 multiplier and a power-of-two
 *     exponent in [-31, 30] (requant.h).
 *   output_offset: the output zero point, in [-128, 127].
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
 * to NN_MAX_DIMS); input element (i0..i5) lands at out (i0 + begin[0], ..., i5 + begin[5])
 * when that lies inside out; every other output element is `value`.
 *   elem_size: bytes per element, 1 to 4.
 *   begin: elements added before each dimension; negative crops that many from the input
 *     (an ONNX negative pad). The end pads follow from out_shape (negative: cropping).
 *   value: the pad element's bytes (elem_size of them, as in memory).
 * `in` and `out` must not overlap.
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
