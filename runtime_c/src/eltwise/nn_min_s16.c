#include "nn.h"
#include "requant.h"

void nn_min_s16(const nn_minmax_s16_params *p, const int16_t *a, const int16_t *b, int16_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        int32_t ra, rb;
        if (v->contiguous) {
            oa = ob = i;
        }
        ra = nn_requantize(a[oa], p->a_multiplier, p->a_shift);
        rb = nn_requantize(b[ob], p->b_multiplier, p->b_shift);
        out[i] = (int16_t)nn_clamp_s32(ra < rb ? ra : rb, p->act_min, p->act_max);
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
