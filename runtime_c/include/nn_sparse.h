/* Sparse int8 weights: kernels that visit the non-zero weights only. */
#ifndef NN_SPARSE_H
#define NN_SPARSE_H

#include <stdint.h>

#include "nn_conv.h"
#include "nn_fc.h"

/*
 * Encodings (codegen/sparse.py writes them; the kernels below read them).
 *
 * A weight matrix has `rows` rows (FC: output features; convolution: output channels;
 * depthwise: channels). Each row is cut into segments of at most NN_SPARSE_SEGMENT
 * consecutive positions, in this order:
 *   FC, depthwise: positions k in [0, K) (FC: the input feature; depthwise: the tap
 *     ky * kernel_w + kx), segment s covering [s * 255, min(K, (s + 1) * 255));
 *   convolution: for each tap t = ky * kernel_w + kx, for each chunk c of input channels, the
 *     input channels [c * 255, min(in_channels, (c + 1) * 255)) at that tap; or, with
 *     NN_SPARSE_SPANS in the encoding, the taps in groups of span = nn_sparse_span(in_channels,
 *     taps): segment g holds the taps [g * span, min(taps, (g + 1) * span)), position
 *     (t - g * span) * in_channels + channel, so that a segment of few non-zeros per tap costs
 *     a count byte for several taps (the kernel then checks each entry for the next tap).
 * Three tables, walked front to back, row after row, segment after segment; a segment
 * starts at a byte boundary in each of them, so no decoding state crosses a segment:
 *   counts    uint8, one per segment (rows * segments in all);
 *   positions uint8, where the segment's entries are;
 *   values    int8 in [-127, 127], one per entry.
 *
 * NN_SPARSE_INDEX8: an entry per non-zero weight. counts[s] = the segment's entries (<= 255);
 *   positions: one byte per entry, its index inside the segment (0..254), ascending.
 *
 * NN_SPARSE_DELTA4: a cursor starts at the segment's first position; each entry moves it
 *   forward by a step of 0..15 and multiplies the input under it by the entry's value.
 *   positions: two steps a byte, the first entry's in the low nibble. Entries are the
 *   non-zeros, plus a filler (step 15, value 0) wherever the next non-zero is more than 15
 *   ahead, plus a pad (step 0, value 0) that makes the segment's entries even.
 *   counts[s] = the segment's position bytes (= entries / 2); values: 2 * counts[s].
 *
 * A segment without entries has count 0. The tables may be of any length (a fully zero
 * matrix has none) and need no alignment.
 */
#define NN_SPARSE_SEGMENT 255
#define NN_SPARSE_INDEX8 0
#define NN_SPARSE_DELTA4 1
#define NN_SPARSE_SPANS 2 /* or'ed into a convolution's encoding: segments of several taps */

/* Taps of a convolution segment with NN_SPARSE_SPANS: as many whole taps as fit in
 * NN_SPARSE_SEGMENT positions (1 from 128 input channels: a tap a segment). */
static inline int32_t nn_sparse_span(int32_t in_channels, int32_t taps)
{
    const int32_t fit = in_channels < NN_SPARSE_SEGMENT ? NN_SPARSE_SEGMENT / in_channels : 1;
    return fit < taps ? fit : taps;
}

/*
 * Fully connected: the same result as nn_fc_s8 (nn_fc.h) with the same fields and the
 * weight matrix [out_features, in_features] given in `encoding` (rows = out_features,
 * K = in_features); bias holds the folded input zero point as for nn_fc_s8. No scratch;
 * `in` and `out` must not overlap.
 */
typedef struct {
    nn_fc_s8_params fc;
    int32_t encoding; /* NN_SPARSE_INDEX8 or NN_SPARSE_DELTA4 */
} nn_fc_sparse_s8_params;

void nn_fc_sparse_s8(const nn_fc_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                     const uint8_t *positions, const int8_t *values, const int32_t *bias,
                     const int32_t *multiplier, const int8_t *shift, int8_t *out);

/*
 * Convolution with groups == 1: the same result as nn_conv_s8 (nn_conv.h) with the same
 * fields, any kernel, stride, padding and dilation. The weight [out_channels][in_channels]
 * [kernel_h][kernel_w] is given in `encoding`, rows = out_channels, segments as above. The input offset is added to every real input; padding contributes nothing. The
 * accumulator starts at bias + input_offset * (the sum of the channel's weights), so its
 * partial sums reach |bias| + 256 * sum |weights|, which must stay below 2^31. No scratch;
 * `in` and `out` must not overlap.
 */
typedef struct {
    nn_conv_s8_params conv;
    int32_t encoding; /* NN_SPARSE_INDEX8 or NN_SPARSE_DELTA4, convolution: or NN_SPARSE_SPANS */
} nn_conv_sparse_s8_params;

void nn_conv_sparse_s8(const nn_conv_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                       const uint8_t *positions, const int8_t *values, const int32_t *bias,
                       const int32_t *multiplier, const int8_t *shift, int8_t *out);

/*
 * Depthwise, channel multiplier 1 (groups == in_channels == out_channels): the same result
 * as nn_conv_dw_s8 with the same fields. Weight [channels][kernel_h * kernel_w] given in
 * `encoding` (rows = channels, K = the taps). scratch, as for nn_conv_dw_s8: NULL when there is
 * no padding; otherwise span_h * span_w bytes, span_h = (out_h - 1) * stride_h + (kernel_h - 1)
 * * dilation_h + 1 (span_w likewise), where each input plane is first copied inside a border of
 * its zero point, so that no window needs a bounds check. The accumulator bound is the
 * convolution's. `in` and `out` must not overlap.
 */
void nn_conv_dw_sparse_s8(const nn_conv_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                          const uint8_t *positions, const int8_t *values, const int32_t *bias,
                          const int32_t *multiplier, const int8_t *shift, int8_t *scratch, int8_t *out);

#endif /* NN_SPARSE_H */
