/*
 * The body of the portable int16 fully connected layer, written once for nn_fc_s16 (int32
 * accumulator) and nn_fc_acc64_s16 (int64). Each of the two .c files defines, after including
 * nn.h and requant.h,
 *     NN_S16_ACC     the accumulator type: int32_t or int64_t
 *     NN_S16_OUTPUT  the output step for it: nn_output_s16 or nn_output64_s16
 * then includes this file as the whole body of its public function, whose parameters it reads by
 * name. No include guard: every kernel includes it once; it undefines the two macros at its end.
 */

    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = in + r * p->in_row_stride;
        int16_t *y = out + r * p->out_row_stride;
        for (n = 0; n < p->out_features; ++n) {
            const int8_t *w = weight + n * p->in_features;
            NN_S16_ACC acc = bias[n];
            for (k = 0; k < p->in_features; ++k) {
                acc += (NN_S16_ACC)x[k * p->in_col_stride] * w[k];
            }
            y[n * p->out_col_stride] = NN_S16_OUTPUT(acc, multiplier[n], shift[n], p->act_min, p->act_max);
        }
    }

#undef NN_S16_ACC
#undef NN_S16_OUTPUT
