#include "nn.h"
#include "requant.h"

void nn_cast_s32_s8(const nn_cast_s8_params *p, const int32_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s8(in[i], p->m0, p->shift, p->zero_point, -128, 127);
    }
}
