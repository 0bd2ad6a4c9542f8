#include <string.h>

#include "nn.h"

void nn_transpose(const nn_transpose_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    const int32_t e = p->elem_size;
    const int32_t n = p->shape[NN_MAX_DIMS - 1];
    const int32_t step = p->strides[NN_MAX_DIMS - 1] * e; /* bytes between a row's elements */
    int32_t rows_shape[NN_MAX_DIMS], idx[NN_MAX_DIMS] = {0};
    int32_t d, r, k, rows = 1, at = 0;
    if (p->size <= 0) {
        return;
    }
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        rows_shape[d] = d == NN_MAX_DIMS - 1 ? 1 : p->shape[d];
        rows *= rows_shape[d];
    }
    /* one output row (last dimension) at a time: a contiguous input run when the
     * permutation keeps the last axis, else a strided gather */
    for (r = 0; r < rows; ++r) {
        const uint8_t *x = src + at * e;
        if (step == e) {
            memcpy(dst, x, (size_t)(n * e));
        } else if (e == 4) {
            for (k = 0; k < n; ++k) {
                memcpy(dst + 4 * k, x + k * step, 4);
            }
        } else if (e == 1) {
            for (k = 0; k < n; ++k) {
                dst[k] = x[k * step];
            }
        } else {
            for (k = 0; k < n; ++k) {
                memcpy(dst + k * e, x + k * step, (size_t)e);
            }
        }
        dst += n * e;
        at = nn_next_offset(idx, rows_shape, p->strides, at);
    }
}
