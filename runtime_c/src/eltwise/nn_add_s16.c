#include "nn.h"
#include "requant.h"

void nn_add_s16(const nn_add_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out)
{
    const nn_broadcast *v = &p->view;
    const int32_t scale = (int32_t)1 << p->left_shift;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        int32_t xa, xb;
        if (v->contiguous) {
            oa = ob = i;
        }
        xa = nn_requantize(a[oa] * scale, p->a_multiplier, p->a_shift);
        xb = nn_requantize(b[ob] * scale, p->b_multiplier, p->b_shift) * p->b_sign;
        out[i] = (int16_t)nn_clamp_s32(nn_requantize(xa + xb, p->out_multiplier, p->out_shift), p->act_min,
                                       p->act_max);
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
