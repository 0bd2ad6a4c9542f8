#include <string.h>

#include "nn.h"

void nn_resize_nearest(const nn_resize_nearest_params *p, const void *in, const int32_t *index, void *out)
{
    const int32_t *i0 = index;
    const int32_t *i1 = i0 + p->out_shape[0];
    const int32_t *i2 = i1 + p->out_shape[1];
    const int32_t *i3 = i2 + p->out_shape[2];
    const size_t s2 = (size_t)p->in_shape[3];
    const size_t s1 = (size_t)p->in_shape[2] * s2;
    const size_t s0 = (size_t)p->in_shape[1] * s1;
    const size_t size = (size_t)p->elem_size;
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    int32_t a, b, c, d;
    for (a = 0; a < p->out_shape[0]; ++a) {
        for (b = 0; b < p->out_shape[1]; ++b) {
            for (c = 0; c < p->out_shape[2]; ++c) {
                const uint8_t *row = src + ((size_t)i0[a] * s0 + (size_t)i1[b] * s1 + (size_t)i2[c] * s2) * size;
                if (size == 1) {
                    for (d = 0; d < p->out_shape[3]; ++d) {
                        *dst++ = row[i3[d]];
                    }
                } else {
                    for (d = 0; d < p->out_shape[3]; ++d, dst += size) {
                        memcpy(dst, row + (size_t)i3[d] * size, size);
                    }
                }
            }
        }
    }
}
