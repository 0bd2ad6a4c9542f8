#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include "nn.h"
#include "nn_sparse.h"
#include "requant.h"

#if defined(__GNUC__)
#define NN_NOINLINE __attribute__((noinline)) /* keeps the caller's registers for its hot loop */
#define NN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define NN_NOINLINE
#define NN_ALWAYS_INLINE inline
#endif

/* Output positions along a row that share each decoded weight: a block. Rows narrower than a
 * block run short blocks; wider rows end on a block that overlaps its neighbour (an output
 * computed twice comes out the same). */
#define NN_BLOCK 4

/* The layer, and the output channel in progress (copied: the output stores could alias the params). */
typedef struct {
    const uint8_t *counts, *positions; /* the channel's row of the tables */
    const int8_t *values;
    int32_t delta4, segments, chunks, span, in_channels, kernel_h, kernel_w, dilation_h, dilation_w, stride, in_h,
        in_w, plane;
    int32_t chunk_step, tap_step, row_wrap; /* to a tap's next chunk, to the next tap, past a kernel row */
    int32_t input_offset, inner, m0, shift, output_offset, act_min, act_max;
} nn_sparse_conv;

typedef struct {
    int32_t a0, a1, a2, a3;
} nn_acc4;

/* One segment's entries at four positions x, x + s, x + 2s, x + 3s of the input planes that
 * they select, from xs (the segment's first plane under the block's first position). */
static NN_ALWAYS_INLINE nn_acc4 nn_segment4(nn_acc4 a, const int8_t *xs, int32_t plane, const uint8_t *pos,
                                            const int8_t *v, int32_t n, const int32_t delta4, const int32_t s)
{
    if (delta4) {
        for (; n > 0; --n, v += 2) {
            const int32_t steps = *pos++;
            xs += (steps & 15) * plane;
            a.a0 += xs[0] * v[0];
            a.a1 += xs[s] * v[0];
            a.a2 += xs[2 * s] * v[0];
            a.a3 += xs[3 * s] * v[0];
            xs += (steps >> 4) * plane;
            a.a0 += xs[0] * v[1];
            a.a1 += xs[s] * v[1];
            a.a2 += xs[2 * s] * v[1];
            a.a3 += xs[3 * s] * v[1];
        }
    } else {
        for (; n > 0; --n) {
            const int8_t *x = xs + *pos++ * plane;
            const int32_t w = *v++;
            a.a0 += x[0] * w;
            a.a1 += x[s] * w;
            a.a2 += x[2 * s] * w;
            a.a3 += x[3 * s] * w;
        }
    }
    return a;
}

/* acc[j] -= d for the positions j < nb of a block outside [j0, j1). */
static NN_ALWAYS_INLINE void nn_outside(int32_t *acc, int32_t nb, int32_t j0, int32_t j1, int32_t d)
{
    int32_t j;
    for (j = 0; j < nb; ++j) {
        if (j < j0 || j >= j1) {
            acc[j] -= d;
        }
    }
}

/* One segment at the positions j in [j0, j1) of a block (the others, j < nb, are padding);
 * at = the input index of the segment's first plane under position 0. A padded input is the
 * zero point, (in + input_offset) == 0, so a padded position subtracts the input_offset *
 * weight that its accumulator started with. */
static NN_NOINLINE void nn_segment_checked(const nn_sparse_conv *k, const int8_t *image, int32_t at, int32_t nb,
                                           int32_t j0, int32_t j1, const uint8_t *pos, const int8_t *v,
                                           int32_t count, int32_t *acc)
{
    const int32_t entries = k->delta4 ? 2 * count : count, s = k->stride;
    int32_t e, j, channel = 0, sum = 0;
    for (e = 0; e < entries; ++e) {
        const int32_t w = v[e];
        int32_t x;
        channel = k->delta4 ? channel + ((pos[e >> 1] >> (4 * (e & 1))) & 15) : pos[e];
        x = at + channel * k->plane + j0 * s;
        for (j = j0; j < j1; ++j, x += s) {
            acc[j] += image[x] * w;
        }
        sum += w;
    }
    nn_outside(acc, nb, j0, j1, k->input_offset * sum);
}

/* One segment of several taps (span > 1) at the positions of a block, each tap checked for
 * padding; (ky, kx): the segment's first tap, x0: the input column under position 0's first
 * tap. An entry at or past `next` steps the tap on (the positions rise tap by tap). */
