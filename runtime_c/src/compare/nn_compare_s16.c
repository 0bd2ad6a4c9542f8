#include "nn.h"
#include "requant.h"

void nn_compare_s16(const nn_compare_s8_params *p, const int16_t *a, const int16_t *b, uint8_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        const int32_t x = nn_requantize(a[oa] * (1 << p->left_shift), p->a_multiplier, p->a_shift);
        const int32_t z = nn_requantize(b[ob] * (1 << p->left_shift), p->b_multiplier, p->b_shift);
        const int32_t k = x < z ? 0 : x == z ? 1 : 2;
        out[i] = (uint8_t)((p->mask >> k) & 1);
        oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
        ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
    }
}
