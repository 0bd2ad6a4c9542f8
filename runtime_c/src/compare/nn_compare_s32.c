#include "nn.h"

void nn_compare_s32(const nn_compare_params *p, const int32_t *a, const int32_t *b, uint8_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        const int32_t x = a[oa], z = b[ob];
        const int32_t k = x < z ? 0 : x > z ? 2 : x <= z ? 1 : 3; /* 3: unordered (NaN) */
        out[i] = (uint8_t)((p->mask >> k) & 1);
        oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
        ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
    }
}
