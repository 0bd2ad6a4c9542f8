#include "nn.h"
#include "requant.h"

void nn_cast_u8_s8(const nn_cast_s8_params *p, const uint8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)p->levels[in[i] != 0];
    }
}
