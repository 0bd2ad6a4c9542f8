/* Convolution (Conv, 1-D as H = 1, 2-D), grouped and depthwise. Included by nn.h. */
#ifndef NN_CONV_H
#define NN_CONV_H

#include <stdint.h>

/*
 * Shapes, all NCHW: in [batch, in_channels, in_h, in_w], out [batch, out_channels, out_h, out_w],
 * all sizes >= 1, groups >= 1 dividing in_channels and out_channels, kernel_h/w, stride_h/w and
 * dilation_h/w >= 1 (a 1-D convolution has in_h = out_h = kernel_h = 1, pad_top = 0),
 * weight [out_channels, in_channels / groups, kernel_h, kernel_w] (row-major),
 * bias [out_channels] (float: may be NULL).
 * out[n, oc, oy, ox] = bias[oc] + sum over ic in oc's group, ky, kx of
 *     in[n, ic, oy * stride_h - pad_top + ky * dilation_h, ox * stride_w - pad_left + kx * dilation_w]
 *     * weight[oc, ic - group_start, ky, kx]
 * where ic runs over [group_start, group_start + in_channels / groups), group_start =
 * (oc / (out_channels / groups)) * (in_channels / groups), and positions outside the input
 * (padding) contribute nothing; then out = clamp(out, act_min, act_max) (float: act_min <=
 * act_max, +-infinity for no clamp; a fused Relu/Clip narrows them). pad_top/pad_left >= 0;
 * the bottom/right padding is implied by out_h/out_w. `in` and `out` must not overlap.
 */
typedef struct {
    int32_t batch;
    int32_t in_channels;
    int32_t in_h;
    int32_t in_w;
    int32_t out_channels;
    int32_t out_h;
    int32_t out_w;
    int32_t groups;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
} nn_conv_geometry;

typedef struct {
    nn_conv_geometry g;
    float act_min;
    float act_max;
} nn_conv_f32_params;

void nn_conv_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                 float *out);

/*
 * Depthwise, channel multiplier 1 (groups == in_channels == out_channels): the same result
 * as nn_conv_f32 with the same parameters, each output channel c reading only input channel
 * c. weight [channels, 1, kernel_h, kernel_w], bias [channels] or NULL.
 */
void nn_conv_dw_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                    float *out);

/*
 * int8: the same sum over (in + input_offset) * weight with int32 accumulators, then
 *   out = clamp(nn_requantize(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max).
 * input_offset = -input zero point, in [-127, 128]: a padded position is the input's zero
 * point and contributes nothing. bias int32 (never NULL), weights int8 in [-127, 127].
 */
typedef struct {
    nn_conv_geometry g;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} nn_conv_s8_params;

/*
 * Any int8 convolution. weight [out_channels][in_channels / groups][kernel_h][kernel_w].
 * scratch NULL: the windows are read from the input directly. scratch of one column,
 * K = in_channels / groups * kernel_h * kernel_w int16: each window, plus input_offset and 0 in
 * padding, is first copied there (nn_im2col_s16) and every output channel of the group is a dot
 * product with it. The DSP kernel of runtime_c/opt/dsp needs two columns, 2 K int16, 4-byte
 * aligned (it loads them by words): the windows of two output positions, interleaved, which it
 * copies before writing either position's outputs; when K is not a multiple of 4, then
 * out_channels * ((K + 3) & ~3) bytes more, where it copies the weight rows padded to words.
 * With scratch the kernel works in place (out == in) for a 1x1 convolution with stride 1, no
 * padding, one group and in_channels == out_channels: a position's inputs are copied before
 * its outputs are written.
 */
void nn_conv_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int8_t *out);

/*
 * Depthwise int8, channel multiplier 1 (groups == in_channels == out_channels), weight
 * [channels][kernel_h * kernel_w] in order. scratch: NULL when there is no padding and
 * out != in; otherwise span_h * span_w bytes, span_h = (out_h - 1) * stride_h + (kernel_h - 1)
 * * dilation_h + 1 (span_w likewise): each input plane is first copied there inside a border
 * of its zero point, so every window is read without bounds checks. The DSP kernel of
 * runtime_c/opt/dsp lays the rows out on word boundaries: span_h * ((span_w + 7) & ~3) bytes,
 * 4-byte aligned. With scratch it works in place (out == in) whenever an output plane is no
 * larger than an input plane.
 */
