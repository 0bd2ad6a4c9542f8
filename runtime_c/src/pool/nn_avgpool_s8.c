#include "nn.h"
#include "requant.h"
void nn_avgpool_s8(const nn_avgpool_s8_params *p, const int8_t *in, int8_t *out)
{
    const nn_pool_params *g = &p->pool;
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < g->planes; ++c) {
        const int8_t *x = in + c * g->in_h * g->in_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                int32_t acc = 0;
                for (ky = 0; ky < g->kernel_h; ++ky) {
                    const int32_t iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
                    if (iy < 0 || iy >= g->in_h) {
                        continue;
                    }
                    for (kx = 0; kx < g->kernel_w; ++kx) {
                        const int32_t ix = ox * g->stride_w - g->pad_left + kx * g->dilation_w;
                        if (ix >= 0 && ix < g->in_w) {
                            acc += x[iy * g->in_w + ix] - p->zero_point;
                        }
                    }
                }
                {
                    const int32_t count = nn_pool_count(g, oy, ox);
                    acc = (acc >= 0 ? acc + count / 2 : acc - count / 2) / count + p->zero_point;
                    *out++ = (int8_t)nn_clamp_s32(acc, -128, 127);
                }
            }
        }
    }
}
