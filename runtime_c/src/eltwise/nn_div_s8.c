#include "nn.h"
#include "requant.h"

void nn_div_s8(const nn_div_s8_params *p, const int8_t *a, const int8_t *b, const int32_t *m0, const int32_t *shift,
               int8_t *out)
{
    const nn_broadcast *v = &p->view;
    int32_t ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, oa = 0, ob = 0;
    for (i = 0; i < v->size; ++i) {
        int32_t level;
        if (v->contiguous) {
            oa = ob = i;
        }
        level = b[ob] + 128;
        out[i] = nn_output_s8(a[oa] + p->a_offset, m0[level], shift[level], p->out_offset, p->act_min, p->act_max);
        if (!v->contiguous) {
            oa = nn_next_offset(ia, v->shape, v->a_strides, oa);
            ob = nn_next_offset(ib, v->shape, v->b_strides, ob);
        }
    }
}
