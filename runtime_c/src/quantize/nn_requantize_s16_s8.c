#include "nn.h"
#include "requant.h"

void nn_requantize_s16_s8(const nn_requantize_params *p, const int16_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s8((int32_t)in[i] + p->input_offset, p->multiplier, p->shift, p->output_offset, -128,
                              127);
    }
}
