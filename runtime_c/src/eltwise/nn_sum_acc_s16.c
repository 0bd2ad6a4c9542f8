#include "nn.h"
#include "requant.h"

void nn_sum_acc_s16(const nn_sum_acc_s16_params *p, const int16_t *x, int32_t *acc)
{
    const nn_broadcast *v = &p->view;
    const int32_t scale = (int32_t)1 << p->left_shift;
    int32_t ix[NN_MAX_DIMS] = {0};
    int32_t i, ox = 0;
    for (i = 0; i < v->size; ++i) {
        int32_t term;
        if (v->contiguous) {
            ox = i;
        }
        term = nn_requantize(x[ox] * scale, p->multiplier, p->shift);
        acc[i] = p->first ? term : acc[i] + term;
        if (!v->contiguous) {
            ox = nn_next_offset(ix, v->shape, v->a_strides, ox);
        }
    }
}
