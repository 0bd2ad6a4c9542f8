/* Elementwise ops with NumPy broadcasting: Add, Sub, Mul, Div, Max, Min, Sum, Mean, PRelu. Included by nn.h. */
#ifndef NN_ELTWISE_H
#define NN_ELTWISE_H

#include <stdint.h>

/*
 * The broadcast view shared by the binary kernels (ONNX multidirectional broadcasting).
 * The output is dense, row-major, with shape `shape` (padded in front with 1s to
 * NN_MAX_DIMS; every entry >= 1) and `size` = the product of `shape` elements. Element
 * (i0..i5) reads a[sum_d i_d * a_strides[d]] and b[sum_d i_d * b_strides[d]]: strides in
 * elements, 0 on a dimension the input broadcasts (size 1 in the input, > 1 in the
 * output). `contiguous` = 1 when both inputs have exactly the output's shape (strides are
 * then the dense ones and the kernels run one flat loop), else 0.
 * `out` may equal `a` (or `b`) when that input has the output's shape (in-place); it must
 * not otherwise overlap an input.
 */
typedef struct {
    int32_t size;
    int32_t contiguous;
    int32_t shape[NN_MAX_DIMS];
    int32_t a_strides[NN_MAX_DIMS];
    int32_t b_strides[NN_MAX_DIMS];
} nn_broadcast;

/*
 * float32 Add, Sub, Mul, Div, one function each (a model links only the ones it uses):
 *   out[i] = min(max(a[.] OP b[.], act_min), act_max)
 * with OP = + (nn_add_f32), - (nn_sub_f32), * (nn_mul_f32), / (nn_div_f32); operand order
 * as in ONNX (a is input 0, b input 1). act_min <= act_max is the fused Relu/Clip
 * (-INFINITY / INFINITY for none). Division follows IEEE 754 (x / 0 gives +-inf or NaN).
 * The loops walk the output in rows of its last dimension, so broadcasting costs one
 * index step per row, not per element.
 */
typedef struct {
    nn_broadcast view;
    float act_min;
    float act_max;
} nn_binary_f32_params;

void nn_add_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);
void nn_sub_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);
void nn_mul_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);
void nn_div_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);

/*
 * int8 Add and Sub (TFLite's scheme, requant.h for the rounding): both inputs move to a
 * common scale with 2^left_shift headroom, are added, and rescale to the output:
 *   xa = nn_requantize((a + a_offset) << left_shift, a_multiplier, a_shift)
 *   xb = nn_requantize((b + b_offset) << left_shift, b_multiplier, b_shift) * b_sign
 *   out = clamp(nn_requantize(xa + xb, out_multiplier, out_shift) + out_offset, act_min, act_max)
 * offsets are minus the zero points; b_sign is 1 (Add) or -1 (Sub); left_shift is 20.
 */
