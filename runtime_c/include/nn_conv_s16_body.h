/*
 * The body of the portable int16 convolution, written once for nn_conv_s16 (int32
 * accumulator) and nn_conv_acc64_s16 (int64). Each of the two .c files defines, after including
 * nn.h and requant.h,
 *     NN_S16_ACC     the accumulator type: int32_t or int64_t
 *     NN_S16_OUTPUT  the output step for it: nn_output_s16 or nn_output64_s16
 * then includes this file as the whole body of its public function, whose parameters it reads by
 * name. No include guard: every kernel includes it once; it undefines the two macros at its end.
 */

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
                    NN_S16_ACC acc = bias[oc];
                    nn_window_taps(xs, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                    for (ic = 0; ic < group_in; ++ic) {
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int16_t *row = x0 + ic * plane + (y0 + ky * g->dilation_h) * g->in_w;
                            const int8_t *wr = w0 + ic * taps + ky * g->kernel_w;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += (NN_S16_ACC)row[xs + kx * g->dilation_w] * wr[kx];
                            }
                        }
                    }
                    *result++ = NN_S16_OUTPUT(acc, multiplier[oc], shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }

#undef NN_S16_ACC
#undef NN_S16_OUTPUT
