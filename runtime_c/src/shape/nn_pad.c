#include <string.h>

#include "nn.h"

void nn_pad(const nn_pad_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    const int32_t e = p->elem_size;
    const int32_t row = p->in_shape[NN_MAX_DIMS - 1] * e;
    int32_t out_strides[NN_MAX_DIMS], rows_shape[NN_MAX_DIMS], idx[NN_MAX_DIMS] = {0};
    int32_t d, i, out_size = 1, rows = 1, at = 0;
    for (d = NN_MAX_DIMS - 1; d >= 0; --d) {
        out_strides[d] = out_size;
        out_size *= p->out_shape[d];
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : p->in_shape[d];
        rows *= rows_shape[d];
    }
    for (i = 0; i < out_size; ++i) {
        memcpy(dst + i * e, p->value, (size_t)e);
    }
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        at += p->begin[d] * out_strides[d];
    }
    /* one input row (last dimension) at a time */
    for (i = 0; i < rows && row > 0; ++i) {
        memcpy(dst + at * e, src + i * row, (size_t)row);
        at = nn_next_offset(idx, rows_shape, out_strides, at);
    }
}