typedef struct {
    nn_broadcast view;
    int32_t left_shift;
    int32_t a_offset;
    int32_t a_multiplier;
    int32_t a_shift;
    int32_t b_offset;
    int32_t b_multiplier;
    int32_t b_shift;
    int32_t b_sign;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_add_s8_params;

void nn_add_s8(const nn_add_s8_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/* int8 Mul: out = clamp(nn_requantize((a + a_offset) * (b + b_offset), out_multiplier, out_shift)
 *                      + out_offset, act_min, act_max). */
typedef struct {
    nn_broadcast view;
    int32_t a_offset;
    int32_t b_offset;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_mul_s8_params;

void nn_mul_s8(const nn_mul_s8_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/*
 * int16 Add and Sub (symmetric, zero point 0; TFLite's 16-bit scheme): both inputs move to a
 * common scale with 2^left_shift headroom (left_shift is 15: |x| * 2^15 <= 2^30), are added,
 * and rescale to the output:
 *   xa = nn_requantize(a << left_shift, a_multiplier, a_shift)
 *   xb = nn_requantize(b << left_shift, b_multiplier, b_shift) * b_sign
 *   out = clamp(nn_requantize(xa + xb, out_multiplier, out_shift), act_min, act_max)
 * a and b multipliers are at most 1/2, so |xa + xb| <= 2^30. b_sign is 1 (Add) or -1 (Sub).
 */
typedef struct {
    nn_broadcast view;
    int32_t left_shift;
    int32_t a_multiplier;
    int32_t a_shift;
    int32_t b_multiplier;
    int32_t b_shift;
    int32_t b_sign;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
} nn_add_s16_params;

void nn_add_s16(const nn_add_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out);

/* int16 Mul (zero points 0): the product in int32 (|a * b| <= 2^30), one requantization:
 *   out = clamp(nn_requantize(a * b, out_multiplier, out_shift), act_min, act_max). */
typedef struct {
    nn_broadcast view;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
} nn_mul_s16_params;

void nn_mul_s16(const nn_mul_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out);

/* int8 Div by an activation: the divisor's level picks a multiplier from two 256-entry tables,
 *   out = clamp(nn_requantize(a + a_offset, m0[b + 128], shift[b + 128]) + out_offset, act_min, act_max)
 * (m0 < 0 for a negative divisor; a zero divisor has the largest multiplier: it saturates). */
typedef struct {
    nn_broadcast view;
    int32_t a_offset;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_div_s8_params;

void nn_div_s8(const nn_div_s8_params *p, const int8_t *a, const int8_t *b, const int32_t *m0, const int32_t *shift,
               int8_t *out);

/*
 * float32 Max and Min of two inputs (the variadic ONNX Max/Min chain them: the first call
 * broadcasts inputs 0 and 1 to the output's shape, each later one takes the output and the
 * next input): out[i] = min(max(a[.] OP b[.], act_min), act_max) with OP the larger (Max) or
 * smaller (Min) operand; a NaN in either operand gives NaN (as NumPy's maximum/minimum).
 */
void nn_max_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);
void nn_min_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out);

/*
 * int8 Max and Min of two inputs: each input is rescaled to the output's scale, then compared
 * (rescaling is monotonic, so the larger rescaled value is the rescaled larger value):
 *   ra = nn_requantize(a + a_offset, a_multiplier, a_shift)
 *   rb = nn_requantize(b + b_offset, b_multiplier, b_shift)
 *   out = clamp(OP(ra, rb) + out_offset, act_min, act_max)
 * offsets are minus the zero points. An input already at the output's scale and zero point
 * (a_multiplier 2^30, a_shift 1, a_offset = -out_offset) passes unchanged, so chaining the
 * calls over N inputs gives the same bytes as one comparison of all N.
 */
typedef struct {
    nn_broadcast view;
    int32_t a_offset;
    int32_t a_multiplier;
    int32_t a_shift;
    int32_t b_offset;
    int32_t b_multiplier;
    int32_t b_shift;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_minmax_s8_params;

void nn_max_s8(const nn_minmax_s8_params *p, const int8_t *a, const int8_t *b, int8_t *out);
void nn_min_s8(const nn_minmax_s8_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/*
 * int8 Sum and Mean of three or more inputs (two inputs run nn_add_s8), Add's rule over N
 * terms with one rounding at the end. An int32 accumulator `acc` of the output's size
 * (caller-owned scratch) takes one term per input:
 *   term = nn_requantize((x + offset) << left_shift, multiplier, shift)
 *   acc[i] = term (first = 1) or acc[i] + term (first = 0)
 * x is read through view.a_strides (view.b_strides are the dense ones of acc); left_shift
 * leaves N terms of at most 2^(left_shift + 7) room in int32. Then nn_sum_out_s8:
 *   out[i] = clamp(nn_requantize(acc[i], out_multiplier, out_shift) + out_offset, act_min, act_max)
 * (Mean folds 1/N into out_multiplier.)
 */
typedef struct {
    nn_broadcast view;
    int32_t first;
    int32_t left_shift;
    int32_t offset;
    int32_t multiplier;
    int32_t shift;
} nn_sum_acc_s8_params;

void nn_sum_acc_s8(const nn_sum_acc_s8_params *p, const int8_t *x, int32_t *acc);

typedef struct {
    int32_t size;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_sum_out_s8_params;

void nn_sum_out_s8(const nn_sum_out_s8_params *p, const int32_t *acc, int8_t *out);

/*
 * int16 (zero points 0) Max and Min of two inputs, chained as the int8 ones:
 *   out = clamp(OP(nn_requantize(a, a_multiplier, a_shift), nn_requantize(b, b_multiplier, b_shift)),
 *               act_min, act_max)
 * (an input already at the output's scale has multiplier 2^30, shift 1: it passes unchanged).
 */
typedef struct {
    nn_broadcast view;
    int32_t a_multiplier;
    int32_t a_shift;
    int32_t b_multiplier;
    int32_t b_shift;
    int32_t act_min;
    int32_t act_max;
} nn_minmax_s16_params;

void nn_max_s16(const nn_minmax_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out);
void nn_min_s16(const nn_minmax_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out);

/*
 * int16 (zero points 0) Sum and Mean of three or more inputs: as nn_sum_acc_s8 and
 * nn_sum_out_s8 without offsets,
 *   term = nn_requantize(x << left_shift, multiplier, shift)   (multiplier <= 1/2)
 *   acc[i] = term (first = 1) or acc[i] + term (first = 0)
 *   out[i] = clamp(nn_requantize(acc[i], out_multiplier, out_shift), act_min, act_max)
 * left_shift <= 15 leaves N terms of at most 2^(left_shift + 14) room in int32.
 */
typedef struct {
    nn_broadcast view;
    int32_t first;
    int32_t left_shift;
    int32_t multiplier;
    int32_t shift;
} nn_sum_acc_s16_params;

void nn_sum_acc_s16(const nn_sum_acc_s16_params *p, const int16_t *x, int32_t *acc);

typedef struct {
    int32_t size;
    int32_t out_multiplier;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
} nn_sum_out_s16_params;

void nn_sum_out_s16(const nn_sum_out_s16_params *p, const int32_t *acc, int16_t *out);

/*
 * PRelu, float32: out[i] = x[i] > 0 ? x[i] : x[i] * slope[.], the constant slope read through
 * view.b_strides (ONNX's unidirectional broadcasting: x has the output's shape, a_strides are
 * its dense ones). `out` may equal `x`.
 */
typedef struct {
    nn_broadcast view;
} nn_prelu_f32_params;

void nn_prelu_f32(const nn_prelu_f32_params *p, const float *x, const float *slope, float *out);

/*
 * PRelu, int8: with d = x + in_offset (the input minus its zero point) and e the slope
 * element of this position (view.b_strides),
 *   y = d > 0 ? nn_requantize(d, pos_multiplier, pos_shift)
 *             : nn_requantize(d * slope[e], neg_multiplier[e], neg_shift[e])
 *   out = clamp(y + out_offset, act_min, act_max)
 * pos_multiplier is input scale / output scale; each slope element is symmetric int8 with a
 * scale of its own, and neg_multiplier[e] is input scale * slope scale[e] / output scale.
 * |d * slope[e]| <= 255 * 127. `out` may equal `x`.
 */
typedef struct {
    nn_broadcast view;
    int32_t in_offset;
    int32_t pos_multiplier;
    int32_t pos_shift;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} nn_prelu_s8_params;

void nn_prelu_s8(const nn_prelu_s8_params *p, const int8_t *x, const int8_t *slope, const int32_t *neg_multiplier,
                 const int32_t *neg_shift, int8_t *out);

/* PRelu, int16 (zero points 0): as nn_prelu_s8 with d = x (|d * slope[e]| <= 32768 * 127),
 *   out = clamp(y, act_min, act_max). `out` may equal `x`. */
typedef struct {
    nn_broadcast view;
    int32_t pos_multiplier;
    int32_t pos_shift;
    int32_t act_min;
    int32_t act_max;
} nn_prelu_s16_params;

void nn_prelu_s16(const nn_prelu_s16_params *p, const int16_t *x, const int8_t *slope, const int32_t *neg_multiplier,
                  const int32_t *neg_shift, int16_t *out);

/*
 * int32 Max and Min of two inputs (ONNX int64 and int32 tensors, token ids): out[i] = the
 * larger (nn_max_s32) or smaller (nn_min_s32) of a[.] and b[.], through the broadcast view;
 * chained over N inputs as the float kernels are. `out` may equal an input of its shape.
 */
typedef struct {
    nn_broadcast view;
} nn_binary_s32_params;

void nn_max_s32(const nn_binary_s32_params *p, const int32_t *a, const int32_t *b, int32_t *out);
void nn_min_s32(const nn_binary_s32_params *p, const int32_t *a, const int32_t *b, int32_t *out);

#endif /* NN_ELTWISE_H */
