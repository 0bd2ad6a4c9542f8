/* Resize and Upsample: nearest and (bi)linear, from source tables made at compile time. Included by nn.h. */
#ifndef NN_RESIZE_H
#define NN_RESIZE_H

#include <stdint.h>

/*
 * Nearest: in and out are dense with shapes in_shape and out_shape (4 dimensions, padded in
 * front with 1s), elements of elem_size bytes (float32 and int8 alike: a copy).
 * index holds out_shape[0] + out_shape[1] + out_shape[2] + out_shape[3] int32 entries: for
 * each axis d in turn, the source position (in [0, in_shape[d])) of every output position.
 *   out[i0, i1, i2, i3] = in[index0[i0], index1[i1], index2[i2], index3[i3]]
 * `in` and `out` must not overlap.
 */
typedef struct {
    int32_t elem_size;
    int32_t in_shape[4];
    int32_t out_shape[4];
} nn_resize_nearest_params;

void nn_resize_nearest(const nn_resize_nearest_params *p, const void *in, const int32_t *index, void *out);

/*
 * Bilinear on [planes, in_h, in_w] -> [planes, out_h, out_w] (a 1-D resize has in_h = out_h
 * = 1; an axis kept as it is has y0 = y1 = its position and weight 0).
 * index: y0[out_h], y1[out_h], x0[out_w], x1[out_w] (int32, the two source rows and columns
 * of every output row and column, within the input); weight: wy[out_h], wx[out_w], the
 * weight of the second source.
 * float: with a = in[y0][x0], b = in[y0][x1], c = in[y1][x0], d = in[y1][x1],
 *   top = a * (1 - wx) + b * wx, bottom = c * (1 - wx) + d * wx, out = top * (1 - wy) + bottom * wy
 * (weights in [0, 1], float32, in this order).
 * int8: weights are Q11 integers in [0, 2048] (1.0 = 2048), the values are q + 128, and
 *   acc = (top * (2048 - wy) + bottom * wy) with top = a * (2048 - wx) + b * wx (likewise bottom),
 *   out = ((acc + 2^21) >> 22) - 128
 * (acc <= 255 * 2^22: no overflow; one rounding, half up). The output keeps the input's scale
 * and zero point. `in` and `out` must not overlap.
 */
typedef struct {
    int32_t planes;
    int32_t in_h;
    int32_t in_w;
    int32_t out_h;
    int32_t out_w;
} nn_resize_linear_params;

void nn_resize_linear_f32(const nn_resize_linear_params *p, const float *in, const int32_t *index, const float *weight,
                          float *out);
void nn_resize_linear_s8(const nn_resize_linear_params *p, const int8_t *in, const int32_t *index,
                         const int32_t *weight, int8_t *out);

/* int16: as int8 with the values q + 32768 and Q14 weights in [0, 16384] (top and bottom below
 * 2^30, acc in int64 below 2^44), out = ((acc + 2^27) >> 28) - 32768. */
void nn_resize_linear_s16(const nn_resize_linear_params *p, const int16_t *in, const int32_t *index,
                          const int32_t *weight, int16_t *out);

#endif /* NN_RESIZE_H */
