#include "nn.h"
#include "requant.h"

void nn_reduce_s8(const nn_reduce_s8_params *p, const int8_t *in, int8_t *out)
{
    const nn_reduce_params *g = &p->r;
    const int32_t run = g->inner_shape[NN_MAX_DIMS - 1];
    const int32_t step = g->inner_strides[NN_MAX_DIMS - 1];
    const int32_t rows = g->count / run;
    const int32_t is_max = p->op == NN_REDUCE_MAX;
    int32_t rows_shape[NN_MAX_DIMS], outer_idx[NN_MAX_DIMS] = {0};
    int32_t d, j, r, k, base = 0;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : g->inner_shape[d];
    }
    for (j = 0; j < g->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base;
        int32_t acc = is_max ? in[base] : 0;
        for (r = 0; r < rows; ++r) {
            const int8_t *x = in + at;
            if (is_max) {
                for (k = 0; k < run; ++k) {
                    acc = x[k * step] > acc ? x[k * step] : acc;
                }
            } else {
                for (k = 0; k < run; ++k) {
                    acc += x[k * step];
                }
            }
            at = nn_next_offset(inner_idx, rows_shape, g->inner_strides, at);
        }
        /* the offset once per box: the maximum commutes with it, the sum adds it count times */
        acc += is_max ? p->input_offset : p->input_offset * g->count;
        out[j] = nn_output_s8(acc, p->multiplier, p->shift, p->output_offset, -128, 127);
        base = nn_next_offset(outer_idx, g->outer_shape, g->outer_strides, base);
    }
}