static NN_NOINLINE void nn_span_checked(const nn_sparse_conv *k, const int8_t *image, int32_t y0, int32_t x0,
                                        int32_t ky0, int32_t ky1, int32_t nb, int32_t ky, int32_t kx,
                                        const uint8_t *pos, const int8_t *v, int32_t count, int32_t *acc)
{
    const int32_t entries = k->delta4 ? 2 * count : count, s = k->stride;
    int32_t e, j, p = 0, first = 0, next = 0, at = 0, j0 = 0, j1 = 0, sum = 0;
    --kx; /* the first step reaches the segment's first tap */
    for (e = 0; e < entries; ++e) {
        const int32_t w = v[e];
        int32_t x;
        p = k->delta4 ? p + ((pos[e >> 1] >> (4 * (e & 1))) & 15) : pos[e];
        while (p >= next) {
            int32_t xs;
            nn_outside(acc, nb, j0, j1, k->input_offset * sum);
            sum = 0;
            first = next;
            next += k->in_channels;
            if (++kx == k->kernel_w) {
                kx = 0;
                ++ky;
            }
            xs = x0 + kx * k->dilation_w;
            j0 = j1 = 0;
            if (ky >= ky0 && ky < ky1) {
                nn_window_taps(xs, nb, s, k->in_w, &j0, &j1);
            }
            at = (y0 + ky * k->dilation_h) * k->in_w + xs;
        }
        x = at + (p - first) * k->plane;
        if (j1 - j0 == NN_BLOCK) {
            acc[0] += image[x] * w;
            acc[1] += image[x + s] * w;
            acc[2] += image[x + 2 * s] * w;
            acc[3] += image[x + 3 * s] * w;
        } else {
            for (j = j0, x += j0 * s; j < j1; ++j, x += s) {
                acc[j] += image[x] * w;
            }
        }
        sum += w;
    }
    nn_outside(acc, nb, j0, j1, k->input_offset * sum);
}

/* Blocks of output row y (input row y0 under the kernel's first row) from output x `from` on
 * while they start before `to`, checking each tap for padding; kernel rows [ky0, ky1) are inside
 * the input. A tap inside at all four positions of a block takes the loop of nn_segment4. */
static NN_NOINLINE void nn_row_checked(const nn_sparse_conv *k, const int8_t *image, int32_t y0, int32_t ky0,
                                       int32_t ky1, int32_t x_first, int32_t out_w, int32_t from, int32_t to,
                                       int8_t *y)
{
    const int32_t delta4 = k->delta4, s = k->stride;
    const int32_t plane = k->plane, m0 = k->m0, shift = k->shift, offset = k->output_offset;
    const int32_t act_min = k->act_min, act_max = k->act_max;
    int32_t ox;
    for (ox = from; ox < to; ox += NN_BLOCK) {
        const int32_t ob = ox + NN_BLOCK <= out_w || out_w < NN_BLOCK ? ox : out_w - NN_BLOCK;
        const int32_t nb = out_w - ob < NN_BLOCK ? out_w - ob : NN_BLOCK;
        const int32_t x0 = x_first + ob * s;
        const uint8_t *c = k->counts, *pos = k->positions;
        const int8_t *v = k->values;
        nn_acc4 a;
        int32_t ky, kx, ch, j;
        a.a0 = a.a1 = a.a2 = a.a3 = k->inner;
        if (k->span > 1) { /* segments of several taps */
            int32_t acc[NN_BLOCK], g;
            acc[0] = acc[1] = acc[2] = acc[3] = k->inner;
            for (g = 0, ky = 0, kx = 0; g < k->segments; ++g) {
                const int32_t n = *c++;
                if (n) {
                    nn_span_checked(k, image, y0, x0, ky0, ky1, nb, ky, kx, pos, v, n, acc);
                }
                pos += n;
                v += delta4 ? 2 * n : n;
                for (kx += k->span; kx >= k->kernel_w; kx -= k->kernel_w) {
                    ++ky;
                }
            }
            a.a0 = acc[0];
            a.a1 = acc[1];
            a.a2 = acc[2];
            a.a3 = acc[3];
        } else { /* a tap (and chunk) a segment */
            for (ky = 0; ky < k->kernel_h; ++ky) {
                const int32_t row = (y0 + ky * k->dilation_h) * k->in_w;
                for (kx = 0; kx < k->kernel_w; ++kx) {
                    const int32_t xs = x0 + kx * k->dilation_w;
                    int32_t j0 = 0, j1 = 0; /* the positions of the block that this tap finds inside */
                    if (ky >= ky0 && ky < ky1) {
                        nn_window_taps(xs, nb, s, k->in_w, &j0, &j1);
                    }
                    for (ch = 0; ch < k->chunks; ++ch) {
                        const int32_t n = *c++, at = ch * k->chunk_step + row + xs;
                        if (j0 == 0 && j1 == NN_BLOCK) {
                            a = nn_segment4(a, image + at, plane, pos, v, n, delta4, s);
                        } else if (n) {
                            int32_t acc[NN_BLOCK];
                            acc[0] = a.a0;
                            acc[1] = a.a1;
                            acc[2] = a.a2;
                            acc[3] = a.a3;
                            nn_segment_checked(k, image, at, nb, j0, j1, pos, v, n, acc);
                            a.a0 = acc[0];
                            a.a1 = acc[1];
                            a.a2 = acc[2];
                            a.a3 = acc[3];
                        }
                        pos += n;
                        v += delta4 ? 2 * n : n;
                    }
                }
            }
        }
        {
            const int32_t sums[NN_BLOCK] = {a.a0, a.a1, a.a2, a.a3};
            for (j = 0; j < nb; ++j) {
                y[ob + j] = nn_output_s8(sums[j], m0, shift, offset, act_min, act_max);
            }
        }
    }
}

