/* nn_conv_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55): two output positions
 * are copied into int16 columns, then two output channels at a time take four dual 16-bit
 * multiply-accumulates (SMLAD) per four weights, sharing every load between four sums.
 * SXTB16 splits a word of four weights into the pairs (k0, k2) and (k1, k3), so each column
 * is stored in that order too (nn_interleave4). Needs scratch for two columns, 2 * 2 * K
 * int16. Integer sums in another order: the result equals the portable kernel's bit for bit. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "nn_im2col.h"
#include "requant.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_load32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* each complete group of four k0, k1, k2, k3 becomes k0, k2, k1, k3 */
static void nn_interleave4(int16_t *col, int32_t k4)
{
    int32_t k;
    for (k = 0; k < k4; k += 4) {
        const int16_t t = col[k + 1];
        col[k + 1] = col[k + 2];
        col[k + 2] = t;
    }
}

static inline int32_t nn_ror8(int32_t v)
{
    return (int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24));
}

/* the four sums of two weight rows (w0 and the next, k_size apart) with two columns (c0 and
 * the next, k_size apart) */
__attribute__((noinline)) static void nn_block_2x2(const int8_t *w0, int32_t k_size, const int16_t *c0, const int32_t *bias, int32_t *sums)
{
    const int8_t *const end = w0 + (k_size & ~3);
    int32_t a00 = bias[0], a01 = bias[0], a10 = bias[1], a11 = bias[1], k;
    while (w0 != end) {
        const int32_t wa = nn_load32(w0), wb = nn_load32(w0 + k_size);
        const int32_t wa_odd = __sxtb16(nn_ror8(wa)), wa_even = __sxtb16(wa);
        const int32_t wb_odd = __sxtb16(nn_ror8(wb)), wb_even = __sxtb16(wb);
        int32_t x = nn_load32(c0);
        a00 = __smlad(wa_even, x, a00);
        a10 = __smlad(wb_even, x, a10);
        x = nn_load32(c0 + 2);
        a00 = __smlad(wa_odd, x, a00);
        a10 = __smlad(wb_odd, x, a10);
        x = nn_load32(c0 + k_size);
        a01 = __smlad(wa_even, x, a01);
        a11 = __smlad(wb_even, x, a11);
        x = nn_load32(c0 + k_size + 2);
        a01 = __smlad(wa_odd, x, a01);
        a11 = __smlad(wb_odd, x, a11);
        w0 += 4;
        c0 += 4;
    }
    for (k = 0; k < (k_size & 3); ++k) {
        const int32_t wa = w0[k], wb = w0[k + k_size], x0 = c0[k], x1 = c0[k + k_size];
        a00 += wa * x0;
        a01 += wa * x1;
        a10 += wb * x0;
        a11 += wb * x1;
    }
    sums[0] = a00;
    sums[1] = a01;
    sums[2] = a10;
    sums[3] = a11;
}

/* acc + the dot product of one weight row with one column */
static int32_t nn_dot_s8_s16(const int8_t *w, const int16_t *c, int32_t k_size, int32_t acc)
{
    const int32_t k4 = k_size & ~3;
    int32_t k;
    for (k = 0; k < k4; k += 4) {
        const int32_t word = nn_load32(w + k);
        acc = __smlad(__sxtb16(word), nn_load32(c + k), acc);
        acc = __smlad(__sxtb16(nn_ror8(word)), nn_load32(c + k + 2), acc);
    }
    for (; k < k_size; ++k) {
        acc += w[k] * c[k];
    }
    return acc;
}
#else
static void nn_interleave4(int16_t *col, int32_t k4)
{
    (void)col;
    (void)k4;
}

static int32_t nn_dot_s8_s16(const int8_t *w, const int16_t *c, int32_t k_size, int32_t acc)
{
    int32_t k;
    for (k = 0; k < k_size; ++k) {
        acc += w[k] * c[k];
    }
    return acc;
}
#endif

void nn_conv_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t k_size = group_in * g->kernel_h * g->kernel_w;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t positions = g->out_h * g->out_w;
    int16_t *const col0 = scratch, *const col1 = scratch + k_size;
    int32_t n, grp, pos, oc;
    for (n = 0; n < g->batch; ++n) {
        const int8_t *image = in + n * g->in_channels * plane;
        int8_t *result = out + n * g->out_channels * positions;
        for (grp = 0; grp < g->groups; ++grp) {
            const int8_t *x = image + grp * group_in * plane;
            const int32_t oc_end = (grp + 1) * group_out;
            int32_t oy = 0, ox = 0;
            for (pos = 0; pos < positions; pos += 2) {
                const int32_t two = pos + 1 < positions;
                nn_im2col_s16(g, x, group_in, oy, ox, p->input_offset, col0);
                nn_interleave4(col0, k_size & ~3);
                if (++ox == g->out_w) {
                    ox = 0;
                    ++oy;
                }
                if (two) {
                    nn_im2col_s16(g, x, group_in, oy, ox, p->input_offset, col1);
                    nn_interleave4(col1, k_size & ~3);
                    if (++ox == g->out_w) {
                        ox = 0;
                        ++oy;
                    }
                }
                oc = grp * group_out;
#if defined(__ARM_FEATURE_DSP)
                if (two) {
                    for (; oc + 2 <= oc_end; oc += 2) {
                        int32_t s[4];
                        nn_block_2x2(weight + oc * k_size, k_size, col0, bias + oc, s);
                        result[oc * positions + pos] = nn_output_s8(s[0], multiplier[oc], shift[oc], p->output_offset,
                                                                    p->act_min, p->act_max);
                        result[oc * positions + pos + 1] = nn_output_s8(
                            s[1], multiplier[oc], shift[oc], p->output_offset, p->act_min, p->act_max);
                        result[(oc + 1) * positions + pos] = nn_output_s8(
                            s[2], multiplier[oc + 1], shift[oc + 1], p->output_offset, p->act_min, p->act_max);
                        result[(oc + 1) * positions + pos + 1] = nn_output_s8(
                            s[3], multiplier[oc + 1], shift[oc + 1], p->output_offset, p->act_min, p->act_max);
                    }
                }
#endif
                for (; oc < oc_end; ++oc) {
                    const int8_t *w = weight + oc * k_size;
                    result[oc * positions + pos] = nn_output_s8(nn_dot_s8_s16(w, col0, k_size, bias[oc]),
                                                                multiplier[oc], shift[oc], p->output_offset,
                                                                p->act_min, p->act_max);
                    if (two) {
                        result[oc * positions + pos + 1] = nn_output_s8(nn_dot_s8_s16(w, col1, k_size, bias[oc]),
                                                                        multiplier[oc], shift[oc],
                                                                        p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
