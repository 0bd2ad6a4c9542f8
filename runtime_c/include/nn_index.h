/* Walking strided views and sliding windows (shared by the kernels). Included by nn.h. */
#ifndef NN_INDEX_H
#define NN_INDEX_H

#include <stdint.h>

/*
 * Advance the multi-index `idx` (NN_MAX_DIMS entries, each in [0, shape[d])) by one
 * element and return `offset` moved accordingly: offset = sum_d idx[d] * strides[d].
 * Strides are in elements (or bytes, as the caller counts) and may be 0 (broadcast) or
 * any other value (transposed views). Past the last element the index wraps to zero.
 */
static inline int32_t nn_next_offset(int32_t *idx, const int32_t *shape, const int32_t *strides, int32_t offset)
{
    int32_t d;
    for (d = NN_MAX_DIMS - 1; d >= 0; --d) {
        offset += strides[d];
        if (++idx[d] < shape[d]) {
            return offset;
        }
        offset -= strides[d] * shape[d];
        idx[d] = 0;
    }
    return offset;
}

/* The kernel taps [*k0, *k1) of a window starting at input position `start` (negative in the
 * padding) whose positions start + k * dilation lie inside [0, size). */
static inline void nn_window_taps(int32_t start, int32_t kernel, int32_t dilation, int32_t size,
                                  int32_t *k0, int32_t *k1)
{
    const int32_t lo = start < 0 ? (dilation - 1 - start) / dilation : 0;
    const int32_t hi = start >= size ? 0 : (size - start + dilation - 1) / dilation;
    *k0 = lo;
    *k1 = hi < kernel ? hi : kernel;
    *k1 = *k1 < lo ? lo : *k1;
}

#endif /* NN_INDEX_H */
