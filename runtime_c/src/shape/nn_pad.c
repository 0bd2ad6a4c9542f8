#include <string.h>

#include "nn.h"

void nn_pad(const nn_pad_params *p, const void *in, void *out)
{
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    const int32_t e = p->elem_size;
    int32_t in_strides[NN_MAX_DIMS], out_strides[NN_MAX_DIMS], ext[NN_MAX_DIMS], idx[NN_MAX_DIMS] = {0};
    int32_t d, i, in_size = 1, out_size = 1, rows = 1, row, src_at = 0, dst_at = 0, uniform = 1;
    for (d = NN_MAX_DIMS - 1; d >= 0; --d) {
        in_strides[d] = in_size;
        in_size *= p->in_shape[d];
        out_strides[d] = out_size;
        out_size *= p->out_shape[d];
    }
    /* the box that survives: input [lo, lo + ext) lands at output [lo + begin, ...) */
    for (d = 0; d < NN_MAX_DIMS; ++d) {
        const int32_t lo = p->begin[d] < 0 ? -p->begin[d] : 0;
        const int32_t at = p->begin[d] > 0 ? p->begin[d] : 0;
        const int32_t a = p->in_shape[d] - lo, b = p->out_shape[d] - at;
        ext[d] = a < b ? a : b;
        ext[d] = ext[d] < 0 ? 0 : ext[d];
        src_at += lo * in_strides[d];
        dst_at += at * out_strides[d];
        if (d < NN_MAX_DIMS - 1) {
            rows *= ext[d];
        }
    }
    for (i = 1; i < e; ++i) {
        uniform &= p->value[i] == p->value[0];
    }
    if (uniform) {
        memset(dst, p->value[0], (size_t)(out_size * e));
    } else {
        for (i = 0; i < out_size; ++i) {
            memcpy(dst + i * e, p->value, (size_t)e);
        }
    }
    row = ext[NN_MAX_DIMS - 1] * e;
    if (row == 0) {
        return;
    }
    /* one input row (last dimension) at a time; the odometer walks dimensions 0..4 */
    for (i = 0; i < rows; ++i) {
        memcpy(dst + dst_at * e, src + src_at * e, (size_t)row);
        for (d = NN_MAX_DIMS - 2; d >= 0; --d) {
            src_at += in_strides[d];
            dst_at += out_strides[d];
            if (++idx[d] < ext[d]) {
                break;
            }
            src_at -= in_strides[d] * ext[d];
            dst_at -= out_strides[d] * ext[d];
            idx[d] = 0;
        }
    }
}
