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

/*
 * int16 (input symmetric, zero point 0): output scale 1/32768, zero point 0. For d = max - x
 * in [0, 65535], e(d) = exp_table[d >> 7] + (((exp_table[(d >> 7) + 1] - exp_table[d >> 7])
 * * (d & 127) + 64) >> 7) (floor shift) interpolates exp(-input_scale * d) * 2^15 between the
 * 513 entries (each in [0, 2^15]); sum is the sum of e over the axis (axis_size <= 32768, so
 * it stays below 2^30) and out = min(32767, (32768 * e + sum / 2) / sum).
 */
void nn_softmax_s16(const nn_softmax_params *p, const int16_t *in, const int32_t *exp_table, int16_t *out);

/*
 * LogSoftmax on the same [outer, axis_size, inner] view (and the same opset rules):
 * out = x - max - log(sum over k of exp(x - max)) (float: expf and logf). Works in place.
 */
void nn_logsoftmax_f32(const nn_softmax_params *p, const float *in, float *out);

/*
 * log2(x) for 1 <= x < 2^31 in Q16, truncated: the integer part is the top bit's position p; the 16 fractional bits come from squaring the
 * mantissa m = x / 2^p in [1, 2) (Q30, products floored): each square that reaches 2 is one bit
 * (and is halved). codegen/fixedpoint.py log2_q16 is its twin.
 */
static inline int32_t nn_log2_q16(int32_t x)
{
    int32_t p = 0, i, result;
    int64_t m;
    while (p < 30 && (x >> (p + 1)) != 0) {
        ++p;
    }
    result = p << 16;
    m = (int64_t)x << (30 - p);
    for (i = 15; i >= 0; --i) {
        m = (m * m) >> 30;
        if (m >= ((int64_t)1 << 31)) {
            m >>= 1;
            result |= (int32_t)1 << i;
        }
    }
    return result;
}

/*
 * int8 LogSoftmax: output scale 1/16, zero point 127 (as TFLite: [-15.9, 0] in 255 steps).
 * For each group, with d = max - x in [0, 255]:
 *   sum = sum over k of exp_table[d_k], exp_table[d] = round(exp(-input_scale d) 2^exp_bits)
 *     (the compiler keeps sum < 2^29);
 *   l = ((nn_log2_q16(sum) - exp_bits 2^16) * 726817 + 2^15) >> 16: ln(sum / 2^exp_bits) in
 *     output steps, Q16 (726817 = round(16 ln 2 2^16));
 *   out = max(-128, 127 - ((diff_table[d] + l + 2^15) >> 16)), diff_table[d] =
 *     min(round(16 input_scale d 2^16), 2^24): the difference in output steps, Q16.
 */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t exp_bits;
} nn_logsoftmax_s8_params;

void nn_logsoftmax_s8(const nn_logsoftmax_s8_params *p, const int8_t *in, const int32_t *exp_table,
                      const int32_t *diff_table, int8_t *out);

/*
 * int16 LogSoftmax (input symmetric, zero point 0): output scale 1/2048, zero point 0 ([-16, 0]).
 * With d = max - x in [0, 65535], e(d) and sum as in nn_softmax_s16 (about 2^15 at d = 0; the
 * compiler keeps axis_size <= 32768), in output steps, Q16, int64:
 *   lse = ((nn_log2_q16(sum) - 15 2^16) * ln2_steps + 2^15) >> 16     ln(sum / 2^15), with
 *         ln2_steps = round(2048 ln 2 2^16)
 *   out = max(-32768, -((d * input_steps + lse + 2^15) >> 16)),        input_steps =
 *         round(2048 input_scale 2^16) (the compiler keeps it below 2^31)
 */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t input_steps;
    int32_t ln2_steps;
} nn_logsoftmax_s16_params;

void nn_logsoftmax_s16(const nn_logsoftmax_s16_params *p, const int16_t *in, const int32_t *exp_table, int16_t *out);

#endif /* NN_SOFTMAX_H */
