#include "nn.h"

static float nn_binary_apply(int32_t op, float x, float y)
{
    switch (op) {
    case NN_ADD:
        return x + y;
    case NN_SUB:
        return x - y;
    case NN_MUL:
        return x * y;
    default:
        return x / y;
    }
}

void nn_binary_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        float y;
        if (v->contiguous) {
            oa = ob = i;
        }
        y = nn_binary_apply(p->op, a[oa], b[ob]);
        y = y < p->act_min ? p->act_min : y;
        out[i] = y > p->act_max ? p->act_max : y;
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
