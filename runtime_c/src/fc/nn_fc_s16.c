#include "nn.h"
#include "requant.h"

#define NN_S16_ACC int32_t
#define NN_S16_OUTPUT nn_output_s16

void nn_fc_s16(const nn_fc_s16_params *p, const int16_t *in, const int8_t *weight, const int32_t *bias,
               const int32_t *multiplier, const int8_t *shift, int16_t *out)
{
#include "nn_fc_s16_body.h"
}
