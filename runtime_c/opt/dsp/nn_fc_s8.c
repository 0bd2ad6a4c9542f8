/* nn_fc_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55): when the input row is
 * contiguous, two output features at a time share each word of four inputs, split once into
 * int16 pairs (SXTB16), and take two dual 16-bit multiply-accumulates (SMLAD) per four weights.
 * Word loads are aligned when the input row, the table and the row length allow it, else built
 * from bytes (requant_dsp.h): never an unaligned access. Integer sums in another order: the
 * result equals the portable kernel's bit for bit. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "requant.h"
#include "requant_dsp.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_ror8(int32_t v)
{
    return (int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24));
}

/* a0, a1 += the first k4 inputs of x times rows w0, w1; `aligned`: 2 when x, w0 and w1 are on
 * word boundaries, 1 when the rows are (the input, read once for both rows, is built from bytes) */
static inline void nn_fc_dot2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t k4, int32_t aligned,
                              int32_t *a0, int32_t *a1)
{
    int32_t k, s0 = *a0, s1 = *a1;
/* one step of four inputs, the words loaded by LOAD_X (input) and LOAD_W (rows) */
#define NN_FC_DOT2_STEP(LOAD_X, LOAD_W)                                                                            \
    do {                                                                                                           \
        const int32_t xw = LOAD_X(x + k), wa = LOAD_W(w0 + k), wb = LOAD_W(w1 + k);                               \
        const int32_t x_even = __sxtb16(xw), x_odd = __sxtb16(nn_ror8(xw));                                       \
        s0 = __smlad(__sxtb16(nn_ror8(wa)), x_odd, __smlad(__sxtb16(wa), x_even, s0));                           \
        s1 = __smlad(__sxtb16(nn_ror8(wb)), x_odd, __smlad(__sxtb16(wb), x_even, s1));                           \
    } while (0)
    if (aligned == 2) {
        for (k = 0; k < k4; k += 4)
            NN_FC_DOT2_STEP(nn_load32_aligned, nn_load32_aligned);
    } else if (aligned == 1) {
        for (k = 0; k < k4; k += 4)
            NN_FC_DOT2_STEP(nn_load32_any, nn_load32_aligned);
    } else {
        for (k = 0; k < k4; k += 4)
            NN_FC_DOT2_STEP(nn_load32_any, nn_load32_any);
    }
#undef NN_FC_DOT2_STEP
    *a0 = s0;
    *a1 = s1;
}
#endif

void nn_fc_s8(const nn_fc_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
              const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    const int32_t k_size = p->in_features;
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->in_row_stride;
        int8_t *y = out + r * p->out_row_stride;
        n = 0;
#if defined(__ARM_FEATURE_DSP)
        if (p->in_col_stride == 1) {
            const int32_t k4 = k_size & ~3;
            const int32_t rows = ((uintptr_t)weight & 3u) == 0 && (k_size & 3) == 0;
            const int32_t aligned = rows ? 1 + (((uintptr_t)x & 3u) == 0) : 0;
            for (; n + 2 <= p->out_features; n += 2) {
                const int8_t *w0 = weight + n * k_size, *w1 = w0 + k_size;
                int32_t a0 = bias[n], a1 = bias[n + 1];
                nn_fc_dot2(x, w0, w1, k4, aligned, &a0, &a1);
                for (k = k4; k < k_size; ++k) {
                    a0 += x[k] * w0[k];
                    a1 += x[k] * w1[k];
                }
                y[n * p->out_col_stride] = nn_output_s8(a0, multiplier[n], shift[n], p->output_offset, p->act_min,
                                                        p->act_max);
                y[(n + 1) * p->out_col_stride] = nn_output_s8(a1, multiplier[n + 1], shift[n + 1], p->output_offset,
                                                              p->act_min, p->act_max);
            }
        }
#endif
        for (; n < p->out_features; ++n) {
            const int8_t *w = weight + n * k_size;
            int32_t acc = bias[n];
            for (k = 0; k < k_size; ++k) {
                acc += (int32_t)x[k * p->in_col_stride] * w[k];
            }
            y[n * p->out_col_stride] = nn_output_s8(acc, multiplier[n], shift[n], p->output_offset, p->act_min,
                                                    p->act_max);
        }
    }
}
