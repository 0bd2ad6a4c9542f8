#include "nn.h"

void nn_reduce_f32(const nn_reduce_params *p, const float *in, float *out)
{
    int32_t outer_idx[NN_MAX_DIMS] = {0};
    int32_t j, k, base = 0;
    for (j = 0; j < p->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base;
        float acc = in[base];
        for (k = 1; k < p->count; ++k) {
            at = nn_next_offset(inner_idx, p->inner_shape, p->inner_strides, at);
            if (p->op == NN_REDUCE_MAX) {
                acc = in[at] > acc ? in[at] : acc;
            } else {
                acc += in[at];
            }
        }
        out[j] = p->op == NN_REDUCE_MEAN ? acc / (float)p->count : acc;
        base = nn_next_offset(outer_idx, p->outer_shape, p->outer_strides, base);
    }
}
