/*
 * The body of the portable int16 transposed convolution, written once for nn_conv_transpose_s16 (int32
 * accumulator) and nn_conv_transpose_acc64_s16 (int64). Each of the two .c files defines, after including
 * nn.h and requant.h,
 *     NN_S16_ACC     the accumulator type: int32_t or int64_t
 *     NN_S16_OUTPUT  the output step for it: nn_output_s16 or nn_output64_s16
 * then includes this file as the whole body of its public function, whose parameters it reads by
 * name. No include guard: every kernel includes it once; it undefines the two macros at its end.
 */

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
                    NN_S16_ACC acc = bias[oc];
                    for (r = row_index[oy]; r < row_index[oy + 1]; ++r) {
                        const int16_t *row = x0 + row_pairs[2 * r + 1] * g->in_w;
                        const int8_t *wr = w0 + row_pairs[2 * r] * kernel_w * group_in;
                        for (c = col_index[ox]; c < col_index[ox + 1]; ++c) {
                            const int16_t *xs = row + col_pairs[2 * c + 1];
                            const int8_t *ws = wr + col_pairs[2 * c] * group_in;
                            for (ic = 0; ic < group_in; ++ic) {
                                acc += (NN_S16_ACC)xs[ic * plane] * ws[ic];
                            }
                        }
                    }
                    *out++ = NN_S16_OUTPUT(acc, multiplier[oc], shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }

#undef NN_S16_ACC
#undef NN_S16_OUTPUT
