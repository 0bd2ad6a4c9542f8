#include "nn.h"

void nn_avgpool_f32(const nn_pool_params *p, const float *in, float *out)
{
    const nn_pool_params *g = p;
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < g->planes; ++c) {
        const float *x = in + c * g->in_h * g->in_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                float acc = 0.0f;
                for (ky = 0; ky < g->kernel_h; ++ky) {
                    const int32_t iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
                    if (iy < 0 || iy >= g->in_h) {
                        continue;
                    }
                    for (kx = 0; kx < g->kernel_w; ++kx) {
                        const int32_t ix = ox * g->stride_w - g->pad_left + kx * g->dilation_w;
                        if (ix >= 0 && ix < g->in_w) {
                            acc += x[iy * g->in_w + ix];
                        }
                    }
                }
                *out++ = acc / (float)nn_pool_count(g, oy, ox);
            }
        }
    }
}
