/* One column of a convolution: the window under one output position as int16. Used by the
 * int8 convolution kernels (portable and optimized), not part of the public API. */
#ifndef NN_IM2COL_H
#define NN_IM2COL_H

#include <stdint.h>
#include <string.h>

#include "nn_conv.h"
#include "nn_index.h"

/*
 * col[k] for k = (ic * kernel_h + ky) * kernel_w + kx, ic in [0, channels):
 *     x[ic, oy * stride_h - pad_top + ky * dilation_h, ox * stride_w - pad_left + kx * dilation_w]
 *     + input_offset, or 0 where that position is padding.
 * x points at the first of the group's `channels` input planes (in_h x in_w each).
 */
static inline void nn_im2col_s16(const nn_conv_geometry *g, const int8_t *x, int32_t channels, int32_t oy,
                                 int32_t ox, int32_t input_offset, int16_t *col)
{
    const int32_t plane = g->in_h * g->in_w;
    const int32_t y0 = oy * g->stride_h - g->pad_top;
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    int32_t ic, ky, kx, ky0, ky1, kx0, kx1;
    if (g->kernel_h == 1 && g->kernel_w == 1 && y0 >= 0 && y0 < g->in_h && x0 >= 0 && x0 < g->in_w) {
        const int8_t *src = x + y0 * g->in_w + x0;
        for (ic = 0; ic < channels; ++ic) {
            col[ic] = (int16_t)(src[ic * plane] + input_offset);
        }
        return;
    }
    nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
    nn_window_taps(x0, g->kernel_w, g->dilation_w, g->in_w, &kx0, &kx1);
    if (ky0 == 0 && ky1 == g->kernel_h && kx0 == 0 && kx1 == g->kernel_w) { /* wholly inside */
        const int32_t row_step = g->dilation_h * g->in_w;
        const int8_t *r = x + y0 * g->in_w + x0;
        for (ic = 0; ic < channels; ++ic, r += plane) {
            const int8_t *row = r;
            for (ky = 0; ky < g->kernel_h; ++ky, row += row_step) {
                if (g->dilation_w == 1) {
                    for (kx = 0; kx < g->kernel_w; ++kx) {
                        *col++ = (int16_t)(row[kx] + input_offset);
                    }
                } else {
                    for (kx = 0; kx < g->kernel_w; ++kx) {
                        *col++ = (int16_t)(row[kx * g->dilation_w] + input_offset);
                    }
                }
            }
        }
        return;
    }
    for (ic = 0; ic < channels; ++ic) {
        for (ky = 0; ky < g->kernel_h; ++ky) {
            if (ky < ky0 || ky >= ky1) {
                memset(col, 0, (size_t)g->kernel_w * sizeof(int16_t));
            } else {
                const int8_t *row = x + ic * plane + (y0 + ky * g->dilation_h) * g->in_w + x0;
                for (kx = 0; kx < kx0; ++kx) {
                    col[kx] = 0;
                }
                for (; kx < kx1; ++kx) {
                    col[kx] = (int16_t)(row[kx * g->dilation_w] + input_offset);
                }
                for (; kx < g->kernel_w; ++kx) {
                    col[kx] = 0;
                }
            }
            col += g->kernel_w;
        }
    }
}

#endif /* NN_IM2COL_H */
