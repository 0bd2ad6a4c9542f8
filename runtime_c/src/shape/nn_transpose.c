#include <string.h>

#include "nn.h"

void nn_transpose(const nn_transpose_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    int32_t idx[NN_MAX_DIMS] = {0};
    int32_t i, at = 0;
    for (i = 0; i < p->size; ++i) {
        memcpy(dst + i * p->elem_size, src + at * p->elem_size, (size_t)p->elem_size);
        at = nn_next_offset(idx, p->shape, p->strides, at);
    }
}
