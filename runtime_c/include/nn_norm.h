/* LayerNormalization and InstanceNormalization, and the fixed-point inverse square root
 * that their int8 kernels (and the int8 L2 norms) use. Included by nn.h. */
#ifndef NN_NORM_H
#define NN_NORM_H

#include <stdint.h>

/*
 * 1 / sqrt(t) for an integer t >= 1 (t < 2^62), in fixed point: returns y in [2^29, 2^30]
 * and sets *exponent to e so that 1 / sqrt(t) ~= y * 2^-e (relative error below 2^-27;
 * codegen/fixedpoint.py inverse_sqrt is the NumPy twin, equal on every t).
 *   1. Normalise: t = u * 4^j with u in [2^28, 2^30) (right shifts by 2 truncate; left
 *      shifts are exact); u / 2^30 is in [1/4, 1), whose inverse square root is in (1, 2].
 *   2. Seed (Q29): the chord of 1/sqrt through (1/4, 2) and (1, 1): y0 = 7/3 - 4/3 u.
 *   3. Four Newton steps y <- y (3 - u y^2) / 2, each product truncated (floor): the chord
 *      lies above the convex curve by at most 18%, which four quadratic steps bring below the
 *      truncation error.
 *   Then 1 / sqrt(t) = (y / 2^29) * 2^-(15 + j) = y * 2^-(44 + j).
 */
static inline int32_t nn_inv_sqrt(int64_t t, int32_t *exponent)
{
    int64_t u = t, y;
    int32_t j = 0, k;
    while (u >= ((int64_t)1 << 30)) {
        u >>= 2;
        ++j;
    }
    while (u < ((int64_t)1 << 28)) {
        u <<= 2;
        --j;
    }
    y = (int64_t)1252698795 - ((u * (int64_t)715827883) >> 30); /* round(7/3 2^29), round(4/3 2^29) */
    for (k = 0; k < 4; ++k) {
        const int64_t y2 = (y * y) >> 29;
        const int64_t uy2 = (u * y2) >> 30;
        y = (y * (((int64_t)3 << 29) - uy2)) >> 30;
    }
    *exponent = 44 + j;
    return (int32_t)y;
}

/*
 * Normalisation of `rows` groups of `size` consecutive elements each (mean 0, variance 1),
 * then a per-element scale and shift:
 *   y[r][k] = (x[r][k] - mean_r) / sqrt(var_r + epsilon) * gamma[i] + beta[i]
 * LayerNormalization over the axes from `axis` on: rows = prod(shape[:axis]), size =
 * prod(shape[axis:]), i = k (per_row 0; gamma and beta hold `size` values).
 * InstanceNormalization of [N, C, D1...]: rows = N * C, size = prod(D), i = r % channels
 * (per_row 1; gamma and beta hold `channels` values).
 * Both kernels read a group before writing it: in == out is allowed, other overlap is not.
 */
typedef struct {
    int32_t rows;
    int32_t size;      /* >= 1 */
    int32_t channels;  /* >= 1; used when per_row */
    int32_t per_row;
    float epsilon;
} nn_norm_params;

/* float: mean and variance summed in element order, 1 / sqrtf(var + epsilon); beta may be NULL. */
void nn_norm_f32(const nn_norm_params *p, const float *in, const float *gamma, const float *beta, float *out);

/*
 * int8 (the input's zero point cancels in x - mean, so the raw int8 values are used):
 *   s1 = sum x, s2 = sum x^2 (int32: the compiler keeps size <= 65536),
 *   d[k] = size * x[k] - s1 (= size * (x - mean), exact),
 *   t = size * s2 - s1^2 + epsilon (int64; = size^2 (var + eps) / input_scale^2, epsilon >= 1
 *     is that constant term rounded, so t >= 1),
 *   (y, e) = nn_inv_sqrt(t): z[k] = d[k] / sqrt(t) * 2^z_bits
 *     = (d[k] * y + 2^(e - z_bits - 1)) >> (e - z_bits)   (normalised value in Q z_bits),
 *   acc = z[k] * gamma[i] + beta[i]   (gamma int8 at scale s_g, beta int32 at s_g / 2^z_bits),
 *   out = nn_output_s8(acc, multiplier, shift, output_offset, -128, 127) with the multiplier
 *     s_g / (2^z_bits * output_scale).
 * The compiler chooses z_bits so that |acc| < 2^31 (|z| <= sqrt(size)).
 */
