/*
 * The body of the int16 convolution for cores with the DSP extension (runtime_c/opt/dsp),
 * written once for nn_conv_s16 (int32 accumulator, SMLAD) and nn_conv_acc64_s16 (int64, SMLALD).
 *
 * Each window is copied into an int16 column in scratch (0 in the padding), for K = in_channels
 * / groups * kernel_h * kernel_w and K4 = K & ~3 laid out as
 *     for each group of taps k..k+3 below K4:  x[k] x[k+2] x[k+1] x[k+3]
 *     then for each tap k in [K4, K):          x[k]
 * so that every two words of it are the activation pairs of a word of four weights
 * (nn_dsp_s16.h); two output channels at a time then share each word of the column, two dual
 * 16-bit multiply-accumulates per four weights of each. Weight words are loaded aligned when the
 * table and K allow it, else from bytes (requant_dsp.h). Integer sums in another order: the
 * portable kernel's result bit for bit. scratch: K int16 rounded up to even, 4-byte aligned
 * (never NULL: the compiler asks for it on DSP cores, ops/conv.py).
 *
 * Each of the two .c files defines, after including nn.h, nn_dsp_s16.h, requant.h and
 * requant_dsp.h,
 *     NN_S16_ACC     the accumulator type: int32_t or int64_t
 *     NN_S16_DOT4    the step on it: nn_dsp_s16_dot4 or nn_dsp_s16_dot4_64
 *     NN_S16_OUTPUT  the output step for it: nn_output_s16 or nn_output64_s16
 * then includes this file as the whole body of its public function, whose parameters it reads by
 * name. No include guard: every kernel includes it once; it undefines the three macros at its end.
 */

    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t k_size = group_in * taps;
    const int32_t k4 = k_size & ~3;
    const int32_t rows_aligned = ((uintptr_t)weight & 3u) == 0 && (k_size & 3) == 0;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t positions = g->out_h * g->out_w;
    int32_t n, grp, oc, oy, ox, ic, ky, kx, k;
    for (n = 0; n < g->batch; ++n) {
        const int16_t *image = in + n * g->in_channels * plane;
        int16_t *result = out + n * g->out_channels * positions;
        for (grp = 0; grp < g->groups; ++grp) {
            const int16_t *x0 = image + grp * group_in * plane;
            const int32_t oc1 = (grp + 1) * group_out;
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t ys = oy * g->stride_h - g->pad_top;
                for (ox = 0; ox < g->out_w; ++ox) {
                    const int32_t xs = ox * g->stride_w - g->pad_left;
                    int16_t *y = result + oy * g->out_w + ox;
                    k = 0;
                    for (ic = 0; ic < group_in; ++ic) {
                        for (ky = 0; ky < g->kernel_h; ++ky) {
                            const int32_t iy = ys + ky * g->dilation_h;
                            const int32_t row = ic * plane + iy * g->in_w; /* read only when iy is inside */
                            const int32_t inside = iy >= 0 && iy < g->in_h;
                            for (kx = 0; kx < g->kernel_w; ++kx, ++k) {
                                const int32_t ix = xs + kx * g->dilation_w;
                                /* the column's place of tap k: x[k] x[k+2] x[k+1] x[k+3] below K4 */
                                const int32_t at = k < k4 ? (k & ~3) | ((k & 1) << 1) | ((k & 2) >> 1) : k;
                                scratch[at] = (int16_t)(inside && ix >= 0 && ix < g->in_w ? x0[row + ix] : 0);
                            }
                        }
                    }
                    for (oc = grp * group_out; oc < oc1; oc += 2) {
                        const int8_t *w0 = weight + oc * k_size;
                        const int32_t pair = oc + 1 < oc1;
                        const int8_t *w1 = pair ? w0 + k_size : w0; /* a last channel alone: with itself */
                        NN_S16_ACC a0 = bias[oc], a1 = bias[pair ? oc + 1 : oc];
                        /* a0, a1 += the first k4 taps of the column times rows w0, w1 */
                        NN_S16_ACC s0 = a0, s1 = a1;
                        if (rows_aligned) {
                            for (k = 0; k < k4; k += 4) {
                                const int32_t x02 = nn_load32_aligned(scratch + k);
                                const int32_t x13 = nn_load32_aligned(scratch + k + 2);
                                s0 = NN_S16_DOT4(s0, nn_load32_aligned(w0 + k), x02, x13);
                                s1 = NN_S16_DOT4(s1, nn_load32_aligned(w1 + k), x02, x13);
                            }
                        } else {
                            for (k = 0; k < k4; k += 4) {
                                const int32_t x02 = nn_load32_aligned(scratch + k);
                                const int32_t x13 = nn_load32_aligned(scratch + k + 2);
                                s0 = NN_S16_DOT4(s0, nn_load32_any(w0 + k), x02, x13);
                                s1 = NN_S16_DOT4(s1, nn_load32_any(w1 + k), x02, x13);
                            }
                        }
                        a0 = s0;
                        a1 = s1;
                        for (k = k4; k < k_size; ++k) {
                            a0 += (NN_S16_ACC)scratch[k] * w0[k];
                            a1 += (NN_S16_ACC)scratch[k] * w1[k];
                        }
                        y[oc * positions] = NN_S16_OUTPUT(a0, multiplier[oc], shift[oc], p->act_min, p->act_max);
                        if (pair) {
                            y[(oc + 1) * positions] = NN_S16_OUTPUT(a1, multiplier[oc + 1], shift[oc + 1], p->act_min,
                                                                    p->act_max);
                        }
                    }
                }
            }
        }
    }

#undef NN_S16_ACC
#undef NN_S16_DOT4
#undef NN_S16_OUTPUT
