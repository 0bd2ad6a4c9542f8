#include "nn.h"
#include "requant.h"

void nn_reduce_s8(const nn_reduce_s8_params *p, const int8_t *in, int8_t *out)
{
    const nn_reduce_params *r = &p->r;
    int32_t outer_idx[NN_MAX_DIMS] = {0};
    int32_t j, k, base = 0;
    for (j = 0; j < r->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base;
        int32_t acc = in[base] + p->input_offset;
        for (k = 1; k < r->count; ++k) {
            const int32_t x = in[at = nn_next_offset(inner_idx, r->inner_shape, r->inner_strides, at)] + p->input_offset;
            if (r->op == NN_REDUCE_MAX) {
                acc = x > acc ? x : acc;
            } else {
                acc += x;
            }
        }
        acc = nn_requantize(acc, p->multiplier, p->shift) + p->output_offset;
        out[j] = (int8_t)nn_clamp_s32(acc, -128, 127);
        base = nn_next_offset(outer_idx, r->outer_shape, r->outer_strides, base);
    }
}
