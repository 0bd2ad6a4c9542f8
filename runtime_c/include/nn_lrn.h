/* LRN: local response normalization across channels. Included by nn.h.
 *
 * Both kernels take x as [batches, channels, inner] (inner: the product of the dimensions
 * after the channels) and write y of the same shape; out must not overlap in. Each element's
 * window is the channels [c - before, c + after] that exist: before = floor((size - 1) / 2),
 * after = ceil((size - 1) / 2) for ONNX's `size`. */
#ifndef NN_LRN_H
#define NN_LRN_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t channels;
    int32_t inner;
    int32_t before;
    int32_t after;
    float bias;
    float scale; /* alpha / size */
    float beta;
} nn_lrn_f32_params;

/* y = x / powf(bias + scale * sum of x_i * x_i over the window (in window order), beta). */
void nn_lrn_f32(const nn_lrn_f32_params *p, const float *in, float *out);

typedef struct {
    int32_t batches;
    int32_t channels;
    int32_t inner;
    int32_t before;
    int32_t after;
    int32_t in_offset;    /* -(input zero point), in [-127, 128] */
    int32_t out_offset;   /* output zero point, in [-128, 127] */
    int32_t segment_bits; /* log2 of the segments per octave, in [0, 30] */
} nn_lrn_s8_params;

/* int8: S = sum of (x_i + in_offset)^2 over the window (int32: the caller keeps the window
 * times 255^2 below 2^31). S's octave e = floor(log2 S) (0 for S = 0) selects the row
 * table[e * (2^segment_bits + 1) ...] of 2^segment_bits + 1 Q31 mantissas, the multiplier at
 * S = 2^e * (1 + k / 2^segment_bits), all of shift shifts[e]; the multiplier at S is the
 * linear interpolation between the two entries around S, floored; then
 * y = nn_output_s8(x + in_offset, multiplier, shifts[e], out_offset, -128, 127).
 * codegen/ops/lrn.py builds the table and holds the NumPy twin. */
void nn_lrn_s8(const nn_lrn_s8_params *p, const int8_t *in, const int32_t *table, const int32_t *shifts,
               int8_t *out);

#endif /* NN_LRN_H */
