#include "nn.h"
#include "requant.h"

void nn_leaky_relu_s16(const nn_leaky_relu_s16_params *p, const int16_t *in, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = in[i];
        const int32_t y = x >= 0 ? nn_requantize(x, p->pos_multiplier, p->pos_shift)
                                 : nn_requantize(x, p->neg_multiplier, p->neg_shift);
        out[i] = (int16_t)nn_clamp_s32(y, p->act_min, p->act_max);
    }
}
