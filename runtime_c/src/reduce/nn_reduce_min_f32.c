#include "nn.h"

void nn_reduce_min_f32(const nn_reduce_params *p, const float *in, float *out)
{
    const int32_t run = p->inner_shape[NN_MAX_DIMS - 1];
    const int32_t step = p->inner_strides[NN_MAX_DIMS - 1];
    const int32_t rows = p->count / run;
    int32_t rows_shape[NN_MAX_DIMS], outer_idx[NN_MAX_DIMS] = {0};
    int32_t d, j, r, k, base = 0;
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : p->inner_shape[d];
    }
    for (j = 0; j < p->out_size; ++j) {
        int32_t inner_idx[NN_MAX_DIMS] = {0};
        int32_t at = base;
        float acc = in[base];
        for (r = 0; r < rows; ++r) {
            const float *x = in + at;
            for (k = 0; k < run; ++k) {
                const float v = x[k * step];
                acc = v < acc ? v : acc;
            }
            at = nn_next_offset(inner_idx, rows_shape, p->inner_strides, at);
        }
        out[j] = acc;
        base = nn_next_offset(outer_idx, p->outer_shape, p->outer_strides, base);
    }
}
