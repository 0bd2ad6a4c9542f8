#include "nn.h"
#include "requant.h"

void nn_where_s16(const nn_where_s16_params *p, const uint8_t *cond, const int16_t *x, const int16_t *y, int16_t *out)
{
    const nn_where_view *v = &p->view;
    int32_t ic[NN_MAX_DIMS] = {0}, ix[NN_MAX_DIMS] = {0}, iy[NN_MAX_DIMS] = {0};
    int32_t i, oc = 0, ox = 0, oy = 0;
    for (i = 0; i < v->size; ++i) {
        out[i] = cond[oc] ? nn_output_s16(x[ox], p->x_multiplier, p->x_shift, -32768, 32767)
                          : nn_output_s16(y[oy], p->y_multiplier, p->y_shift, -32768, 32767);
        oc = nn_next_offset(ic, v->shape, v->c_strides, oc);
        ox = nn_next_offset(ix, v->shape, v->x_strides, ox);
        oy = nn_next_offset(iy, v->shape, v->y_strides, oy);
    }
}
