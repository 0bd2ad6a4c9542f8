/* nn_fc_s16 for cores with the DSP extension (Cortex-M4, M7, M33, M55): where the input row is
 * contiguous, four inputs at a time go into two dual 16-bit multiply-accumulates (SMLAD) against
 * a word of four weights split by SXTB16 (nn_dsp_s16.h). Weight words are loaded aligned when
 * the table and the row length allow it, else from bytes (requant_dsp.h): never an unaligned
 * access. Integer sums in another order: the portable kernel's result bit for bit. */
#include <string.h>

#include "nn.h"
#include "nn_dsp_s16.h"
#include "requant.h"
#include "requant_dsp.h"

void nn_fc_s16(const nn_fc_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
               const int32_t *multiplier, const int8_t *shift, int16_t *out)
{
    const int32_t k_size = p->in_features;
    const int32_t k4 = k_size & ~3;
    const int32_t rows_aligned = ((uintptr_t)weight & 3u) == 0 && (k_size & 3) == 0;
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = in + r * p->in_row_stride;
        int16_t *y = out + r * p->out_row_stride;
        const int32_t x_aligned = ((uintptr_t)x & 3u) == 0;
        for (n = 0; n < p->out_features; ++n) {
            const int8_t *w = weight + n * k_size;
            int32_t acc = bias[n];
            if (p->in_col_stride == 1) {
                for (k = 0; k < k4; k += 4) {
                    int32_t x02, x13;
                    const int32_t ww = rows_aligned ? nn_load32_aligned(w + k) : nn_load32_any(w + k);
                    nn_dsp_s16_pairs(x + k, x_aligned, &x02, &x13);
                    acc = nn_dsp_s16_dot4(acc, ww, x02, x13);
                }
                for (k = k4; k < k_size; ++k) {
                    acc += (int32_t)x[k] * w[k];
                }
            } else {
                for (k = 0; k < k_size; ++k) {
                    acc += (int32_t)x[k * p->in_col_stride] * w[k];
                }
            }
            y[n * p->out_col_stride] = nn_output_s16(acc, multiplier[n], shift[n], p->act_min, p->act_max);
        }
    }
}
