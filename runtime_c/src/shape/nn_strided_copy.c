#include <string.h>

#include "nn.h"

void nn_strided_copy(const nn_strided_copy_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    const int32_t e = p->elem_size;
    const int32_t n = p->shape[NN_VIEW_DIMS - 1];
    const int32_t step = p->strides[NN_VIEW_DIMS - 1]; /* elements between a row's elements */
    int32_t idx[NN_VIEW_DIMS] = {0};
    int32_t d, r, k, rows = 1, at = p->offset;
    if (p->size <= 0) {
        return;
    }
    for (d = 0; d < NN_VIEW_DIMS - 1; ++d) {
        rows *= p->shape[d];
    }
    /* one output row (last dimension) at a time; `at` is the element its first value copies */
    for (r = 0; r < rows; ++r) {
        const uint8_t *x = src + at * e;
        if (step == 1) {
            memcpy(dst, x, (size_t)(n * e));
        } else if (e == 1) {
            for (k = 0; k < n; ++k) {
                dst[k] = x[k * step];
            }
        } else if (e == 4) {
            for (k = 0; k < n; ++k) {
                memcpy(dst + 4 * k, x + k * step * 4, 4);
            }
        } else {
            for (k = 0; k < n; ++k) {
                memcpy(dst + k * e, x + k * step * e, (size_t)e);
            }
        }
        dst += n * e;
        for (d = NN_VIEW_DIMS - 2; d >= 0; --d) {
            at += p->strides[d];
            if (++idx[d] < p->shape[d]) {
                break;
            }
            at -= p->strides[d] * p->shape[d];
            idx[d] = 0;
        }
    }
}
