/* Softmax along one axis. Included by nn.h. */
#ifndef NN_SOFTMAX_H
#define NN_SOFTMAX_H

#include <stdint.h>

/*
 * The input is viewed as [outer, axis_size, inner] (dense, row-major; all three >= 0, the
 * product is the element count); for each (o, i) the axis_size values at
 * in[o * axis_size * inner + k * inner + i], k in [0, axis_size), are normalized:
 * out = exp(x - max) / sum over k of exp(x - max) (float: expf, so no overflow).
 * Opset >= 13 normalizes along one axis: outer = prod(shape[:axis]), axis_size =
 * shape[axis], inner = prod(shape[axis+1:]). Before opset 13 ONNX flattens at `axis`:
 * inner = 1 and axis_size = prod(shape[axis:]).
 * Both kernels work in place (in == out); other overlap is not allowed.
 */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
} nn_softmax_params;

void nn_softmax_f32(const nn_softmax_params *p, const float *in, float *out);

/*
 * int8: output scale 1/256, zero point -128. e = exp_table[max - x] holds
 * round(exp(-input_scale * d) * 2^K) for d in [0, 255] (K chosen by the compiler so that
 * the sum over the axis stays below 2^29); out = min(127, (256 * e + sum / 2) / sum - 128).
 */
void nn_softmax_s8(const nn_softmax_params *p, const int8_t *in, const int32_t *exp_table, int8_t *out);

#endif /* NN_SOFTMAX_H */
