#include "nn.h"
#include "requant.h"

void nn_cast_s8_u8(const nn_cast_s8_params *p, const int8_t *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (uint8_t)(in[i] != p->zero_point);
    }
}
