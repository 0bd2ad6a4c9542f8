#include "nn.h"

void nn_where_s8(const nn_where_params *p, const uint8_t *cond, const int8_t *x, const int8_t *tx, const int8_t *y,
                 const int8_t *ty, int8_t *out)
{
    const nn_where_view *v = &p->view;
    int32_t ic[NN_MAX_DIMS] = {0}, ix[NN_MAX_DIMS] = {0}, iy[NN_MAX_DIMS] = {0};
    int32_t i, oc = 0, ox = 0, oy = 0;
    for (i = 0; i < v->size; ++i) {
        if (cond[oc]) {
            out[i] = tx ? tx[x[ox] + 128] : x[ox];
        } else {
            out[i] = ty ? ty[y[oy] + 128] : y[oy];
        }
        oc = nn_next_offset(ic, v->shape, v->c_strides, oc);
        ox = nn_next_offset(ix, v->shape, v->x_strides, ox);
        oy = nn_next_offset(iy, v->shape, v->y_strides, oy);
    }
}
