#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
/* nn_conv_dw_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55): the portable
 * kernel with 3x3 stride-1 windows taken two outputs at a time by dual 16-bit multiply-
 * accumulates. Integer sums in another order: the portable kernel's result, bit for bit. */
#include <string.h>

#include "nn.h"
#include "requant.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_load32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t nn_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

/* 3x3, stride 1: two adjacent outputs per step. A word of four inputs b0..b3 splits into
 * (b0, b2) and (b1, b3); with the weight pairs (w0, w2) that is b0 w0 + b2 w2 and b1 w0 + b3 w2
 * by SMLAD, and the middle taps b1 w1 and b2 w1 by the halfword multiply-accumulates. Runs while
 * the word of the last pair stays inside the row (`pairs` steps); returns the outputs done. */
static int32_t nn_dw3x3_pairs(const int8_t *r, int32_t row_w, const int8_t *w, int32_t inner, int32_t pairs,
                              int32_t *acc)
{
    const int32_t w02a = nn_pack16(w[0], w[2]), w02b = nn_pack16(w[3], w[5]), w02c = nn_pack16(w[6], w[8]);
    const int32_t w1ab = nn_pack16(w[1], w[4]), w1c = nn_pack16(w[7], 0);
    int32_t i;
    for (i = 0; i < pairs; ++i, r += 2, acc += 2) {
        int32_t a0 = inner, a1 = inner, v, even, odd;
        v = nn_load32(r);
        even = __sxtb16(v);
        odd = __sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
        a0 = __smlabb(odd, w1ab, __smlad(even, w02a, a0));
        a1 = __smlatb(even, w1ab, __smlad(odd, w02a, a1));
        v = nn_load32(r + row_w);
        even = __sxtb16(v);
        odd = __sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
        a0 = __smlabt(odd, w1ab, __smlad(even, w02b, a0));
        a1 = __smlatt(even, w1ab, __smlad(odd, w02b, a1));
        v = nn_load32(r + 2 * row_w);
        even = __sxtb16(v);
        odd = __sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
        a0 = __smlabb(odd, w1c, __smlad(even, w02c, a0));
        a1 = __smlatb(even, w1c, __smlad(odd, w02c, a1));
        acc[0] = a0;
        acc[1] = a1;
    }
    return 2 * pairs;
}
#endif

#define NN_DW_CHUNK 32 /* outputs accumulated before they are requantized together */

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
    const int32_t row_w = scratch ? span_w : g->in_w;
    const int32_t is3x3 = g->kernel_h == 3 && g->kernel_w == 3 && g->dilation_h == 1 && g->dilation_w == 1;
    int32_t n, c, t, oy, ox, ky, kx, y;
    for (n = 0; n < g->batch; ++n) {
        for (c = 0; c < g->out_channels; ++c) {
            const int8_t *x = in + (n * g->in_channels + c) * plane_in;
            const int8_t *w = weight + c * taps;
            int8_t *dst = out + (n * g->out_channels + c) * plane_out;
            const int32_t m0 = multiplier[c], rshift = shift[c];
            int32_t inner = bias[c]; /* bias plus the input offset times every tap */
            for (t = 0; t < taps; ++t) {
                inner += p->input_offset * w[t];
            }
            if (scratch) { /* the plane with its padding (the zero point, which adds nothing) */
                memset(scratch, -p->input_offset, (size_t)(span_h * span_w));
                for (y = 0; copy_w > 0 && y < copy_h; ++y) {
                    memcpy(scratch + (y + g->pad_top) * span_w + g->pad_left, x + y * g->in_w, (size_t)copy_w);
                }
                x = scratch;
            }
            for (oy = 0; oy < g->out_h; ++oy) {
                const int8_t *row = x + oy * sh * row_w;
                for (ox = 0; ox < g->out_w; ox += NN_DW_CHUNK) {
                    const int32_t count = g->out_w - ox < NN_DW_CHUNK ? g->out_w - ox : NN_DW_CHUNK;
                    const int8_t *r = row + ox * sw;
                    int32_t acc[NN_DW_CHUNK], i;
                    i = 0;
#if defined(__ARM_FEATURE_DSP)
                    if (is3x3 && sw == 1) { /* pairs whose word (4 inputs) ends before the row's last input */
                        const int32_t room = ox + count < g->out_w ? count : count - 1;
                        i = nn_dw3x3_pairs(r, row_w, w, inner, room / 2, acc);
                        r += i;
                    }
#endif
                    if (is3x3) {
                        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
                                      w7 = w[7], w8 = w[8];
                        for (; i < count; ++i, r += sw) {
                            const int8_t *r1 = r + row_w, *r2 = r1 + row_w;
                            acc[i] = inner + r[0] * w0 + r[1] * w1 + r[2] * w2 + r1[0] * w3 + r1[1] * w4 + r1[2] * w5 +
                                     r2[0] * w6 + r2[1] * w7 + r2[2] * w8;
                        }
                    } else {
                        for (i = 0; i < count; ++i, r += sw) {
                            const int8_t *rr = r;
                            int32_t a = inner;
                            for (ky = 0; ky < g->kernel_h; ++ky, rr += g->dilation_h * row_w) {
                                for (kx = 0; kx < g->kernel_w; ++kx) {
                                    a += rr[kx * g->dilation_w] * w[ky * g->kernel_w + kx];
                                }
                            }
                            acc[i] = a;
                        }
                    }
                    for (i = 0; i < count; ++i) {
                        *dst++ = nn_output_s8(acc[i], m0, rshift, p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
