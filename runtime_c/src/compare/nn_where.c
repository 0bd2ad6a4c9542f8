#include <string.h>

#include "nn.h"

void nn_where(const nn_where_params *p, const uint8_t *cond, const void *x, const void *y, void *out)
{
    const nn_where_view *v = &p->view;
    const uint8_t *xb = (const uint8_t *)x, *yb = (const uint8_t *)y;
    uint8_t *ob = (uint8_t *)out;
    int32_t ic[NN_MAX_DIMS] = {0}, ix[NN_MAX_DIMS] = {0}, iy[NN_MAX_DIMS] = {0};
    int32_t i, oc = 0, ox = 0, oy = 0;
    for (i = 0; i < v->size; ++i) {
        const uint8_t *src = cond[oc] ? xb + ox * p->elem_bytes : yb + oy * p->elem_bytes;
        memcpy(ob + i * p->elem_bytes, src, (size_t)p->elem_bytes);
        oc = nn_next_offset(ic, v->shape, v->c_strides, oc);
        ox = nn_next_offset(ix, v->shape, v->x_strides, ox);
        oy = nn_next_offset(iy, v->shape, v->y_strides, oy);
    }
}
