/*
 * Fixed-point requantization: the one definition of the integer rescaling that every int8
 * kernel uses. codegen/fixedpoint.py is its NumPy twin; tests/test_fixedpoint.py holds the
 * two equal on millions of random values and on the edges.
 *
 * A real multiplier M > 0 is stored as a Q31 mantissa and a power of two:
 *     M ~= m0 * 2^(shift - 31),   m0 in [2^30, 2^31 - 1] (or 0 for M == 0),   shift in [-31, 30].
 * nn_requantize(acc, m0, shift) computes round(acc * M) in three steps, as gemmlowp and
 * TFLite's reference kernels do:
 *   1. x = acc * 2^max(shift, 0), saturated to int32 (the saturation makes the rare overflow
 *      defined instead of undefined behaviour);
 *   2. y = round(x * m0 / 2^31), ties toward +infinity (gemmlowp's doubling high multiply),
 *      saturating the single overflow case INT32_MIN * INT32_MIN (nn_sat_doubling_high_mul);
 *   3. y / 2^max(-shift, 0), rounding half away from zero (nn_rounding_divide_by_pot).
 * Right shifts of negative values are arithmetic on every supported compiler (gcc, clang,
 * arm-none-eabi-gcc document it); nothing else here is implementation-defined.
 */
#ifndef REQUANT_H
#define REQUANT_H

#include <stdint.h>

/* round(a * b / 2^31) as gemmlowp's SaturatingRoundingDoublingHighMul computes it: its
 * sign-dependent nudge followed by a division truncating toward zero equals adding 2^30 and
 * shifting right arithmetically (floor), i.e. ties round toward +infinity. The one overflow,
 * INT32_MIN * INT32_MIN, saturates. (codegen/fixedpoint.py keeps gemmlowp's own formulation;
 * tests/test_fixedpoint.py holds the two equal.) */
static inline int32_t nn_sat_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* round(x / 2^exponent), half away from zero; exponent in [0, 31]. */
static inline int32_t nn_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)x >> 31);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* round(acc * m0 * 2^(shift - 31)); m0 in [0, 2^31 - 1], shift in [-31, 30]. m0 is never
 * INT32_MIN, so the doubling high multiply cannot overflow and needs no saturation test. */
static inline int32_t nn_requantize(int32_t acc, int32_t m0, int32_t shift)
{
    int32_t x = acc;
    if (shift > 0) { /* acc * 2^shift, saturated */
        const int32_t limit = INT32_MAX >> shift;
        x = acc > limit ? INT32_MAX : acc < -limit - 1 ? INT32_MIN : acc * ((int32_t)1 << shift);
        return (int32_t)(((int64_t)x * m0 + ((int64_t)1 << 30)) >> 31);
    }
    return nn_rounding_divide_by_pot((int32_t)(((int64_t)x * m0 + ((int64_t)1 << 30)) >> 31), -shift);
}

/* Saturate to [lo, hi] (an int8 output range narrowed by a fused activation). */
static inline int32_t nn_clamp_s32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* clamp(y + offset, lo, hi) for an int8 output (offset, lo, hi in [-128, 127]) computed as
 * clamp(y, lo - offset, hi - offset) + offset: the same value, but y + offset itself would
 * overflow int32 when y is within 128 of a limit (a saturated requantization with m0 close to
 * 2^31), which is undefined behaviour. */
static inline int8_t nn_offset_clamp_s8(int32_t y, int32_t offset, int32_t lo, int32_t hi)
{
    return (int8_t)(nn_clamp_s32(y, lo - offset, hi - offset) + offset);
}

/* An int8 output: requantize, add the output zero point, clamp to [lo, hi]. */
static inline int8_t nn_output_s8(int32_t acc, int32_t m0, int32_t shift, int32_t offset, int32_t lo, int32_t hi)
{
    return nn_offset_clamp_s8(nn_requantize(acc, m0, shift), offset, lo, hi);
}

/* An int16 output (zero point 0, TFLite's 16x8 scheme): requantize, clamp to [lo, hi], both
 * in [-32768, 32767]. */
static inline int16_t nn_output_s16(int32_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi)
{
    return (int16_t)nn_clamp_s32(nn_requantize(acc, m0, shift), lo, hi);
}

/* round(acc * m0 * 2^(shift - 31)) for an int64 accumulator (int16 activations, where an int32
 * one could overflow). The Q31 mantissa is rounded to 16 bits, m = (m0 + 2^15) >> 16 <= 2^15,
 * and acc is saturated to (-2^47, 2^47) so that acc * m fits int64; M ~= m * 2^(shift - 15):
 * the product is shifted right by r = 15 - shift, rounding ties toward +infinity, or, for
 * r <= 0, saturated to int32 and multiplied by 2^-r. The result saturates to int32.
 * codegen/fixedpoint.py requantize64 is its twin. */
static inline int32_t nn_requantize64(int64_t acc, int32_t m0, int32_t shift)
{
    const int64_t limit = ((int64_t)1 << 47) - 1;
    const int64_t m = ((int64_t)m0 + ((int64_t)1 << 15)) >> 16;
    const int32_t r = 15 - shift;
    int64_t p;
    acc = acc > limit ? limit : acc < -limit ? -limit : acc;
    p = acc * m;
    if (r > 0) {
        p = (p + ((int64_t)1 << (r - 1))) >> r;
    } else {
        p = p > INT32_MAX ? INT32_MAX : p < INT32_MIN ? INT32_MIN : p;
        p = p * ((int64_t)1 << -r);
    }
    return (int32_t)(p > INT32_MAX ? INT32_MAX : p < INT32_MIN ? INT32_MIN : p);
}

/* An int16 output of an int64 accumulator: nn_requantize64, clamp to [lo, hi]. */
static inline int16_t nn_output64_s16(int64_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi)
{
    return (int16_t)nn_clamp_s32(nn_requantize64(acc, m0, shift), lo, hi);
}

#endif /* REQUANT_H */
