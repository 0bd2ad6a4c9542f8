/* nn_conv_dw_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55): the portable
 * kernel's plane-by-plane order. The padded plane is built once per call and only its inside
 * is copied per channel; 3x3 windows (stride 1 or 2) are taken two outputs at a time by dual
 * 16-bit multiply-accumulates, whole output rows into one buffer of accumulators; the buffer is
 * requantized at once with the channel's constants (requant_dsp.h, or nn_output_s8 for a
 * channel that does not fit it). Integer sums in another order: the portable kernel's result,
 * bit for bit. Without the DSP extension (a strict build on the host) the same code runs with C
 * in place of the instructions. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "requant.h"
#include "requant_dsp.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_dw_sat_s8(int32_t v)
{
    int32_t r; /* SSAT: ACLE's __ssat converts its result through unsigned int */
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}
#else
static inline int32_t nn_dw_sat_s8(int32_t v)
{
    return nn_clamp_s32(v, -128, 127);
}
#endif

static inline int32_t nn_dw_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

/* 3x3 windows (stride 1 or 2): `rows` output rows of `count` >= 2 outputs each, the first
 * reading input r (rows row_w apart), the next row's first `skip` bytes past where a row ends,
 * into consecutive accumulators `acc`. Weights as the pairs (w0, w2), (w3, w5), (w6, w8) of each
 * kernel row and the middle taps (w1, w4), (w7, 0); the loop's state, in the order its loads
 * expect. */
typedef struct {
    const int8_t *r;  /* 0 */
    int32_t *acc;     /* 4 */
    int32_t count;    /* 8 */
    int32_t rows;     /* 12 */
    int32_t skip;     /* 16 */
    int32_t row_w;    /* 20 */
    int32_t inner;    /* 24: bias plus the input offset times every tap */
    int32_t w02a;     /* 28 */
    int32_t w02b;     /* 32 */
    int32_t w02c;     /* 36 */
    int32_t w1ab;     /* 40 */
    int32_t w1c;      /* 44 */
} nn_dw3x3_rows;

static void nn_dw3x3_pack(const int8_t *w, nn_dw3x3_rows *k)
{
    k->w02a = nn_dw_pack16(w[0], w[2]);
    k->w02b = nn_dw_pack16(w[3], w[5]);
    k->w02c = nn_dw_pack16(w[6], w[8]);
    k->w1ab = nn_dw_pack16(w[1], w[4]);
    k->w1c = nn_dw_pack16(w[7], 0);
}

#if defined(__ARM_FEATURE_DSP)
static inline int32_t nn_dw_sxtb16(int32_t v)
{
    return (int32_t)__sxtb16(v);
}

static inline int32_t nn_dw_sxtb16_ror8(int32_t v)
{
    return (int32_t)__sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
}

static inline int32_t nn_dw_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t nn_dw_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t nn_dw_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return __smlabt(a, b, acc);
}

static inline int32_t nn_dw_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return __smlatb(a, b, acc);
}

static inline int32_t nn_dw_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}
#else
static inline int32_t nn_dw_lo(int32_t v)
{
    return (int16_t)(v & 0xFFFF);
}

static inline int32_t nn_dw_hi(int32_t v)
{
    return v >> 16;
}

static inline int32_t nn_dw_sxtb16(int32_t v)
{
    return (int32_t)(((uint32_t)(int8_t)((v >> 16) & 0xFF) << 16) | ((uint32_t)(int8_t)(v & 0xFF) & 0xFFFFu));
}

static inline int32_t nn_dw_sxtb16_ror8(int32_t v)
{
    return nn_dw_sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
}

static inline int32_t nn_dw_smlad(int32_t a, int32_t b, int32_t acc)
{
    return acc + nn_dw_lo(a) * nn_dw_lo(b) + nn_dw_hi(a) * nn_dw_hi(b);
}

static inline int32_t nn_dw_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return acc + nn_dw_lo(a) * nn_dw_lo(b);
}

