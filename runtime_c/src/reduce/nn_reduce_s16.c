#include "nn.h"
#include "requant.h"

void nn_reduce_s16(const nn_reduce_s16_params *p, const int16_t *in, int16_t *out)
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
        int32_t at = base;
        int32_t acc = p->op == NN_REDUCE_MAX || p->op == NN_REDUCE_MIN ? in[base] : 0;
        int64_t squares = 0;
        for (r = 0; r < rows; ++r) {
            const int16_t *x = in + at;
            switch (p->op) {
            case NN_REDUCE_MAX:
                for (k = 0; k < run; ++k) {
                    acc = x[k * step] > acc ? x[k * step] : acc;
                }
                break;
            case NN_REDUCE_MIN:
                for (k = 0; k < run; ++k) {
                    acc = x[k * step] < acc ? x[k * step] : acc;
                }
                break;
            case NN_REDUCE_L1:
                for (k = 0; k < run; ++k) {
                    acc += x[k * step] < 0 ? -x[k * step] : x[k * step];
                }
                break;
            case NN_REDUCE_SUMSQUARE:
                for (k = 0; k < run; ++k) {
                    squares += (int32_t)x[k * step] * x[k * step];
                }
                break;
            default:
                for (k = 0; k < run; ++k) {
                    acc += x[k * step];
                }
                break;
            }
            at = nn_next_offset(inner_idx, rows_shape, g->inner_strides, at);
        }
        out[j] = p->op == NN_REDUCE_SUMSQUARE ? nn_output64_s16(squares, p->multiplier, p->shift, -32768, 32767)
                                              : nn_output_s16(acc, p->multiplier, p->shift, -32768, 32767);
        base = nn_next_offset(outer_idx, g->outer_shape, g->outer_strides, base);
    }
}
