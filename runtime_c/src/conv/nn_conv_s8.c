#include "nn.h"
#include "requant.h"

void nn_conv_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t plane = g->in_h * g->in_w;
    int32_t n, oc, oy, ox, ic, ky, kx;
    for (n = 0; n < g->batch; ++n) {
        const int8_t *image = in + n * g->in_channels * plane;
        for (oc = 0; oc < g->out_channels; ++oc) {
            const int8_t *x0 = image + (oc / group_out) * group_in * plane;
            const int8_t *w0 = weight + oc * group_in * g->kernel_h * g->kernel_w;
            for (oy = 0; oy < g->out_h; ++oy) {
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t y0 = oy * g->stride_h - g->pad_top;
                    const int32_t xs = ox * g->stride_w - g->pad_left;
                    int32_t acc = bias[oc];
                    for (ic = 0; ic < group_in; ++ic) {
                        const int8_t *x = x0 + ic * plane;
                        const int8_t *w = w0 + ic * g->kernel_h * g->kernel_w;
                        for (ky = 0; ky < g->kernel_h; ++ky) {
                            const int32_t iy = y0 + ky * g->dilation_h;
                            if (iy < 0 || iy >= g->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < g->kernel_w; ++kx) {
                                const int32_t ix = xs + kx * g->dilation_w;
                                if (ix >= 0 && ix < g->in_w) {
                                    acc += (x[iy * g->in_w + ix] + p->input_offset) * w[ky * g->kernel_w + kx];
                                }
                            }
                        }
                    }
                    acc = nn_requantize(acc, multiplier[oc], shift[oc]) + p->output_offset;
                    *out++ = (int8_t)nn_clamp_s32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
