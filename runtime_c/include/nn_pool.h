/* Pooling: MaxPool, AveragePool and the global pools (a window the size of the input).
 * 1-D pools are the 2-D ones with H = 1. Included by nn.h. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <stdint.h>

/*
 * in [planes, in_h, in_w], out [planes, out_h, out_w] (planes = batch * channels).
 * Window (oy, ox) covers rows oy * stride_h - pad_top + ky * dilation_h (ky < kernel_h), and
 * likewise columns. Max: the largest value of the window inside the input. Average: the
 * sum of the values inside the input over a count of window cells: those inside the input,
 * or with count_include_pad = 1 those inside the padded input [-pad_top, in_h + pad_bottom)
 * x [-pad_left, in_w + pad_right) (cells past it, made by ceil_mode, never count).
 * `in` and `out` must not overlap.
 */
typedef struct {
    int32_t planes;
    int32_t in_h;
    int32_t in_w;
    int32_t out_h;
    int32_t out_w;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t pad_bottom;
    int32_t pad_right;
    int32_t count_include_pad;
} nn_pool_params;

void nn_maxpool_f32(const nn_pool_params *p, const float *in, float *out);
void nn_avgpool_f32(const nn_pool_params *p, const float *in, float *out);

/* int8 (the output keeps the input's scale and zero point): max as above; average is
 * zero_point + round((sum of (in - zero_point) inside the input) / count), half away from zero. */
typedef struct {
    nn_pool_params pool;
    int32_t zero_point;
} nn_avgpool_s8_params;

void nn_maxpool_s8(const nn_pool_params *p, const int8_t *in, int8_t *out);
void nn_avgpool_s8(const nn_avgpool_s8_params *p, const int8_t *in, int8_t *out);

/* int16 (symmetric, zero point 0; the output keeps the input's scale): max as above; average is
 * round((sum of the values inside the input) / count), half away from zero, the sum in int32
 * (the compiler refuses windows of more than 65535 cells, so it cannot overflow). */
void nn_maxpool_s16(const nn_pool_params *p, const int16_t *in, int16_t *out);
void nn_avgpool_s16(const nn_pool_params *p, const int16_t *in, int16_t *out);

/* Cells of window (oy, ox) that count in an average (shared by the average kernels). */
static inline int32_t nn_pool_count(const nn_pool_params *p, int32_t oy, int32_t ox)
{
    const int32_t lo_h = p->count_include_pad ? -p->pad_top : 0;
    const int32_t hi_h = p->count_include_pad ? p->in_h + p->pad_bottom : p->in_h;
    const int32_t lo_w = p->count_include_pad ? -p->pad_left : 0;
    const int32_t hi_w = p->count_include_pad ? p->in_w + p->pad_right : p->in_w;
    int32_t k, rows = 0, cols = 0;
    for (k = 0; k < p->kernel_h; ++k) {
        const int32_t y = oy * p->stride_h - p->pad_top + k * p->dilation_h;
        rows += y >= lo_h && y < hi_h;
    }
    for (k = 0; k < p->kernel_w; ++k) {
        const int32_t x = ox * p->stride_w - p->pad_left + k * p->dilation_w;
        cols += x >= lo_w && x < hi_w;
    }
    return rows * cols;
}

#endif /* NN_POOL_H */
