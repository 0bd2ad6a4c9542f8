#include "nn.h"
#include "requant.h"

void nn_conv_transpose_acc64_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight,
                                 const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                                 const int32_t *taps, int16_t *out)
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
        const int16_t *image = in + n * g->in_channels * plane;
        for (oc = 0; oc < g->out_channels; ++oc) {
            const int16_t *x0 = image + (oc / group_out) * group_in * plane;
            const int8_t *w0 = weight + oc * g->kernel_h * kernel_w * group_in;
            for (oy = 0; oy < g->out_h; ++oy) {
                for (ox = 0; ox < g->out_w; ++ox) {
                    int64_t acc = bias[oc];
                    for (r = row_index[oy]; r < row_index[oy + 1]; ++r) {
                        const int16_t *row = x0 + row_pairs[2 * r + 1] * g->in_w;
                        const int8_t *wr = w0 + row_pairs[2 * r] * kernel_w * group_in;
                        for (c = col_index[ox]; c < col_index[ox + 1]; ++c) {
                            const int16_t *xs = row + col_pairs[2 * c + 1];
                            const int8_t *ws = wr + col_pairs[2 * c] * group_in;
                            for (ic = 0; ic < group_in; ++ic) {
                                acc += (int64_t)xs[ic * plane] * ws[ic];
                            }
                        }
                    }
                    *out++ = nn_output64_s16(acc, multiplier[oc], shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }
}