/* `blocks` blocks of NN_BLOCK positions, the last one starting `last` positions after the one
 * before it (1..NN_BLOCK, an overlapping block), all with every window wholly inside the
 * input; q = the input under the first position's first tap, y its output. Called with
 * constant delta4 and stride s, so each use compiles to its own tight loop. */
static NN_ALWAYS_INLINE void nn_blocks_inside(const nn_sparse_conv *k, const int8_t *q, int32_t blocks,
                                              int32_t last, int8_t *y, const int32_t delta4, const int32_t s)
{
    const int32_t plane = k->plane, m0 = k->m0, shift = k->shift, offset = k->output_offset;
    const int32_t act_min = k->act_min, act_max = k->act_max, segments = k->segments;
    int32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint8_t *c = k->counts, *const c_end = c + segments, *pos = k->positions;
        const int8_t *v = k->values, *xs = q;
        nn_acc4 a;
        int32_t ch = 0, kx = 0;
        a.a0 = a.a1 = a.a2 = a.a3 = k->inner;
        while (c != c_end) {
            const int32_t n = *c++;
            a = nn_segment4(a, xs, plane, pos, v, n, delta4, s);
            pos += n;
            v += delta4 ? 2 * n : n;
            if (++ch < k->chunks) { /* the next segment: the tap's next chunk of channels, or the next tap */
                xs += k->chunk_step;
            } else if (c != c_end) {
                ch = 0;
                xs += k->tap_step;
                if (++kx == k->kernel_w) {
                    kx = 0;
                    xs += k->row_wrap;
                }
            }
        }
        y[0] = nn_output_s8(a.a0, m0, shift, offset, act_min, act_max);
        y[1] = nn_output_s8(a.a1, m0, shift, offset, act_min, act_max);
        y[2] = nn_output_s8(a.a2, m0, shift, offset, act_min, act_max);
        y[3] = nn_output_s8(a.a3, m0, shift, offset, act_min, act_max);
        if (b + 1 < blocks) { /* the next block; the last one possibly overlapping */
            const int32_t step = b + 2 < blocks ? NN_BLOCK : last;
            q += step * s;
            y += step;
        }
    }
}

/* The tap under a segment's entries when a segment holds several (span > 1): the input under the
 * tap's channel c for the block's first position is at base + (position of c) * plane (an
 * address as an integer: base itself may lie outside the input), `next` is the position where
 * the following tap begins, `at` the input index of the tap's channel 0 from q. */
typedef struct {
    const nn_sparse_conv *k;
    uintptr_t q, base;
    int32_t next, at, kx;
} nn_walk;

/* Steps to the segment's tap that holds position p (past the current one), or with p = the
 * segment's positions, to the next segment's first tap. Kept out of the entry loops: it is
 * seldom taken, and its state would crowd their registers. */
static NN_NOINLINE void nn_walk_to(nn_walk *t, int32_t p)
{
    const nn_sparse_conv *k = t->k;
    int32_t at = t->at, kx = t->kx, next = t->next;
    do {
        at += k->dilation_w;
        if (++kx == k->kernel_w) {
            kx = 0;
            at += k->row_wrap;
        }
        next += k->in_channels;
    } while (p >= next);
    t->at = at;
    t->kx = kx;
    t->next = next;
    t->base = t->q + (uintptr_t)at - (uintptr_t)((next - k->in_channels) * k->plane);
}

