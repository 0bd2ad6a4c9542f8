#include "nn.h"

void nn_conv_transpose_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                           const int32_t *taps, float *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t kernel_w = g->kernel_w;
    const int32_t *row_index = taps, *col_index = taps + g->out_h + 1;
    const int32_t *row_pairs = col_index + g->out_w + 1, *col_pairs = row_pairs + 2 * row_index[g->out_h];
    int32_t n, oc, oy, ox, ic, r, c;
    for (n = 0; n < g->batch; ++n) {
        const float *image = in + n * g->in_channels * plane;
        for (oc = 0; oc < g->out_channels; ++oc) {
            const float *x0 = image + (oc / group_out) * group_in * plane;
            const float *w0 = weight + oc * g->kernel_h * kernel_w * group_in;
            for (oy = 0; oy < g->out_h; ++oy) {
                for (ox = 0; ox < g->out_w; ++ox) {
                    float acc = bias ? bias[oc] : 0.0f;
                    for (r = row_index[oy]; r < row_index[oy + 1]; ++r) {
                        const float *row = x0 + row_pairs[2 * r + 1] * g->in_w;
                        const float *wr = w0 + row_pairs[2 * r] * kernel_w * group_in;
                        for (c = col_index[ox]; c < col_index[ox + 1]; ++c) {
                            const float *xs = row + col_pairs[2 * c + 1];
                            const float *ws = wr + col_pairs[2 * c] * group_in;
                            for (ic = 0; ic < group_in; ++ic) {
                                acc += xs[ic * plane] * ws[ic];
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
