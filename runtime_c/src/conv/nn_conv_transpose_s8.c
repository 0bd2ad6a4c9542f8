#include "nn.h"
#include "requant.h"

void nn_conv_transpose_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
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
            const int8_t *w0 = weight + oc * g->kernel_h * g->kernel_w * group_in;
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t ty = oy + g->pad_top;
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t tx = ox + g->pad_left;
                    int32_t acc = bias[oc];
                    /* t = o + pad - k * dilation kept as q * stride + r, 0 <= r < stride */
                    int32_t qy = ty >= 0 ? ty / g->stride_h : -1, ry = ty >= 0 ? ty % g->stride_h : 0;
                    for (ky = 0; ky < g->kernel_h && qy >= 0; ++ky) {
                        if (ry == 0 && qy < g->in_h) {
                            const int8_t *row = x0 + qy * g->in_w;
                            const int8_t *wr = w0 + ky * g->kernel_w * group_in;
                            int32_t qx = tx >= 0 ? tx / g->stride_w : -1, rx = tx >= 0 ? tx % g->stride_w : 0;
                            for (kx = 0; kx < g->kernel_w && qx >= 0; ++kx) {
                                if (rx == 0 && qx < g->in_w) {
                                    const int8_t *xs = row + qx;
                                    const int8_t *ws = wr + kx * group_in;
                                    for (ic = 0; ic < group_in; ++ic) {
                                        acc += (xs[ic * plane] + p->input_offset) * ws[ic];
                                    }
                                }
                                for (rx -= g->dilation_w; rx < 0; rx += g->stride_w) {
                                    --qx;
                                }
                            }
                        }
                        for (ry -= g->dilation_h; ry < 0; ry += g->stride_h) {
                            --qy;
                        }
                    }
                    *out++ = nn_output_s8(acc, multiplier[oc], shift[oc], p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}
