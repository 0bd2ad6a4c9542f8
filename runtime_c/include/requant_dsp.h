/*
 * requant.h's nn_output_s8 in five instructions on cores with the DSP extension, for the
 * optimized int8 kernels of runtime_c/opt/dsp: the same result whenever nn_requant_dsp_fits()
 * holds for the channel (the kernels check it once per channel and fall back to nn_output_s8).
 *
 * For shift <= -1 (e = -shift in [1, 31]) nn_output_s8 computes
 *     y = floor((acc * m0 + 2^30) / 2^31),   out = nn_rounding_divide_by_pot(y, e) + offset.
 * Write y = q 2^e + r (0 <= r < 2^e): the rounding step adds 1 to q exactly when
 * r > 2^(e-1) - 1 + [y < 0], i.e. it is floor((y + 2^(e-1) - [y < 0]) / 2^e). The offset, a
 * multiple of 2^e inside the floor, joins the constant:
 *     out = (y + c - [y < 0]) >> e,   c = 2^(e-1) + offset 2^e = (2 offset + 1) 2^(e-1).
 * [acc < 0] may stand for [y < 0]: m0 >= 0, so acc < 0 gives y <= 0, and at y = 0 both
 * (c - 1) >> e and c >> e are offset. y + c is one SMMLAR (c + the rounded high word of a
 * product): y = floor((2 acc m0 + 2^31) / 2^32).
 * Bounds: |acc| <= 2^29 keeps 2 acc in int32 and |y| <= 2^29 + 1; |c| <= 2^30 then keeps
 * y + c - 1 in int32.
 */
#ifndef REQUANT_DSP_H
#define REQUANT_DSP_H

#include <stdint.h>
#include <string.h>

/* 1 when every accumulator of magnitude <= acc_bound requantizes exactly through
 * nn_requant_dsp for this shift and output offset. */
static inline int32_t nn_requant_dsp_fits(int64_t acc_bound, int32_t shift, int32_t offset)
{
    int64_t c;
    if (shift > -1 || shift < -31 || acc_bound > ((int64_t)1 << 29)) {
        return 0;
    }
    c = (2 * (int64_t)offset + 1) * ((int64_t)1 << (-shift - 1));
    return c <= ((int64_t)1 << 30) && c >= -((int64_t)1 << 30);
}

/* The constant c = (2 offset + 1) 2^(e-1), e = -shift; only when nn_requant_dsp_fits(). */
static inline int32_t nn_requant_dsp_c(int32_t shift, int32_t offset)
{
    return (2 * offset + 1) * (int32_t)(1u << (-shift - 1));
}

/* nn_requantize(acc, m0, -e) + offset, unclamped, for c = nn_requant_dsp_c(-e, offset) */
static inline int32_t nn_requant_dsp(int32_t acc, int32_t m0, int32_t e, int32_t c)
{
    int32_t t;
#if defined(__ARM_FEATURE_DSP)
    __asm__("smmlar %0, %1, %2, %3" : "=r"(t) : "r"(acc * 2), "r"(m0), "r"(c));
#else
    t = c + (int32_t)(((int64_t)acc * m0 + ((int64_t)1 << 30)) >> 31);
#endif
    return (t + (acc >> 31)) >> e;
}

/* Loads for the optimized kernels, which never make an unaligned access (firmware may run
 * with SCB->CCR.UNALIGN_TRP set). On an M-profile core that allows unaligned accesses
 * (__ARM_FEATURE_UNALIGNED) the compiler may turn a 4-byte memcpy, or neighbouring byte loads,
 * into one LDR or LDRH at any address; a load from an address that may be unaligned is
 * therefore written as byte loads in assembly, which it cannot merge. Elsewhere (cores that
 * never emit unaligned accesses, application processors and the host) memcpy is exact. */
#if defined(__ARM_FEATURE_UNALIGNED) && defined(__ARM_ARCH_PROFILE)
#if __ARM_ARCH_PROFILE == 'M'
#define NN_BYTEWISE_LOADS 1
#endif
#endif

/* The word at a 4-byte aligned address */
static inline int32_t nn_load32_aligned(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The word (little-endian) at any address */
static inline int32_t nn_load32_any(const int8_t *p)
{
#if defined(NN_BYTEWISE_LOADS)
    uint32_t v, t;
    __asm__("ldrb %0, [%2]\n\t"
            "ldrb %1, [%2, #1]\n\t"
            "orr %0, %0, %1, lsl #8\n\t"
            "ldrb %1, [%2, #2]\n\t"
            "orr %0, %0, %1, lsl #16\n\t"
            "ldrb %1, [%2, #3]\n\t"
            "orr %0, %0, %1, lsl #24"
            : "=&r"(v), "=&r"(t)
            : "r"(p), "m"(*(const int8_t(*)[4])p));
    return (int32_t)v;
#else
    return nn_load32_aligned(p);
#endif
}

/* The halfword (little-endian, zero-extended) at any address */
static inline int32_t nn_load16_any(const int8_t *p)
{
#if defined(NN_BYTEWISE_LOADS)
    uint32_t v, t;
    __asm__("ldrb %0, [%2]\n\t"
            "ldrb %1, [%2, #1]\n\t"
            "orr %0, %0, %1, lsl #8"
            : "=&r"(v), "=&r"(t)
            : "r"(p), "m"(*(const int8_t(*)[2])p));
    return (int32_t)v;
#else
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#endif
}

#endif /* REQUANT_DSP_H */
