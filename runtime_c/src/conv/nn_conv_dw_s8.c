#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "requant.h"

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
                    if (is3x3) {
                        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
                                      w7 = w[7], w8 = w[8];
                        for (i = 0; i < count; ++i, r += sw) {
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
