#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "nn_sparse.h"
#include "requant.h"

#if defined(__GNUC__)
#define NN_NOINLINE __attribute__((noinline)) /* the hot loop keeps the registers to itself */
#define NN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define NN_NOINLINE
#define NN_ALWAYS_INLINE inline
#endif

/* Output positions along a row that share each decoded tap: a block. A row ends on a block
 * that overlaps its neighbour (an output computed twice comes out the same). */
#define NN_BLOCK 4

/* The layer, and the channel in progress (copied: the output stores could alias the params). */
typedef struct {
    const uint8_t *counts, *positions; /* the channel's row of the tables */
    const int8_t *values;
    int32_t delta4, segments, kernel_w, row_step, col_step, stride;
    int32_t inner, m0, shift, output_offset, act_min, act_max;
} nn_sparse_dw;

/* The tap of entry e of a segment starting at tap `first`, after the tap t of entry e - 1. */
static NN_ALWAYS_INLINE int32_t nn_dw_tap(const uint8_t *pos, int32_t e, int32_t first, int32_t t,
                                          const int32_t delta4)
{
    return delta4 ? t + ((pos[e >> 1] >> (4 * (e & 1))) & 15) : first + pos[e];
}

/* One output row: `blocks` blocks of NN_BLOCK positions, the last one starting `last`
 * positions after the one before it (1..NN_BLOCK); q = the input under the first position's
 * first tap, y its output. Called with delta4 = 0 and s = 1 as constants for the common case's
 * own loop, and with the layer's values otherwise. */
static NN_ALWAYS_INLINE void nn_dw_blocks(const nn_sparse_dw *k, const int8_t *q, int32_t blocks, int32_t last,
                                          int8_t *y, const int32_t delta4, const int32_t s)
{
    const int32_t kw = k->kernel_w, row_step = k->row_step, col_step = k->col_step;
    const int32_t m0 = k->m0, shift = k->shift, offset = k->output_offset, act_min = k->act_min;
    const int32_t act_max = k->act_max;
    int32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint8_t *c = k->counts, *pos = k->positions;
        const int8_t *v = k->values;
        int32_t a0 = k->inner, a1 = k->inner, a2 = k->inner, a3 = k->inner, seg;
        for (seg = 0; seg < k->segments; ++seg) {
            const int32_t entries = delta4 ? 2 * *c : *c, first = seg * NN_SPARSE_SEGMENT;
            int32_t e, t = first;
            for (e = 0; e < entries; ++e) {
                int32_t ky, w;
                const int8_t *x;
                t = nn_dw_tap(pos, e, first, t, delta4);
                ky = t / kw;
                x = q + ky * row_step + (t - ky * kw) * col_step;
                w = v[e];
                a0 += x[0] * w;
                a1 += x[s] * w;
                a2 += x[2 * s] * w;
                a3 += x[3 * s] * w;
            }
            pos += *c++;
            v += entries;
        }
        y[0] = nn_output_s8(a0, m0, shift, offset, act_min, act_max);
        y[1] = nn_output_s8(a1, m0, shift, offset, act_min, act_max);
        y[2] = nn_output_s8(a2, m0, shift, offset, act_min, act_max);
        y[3] = nn_output_s8(a3, m0, shift, offset, act_min, act_max);
        if (b + 1 < blocks) { /* the next block; the last one possibly overlapping */
            const int32_t step = b + 2 < blocks ? NN_BLOCK : last;
            q += step * s;
            y += step;
        }
    }
}

static NN_NOINLINE void nn_dw_row(const nn_sparse_dw *k, const int8_t *q, int32_t blocks, int32_t last, int8_t *y)
{
    if (!k->delta4 && k->stride == 1) {
        nn_dw_blocks(k, q, blocks, last, y, 0, 1);
    } else {
        nn_dw_blocks(k, q, blocks, last, y, k->delta4, k->stride);
    }
}