typedef struct {
    int32_t rows;
    int32_t size;
    int32_t channels;
    int32_t per_row;
    int64_t epsilon;
    int32_t z_bits;     /* in [0, 24] */
    int32_t multiplier; /* Q31 */
    int32_t shift;      /* in [-31, 30] */
    int32_t output_offset;
} nn_norm_s8_params;

void nn_norm_s8(const nn_norm_s8_params *p, const int8_t *in, const int8_t *gamma, const int32_t *beta, int8_t *out);

/*
 * int16 (zero points 0; size <= 32768): as nn_norm_s8 with s2 in int64, z[k] in int64, gamma
 * int16 (symmetric, per tensor, at scale s_g), and
 *   out = nn_output64_s16(z[k] * gamma[i] + beta[i], multiplier, shift, -32768, 32767)
 * (|z * gamma| <= sqrt(size) 2^(z_bits + 15) < 2^47; beta int32 at s_g / 2^z_bits, the
 * compiler lowers z_bits until it fits).
 */
typedef struct {
    int32_t rows;
    int32_t size;
    int32_t channels;
    int32_t per_row;
    int64_t epsilon;
    int32_t z_bits;     /* in [0, 24] */
    int32_t multiplier; /* Q31 */
    int32_t shift;      /* in [-31, 30] */
} nn_norm_s16_params;

void nn_norm_s16(const nn_norm_s16_params *p, const int16_t *in, const int16_t *gamma, const int32_t *beta,
                 int16_t *out);

/*
 * LpNormalization: x / ||x||_p along one axis, the input viewed as [outer, size, inner] (dense;
 * the group of (o, i) is in[o * size * inner + k * inner + i], k in [0, size)); p is 1 or 2.
 * Both kernels work in place (in == out); other overlap is not allowed.
 */
typedef struct {
    int32_t outer;
    int32_t size;
    int32_t inner;
    int32_t p;
    int32_t input_offset; /* int8: minus the input zero point */
    float epsilon;        /* float: the norm's lower bound (torch's F.normalize), >= 0 */
} nn_lpnorm_params;

/* float: x / max(sqrtf(sum x^2), epsilon) or x / max(sum |x|, epsilon); a group of zeros gives
 * zeros (as onnxruntime and the ONNX backend cases). */
void nn_lpnorm_f32(const nn_lpnorm_params *p, const float *in, float *out);

/*
 * int8, output scale 1/128 and zero point 0 (values in [-1, 1], as TFLite's L2 normalisation),
 * with v = x + input_offset:
 *   p = 2: s = sum v^2, (y, e) = nn_inv_sqrt(s), out = (v * y + 2^(e - 8)) >> (e - 7);
 *   p = 1: s = sum |v|, (y, e) = nn_inv_sqrt(s), r = (y * y) >> 30 (1 / s = r * 2^-(2e - 30)),
 *          out = (v * r + 2^(2e - 38)) >> (2e - 37);
 *   clamped to [-128, 127]; a group with s = 0 gives 0. The compiler keeps s < 2^31.
 */
void nn_lpnorm_s8(const nn_lpnorm_params *p, const int8_t *in, int8_t *out);

/*
 * int16 (input zero point 0), output scale 1/32768 and zero point 0, with v = x and s summed in
 * int64 (the compiler keeps size <= 65535, so s < 2^46):
 *   p = 2: s = sum v^2, (y, e) = nn_inv_sqrt(s), out = (v * y + 2^(e - 16)) >> (e - 15);
 *   p = 1: s = sum |v|, (y, e) = nn_inv_sqrt(s), r = (y * y) >> 30,
 *          out = (v * r + 2^(2e - 46)) >> (2e - 45);
 *   clamped to [-32768, 32767]; a group with s = 0 gives 0.
 */
void nn_lpnorm_s16(const nn_lpnorm_params *p, const int16_t *in, int16_t *out);

#endif /* NN_NORM_H */
