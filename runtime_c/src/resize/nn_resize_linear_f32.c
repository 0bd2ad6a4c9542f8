#include "nn.h"

void nn_resize_linear_f32(const nn_resize_linear_params *p, const float *in, const int32_t *index, const float *weight,
                          float *out)
{
    const int32_t *y0 = index, *y1 = y0 + p->out_h, *x0 = y1 + p->out_h, *x1 = x0 + p->out_w;
    const float *wy = weight, *wx = weight + p->out_h;
    const int32_t plane = p->in_h * p->in_w;
    int32_t n, oy, ox;
    for (n = 0; n < p->planes; ++n, in += plane) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const float *r0 = in + y0[oy] * p->in_w;
            const float *r1 = in + y1[oy] * p->in_w;
            const float fy = wy[oy];
            for (ox = 0; ox < p->out_w; ++ox) {
                const float fx = wx[ox];
                const float top = r0[x0[ox]] * (1.0f - fx) + r0[x1[ox]] * fx;
                const float bottom = r1[x0[ox]] * (1.0f - fx) + r1[x1[ox]] * fx;
                *out++ = top * (1.0f - fy) + bottom * fy;
            }
        }
    }
}
