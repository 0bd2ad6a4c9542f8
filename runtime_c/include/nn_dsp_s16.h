/*
 * Dual 16-bit multiply-accumulates of int16 activations by int8 weights, for the DSP kernels of
 * runtime_c/opt/dsp with int16 activations (nn_conv_s16, nn_fc_s16 and their acc64 variants).
 *
 * SXTB16 splits a word w of four weights w0..w3 (little-endian bytes) into the int16 pairs
 * (w0, w2) and, after a rotation by 8, (w1, w3); the activations come as two words holding the
 * pairs (x0, x2) and (x1, x3) (the low halfword first). One step adds
 *     w0 x0 + w2 x2 + w1 x1 + w3 x3
 * to the accumulator with two SMLAD (int32) or two SMLALD (int64). Without the DSP extension
 * (a strict build on the host) C stands in for the instructions with the same sums. The int32
 * step is only used where the compiler has proved that the accumulator cannot overflow.
 */
#ifndef NN_DSP_S16_H
#define NN_DSP_S16_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_dsp_s16_ror8(int32_t v)
{
    return (int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24));
}
#else
/* byte i of w, sign-extended */
static inline int32_t nn_dsp_s16_byte(int32_t w, int32_t i)
{
    const int32_t b = (int32_t)(((uint32_t)w >> (8 * i)) & 0xffu);
    return b - ((b & 0x80) << 1);
}

/* halfword i of x, sign-extended */
static inline int32_t nn_dsp_s16_half(int32_t x, int32_t i)
{
    const int32_t h = (int32_t)(((uint32_t)x >> (16 * i)) & 0xffffu);
    return h - ((h & 0x8000) << 1);
}
#endif

/* acc + w0 x0 + w1 x1 + w2 x2 + w3 x3 for weights w and activation pairs x02 = (x0, x2), x13 = (x1, x3) */
static inline int32_t nn_dsp_s16_dot4(int32_t acc, int32_t w, int32_t x02, int32_t x13)
{
#if defined(__ARM_FEATURE_DSP)
    return __smlad(__sxtb16(nn_dsp_s16_ror8(w)), x13, __smlad(__sxtb16(w), x02, acc));
#else
    return acc + nn_dsp_s16_byte(w, 0) * nn_dsp_s16_half(x02, 0) + nn_dsp_s16_byte(w, 2) * nn_dsp_s16_half(x02, 1)
           + nn_dsp_s16_byte(w, 1) * nn_dsp_s16_half(x13, 0) + nn_dsp_s16_byte(w, 3) * nn_dsp_s16_half(x13, 1);
#endif
}

/* The same with an int64 accumulator */
static inline int64_t nn_dsp_s16_dot4_64(int64_t acc, int32_t w, int32_t x02, int32_t x13)
{
#if defined(__ARM_FEATURE_DSP)
    return __smlald(__sxtb16(nn_dsp_s16_ror8(w)), x13, __smlald(__sxtb16(w), x02, acc));
#else
    return acc + nn_dsp_s16_byte(w, 0) * nn_dsp_s16_half(x02, 0) + nn_dsp_s16_byte(w, 2) * nn_dsp_s16_half(x02, 1)
           + nn_dsp_s16_byte(w, 1) * nn_dsp_s16_half(x13, 0) + nn_dsp_s16_byte(w, 3) * nn_dsp_s16_half(x13, 1);
#endif
}

/* The pairs (x[0], x[2]) and (x[1], x[3]) of four int16 activations: word loads when x is on a
 * word boundary, else halfword loads (never an unaligned access). */
static inline void nn_dsp_s16_pairs(const int16_t *x, int32_t aligned, int32_t *x02, int32_t *x13)
{
    uint32_t a, b;
    if (aligned) {
        int32_t lo, hi;
        memcpy(&lo, x, 4);
        memcpy(&hi, x + 2, 4);
        a = (uint32_t)lo;
        b = (uint32_t)hi;
        *x02 = (int32_t)((a & 0xffffu) | (b << 16));
        *x13 = (int32_t)((a >> 16) | (b & 0xffff0000u));
        return;
    }
    a = (uint16_t)x[0];
    b = (uint16_t)x[2];
    *x02 = (int32_t)(a | (b << 16));
    a = (uint16_t)x[1];
    b = (uint16_t)x[3];
    *x13 = (int32_t)(a | (b << 16));
}

#endif /* NN_DSP_S16_H */