/* One entry at position p of a segment of several taps: four multiply-accumulates. */
#define NN_SPAN_ENTRY(p, w)                                                                                       \
    do {                                                                                                          \
        const int8_t *x_;                                                                                         \
        if ((p) >= next) {                                                                                        \
            nn_walk_to(&t, (p));                                                                                  \
            base = t.base;                                                                                        \
            next = t.next;                                                                                        \
        }                                                                                                         \
        x_ = (const int8_t *)(base + (uintptr_t)((p) * plane));                                                   \
        a.a0 += x_[0] * (w);                                                                                      \
        a.a1 += x_[s] * (w);                                                                                      \
        a.a2 += x_[2 * s] * (w);                                                                                  \
        a.a3 += x_[3 * s] * (w);                                                                                  \
    } while (0)

/* nn_blocks_inside for segments of several taps (span > 1). */
static NN_ALWAYS_INLINE void nn_blocks_span(const nn_sparse_conv *k, const int8_t *q, int32_t blocks, int32_t last,
                                            int8_t *y, const int32_t delta4, const int32_t s)
{
    const int32_t m0 = k->m0, shift = k->shift, offset = k->output_offset, plane = k->plane;
    const int32_t act_min = k->act_min, act_max = k->act_max, segments = k->segments;
    const int32_t span_end = k->span * k->in_channels; /* a whole segment's positions */
    int32_t b;
    for (b = 0; b < blocks; ++b) {
        const uint8_t *c = k->counts, *const c_end = c + segments, *pos = k->positions;
        const int8_t *v = k->values;
        nn_walk t;
        nn_acc4 a;
        a.a0 = a.a1 = a.a2 = a.a3 = k->inner;
        t.k = k;
        t.q = (uintptr_t)q;
        t.at = 0;
        t.kx = 0;
        while (c != c_end) {
            const uint8_t *const end = pos + *c++;
            uintptr_t base = t.q + (uintptr_t)t.at;
            int32_t next = k->in_channels;
            t.next = next;
            if (delta4) {
                int32_t p = 0;
                for (; pos != end; ++pos, v += 2) {
                    const int32_t steps = *pos, w0 = v[0], w1 = v[1];
                    p += steps & 15;
                    NN_SPAN_ENTRY(p, w0);
                    p += steps >> 4;
                    NN_SPAN_ENTRY(p, w1);
                }
            } else {
                while (pos != end) {
                    const int32_t p = *pos++, w = *v++;
                    NN_SPAN_ENTRY(p, w);
                }
            }
            if (c != c_end) { /* on to the next segment's first tap */
                nn_walk_to(&t, span_end);
            }
        }
        y[0] = nn_output_s8(a.a0, m0, shift, offset, act_min, act_max);
        y[1] = nn_output_s8(a.a1, m0, shift, offset, act_min, act_max);
        y[2] = nn_output_s8(a.a2, m0, shift, offset, act_min, act_max);
        y[3] = nn_output_s8(a.a3, m0, shift, offset, act_min, act_max);
        if (b + 1 < blocks) {
            const int32_t step = b + 2 < blocks ? NN_BLOCK : last;
            q += step * s;
            t.q = (uintptr_t)q;
            y += step;
        }
    }
}

static NN_NOINLINE void nn_row_inside(const nn_sparse_conv *k, const int8_t *q, int32_t blocks, int32_t last,
                                      int8_t *y)
{
    if (k->span > 1) {
        if (k->delta4) {
            nn_blocks_span(k, q, blocks, last, y, 1, k->stride);
        } else if (k->stride == 1) {
            nn_blocks_span(k, q, blocks, last, y, 0, 1);
        } else {
            nn_blocks_span(k, q, blocks, last, y, 0, k->stride);
        }
    } else if (k->delta4) {
        nn_blocks_inside(k, q, blocks, last, y, 1, k->stride);
    } else if (k->stride == 1) {
        nn_blocks_inside(k, q, blocks, last, y, 0, 1);
    } else {
        nn_blocks_inside(k, q, blocks, last, y, 0, k->stride);
    }
}

