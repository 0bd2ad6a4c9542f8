#include "nn.h"

void nn_reduce_logsumexp_s8(const nn_reduce_logsumexp_s8_params *p, const int8_t *in, const int32_t *exp_table,
                            int8_t *out)
{
    const nn_reduce_params *g = &p->r;
    const int32_t run = g->inner_shape[NN_MAX_DIMS - 1];
    const int32_t step = g->inner_strides[NN_MAX_DIMS - 1];
    const int32_t rows = g->count / run;
    int32_t rows_shape[NN_MAX_DIMS], outer_idx[NN_MAX_DIMS] = {0};
    int32_t d, j, r, k, base = 0;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : g->inner_shape[d];
    }
    for (j = 0; j < g->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base, peak = in[base], sum = 0, q;
        int64_t steps;
        for (r = 0; r < rows; ++r) {
            const int8_t *x = in + at;
            for (k = 0; k < run; ++k) {
                peak = x[k * step] > peak ? x[k * step] : peak;
            }
            at = nn_next_offset(inner_idx, rows_shape, g->inner_strides, at);
        }
        for (d = 0; d < NN_MAX_DIMS; ++d) {
            inner_idx[d] = 0;
        }
        at = base;
        for (r = 0; r < rows; ++r) {
            const int8_t *x = in + at;
            for (k = 0; k < run; ++k) {
                sum += exp_table[peak - x[k * step]];
            }
            at = nn_next_offset(inner_idx, rows_shape, g->inner_strides, at);
        }
        steps = (int64_t)(peak + p->input_offset) * p->input_steps +
                ((((int64_t)nn_log2_q16(sum) - ((int64_t)p->exp_bits << 16)) * p->ln2_steps + (1 << 15)) >> 16);
        q = (int32_t)((steps + (1 << 15)) >> 16) + p->output_offset;
        out[j] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
        base = nn_next_offset(outer_idx, g->outer_shape, g->outer_strides, base);
    }
}
