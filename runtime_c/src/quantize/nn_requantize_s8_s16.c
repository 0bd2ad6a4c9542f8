#include "nn.h"
#include "requant.h"

void nn_requantize_s8_s16(const nn_requantize_params *p, const int8_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s16((int32_t)in[i] + p->input_offset, p->multiplier, p->shift, -32768, 32767);
    }
}