void nn_conv_sparse_s8(const nn_conv_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                       const uint8_t *positions, const int8_t *values, const int32_t *bias,
                       const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    const nn_conv_geometry *g = &p->conv.g;
    const int32_t chunks = (g->in_channels + NN_SPARSE_SEGMENT - 1) / NN_SPARSE_SEGMENT;
    const int32_t taps = g->kernel_h * g->kernel_w;
    const int32_t span = p->encoding & NN_SPARSE_SPANS ? nn_sparse_span(g->in_channels, taps) : 1;
    const int32_t segments = span > 1 ? (taps + span - 1) / span : taps * chunks;
    const int32_t plane = g->in_h * g->in_w, out_plane = g->out_h * g->out_w;
    const int32_t sw = g->stride_w, pad_left = g->pad_left;
    /* A block from output x has all its windows inside the row when x * sw - pad_left >= 0 and
     * (x + NN_BLOCK - 1) * sw - pad_left + (kernel_w - 1) * dilation_w < in_w: x in [lo, hi). */
    const int32_t reach = (NN_BLOCK - 1) * sw + (g->kernel_w - 1) * g->dilation_w - pad_left;
    const int32_t lo = (pad_left + sw - 1) / sw;
    const int32_t hi = g->in_w - reach <= 0 ? 0 : (g->in_w - 1 - reach) / sw + 1;
    /* The positions [lo, hi + NN_BLOCK - 1) could run in blocks without checks; [left, right)
     * do, the rest (a whole number of blocks at each end) in checked blocks. */
    const int32_t out_w = g->out_w, inside_end = hi - 1 + NN_BLOCK < out_w ? hi - 1 + NN_BLOCK : out_w;
    const int32_t left = (lo + NN_BLOCK - 1) / NN_BLOCK * NN_BLOCK;
    const int32_t right = out_w - (out_w - inside_end + NN_BLOCK - 1) / NN_BLOCK * NN_BLOCK;
    nn_sparse_conv k;
    int32_t n, oc, oy, s, i;
    k.delta4 = (p->encoding & NN_SPARSE_DELTA4) != 0;
    k.chunks = chunks;
    k.span = span;
    k.in_channels = g->in_channels;
    k.kernel_h = g->kernel_h;
    k.kernel_w = g->kernel_w;
    k.dilation_h = g->dilation_h;
    k.dilation_w = g->dilation_w;
    k.stride = sw;
    k.in_h = g->in_h;
    k.in_w = g->in_w;
    k.plane = plane;
    k.segments = segments;
    k.chunk_step = NN_SPARSE_SEGMENT * plane;
    k.tap_step = g->dilation_w - (chunks - 1) * k.chunk_step;
    k.row_wrap = g->dilation_h * g->in_w - g->kernel_w * g->dilation_w;
    k.input_offset = p->conv.input_offset;
    k.output_offset = p->conv.output_offset;
    k.act_min = p->conv.act_min;
    k.act_max = p->conv.act_max;
    for (n = 0; n < g->batch; ++n) {
        const int8_t *image = in + n * g->in_channels * plane;
        int8_t *result = out + n * g->out_channels * out_plane;
        k.counts = counts;
        k.positions = positions;
        k.values = values;
        for (oc = 0; oc < g->out_channels; ++oc) {
            int32_t pos_len = 0, entries;
            for (s = 0; s < segments; ++s) {
                pos_len += k.counts[s];
            }
            entries = k.delta4 ? 2 * pos_len : pos_len;
            k.inner = bias[oc];
            for (i = 0; i < entries; ++i) { /* every real input carries the input offset */
                k.inner += k.input_offset * k.values[i];
            }
            k.m0 = multiplier[oc];
            k.shift = shift[oc];
            for (oy = 0; oy < g->out_h; ++oy) {
                const int32_t y0 = oy * g->stride_h - g->pad_top;
                int8_t *y = result + oc * out_plane + oy * out_w;
                int32_t ky0, ky1;
                nn_window_taps(y0, g->kernel_h, g->dilation_h, g->in_h, &ky0, &ky1);
                if (ky0 == 0 && ky1 == g->kernel_h && right - left >= NN_BLOCK) {
                    const int32_t length = right - left, rest = length % NN_BLOCK;
                    if (left > 0) {
                        nn_row_checked(&k, image, y0, ky0, ky1, -pad_left, out_w, 0, left, y);
                    }
                    nn_row_inside(&k, image + y0 * g->in_w + left * sw - pad_left,
                                  (length + NN_BLOCK - 1) / NN_BLOCK, rest ? rest : NN_BLOCK, y + left);
                    if (right < out_w) {
                        nn_row_checked(&k, image, y0, ky0, ky1, -pad_left, out_w, right, out_w, y);
                    }
                } else {
                    nn_row_checked(&k, image, y0, ky0, ky1, -pad_left, out_w, 0, out_w, y);
                }
            }
            k.counts += segments;
            k.positions += pos_len;
            k.values += entries;
        }
    }
}
