#include <string.h>

#include "nn.h"

void nn_gather(const nn_gather_params *p, const void *data, const int32_t *indices, void *out)
{
    const uint8_t *src = (const uint8_t *)data;
    uint8_t *dst = (uint8_t *)out;
    const int32_t n = p->rows, row = p->row_bytes;
    int32_t o, j;
    for (o = 0; o < p->outer; ++o) {
        const uint8_t *block = src + o * n * row;
        for (j = 0; j < p->count; ++j) {
            int32_t i = indices[j];
            if (i < 0) {
                i = i < -n ? 0 : i + n;
            } else if (i >= n) {
                i = n - 1;
            }
            memcpy(dst, block + i * row, (size_t)row);
            dst += row;
        }
    }
}
