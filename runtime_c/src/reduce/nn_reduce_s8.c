#include "nn.h"
#include "requant.h"

/* sqrt(s) * 2^14 rounded, for 0 <= s < 2^31: s / sqrt(s) through the fixed-point inverse square root */
static int32_t root_q14(int32_t s)
{
    int32_t e, y;
    if (s == 0) {
        return 0;
    }
    y = nn_inv_sqrt(s, &e); /* e >= 30 */
    return (int32_t)(((int64_t)s * y + ((int64_t)1 << (e - 15))) >> (e - 14));
}

void nn_reduce_s8(const nn_reduce_s8_params *p, const int8_t *in, int8_t *out)
{
    const nn_reduce_params *g = &p->r;
    const int32_t run = g->inner_shape[NN_MAX_DIMS - 1];
    const int32_t step = g->inner_strides[NN_MAX_DIMS - 1];
    const int32_t rows = g->count / run;
    const int32_t off = p->input_offset;
    int32_t rows_shape[NN_MAX_DIMS], outer_idx[NN_MAX_DIMS] = {0};
    int32_t d, j, r, k, base = 0;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : g->inner_shape[d];
    }
    for (j = 0; j < g->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base;
        int32_t acc = p->op == NN_REDUCE_MAX || p->op == NN_REDUCE_MIN ? in[base] : 0;
        for (r = 0; r < rows; ++r) {
            const int8_t *x = in + at;
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
                    const int32_t v = x[k * step] + off;
                    acc += v < 0 ? -v : v;
                }
                break;
            case NN_REDUCE_SUMSQUARE:
            case NN_REDUCE_L2:
                for (k = 0; k < run; ++k) {
                    const int32_t v = x[k * step] + off;
                    acc += v * v;
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
        /* the offset once per box: the extremes commute with it, the sum adds it count times */
        if (p->op == NN_REDUCE_MAX || p->op == NN_REDUCE_MIN) {
            acc += off;
        } else if (p->op == NN_REDUCE_MEAN || p->op == NN_REDUCE_SUM) {
            acc += off * g->count;
        } else if (p->op == NN_REDUCE_L2) {
            acc = root_q14(acc);
        }
        out[j] = nn_output_s8(acc, p->multiplier, p->shift, p->output_offset, -128, 127);
        base = nn_next_offset(outer_idx, g->outer_shape, g->outer_strides, base);
    }
}
