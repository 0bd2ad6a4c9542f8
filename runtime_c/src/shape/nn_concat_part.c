#include <string.h>

#include "nn.h"

void nn_concat_part(const nn_concat_part_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out + p->offset;
    int32_t o;
    for (o = 0; o < p->outer; ++o) {
        memcpy(dst + o * p->out_block, src + o * p->in_block, (size_t)p->in_block);
    }
}
