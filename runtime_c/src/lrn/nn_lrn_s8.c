#include "nn.h"
#include "requant.h"

void nn_lrn_s8(const nn_lrn_s8_params *p, const int8_t *in, const int32_t *table, const int32_t *shifts,
               int8_t *out)
{
    const int32_t plane = p->channels * p->inner;
    const int32_t sb = p->segment_bits;
    int32_t n, c, i, k;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *x = in + n * plane;
        int8_t *y = out + n * plane;
        for (c = 0; c < p->channels; ++c) {
            const int32_t lo = c - p->before < 0 ? 0 : c - p->before;
            const int32_t hi = c + p->after > p->channels - 1 ? p->channels - 1 : c + p->after;
            for (k = 0; k < p->inner; ++k) {
                int32_t s = 0, e = 0, r = 0, j, frac = 0, low = 0, a, b, m;
                const int32_t *row;
                for (i = lo; i <= hi; ++i) {
                    const int32_t v = x[i * p->inner + k] + p->in_offset;
                    s += v * v;
                }
                if (s > 0) {
                    while ((s >> (e + 1)) != 0) {
                        ++e;
                    }
                    r = s - ((int32_t)1 << e);
                }
                if (e >= sb) {
                    low = e - sb;
                    j = r >> low;
                    frac = r & (((int32_t)1 << low) - 1);
                } else {
                    j = r << (sb - e);
                }
                row = table + e * (((int32_t)1 << sb) + 1);
                a = row[j];
                b = row[j + 1];
                m = a >= b ? a - (int32_t)(((int64_t)(a - b) * frac) >> low)
                           : a + (int32_t)(((int64_t)(b - a) * frac) >> low);
                y[c * p->inner + k] = nn_output_s8(x[c * p->inner + k] + p->in_offset, m, shifts[e], p->out_offset,
                                                   -128, 127);
            }
        }
    }
}
