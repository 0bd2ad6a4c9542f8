/* Fake quantization in float32: a QuantizeLinear -> DequantizeLinear pair of a QDQ model,
 * kept in a float build so the model computes what its Q/DQ pairs state. Included by nn.h. */
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

#endif /* NN_QUANTIZE_H */
