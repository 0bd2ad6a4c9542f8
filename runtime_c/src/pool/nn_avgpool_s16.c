#include "nn.h"
#include "requant.h"

void nn_avgpool_s16(const nn_pool_params *p, const int16_t *in, int16_t *out)
{
    const nn_pool_params *g = p;
    int32_t c, oy, ox, ky, kx, ky0, ky1, kx0, kx1;
    for (c = 0; c < g->planes; ++c) {
        const int16_t *x = in + c * g->in_h * g->in_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            const int32_t y0 = oy * g->stride_h - g->pad_top;
            nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
            for (ox = 0; ox < g->out_w; ++ox) {
                const int32_t x0 = ox * g->stride_w - g->pad_left;
                int32_t acc = 0, count;
                nn_window_taps(x0, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
                for (ky = ky0; ky < ky1; ++ky) {
                    const int16_t *row = x + (y0 + ky * g->dilation_h) * g->in_w;
                    for (kx = kx0; kx < kx1; ++kx) {
                        acc += row[x0 + kx * g->dilation_w];
                    }
                }
                count = nn_pool_count(g, oy, ox);
                acc = (acc >= 0 ? acc + count / 2 : acc - count / 2) / count;
                *out++ = (int16_t)nn_clamp_s32(acc, -32768, 32767);
            }
        }
    }
}
