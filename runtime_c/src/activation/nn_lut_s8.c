#include "nn.h"

void nn_lut_s8(const nn_lut_s8_params *p, const int8_t *in, const int8_t *table, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = table[(int32_t)in[i] + 128];
    }
}
