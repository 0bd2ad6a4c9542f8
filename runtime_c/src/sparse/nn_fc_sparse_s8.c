#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include "nn_sparse.h"
#include "requant.h"

#if defined(__GNUC__)
#define NN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define NN_ALWAYS_INLINE inline
#endif

/* The layer, copied once (the output stores could alias the params). */
typedef struct {
    int32_t segments, out_features, in_col_stride, out_col_stride, output_offset, act_min, act_max;
} nn_sparse_fc;

/* Every output feature of one input row x into y. Called with constant delta4 and input
 * stride s for contiguous inputs, so each of those compiles to its own tight loop. */
static NN_ALWAYS_INLINE void nn_fc_row(const nn_sparse_fc *f, const int8_t *x, const uint8_t *counts,
                                       const uint8_t *pos, const int8_t *v, const int32_t *bias,
                                       const int32_t *multiplier, const int8_t *shift, int8_t *y,
                                       const int32_t delta4, const int32_t s)
{
    const uint8_t *c = counts;
    int32_t n, seg;
    for (n = 0; n < f->out_features; ++n) {
        int32_t acc = bias[n];
        for (seg = 0; seg < f->segments; ++seg) {
            const int8_t *xs = x + seg * NN_SPARSE_SEGMENT * s;
            int32_t count = *c++;
            if (delta4) { /* a cursor stepping over the segment, two steps a byte */
                for (; count >= 4; count -= 4, pos += 4, v += 8) {
                    /* eight steps from four bytes, each read and used alone: combined into one
                     * word, a compiler may read them with one (unaligned) word load */
                    const int32_t s0 = pos[0], s1 = pos[1], s2 = pos[2], s3 = pos[3];
                    xs += (s0 & 15) * s;
                    acc += *xs * v[0];
                    xs += (s0 >> 4) * s;
                    acc += *xs * v[1];
                    xs += (s1 & 15) * s;
                    acc += *xs * v[2];
                    xs += (s1 >> 4) * s;
                    acc += *xs * v[3];
                    xs += (s2 & 15) * s;
                    acc += *xs * v[4];
                    xs += (s2 >> 4) * s;
                    acc += *xs * v[5];
                    xs += (s3 & 15) * s;
                    acc += *xs * v[6];
                    xs += (s3 >> 4) * s;
                    acc += *xs * v[7];
                }
                for (; count > 0; --count, v += 2) {
                    const int32_t steps = *pos++;
                    xs += (steps & 15) * s;
                    acc += *xs * v[0];
                    xs += (steps >> 4) * s;
                    acc += *xs * v[1];
                }
            } else { /* an index a byte */
                for (; count >= 4; count -= 4, pos += 4, v += 4) {
                    acc += xs[pos[0] * s] * v[0];
                    acc += xs[pos[1] * s] * v[1];
                    acc += xs[pos[2] * s] * v[2];
                    acc += xs[pos[3] * s] * v[3];
                }
                for (; count > 0; --count) {
                    acc += xs[*pos++ * s] * *v++;
                }
            }
        }
        y[n * f->out_col_stride] = nn_output_s8(acc, multiplier[n], shift[n], f->output_offset, f->act_min,
                                                f->act_max);
    }
}

void nn_fc_sparse_s8(const nn_fc_sparse_s8_params *p, const int8_t *in, const uint8_t *counts,
                     const uint8_t *positions, const int8_t *values, const int32_t *bias,
                     const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    const nn_fc_s8_params *fc = &p->fc;
    const int32_t rows = fc->rows, in_row_stride = fc->in_row_stride, out_row_stride = fc->out_row_stride;
    const int32_t delta4 = p->encoding == NN_SPARSE_DELTA4;
    nn_sparse_fc f;
    int32_t r;
    f.segments = (fc->in_features + NN_SPARSE_SEGMENT - 1) / NN_SPARSE_SEGMENT;
    f.out_features = fc->out_features;
    f.in_col_stride = fc->in_col_stride;
    f.out_col_stride = fc->out_col_stride;
    f.output_offset = fc->output_offset;
    f.act_min = fc->act_min;
    f.act_max = fc->act_max;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = in + r * in_row_stride;
        int8_t *y = out + r * out_row_stride;
        if (f.in_col_stride != 1) { /* strided inputs (W @ x): one loop for both encodings */
            nn_fc_row(&f, x, counts, positions, values, bias, multiplier, shift, y, delta4, f.in_col_stride);
        } else if (delta4) {
            nn_fc_row(&f, x, counts, positions, values, bias, multiplier, shift, y, 1, 1);
        } else {
            nn_fc_row(&f, x, counts, positions, values, bias, multiplier, shift, y, 0, 1);
        }
    }
}
