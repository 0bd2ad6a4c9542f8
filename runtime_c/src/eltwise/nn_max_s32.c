#include "nn.h"

void nn_max_s32(const nn_binary_s32_params *p, const int32_t *a, const int32_t *b, int32_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        int32_t x, y;
        if (v->contiguous) {
            oa = ob = i;
        }
        x = a[oa];
        y = b[ob];
        out[i] = x > y ? x : y;
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
