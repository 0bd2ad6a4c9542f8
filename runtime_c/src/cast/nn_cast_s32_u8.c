#include "nn.h"

void nn_cast_s32_u8(const nn_cast_params *p, const int32_t *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (uint8_t)(in[i] != 0);
    }
}
