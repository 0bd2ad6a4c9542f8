#include "nn.h"

void nn_conv_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                 float *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t taps = g->kernel_h * g->kernel_w;
    int32_t n, oc, oy, ox, ic, ky, kx, ky0, ky1, kx0, kx1;
    for (n = 0; n < g->batch; ++n) {
        const float *image = in + n * g->in_channels * plane;
        for (oc = 0; oc < g->out_channels; ++oc) {
            const float *x0 = image + (oc / group_out) * group_in * plane;
            const float *w0 = weight + oc * group_in * taps;
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t y0 = oy * g->stride_h - g->pad_top;
                nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t xs = ox * g->stride_w - g->pad_left;
                    float acc = bias ? bias[oc] : 0.0f;
                    nn_window_taps(xs, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                    for (ic = 0; ic < group_in; ++ic) {
                        for (ky = ky0; ky < ky1; ++ky) {
                            const float *row = x0 + ic * plane + (y0 + ky * g->dilation_h) * g->in_w;
                            const float *wr = w0 + ic * taps + ky * g->kernel_w;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += row[xs + kx * g->dilation_w] * wr[kx];
                            }
                        }
                    }
                    acc = acc < p->act_min ? p->act_min : acc;
                    *out++ = acc > p->act_max ? p->act_max : acc;
                }
            }
        }
    }
}
