#include <math.h>
#include <string.h>

#include "nn.h"

void nn_max_f32(const nn_binary_f32_params *p, const float *a, const float *b, float *out)
{
    const nn_broadcast *v = &p->view;
    const int32_t n = v->shape[NN_MAX_DIMS - 1];
    const int32_t sa = v->a_strides[NN_MAX_DIMS - 1];
    const int32_t sb = v->b_strides[NN_MAX_DIMS - 1];
    const float lo = p->act_min, hi = p->act_max;
    int32_t rows_shape[NN_MAX_DIMS], ia[NN_MAX_DIMS] = {0}, ib[NN_MAX_DIMS] = {0};
    int32_t i, r, rows, oa = 0, ob = 0;
    if (v->size <= 0) {
        return;
    }
    if (v->contiguous) {
        for (i = 0; i < v->size; ++i) {
            float y = (isnan(a[i]) || a[i] > b[i]) ? a[i] : b[i];
            y = y < lo ? lo : y;
            out[i] = y > hi ? hi : y;
        }
        return;
    }
    /* one row of the last dimension at a time; the other dimensions step per row */
    memcpy(rows_shape, v->shape, sizeof rows_shape);
    rows_shape[NN_MAX_DIMS - 1] = 1;
    rows = v->size / n;
    for (r = 0; r < rows; ++r) {
        const float *x = a + oa;
        const float *z = b + ob;
        float *o = out + r * n;
        for (i = 0; i < n; ++i) {
            float u = x[i * sa], w = z[i * sb];
            float y = (isnan(u) || u > w) ? u : w;
            y = y < lo ? lo : y;
            o[i] = y > hi ? hi : y;
        }
        oa = nn_next_offset(ia, rows_shape, v->a_strides, oa);
        ob = nn_next_offset(ib, rows_shape, v->b_strides, ob);
    }
}