void nn_conv_dw_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                   const int32_t *multiplier, const int8_t *shift, int8_t *scratch, int8_t *out);

/*
 * Transposed convolution (ConvTranspose), gathered: the same geometry struct, where in_h/in_w
 * are the input's and out_h/out_w the output's sizes, and input position iy reaches output
 * oy through tap ky when oy + pad_top - ky * dilation_h == iy * stride_h (x likewise; pad_top
 * and pad_left may be negative, for an output_shape larger than the natural size). The
 * compiler lists these pairs in `taps` (int32): row_index[out_h + 1], col_index[out_w + 1],
 * then row_pairs (ky, iy) and col_pairs (kx, ix); output row oy takes the pairs
 * [row_index[oy], row_index[oy + 1]) in ascending ky (columns likewise); an output that no
 * input reaches holds the bias. weight [out_channels][kernel_h][kernel_w][in_channels /
 * groups] (ONNX's [in_channels, out_channels / groups, kH, kW] reordered by the compiler).
 * out[n, oc, oy, ox] = bias[oc] + sum over ky, kx (ascending, the taps reaching an input), then
 * ic in oc's group (ascending) of in[n, group_start + ic, iy, ix] * weight[oc, ky, kx, ic],
 * then clamped to [act_min, act_max]. `in` and `out` must not overlap.
 */
void nn_conv_transpose_f32(const nn_conv_f32_params *p, const float *in, const float *weight, const float *bias,
                           const int32_t *taps, float *out);

/*
 * int8: the same sum of (in + input_offset) * weight in an int32 accumulator from bias[oc],
 * then out = clamp(nn_requantize(acc, multiplier[oc], shift[oc]) + output_offset, act_min,
 * act_max), as nn_conv_s8. bias int32 (never NULL), weights int8 in [-127, 127].
 */
void nn_conv_transpose_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                          const int32_t *multiplier, const int8_t *shift, const int32_t *taps, int8_t *out);

/*
 * int16 activations with int8 weights (TFLite's 16x8 scheme), any grouping (depthwise and 1x1
 * included): the same sum over in * weight (zero point 0: padding contributes nothing), then
 *   out = clamp(requantize(acc, multiplier[oc], shift[oc]), act_min, act_max)
 * in and out int16, weight [out_channels][in_channels / groups][kernel_h][kernel_w] int8 in
 * [-127, 127], bias int32 (never NULL), act_min <= act_max in [-32768, 32767].
 * nn_conv_s16 accumulates in int32 (nn_requantize): the compiler chooses it when
 * |bias[oc]| + 32768 * sum |weight[oc]| < 2^31 for every oc; nn_conv_acc64_s16 accumulates in
 * int64 (nn_requantize64) for the other layers. scratch: NULL for the portable kernels; the DSP
 * kernels of runtime_c/opt/dsp copy each window to a column of K = in_channels / groups *
 * kernel_h * kernel_w int16 there, K rounded up to even, 4-byte aligned. `in` and `out` must not
 * overlap.
 */
typedef struct {
    nn_conv_geometry g;
    int32_t act_min;
    int32_t act_max;
} nn_conv_s16_params;
void nn_conv_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                 const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int16_t *out);
void nn_conv_acc64_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                       const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int16_t *out);

/*
 * int16 ConvTranspose (zero points 0): the gathered sums of nn_conv_transpose_s8 over in * weight
 * (weights and taps laid out as there), then out = clamp(requantize(acc, multiplier[oc],
 * shift[oc]), act_min, act_max); the accumulator is int32 in nn_conv_transpose_s16 and int64 in
 * nn_conv_transpose_acc64_s16, chosen as for nn_conv_s16.
 */
void nn_conv_transpose_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                           const int32_t *multiplier, const int8_t *shift, const int32_t *taps, int16_t *out);
void nn_conv_transpose_acc64_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight,
                                 const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                                 const int32_t *taps, int16_t *out);
#endif /* NN_CONV_H */
