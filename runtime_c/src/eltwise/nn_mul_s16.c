#include "nn.h"
#include "requant.h"

void nn_mul_s16(const nn_mul_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        if (v->contiguous) {
            oa = ob = i;
        }
        out[i] = (int16_t)nn_clamp_s32(nn_requantize((int32_t)a[oa] * b[ob], p->out_multiplier, p->out_shift),
                                       p->act_min, p->act_max);
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
