/* Fake quantization in float32: a QuantizeLinear -> DequantizeLinear pair of a QDQ model,
 * kept in a float build so the model computes what its Q/DQ pairs state; requantization
 * between int8 and int16 activations. Included by nn.h. */
#ifndef NN_QUANTIZE_H
#define NN_QUANTIZE_H

#include <stdint.h>

/*
 * The tensor is seen as [outer, channels, inner] around the quantization axis (per tensor:
 * outer = channels = 1, inner = size); channel c has scale[c] (> 0, finite) and
 * zero_point[c] (an integer value in [qmin, qmax], stored as float). Each element:
 *
 *     v = rintf(x / scale[c]) + zero_point[c]     (round half to even: the default rounding mode)
 *     v = min(max(v, qmin), qmax)                  (the integer type's range, e.g. 0 and 255 for uint8)
 *     y = (v - zero_point[c]) * scale[c]
 *
 * all in float32, each operation one IEEE rounding, so the result equals ONNX's
 * QuantizeLinear followed by DequantizeLinear. +-Inf saturate; NaN stays NaN.
 * outer, channels, inner >= 0. in == out is allowed (in place), other overlap is not.
 */
typedef struct {
    int32_t outer;
    int32_t channels;
    int32_t inner;
    float qmin;
    float qmax;
} nn_fake_quantize_f32_params;

void nn_fake_quantize_f32(const nn_fake_quantize_f32_params *p, const float *in, const float *scale,
                          const float *zero_point, float *out);

/*
 * Requantization between activation precisions (int8 <-> int16), where layers of different
 * precisions meet: for each of the `size` elements,
 *     out = clamp(nn_requantize(in + input_offset, multiplier, shift) + output_offset)
 * to the output type's range (requant.h). input_offset = -input zero point, output_offset =
 * the output zero point (0 for int16: symmetric); multiplier in [0, 2^31 - 1], shift in
 * [-31, 30] encode s_in / s_out. `in` and `out` must not overlap.
 */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
} nn_requantize_params;

void nn_requantize_s8_s16(const nn_requantize_params *p, const int8_t *in, int16_t *out);
void nn_requantize_s16_s8(const nn_requantize_params *p, const int16_t *in, int8_t *out);

#endif /* NN_QUANTIZE_H */
