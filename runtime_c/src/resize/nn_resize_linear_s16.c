#include "nn.h"

void nn_resize_linear_s16(const nn_resize_linear_params *p, const int16_t *in, const int32_t *index,
                          const int32_t *weight, int16_t *out)
{
    const int32_t *y0 = index, *y1 = y0 + p->out_h, *x0 = y1 + p->out_h, *x1 = x0 + p->out_w;
    const int32_t *wy = weight, *wx = weight + p->out_h;
    const int32_t plane = p->in_h * p->in_w;
    int32_t n, oy, ox;
    for (n = 0; n < p->planes; ++n, in += plane) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int16_t *r0 = in + y0[oy] * p->in_w;
            const int16_t *r1 = in + y1[oy] * p->in_w;
            const int32_t fy = wy[oy];
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t fx = wx[ox];
                /* values as q + 32768 in [0, 65535]: every term is non-negative, the shift exact */
                const int32_t top = (r0[x0[ox]] + 32768) * (16384 - fx) + (r0[x1[ox]] + 32768) * fx;
                const int32_t bottom = (r1[x0[ox]] + 32768) * (16384 - fx) + (r1[x1[ox]] + 32768) * fx;
                const int64_t acc = (int64_t)top * (16384 - fy) + (int64_t)bottom * fy;
                *out++ = (int16_t)(((acc + ((int64_t)1 << 27)) >> 28) - 32768);
            }
        }
    }
}
