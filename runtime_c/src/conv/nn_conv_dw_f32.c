#include "nn.h"

void nn_conv_dw_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                    float *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t taps = g->kernel_h * g->kernel_w;
    int32_t n, c, oy, ox, ky, kx, ky0, ky1, kx0, kx1;
    for (n = 0; n < g->batch; ++n) {
        for (c = 0; c < g->in_channels; ++c) {
            const float *x = in + (n * g->in_channels + c) * plane;
            const float *w = weight + c * taps;
            const float b = bias ? bias[c] : 0.0f;
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t y0 = oy * g->stride_h - g->pad_top;
                nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t xs = ox * g->stride_w - g->pad_left;
                    float acc = b;
                    nn_window_taps(xs, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                    for (ky = ky0; ky < ky1; ++ky) {
                        const float *row = x + (y0 + ky * g->dilation_h) * g->in_w;
                        const float *wr = w + ky * g->kernel_w;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += row[xs + kx * g->dilation_w] * wr[kx];
                        }
                    }
                    acc = acc < p->act_min ? p->act_min : acc;
                    *out++ = acc > p->act_max ? p->act_max : acc;
                }
            }
        }
    }
}
