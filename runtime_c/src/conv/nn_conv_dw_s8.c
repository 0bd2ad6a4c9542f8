#include <string.h>

#include "nn.h"
#include "requant.h"

/* first and one-past-last output index whose window lies wholly inside [0, size) */
static void nn_interior(int32_t pad, int32_t stride, int32_t extent, int32_t size, int32_t outs, int32_t *lo,
                        int32_t *hi)
{
    int32_t a = (pad + stride - 1) / stride;
    int32_t b = size - extent + pad < 0 ? 0 : (size - extent + pad) / stride + 1;
    *lo = a < outs ? a : outs;
    *hi = b < *lo ? *lo : b < outs ? b : outs;
}

void nn_conv_dw_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                   const int32_t *multiplier, const int8_t *shift, int8_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t plane_in = g->in_h * g->in_w;
    const int32_t plane_out = g->out_h * g->out_w;
    const int32_t off = p->input_offset;
    const int32_t is3x3 = g->kernel_h == 3 && g->kernel_w == 3 && g->dilation_h == 1 && g->dilation_w == 1;
    int32_t n, c, t, oy, ox, ky, kx, ky0, ky1, kx0, kx1, ox_lo, ox_hi;
    nn_interior(g->pad_left, g->stride_w, (g->kernel_w - 1) * g->dilation_w + 1, g->in_w, g->out_w, &ox_lo, &ox_hi);
    for (n = 0; n < g->batch; ++n) {
        for (c = 0; c < g->out_channels; ++c) {
            const int8_t *x = in + (n * g->in_channels + c) * plane_in;
            const int8_t *w = weight + c * taps;
            int8_t *y = in == out ? scratch : out + (n * g->out_channels + c) * plane_out;
            const int32_t m0 = multiplier[c], sh = shift[c];
            int32_t inner = bias[c]; /* bias plus the input offset times every tap: a window inside the input */
            for (t = 0; t < taps; ++t) {
                inner += off * w[t];
            }
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t y0 = oy * g->stride_h - g->pad_top;
                nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t x0 = ox * g->stride_w - g->pad_left;
                    int32_t acc;
                    if (ky0 == 0 && ky1 == g->kernel_h && ox >= ox_lo && ox < ox_hi) {
                        const int8_t *r = x + y0 * g->in_w + x0;
                        if (is3x3) {
                            const int8_t *r1 = r + g->in_w, *r2 = r1 + g->in_w;
                            acc = inner + r[0] * w[0] + r[1] * w[1] + r[2] * w[2] + r1[0] * w[3] + r1[1] * w[4] +
                                  r1[2] * w[5] + r2[0] * w[6] + r2[1] * w[7] + r2[2] * w[8];
                        } else {
                            acc = inner;
                            for (ky = 0; ky < g->kernel_h; ++ky) {
                                const int8_t *row = r + ky * g->dilation_h * g->in_w;
                                for (kx = 0; kx < g->kernel_w; ++kx) {
                                    acc += row[kx * g->dilation_w] * w[ky * g->kernel_w + kx];
                                }
                            }
                        }
                    } else {
                        acc = bias[c];
                        nn_window_taps(x0, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int8_t *row = x + (y0 + ky * g->dilation_h) * g->in_w + x0;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += (row[kx * g->dilation_w] + off) * w[ky * g->kernel_w + kx];
                            }
                        }
                    }
                    *y++ = nn_output_s8(acc, m0, sh, p->output_offset, p->act_min, p->act_max);
                }
            }
            if (in == out) {
                memcpy(out + (n * g->out_channels + c) * plane_out, scratch, (size_t)plane_out);
            }
        }
    }
}
