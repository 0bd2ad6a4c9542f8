#include "nn.h"
#include "requant.h"

void nn_prelu_s16(const nn_prelu_s16_params *p, const int16_t *x, const int8_t *slope, const int32_t *neg_multiplier,
                  const int32_t *neg_shift, int16_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t is[NN_MAX_DIMS] = {0};
    int32_t i, os = 0;
    for (i = 0; i < v->size; ++i) {
        const int32_t d = x[i];
        const int32_t y = d > 0 ? nn_requantize(d, p->pos_multiplier, p->pos_shift)
                                : nn_requantize(d * slope[os], neg_multiplier[os], neg_shift[os]);
        out[i] = (int16_t)nn_clamp_s32(y, p->act_min, p->act_max);
        os = nn_next_offset(is, v->shape, v->b_strides, os);
    }
}
