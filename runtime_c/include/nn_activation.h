/* Elementwise activations and unary functions (Relu, LeakyRelu, Clip, Sigmoid, Tanh,
 * HardSigmoid, HardSwish, Elu, Selu, Exp, Log, Sqrt, Reciprocal, Abs, Neg, Erf, Softplus, Gelu,
 * Mish) and the int8 table lookup that runs every one of them. Included by nn.h. */
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

/* Elu: y = x >= 0 ? x : alpha * (expf(x) - 1) (ONNX default alpha 1). */
typedef struct {
    int32_t size;
    float alpha;
} nn_elu_f32_params;

void nn_elu_f32(const nn_elu_f32_params *p, const float *in, float *out);

/* Selu: y = x > 0 ? gamma * x : gamma * (alpha * expf(x) - alpha) (ONNX defaults
 * alpha 1.67326..., gamma 1.05070...). */
typedef struct {
    int32_t size;
    float alpha;
    float gamma;
} nn_selu_f32_params;

void nn_selu_f32(const nn_selu_f32_params *p, const float *in, float *out);

/* The functions of math.h and arithmetic, as ONNX and IEEE 754 define them outside their
 * domain: Exp y = expf(x) (Inf on overflow); Log y = logf(x) (-Inf at 0, NaN below);
 * Sqrt y = sqrtf(x) (NaN below 0); Reciprocal y = 1 / x (Inf at +-0); Abs y = fabsf(x);
 * Neg y = -x; Erf y = erff(x). */
void nn_exp_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_log_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_sqrt_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_reciprocal_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_abs_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_neg_f32(const nn_unary_f32_params *p, const float *in, float *out);
void nn_erf_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* Softplus: y = log(1 + exp(x)), computed as e = log1pf(expf(-|x|)), y = x > 0 ? x + e : e,
 * so expf never overflows. */
void nn_softplus_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* Mish: y = x * tanhf(softplus(x)), softplus as nn_softplus_f32 computes it. */
void nn_mish_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* Gelu (approximate "none"): y = 0.5 * x * (1 + erff(x / sqrt(2))), x / sqrt(2) as
 * x * 0.70710678f. */
void nn_gelu_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* Gelu (approximate "tanh"): y = 0.5 * x * (1 + tanhf(sqrt(2 / pi) * (x + 0.044715 * x^3))),
 * sqrt(2 / pi) as 0.79788456f and x^3 as x * x * x. */
void nn_gelu_tanh_f32(const nn_unary_f32_params *p, const float *in, float *out);

/* int8: out[i] = table[in[i] + 128] for i in [0, size); in == out is allowed. The compiler
 * fills the 256 entries from the op, the input and the output quantization. */
typedef struct {
    int32_t size;
} nn_lut_s8_params;

void nn_lut_s8(const nn_lut_s8_params *p, const int8_t *in, const int8_t *table, int8_t *out);

/*
 * int16 (symmetric, zero point 0) unary function through a 513-entry table with linear
 * interpolation: with u = in[i] + 32768 in [0, 65535], k = u >> 7 and f = u & 127,
 *   out[i] = clamp(table[k] + (((table[k + 1] - table[k]) * f + 64) >> 7), -32768, 32767)
 * (arithmetic shift: floor). table[k] is the function's output level near the input level
 * 128 k - 32768 (k in [0, 512]), in [-2^22, 2^22]: entries beyond the int16 range keep the
 * chords next to them straight, the clamp saturates. in == out is allowed.
 */
typedef struct {
    int32_t size;
} nn_lut_s16_params;

void nn_lut_s16(const nn_lut_s16_params *p, const int16_t *in, const int32_t *table, int16_t *out);

/*
 * int16 (symmetric, zero point 0) Relu, Clip and LeakyRelu: a rescale with one multiplier for
 * x >= 0 and one for x < 0, then the clamp:
 *   y = x >= 0 ? nn_requantize(x, pos_multiplier, pos_shift) : nn_requantize(x, neg_multiplier, neg_shift)
 *   out[i] = clamp(y, act_min, act_max)
 * pos is input scale / output scale; neg is alpha times it for LeakyRelu (m0 < 0 for a negative
 * alpha, as requant.h allows: |m0| < 2^31), the same as pos for Relu and Clip, whose bounds are
 * act_min and act_max. in == out is allowed.
 */
typedef struct {
    int32_t size;
    int32_t pos_multiplier;
    int32_t pos_shift;
    int32_t neg_multiplier;
    int32_t neg_shift;
    int32_t act_min;
    int32_t act_max;
} nn_leaky_relu_s16_params;

void nn_leaky_relu_s16(const nn_leaky_relu_s16_params *p, const int16_t *in, int16_t *out);

/*
 * Pow with a constant exponent: y = powf(x, exponent) (mode 0), or the exact special cases
 * x * x (mode 1, exponent 2), sqrtf(x) (mode 2, exponent 0.5), x (mode 3, exponent 1),
 * 1 / x (mode 4, exponent -1), x * x * x (mode 5, exponent 3).
 */
typedef struct {
    int32_t size;
    int32_t mode;
    float exponent;
} nn_pow_f32_params;

void nn_pow_f32(const nn_pow_f32_params *p, const float *in, float *out);

#endif /* NN_ACTIVATION_H */