static inline int32_t nn_dw_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return acc + nn_dw_lo(a) * nn_dw_hi(b);
}

static inline int32_t nn_dw_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return acc + nn_dw_hi(a) * nn_dw_lo(b);
}

static inline int32_t nn_dw_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return acc + nn_dw_hi(a) * nn_dw_hi(b);
}
#endif

#if defined(__ARM_FEATURE_DSP)
/* Stride 1, the input rows on word boundaries (r and row_w multiples of 4, the rows at least
 * 4 bytes longer than the windows read): the pairs of outputs start on even bytes, a word
 * boundary and the middle of two words in turn, so every load is aligned: the pair on a
 * boundary loads the word it starts at, the next pair two halfwords. An odd count computes
 * one output more, into the slot the next row's first output then takes (acc holds
 * rows * count + 1). In fixed registers as a call would save them (the state's address waits
 * on the stack): input r0 (row_w r7 between the kernel rows), accumulators r1, outputs left
 * r2, inner r8, weights w02a..w1c in r9..r12, lr; a pair's accumulators r5, r6. `skip` holds
 * the step from one row's input to the next. Per kernel row, a word of inputs b0..b3 splits
 * into (b0, b2) and (b1, b3): with the weight pair (w0, w2) that is b0 w0 + b2 w2 and
 * b1 w0 + b3 w2 by SMLAD, the middle taps b1 w1 and b2 w1 by halfword multiply-accumulates. */
#define NN_DW3X3S1_EVEN                                                                                           \
    "ldr r3, [r0, r7, lsl #1]\n\t" /* kernel row 2 */                                                            \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r11, r8\n\t"                                                                                   \
    "smlabb r5, r3, lr, r5\n\t"                                                                                   \
    "smlad r6, r3, r11, r8\n\t"                                                                                   \
    "smlatb r6, r4, lr, r6\n\t"                                                                                   \
    "ldr r3, [r0, r7]\n\t" /* kernel row 1 */                                                                    \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r10, r5\n\t"                                                                                   \
    "smlabt r5, r3, r12, r5\n\t"                                                                                  \
    "smlad r6, r3, r10, r6\n\t"                                                                                   \
    "smlatt r6, r4, r12, r6\n\t"                                                                                  \
    "ldr r3, [r0]\n\t" /* kernel row 0 */                                                                        \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r9, r5\n\t"                                                                                    \
    "smlabb r5, r3, r12, r5\n\t"                                                                                  \
    "smlad r6, r3, r9, r6\n\t"                                                                                    \
    "smlatb r6, r4, r12, r6\n\t"                                                                                  \
    "strd r5, r6, [r1], #8\n\t"

