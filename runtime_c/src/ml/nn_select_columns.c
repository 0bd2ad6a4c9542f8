#include <string.h>

#include "nn.h"

void nn_select_columns(const nn_select_columns_params *p, const void *in, const int32_t *index, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    int32_t r, j;
    for (r = 0; r < p->rows; ++r) {
        for (j = 0; j < p->out_cols; ++j) {
            memcpy(dst + (r * p->out_cols + j) * p->elem_size, src + (r * p->in_cols + index[j]) * p->elem_size,
                   (size_t)p->elem_size);
        }
    }
}
