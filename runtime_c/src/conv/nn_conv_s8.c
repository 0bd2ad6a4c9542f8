#include "nn.h"
#include "nn_im2col.h"
#include "requant.h"

/* every output channel of a group at one position, from the window copied into col */
static void nn_conv_column_s8(const nn_conv_s8_params *p, const int16_t *col, int32_t k_size, const int8_t *weight,
                              const int32_t *bias, const int32_t *multiplier, const int8_t *shift, int32_t oc0,
                              int32_t oc1, int32_t positions, int8_t *out)
{
    int32_t oc, k;
    for (oc = oc0; oc < oc1; ++oc) {
        const int8_t *w = weight + oc * k_size;
        int32_t acc = bias[oc];
        for (k = 0; k < k_size; ++k) {
            acc += w[k] * col[k];
        }
        out[oc * positions] = nn_output_s8(acc, multiplier[oc], shift[oc], p->output_offset, p->act_min, p->act_max);
    }
}

void nn_conv_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t positions = g->out_h * g->out_w;
    int32_t n, oc, oy, ox, ic, ky, kx, ky0, ky1, kx0, kx1, grp;
    for (n = 0; n < g->batch; ++n) {
        const int8_t *image = in + n * g->in_channels * plane;
        int8_t *result = out + n * g->out_channels * positions;
        if (scratch) {
            for (grp = 0; grp < g->groups; ++grp) {
                for (oy = 0; oy < g->out_h; ++oy) {
                    for (ox = 0; ox < g->out_w; ++ox) {
                        nn_im2col_s16(g, image + grp * group_in * plane, group_in, oy, ox, p->input_offset, scratch);
                        nn_conv_column_s8(p, scratch, group_in * taps, weight, bias, multiplier, shift,
                                          grp * group_out, (grp + 1) * group_out, positions,
                                          result + oy * g->out_w + ox);
                    }
                }
            }
            continue;
        }
        for (oc = 0; oc < g->out_channels; ++oc) {
            const int8_t *x0 = image + (oc / group_out) * group_in * plane;
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
                            const int8_t *row = x0 + ic * plane + (y0 + ky * g->dilation_h) * g->in_w;
                            const int8_t *wr = w0 + ic * taps + ky * g->kernel_w;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += (row[xs + kx * g->dilation_w] + p->input_offset) * wr[kx];
                            }
                        }
                    }
                    *result++ = nn_output_s8(acc, multiplier[oc], shift[oc], p->output_offset, p->act_min,
                                             p->act_max);
                }
            }
        }
    }
}