/* The pair two bytes on: each kernel row's word from the halfwords at 2 and 4 */
#define NN_DW3X3S1_ODD                                                                                            \
    "add r4, r0, r7, lsl #1\n\t" /* kernel row 2 */                                                              \
    "ldrh r3, [r4, #2]\n\t"                                                                                       \
    "ldrh r4, [r4, #4]\n\t"                                                                                       \
    "orr r3, r3, r4, lsl #16\n\t"                                                                                 \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r11, r8\n\t"                                                                                   \
    "smlabb r5, r3, lr, r5\n\t"                                                                                   \
    "smlad r6, r3, r11, r8\n\t"                                                                                   \
    "smlatb r6, r4, lr, r6\n\t"                                                                                   \
    "add r4, r0, r7\n\t" /* kernel row 1 */                                                                      \
    "ldrh r3, [r4, #2]\n\t"                                                                                       \
    "ldrh r4, [r4, #4]\n\t"                                                                                       \
    "orr r3, r3, r4, lsl #16\n\t"                                                                                 \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r10, r5\n\t"                                                                                   \
    "smlabt r5, r3, r12, r5\n\t"                                                                                  \
    "smlad r6, r3, r10, r6\n\t"                                                                                   \
    "smlatt r6, r4, r12, r6\n\t"                                                                                  \
    "ldrh r3, [r0, #2]\n\t" /* kernel row 0 */                                                                   \
    "ldrh r4, [r0, #4]\n\t"                                                                                       \
    "orr r3, r3, r4, lsl #16\n\t"                                                                                 \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r9, r5\n\t"                                                                                    \
    "smlabb r5, r3, r12, r5\n\t"                                                                                  \
    "smlad r6, r3, r9, r6\n\t"                                                                                    \
    "smlatb r6, r4, r12, r6\n\t"                                                                                  \
    "strd r5, r6, [r1], #8\n\t"

__attribute__((noinline)) static void nn_dw3x3s1_aligned_rows(nn_dw3x3_rows *state)
{
    register nn_dw3x3_rows *k __asm__("r0") = state;
    __asm__ volatile("push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "add r3, r0, #20\n\t"
                     "ldmia r3, {r7, r8, r9, r10, r11, r12, lr}\n\t"
                     "ldr r1, [r0, #4]\n\t"
                     "ldr r0, [r0]\n"
                     "3:\n\t"
                     "ldr r3, [sp]\n\t"
                     "ldr r2, [r3, #8]\n\t" /* the row's outputs */
                     "str r0, [r3]\n\t"
                     "str r1, [r3, #4]\n"
                     "1:\n\t" NN_DW3X3S1_EVEN "subs r2, r2, #2\n\t"
                     "ble 2f\n\t" NN_DW3X3S1_ODD "add r0, r0, #4\n\t"
                     "subs r2, r2, #2\n\t"
                     "bgt 1b\n"
                     "2:\n\t"
                     "ldr r3, [sp]\n\t"
                     "ldr r4, [r3, #12]\n\t"
                     "subs r4, r4, #1\n\t"
                     "beq 9f\n\t"
                     "str r4, [r3, #12]\n\t"
                     "ldmia r3, {r0, r1, r2}\n\t" /* the row's input, accumulators and count */
                     "ldr r4, [r3, #16]\n\t"
                     "add r0, r0, r4\n\t"
                     "add r1, r1, r2, lsl #2\n\t"
                     "b 3b\n"
                     "9:\n\t"
                     "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     : "+r"(k)
                     :
                     : "r1", "r2", "r3", "r12", "cc", "memory");
}

/* Stride 2 on word-aligned rows: a pair of outputs reads b0..b4 of each kernel row, b0..b3 one
 * word on a boundary and b4 a byte; the first output is b0 w0 + b2 w2 by SMLAD and b1 w1, the
 * second b2 w0, b3 w1 and b4 w2 by halfword multiply-accumulates. r0 moves on by 4. */
#define NN_DW3X3S2_PAIR                                                                                           \
    "ldr r3, [r0, r7, lsl #1]\n\t" /* kernel row 2: w6 w7 w8 */                                                 \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r11, r8\n\t"                                                                                   \
    "smlabb r5, r3, lr, r5\n\t"                                                                                   \
    "smlatb r6, r4, r11, r8\n\t"                                                                                  \
    "smlatb r6, r3, lr, r6\n\t"                                                                                   \
    "add r4, r0, r7, lsl #1\n\t"                                                                                  \
    "ldrsb r4, [r4, #4]\n\t"                                                                                      \
    "smlabt r6, r4, r11, r6\n\t"                                                                                  \
    "ldr r3, [r0, r7]\n\t" /* kernel row 1: w3 w4 w5 */                                                         \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r10, r5\n\t"                                                                                   \
    "smlabt r5, r3, r12, r5\n\t"                                                                                  \
    "smlatb r6, r4, r10, r6\n\t"                                                                                  \
    "smlatt r6, r3, r12, r6\n\t"                                                                                  \
    "add r4, r0, r7\n\t"                                                                                          \
    "ldrsb r4, [r4, #4]\n\t"                                                                                      \
    "smlabt r6, r4, r10, r6\n\t"                                                                                  \
    "ldr r3, [r0], #4\n\t" /* kernel row 0: w0 w1 w2 */                                                         \
    "sxtb16 r4, r3\n\t"                                                                                           \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                   \
    "smlad r5, r4, r9, r5\n\t"                                                                                    \
    "smlabb r5, r3, r12, r5\n\t"                                                                                  \
    "smlatb r6, r4, r9, r6\n\t"                                                                                   \
    "smlatb r6, r3, r12, r6\n\t"                                                                                  \
    "ldrsb r4, [r0]\n\t"                                                                                          \
    "smlabt r6, r4, r9, r6\n\t"                                                                                   \
    "strd r5, r6, [r1], #8\n\t"

__attribute__((noinline)) static void nn_dw3x3s2_aligned_rows(nn_dw3x3_rows *state)
{
    register nn_dw3x3_rows *k __asm__("r0") = state;
    __asm__ volatile("push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "add r3, r0, #20\n\t"
                     "ldmia r3, {r7, r8, r9, r10, r11, r12, lr}\n\t"
                     "ldr r1, [r0, #4]\n\t"
                     "ldr r0, [r0]\n"
                     "3:\n\t"
                     "ldr r3, [sp]\n\t"
                     "ldr r2, [r3, #8]\n\t" /* the row's outputs */
                     "str r0, [r3]\n\t"
                     "str r1, [r3, #4]\n"
                     "1:\n\t" NN_DW3X3S2_PAIR "subs r2, r2, #2\n\t"
                     "bgt 1b\n\t"
                     "ldr r3, [sp]\n\t"
                     "ldr r4, [r3, #12]\n\t"
                     "subs r4, r4, #1\n\t"
                     "beq 9f\n\t"
                     "str r4, [r3, #12]\n\t"
                     "ldmia r3, {r0, r1, r2}\n\t" /* the row's input, accumulators and count */
                     "ldr r4, [r3, #16]\n\t"
                     "add r0, r0, r4\n\t"
                     "add r1, r1, r2, lsl #2\n\t"
                     "b 3b\n"
                     "9:\n\t"
                     "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     : "+r"(k)
                     :
                     : "r1", "r2", "r3", "r12", "cc", "memory");
}

#define NN_DW_ALIGNED_S2 1 /* nn_dw3x3_aligned takes stride 2 too */

/* `stride` 1 or 2 */
static void nn_dw3x3_aligned(nn_dw3x3_rows *k, int32_t stride, int32_t row_step)
{
    k->skip = row_step;
    if (stride == 1) {
        nn_dw3x3s1_aligned_rows(k);
    } else {
        nn_dw3x3s2_aligned_rows(k);
    }
}
#else
/* Two adjacent outputs (stride 1) from the words f0, f1, f2 of inputs b0..b3 of kernel rows 0, 1,
 * 2: split into (b0, b2) and (b1, b3), with the weight pairs (w0, w2) that is b0 w0 + b2 w2
 * and b1 w0 + b3 w2 by SMLAD, the middle taps b1 w1 and b2 w1 by halfword
 * multiply-accumulates; out[0], out[1] = inner plus the three rows. */
#define NN_DW3X3S1_PAIR(f0, f1, f2, out)                                                                          \
    do {                                                                                                          \
        int32_t e_ = nn_dw_sxtb16(f0), o_ = nn_dw_sxtb16_ror8(f0);                                                \
        int32_t a0_ = nn_dw_smlabb(o_, w1ab, nn_dw_smlad(e_, w02a, inner));                                       \
        int32_t a1_ = nn_dw_smlatb(e_, w1ab, nn_dw_smlad(o_, w02a, inner));                                       \
        e_ = nn_dw_sxtb16(f1);                                                                                    \
        o_ = nn_dw_sxtb16_ror8(f1);                                                                               \
        a0_ = nn_dw_smlabt(o_, w1ab, nn_dw_smlad(e_, w02b, a0_));                                                 \
        a1_ = nn_dw_smlatt(e_, w1ab, nn_dw_smlad(o_, w02b, a1_));                                                 \
        e_ = nn_dw_sxtb16(f2);                                                                                    \
        o_ = nn_dw_sxtb16_ror8(f2);                                                                               \
        (out)[0] = nn_dw_smlabb(o_, w1c, nn_dw_smlad(e_, w02c, a0_));                                             \
        (out)[1] = nn_dw_smlatb(e_, w1c, nn_dw_smlad(o_, w02c, a1_));                                             \
    } while (0)

/* The upper half of the word at p and the lower half of the next: the word two bytes past p */
static inline int32_t nn_dw_mid(const int8_t *p)
{
    return (int32_t)(((uint32_t)nn_load32_aligned(p) >> 16) | ((uint32_t)nn_load32_aligned(p + 4) << 16));
}

/* Stride 1, the input rows on word boundaries (r and row_w multiples of 4, the rows at least
 * 4 bytes longer than the windows read): the pairs of outputs start on even bytes, a word
 * boundary and the middle of two words in turn, so every load is an aligned word: the pair on
 * a boundary takes the word it starts at, the next pair the upper half of that word and the
 * lower half of the next. An odd count computes one output more, into the slot the next row's
 * first output then takes (acc holds rows * count + 1). Rows row_step apart. */
#define NN_DW_ALIGNED_S2 0

/* stride 1 only */
static void nn_dw3x3_aligned(nn_dw3x3_rows *k, int32_t stride, int32_t row_step)
{
    const int32_t w02a = k->w02a, w02b = k->w02b, w02c = k->w02c, w1ab = k->w1ab, w1c = k->w1c;
    const int32_t inner = k->inner, row_w = k->row_w, count = k->count, rows = k->rows;
    const int8_t *r = k->r;
    int32_t *acc = k->acc;
    int32_t y, i;
    (void)stride;
    for (y = 0; y < rows; ++y, r += row_step, acc += count) {
        const int8_t *q = r;
        for (i = 0;; i += 4, q += 4) {
            NN_DW3X3S1_PAIR(nn_load32_aligned(q), nn_load32_aligned(q + row_w), nn_load32_aligned(q + 2 * row_w),
                            acc + i);
            if (i + 2 >= count) {
                break;
            }
            NN_DW3X3S1_PAIR(nn_dw_mid(q), nn_dw_mid(q + row_w), nn_dw_mid(q + 2 * row_w), acc + i + 2);
            if (i + 4 >= count) {
                break;
            }
        }
    }
}

#endif

/* Any 3x3 rows (stride 1 or 2), the input at any address: per kernel row, (b0, b2) and
 * (b1, b3) of the first output's word, (b1, b3) and (b2, b4) of the second's (one byte on for
 * stride 1, two for stride 2); the words built from bytes (requant_dsp.h) */
static void nn_dw3x3_rows_any(nn_dw3x3_rows *k, int32_t stride)
{
    const int32_t w02[3] = {k->w02a, k->w02b, k->w02c}, w1[3] = {k->w1ab, k->w1ab >> 16, k->w1c};
    const int8_t *r = k->r;
    int32_t *acc = k->acc;
    for (; k->rows > 0; --k->rows, r += k->skip) {
        int32_t skew = k->count & 1, n = (k->count + 1) >> 1, ky;
        for (; n > 0; --n, r += 2 * stride, acc += 2) {
            int32_t a0 = k->inner, a1 = k->inner;
            for (ky = 0; ky < 3; ++ky) {
                const int8_t *b = r + ky * k->row_w;
                const int32_t first = nn_load32_any(b), second = nn_load32_any(b + stride - 1);
                a0 = nn_dw_smlabb(nn_dw_sxtb16_ror8(first), w1[ky], nn_dw_smlad(nn_dw_sxtb16(first), w02[ky], a0));
                a1 = nn_dw_smlatb(nn_dw_sxtb16(second), w1[ky], nn_dw_smlad(nn_dw_sxtb16_ror8(second), w02[ky], a1));
            }
            acc[0] = a0;
            acc[1] = a1;
            if (skew) { /* the first pair only */
                skew = 0;
                r -= stride;
                --acc;
            }
        }
    }
}

/* Any window: `count` outputs from r, stride sw, rows row_w apart */
static void nn_dw_row(const nn_conv_geometry *g, const int8_t *r, int32_t row_w, const int8_t *w, int32_t inner,
                      int32_t count, int32_t *acc)
{
    int32_t i, ky, kx;
    for (i = 0; i < count; ++i, r += g->stride_w) {
        const int8_t *rr = r;
        const int8_t *wr = w;
        int32_t a = inner;
        for (ky = 0; ky < g->kernel_h; ++ky, rr += g->dilation_h * row_w, wr += g->kernel_w) {
            for (kx = 0; kx < g->kernel_w; ++kx) {
                a += rr[kx * g->dilation_w] * wr[kx];
            }
        }
        acc[i] = a;
    }
}

/* The plane x (in_h x in_w), its first copy_h rows and copy_w columns, into dst at (pad_top,
 * pad_left), rows row_w apart; the border around them is left as it is. */
static void nn_dw_copy_plane(const nn_conv_geometry *g, const int8_t *x, int32_t row_w, int32_t copy_h,
                             int32_t copy_w, int8_t *dst)
{
    int32_t y;
    dst += g->pad_top * row_w + g->pad_left;
    for (y = 0; y < copy_h; ++y, x += g->in_w, dst += row_w) {
#if defined(NN_BYTEWISE_LOADS)
        /* short rows at any alignment: byte by byte, a barrier after each keeping the compiler
         * from merging neighbours into a halfword or word access (or the loop into memcpy) */
        int32_t i;
        for (i = 0; i < copy_w; ++i) {
            dst[i] = x[i];
            __asm__ volatile("" : : : "memory");
        }
#else
        memcpy(dst, x, (size_t)copy_w);
#endif
    }
}

/* Accumulators of one channel out to int8 */
static void nn_dw_flush(const nn_conv_s8_params *p, const int32_t *acc, int32_t count, int32_t fast, int32_t m0,
                        int32_t shift, int8_t *dst)
{
    int32_t i;
    if (fast) {
        const int32_t e = -shift, c = nn_requant_dsp_c(shift, p->output_offset);
        const int32_t lo = p->act_min, hi = p->act_max;
        if (lo == -128 && hi == 127) {
            for (i = count >> 1; i > 0; --i, acc += 2, dst += 2) {
                const int32_t a0 = acc[0], a1 = acc[1];
                dst[0] = (int8_t)nn_dw_sat_s8(nn_requant_dsp(a0, m0, e, c));
                dst[1] = (int8_t)nn_dw_sat_s8(nn_requant_dsp(a1, m0, e, c));
            }
            if (count & 1) {
                dst[0] = (int8_t)nn_dw_sat_s8(nn_requant_dsp(acc[0], m0, e, c));
            }
        } else {
            for (i = 0; i < count; ++i) {
                dst[i] = (int8_t)nn_clamp_s32(nn_requant_dsp(acc[i], m0, e, c), lo, hi);
            }
        }
        return;
    }
    for (i = 0; i < count; ++i) {
        dst[i] = nn_output_s8(acc[i], m0, shift, p->output_offset, p->act_min, p->act_max);
    }
}

#define NN_DW_CHUNK 48 /* accumulators of consecutive outputs requantized together */

void nn_conv_dw_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                   const int32_t *multiplier, const int8_t *shift, int8_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t plane_in = g->in_h * g->in_w;
    const int32_t plane_out = g->out_h * g->out_w;
    const int32_t sh = g->stride_h, sw = g->stride_w;
    /* the input region the windows cover, padding included */
    const int32_t span_h = (g->out_h - 1) * sh + (g->kernel_h - 1) * g->dilation_h + 1;
    const int32_t span_w = (g->out_w - 1) * sw + (g->kernel_w - 1) * g->dilation_w + 1;
    const int32_t copy_h = g->in_h < span_h - g->pad_top ? g->in_h : span_h - g->pad_top;
    const int32_t copy_w = g->in_w < span_w - g->pad_left ? g->in_w : span_w - g->pad_left;
    /* scratch rows: word multiples at least 4 bytes longer than the span (nn_conv.h) */
    const int32_t row_w = scratch ? (span_w + 7) & ~3 : g->in_w;
    const int32_t is3x3 = g->kernel_h == 3 && g->kernel_w == 3 && g->dilation_h == 1 && g->dilation_w == 1 &&
                          (sw == 1 || sw == 2);
    const int32_t aligned = scratch != NULL && ((uintptr_t)scratch & 3u) == 0;
    /* whole output rows per flush while they fit, else pieces of rows */
    const int32_t piece = g->out_w < NN_DW_CHUNK ? g->out_w : NN_DW_CHUNK;
    const int32_t rows = NN_DW_CHUNK / piece;
    int32_t n, c, t, oy, ox, i;
    nn_dw3x3_rows k3;
    memset(&k3, 0, sizeof k3);
    if (scratch) { /* padding holds the input's zero point, which adds nothing; every plane fills the rest */
        memset(scratch, -p->input_offset, (size_t)(span_h * row_w));
    }
    for (n = 0; n < g->batch; ++n) {
        for (c = 0; c < g->out_channels; ++c) {
            const int8_t *x = in + (n * g->in_channels + c) * plane_in;
            const int8_t *w = weight + c * taps;
            int8_t *dst = out + (n * g->out_channels + c) * plane_out;
            const int64_t bound = (bias[c] < 0 ? -(int64_t)bias[c] : bias[c]) + ((int64_t)taps << 15);
            const int32_t fast = nn_requant_dsp_fits(bound, shift[c], p->output_offset);
            int32_t acc[NN_DW_CHUNK + 1];
            int32_t inner = bias[c]; /* bias plus the input offset times every tap */
            for (t = 0; t < taps; ++t) {
                inner += p->input_offset * w[t];
            }
            if (is3x3) {
                nn_dw3x3_pack(w, &k3);
            }
            if (scratch) {
                if (copy_h > 0 && copy_w > 0) {
                    nn_dw_copy_plane(g, x, row_w, copy_h, copy_w, scratch);
                }
                x = scratch;
            }
            for (oy = 0; oy < g->out_h; oy += rows) {
                const int32_t m = g->out_h - oy < rows ? g->out_h - oy : rows;
                for (ox = 0; ox < g->out_w; ox += piece) {
                    const int32_t count = g->out_w - ox < piece ? g->out_w - ox : piece;
                    const int8_t *r = x + oy * sh * row_w + ox * sw;
                    if (is3x3 && count >= 2) {
                        k3.r = r;
                        k3.acc = acc;
                        k3.count = count;
                        k3.rows = m;
                        k3.skip = sh * row_w - sw * count; /* the pairs move r on by sw count */
                        k3.row_w = row_w;
                        k3.inner = inner;
                        if (aligned && (sw == 1 || NN_DW_ALIGNED_S2)) {
                            nn_dw3x3_aligned(&k3, sw, sh * row_w);
                        } else {
                            nn_dw3x3_rows_any(&k3, sw);
                        }
                    } else {
                        for (i = 0; i < m; ++i, r += sh * row_w) {
                            nn_dw_row(g, r, row_w, w, inner, count, acc + i * count);
                        }
                    }
                    if (m == 1) {
                        nn_dw_flush(p, acc, count, fast, multiplier[c], shift[c], dst + oy * g->out_w + ox);
                    } else { /* whole rows: consecutive outputs */
                        nn_dw_flush(p, acc, m * count, fast, multiplier[c], shift[c], dst + oy * g->out_w);
                    }
                }
            }
        }
    }
}
