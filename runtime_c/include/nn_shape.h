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
 * int16 Concat input (symmetric, zero point 0) whose scale differs from the output's: as
 * nn_concat_part with sizes in elements, each value rescaled:
 *   out = clamp(nn_requantize(in, multiplier, shift), -32768, 32767).
 *   multiplier, shift: input_scale / output_scale (requant.h).
 */
typedef struct {
    nn_concat_part_params part;
    int32_t multiplier;
    int32_t shift;
} nn_concat_part_s16_params;

void nn_concat_part_s16(const nn_concat_part_s16_params *p, const int16_t *in, int16_t *out);

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

/*
 * A strided view copied out dense: Slice, Split, Expand, Tile, DepthToSpace and SpaceToDepth
 * are each one such view of their input. out has shape `shape` (padded in front with 1s to
 * NN_VIEW_DIMS) and out element (i0..i11) = in[offset + sum_d i_d * strides[d]], in elements.
 * A stride may be negative (a Slice with a negative step) or 0 (a broadcast or repeated
 * axis); every element the view names lies inside `in`. The compiler drops size-1
 * dimensions and merges dimensions that stay neighbours, so a contiguous run is one memcpy.
 * NN_VIEW_DIMS is twice NN_MAX_DIMS: a Tile is the view (repeat, dim) per input dimension.
 *   size: number of elements (product of shape); nothing is done when it is 0.
 *   elem_size: bytes per element (1 and 4 have fast paths, any other works too).
 *   offset: the element of `in` that out[0] copies, >= 0.
 * `in` and `out` must not overlap.
 */
#define NN_VIEW_DIMS (2 * NN_MAX_DIMS)

typedef struct {
    int32_t size;
    int32_t elem_size;
    int32_t offset;
    int32_t shape[NN_VIEW_DIMS];
    int32_t strides[NN_VIEW_DIMS];
} nn_strided_copy_params;

void nn_strided_copy(const nn_strided_copy_params *p, const void *in, void *out);

/*
 * Gather along one axis: data viewed as [outer, rows, row_bytes] bytes, indices as `count`
 * int32 values, out as [outer, count, row_bytes]; out row (o, j) = data row (o, indices[j]).
 * An index in [-rows, -1] counts from the end (ONNX). An index outside [-rows, rows) is
 * clamped to the nearest row: below -rows reads row 0, at or above rows reads row rows - 1;
 * so the kernel never reads outside `data` whatever the indices hold (run-time token ids).
 *   outer: product of the data dimensions before the axis, >= 1.
 *   rows: the axis length, >= 1.
 *   row_bytes: product of the dimensions after the axis times the element size.
 *   count: number of indices (product of the indices' shape).
 * `data` and `out` must not overlap; `indices` may be a constant table or a run-time tensor.
 */
typedef struct {
    int32_t outer;
    int32_t rows;
    int32_t row_bytes;
    int32_t count;
} nn_gather_params;

void nn_gather(const nn_gather_params *p, const void *data, const int32_t *indices, void *out);

#endif /* NN_SHAPE_H */
