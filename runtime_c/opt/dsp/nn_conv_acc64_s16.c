/* nn_conv_acc64_s16 for cores with the DSP extension (Cortex-M4, M7, M33, M55): int64 sums, two
 * SMLALD per four weights of an output channel, on columns of the input (nn_conv_s16_dsp_body.h). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2") /* the hot loops keep their registers even in an -Os build */
#endif
#include <string.h>

#include "nn.h"
#include "nn_dsp_s16.h"
#include "requant.h"
#include "requant_dsp.h"

#define NN_S16_ACC int64_t
#define NN_S16_DOT4 nn_dsp_s16_dot4_64
#define NN_S16_OUTPUT nn_output64_s16

void nn_conv_acc64_s16(const nn_conv_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
                       const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int16_t *out)
{
#include "nn_conv_s16_dsp_body.h"
}
