/* nn_fc_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55): when the input row is
 * contiguous, four int8 products per step with two dual 16-bit multiply-accumulates (SMLAD).
 * Integer sums in another order: the result equals the portable kernel's bit for bit. */
#include <string.h>

#include "nn.h"
#include "requant.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* sum of four int8 products of the words a and b, added to acc */
static inline int32_t nn_dot4_s8(uint32_t a, uint32_t b, int32_t acc)
{
    const int16x2_t a_even = __sxtb16(a), b_even = __sxtb16(b);
    const int16x2_t a_odd = __sxtb16((a >> 8) | (a << 24)), b_odd = __sxtb16((b >> 8) | (b << 24));
    return __smlad(a_odd, b_odd, __smlad(a_even, b_even, acc));
}
#endif

void nn_fc_s8(const nn_fc_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
              const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    int32_t r, n, k;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->in_row_stride;
        int8_t *y = out + r * p->out_row_stride;
        for (n = 0; n < p->out_features; ++n) {
            const int8_t *w = weight + n * p->in_features;
            int32_t acc = bias[n];
            k = 0;
#if defined(__ARM_FEATURE_DSP)
            if (p->in_col_stride == 1) {
                for (; k + 4 <= p->in_features; k += 4) {
                    uint32_t a, b;
                    memcpy(&a, x + k, 4);
                    memcpy(&b, w + k, 4);
                    acc = nn_dot4_s8(a, b, acc);
                }
            }
#endif
            for (; k < p->in_features; ++k) {
                acc += (int32_t)x[k * p->in_col_stride] * w[k];
            }
            acc = nn_requantize(acc, multiplier[n], shift[n]) + p->output_offset;
            y[n * p->out_col_stride] = (int8_t)nn_clamp_s32(acc, p->act_min, p->act_max);
        }
    }
}
