/* Elementwise activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish) and
 * the int8 table lookup that runs every one of them. Included by nn.h. */
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stdint.h>

enum {
    NN_ACT_CLAMP = 0,      /* y = min(max(x, lo), hi)               (Relu: lo = 0, hi = +inf; Clip) */
    NN_ACT_LEAKY_RELU = 1, /* y = x >= 0 ? x : alpha * x */
    NN_ACT_SIGMOID = 2,    /* y = 1 / (1 + exp(-x)) */
    NN_ACT_TANH = 3,       /* y = tanh(x) */
    NN_ACT_HARD_SIGMOID = 4, /* y = min(max(alpha * x + beta, 0), 1) */
    NN_ACT_HARD_SWISH = 5  /* y = x * min(max(x / 6 + 1/2, 0), 1) */
};

/* out[i] = f(in[i]) for i in [0, size); in == out is allowed. lo/hi: NN_ACT_CLAMP bounds
 * (+-INFINITY for none); alpha/beta: LeakyRelu and HardSigmoid coefficients. */
typedef struct {
    int32_t size;
    int32_t kind; /* NN_ACT_* */
    float lo;
    float hi;
    float alpha;
    float beta;
} nn_activation_f32_params;

void nn_activation_f32(const nn_activation_f32_params *p, const float *in, float *out);

/* int8: out[i] = table[in[i] + 128] for i in [0, size); in == out is allowed. The compiler
 * fills the 256 entries from the op, the input and the output quantization. */
typedef struct {
    int32_t size;
} nn_lut_s8_params;

void nn_lut_s8(const nn_lut_s8_params *p, const int8_t *in, const int8_t *table, int8_t *out);

#endif /* NN_ACTIVATION_H */
