/*
 * The body of the int16 fully connected layer for cores with the DSP extension
 * (runtime_c/opt/dsp), written once for nn_fc_s16 (int32 accumulator, SMLAD) and
 * nn_fc_acc64_s16 (int64, SMLALD).
 *
 * Where the input row is contiguous, four inputs at a time go into two dual 16-bit
 * multiply-accumulates against a word of four weights split by SXTB16 (nn_dsp_s16.h). Weight
 * words are loaded aligned when the table and the row length allow it, else from bytes
 * (requant_dsp.h): never an unaligned access. Integer sums in another order: the portable
 * kernel's result bit for bit.
 *
 * Each of the two .c files defines, after including nn.h, nn_dsp_s16.h, requant.h and
 * requant_dsp.h,
 *     NN_S16_ACC     the accumulator type: int32_t or int64_t
 *     NN_S16_DOT4    the step on it: nn_dsp_s16_dot4 or nn_dsp_s16_dot4_64
 *     NN_S16_OUTPUT  the output step for it: nn_output_s16 or nn_output64_s16
 * then includes this file as the whole body of its public function, whose parameters it reads by
 * name. No include guard: every kernel includes it once; it undefines the three macros at its end.
 */

    const int32_t k_size = p->in_features;
    const int32_t k4 = k_size & ~3;
    const int32_t rows_aligned = ((uintptr_t)weight & 3u) == 0 && (k_size & 3) == 0;
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = in + r * p->in_row_stride;
        int16_t *y = out + r * p->out_row_stride;
        const int32_t x_aligned = ((uintptr_t)x & 3u) == 0;
        for (n = 0; n < p->out_features; ++n) {
            const int8_t *w = weight + n * k_size;
            NN_S16_ACC acc = bias[n];
            if (p->in_col_stride == 1) {
                for (k = 0; k < k4; k += 4) {
                    int32_t x02, x13;
                    const int32_t ww = rows_aligned ? nn_load32_aligned(w + k) : nn_load32_any(w + k);
                    nn_dsp_s16_pairs(x + k, x_aligned, &x02, &x13);
                    acc = NN_S16_DOT4(acc, ww, x02, x13);
                }
                for (k = k4; k < k_size; ++k) {
                    acc += (NN_S16_ACC)x[k] * w[k];
                }
            } else {
                for (k = 0; k < k_size; ++k) {
                    acc += (NN_S16_ACC)x[k * p->in_col_stride] * w[k];
                }
            }
            y[n * p->out_col_stride] = NN_S16_OUTPUT(acc, multiplier[n], shift[n], p->act_min, p->act_max);
        }
    }

#undef NN_S16_ACC
#undef NN_S16_DOT4
#undef NN_S16_OUTPUT
