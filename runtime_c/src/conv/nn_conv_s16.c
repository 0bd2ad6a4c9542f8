#include "nn.h"
#include "requant.h"

void nn_conv_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                 const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int16_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t positions = g->out_h * g->out_w;
    int32_t n, oc, oy, ox, ic, ky, kx, ky0, ky1, kx0, kx1;
    (void)scratch; /* the DSP kernel's columns (runtime_c/opt/dsp) */
    for (n = 0; n < g->batch; ++n) {
        const int16_t *image = in + n * g->in_channels * plane;
        int16_t *result = out + n * g->out_channels * positions;
        for (oc = 0; oc < g->out_channels; ++oc) {
            const int16_t *x0 = image + (oc / group_out) * group_in * plane;
            const int8_t *w0 = weight + oc * group_in * taps;
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t y0 = oy * g->stride_h - g->pad_top;
                nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t xs = ox * g->stride_w - g->pad_left;
                    int32_t acc = bias[oc];
                    nn_window_taps(xs, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                    for (ic = 0; ic < group_in; ++ic) {
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int16_t *row = x0 + ic * plane + (y0 + ky * g->dilation_h) * g->in_w;
                            const int8_t *wr = w0 + ic * taps + ky * g->kernel_w;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += (int32_t)row[xs + kx * g->dilation_w] * wr[kx];
                            }
                        }
                    }
                    *result++ = nn_output_s16(acc, multiplier[oc], shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }
}
