/* Elementwise activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish) and
 * the int8 table lookup that runs every one of them. Included by nn.h. */
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stdint.h>

/*
 * float32: one function per activation, so a model links only what it uses (a Relu-only
 * model needs no expf/tanhf). Each computes out[i] = f(in[i]) for i in [0, size) over a
 * dense buffer of `size` >= 0 elements; in == out is allowed (in place), other overlap is not.
 */

/* Relu and Clip: y = min(max(x, lo), hi). Relu is lo = 0, hi = INFINITY; Clip without a
 * bound uses -INFINITY / INFINITY. lo > hi gives hi everywhere (as ONNX Clip). */
typedef struct {
    int32_t size;
    float lo;
    float hi;
} nn_clamp_f32_params;

void nn_clamp_f32(const nn_clamp_f32_params *p, const float *in, float *out);

/* LeakyRelu: y = x >= 0 ? x : alpha * x (ONNX default alpha 0.01). */
typedef struct {
    int32_t size;
    float alpha;
} nn_leaky_relu_f32_params;

void nn_leaky_relu_f32(const nn_leaky_relu_f32_params *p, const float *in, float *out);

/* HardSigmoid: y = min(max(alpha * x + beta, 0), 1) (ONNX defaults alpha 0.2, beta 0.5). */
typedef struct {
    int32_t size;
    float alpha;
    float beta;
} nn_hard_sigmoid_f32_params;

void nn_hard_sigmoid_f32(const nn_hard_sigmoid_f32_params *p, const float *in, float *out);

/* The functions without coefficients: only the element count. */
typedef struct {
    int32_t size;
} nn_unary_f32_params;

/* Sigmoid: y = 1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) for x < 0, so expf
 * never overflows: saturates to exactly 0 or 1 for large |x|. */
void nn_sigmoid_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* Tanh: y = tanhf(x). */
void nn_tanh_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* HardSwish: y = x * min(max(x / 6 + 1/2, 0), 1). */
void nn_hard_swish_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* int8: out[i] = table[in[i] + 128] for i in [0, size); in == out is allowed. The compiler
 * fills the 256 entries from the op, the input and the output quantization. */
typedef struct {
    int32_t size;
} nn_lut_s8_params;

void nn_lut_s8(const nn_lut_s8_params *p, const int8_t *in, const int8_t *table, int8_t *out);

#endif /* NN_ACTIVATION_H */