/* A row narrower than a block: position by position. */
static void nn_dw_narrow_row(const nn_sparse_dw *k, const int8_t *q, int32_t count, int8_t *y)
{
    int32_t i;
    for (i = 0; i < count; ++i, q += k->stride) {
        const uint8_t *c = k->counts, *pos = k->positions;
        const int8_t *v = k->values;
        int32_t acc = k->inner, seg;
        for (seg = 0; seg < k->segments; ++seg) {
            const int32_t entries = k->delta4 ? 2 * *c : *c, first = seg * NN_SPARSE_SEGMENT;
            int32_t e, t = first, ky;
            for (e = 0; e < entries; ++e) {
                t = nn_dw_tap(pos, e, first, t, k->delta4);
                ky = t / k->kernel_w;
                acc += q[ky * k->row_step + (t - ky * k->kernel_w) * k->col_step] * v[e];
            }
            pos += *c++;
            v += entries;
        }
        y[i] = nn_output_s8(acc, k->m0, k->shift, k->output_offset, k->act_min, k->act_max);
    }
}

void nn_conv_dw_sparse_s8(const nn_conv_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                          const uint8_t *positions, const int8_t *values, const int32_t *bias,
                          const int32_t *multiplier, const int8_t *shift, int8_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->conv.g;
    const int32_t taps = g->kernel_h * g->kernel_w, out_w = g->out_w;
    const int32_t segments = (taps + NN_SPARSE_SEGMENT - 1) / NN_SPARSE_SEGMENT;
    const int32_t in_plane = g->in_h * g->in_w, out_plane = g->out_h * out_w;
    /* the input region the windows cover, padding included (as nn_conv_dw_s8) */
    const int32_t span_h = (g->out_h - 1) * g->stride_h + (g->kernel_h - 1) * g->dilation_h + 1;
    const int32_t span_w = (out_w - 1) * g->stride_w + (g->kernel_w - 1) * g->dilation_w + 1;
    /* the input rows and columns inside that region (none when the padding covers it) */
    const int32_t copy_h = g->in_h < span_h - g->pad_top ? g->in_h : span_h - g->pad_top;
    const int32_t copy_w = g->in_w < span_w - g->pad_left ? g->in_w : span_w - g->pad_left;
    const int32_t row_w = scratch ? span_w : g->in_w;
    const int32_t io = p->conv.input_offset;
    nn_sparse_dw k;
    int32_t n, c, oy, s, i, y;
    k.delta4 = p->encoding == NN_SPARSE_DELTA4;
    k.segments = segments;
    k.kernel_w = g->kernel_w;
    k.row_step = g->dilation_h * row_w;
    k.col_step = g->dilation_w;
    k.stride = g->stride_w;
    k.output_offset = p->conv.output_offset;
    k.act_min = p->conv.act_min;
    k.act_max = p->conv.act_max;
    for (n = 0; n < g->batch; ++n) {
        k.counts = counts;
        k.positions = positions;
        k.values = values;
        for (c = 0; c < g->out_channels; ++c) {
            const int8_t *x = in + (n * g->in_channels + c) * in_plane;
            int8_t *result = out + (n * g->out_channels + c) * out_plane;
            int32_t pos_len = 0, entries;
            for (s = 0; s < segments; ++s) {
                pos_len += k.counts[s];
            }
            entries = k.delta4 ? 2 * pos_len : pos_len;
            k.inner = bias[c];
            for (i = 0; i < entries; ++i) { /* every real input carries the input offset */
                k.inner += io * k.values[i];
            }
            k.m0 = multiplier[c];
            k.shift = shift[c];
            if (scratch) { /* the plane inside a border of its zero point, which adds nothing */
                memset(scratch, -io, (size_t)(span_h * span_w));
                for (y = 0; y < copy_h && copy_w > 0; ++y) {
                    memcpy(scratch + (y + g->pad_top) * span_w + g->pad_left, x + y * g->in_w, (size_t)copy_w);
                }
                x = scratch;
            }
            for (oy = 0; oy < g->out_h; ++oy) {
                const int8_t *q = x + oy * g->stride_h * row_w;
                if (out_w >= NN_BLOCK) {
                    const int32_t rest = out_w % NN_BLOCK;
                    nn_dw_row(&k, q, (out_w + NN_BLOCK - 1) / NN_BLOCK, rest ? rest : NN_BLOCK,
                              result + oy * out_w);
                } else {
                    nn_dw_narrow_row(&k, q, out_w, result + oy * out_w);
                }
            }
            k.counts += segments;
            k.positions += pos_len;
            k.values += entries;
        }
    }
}
