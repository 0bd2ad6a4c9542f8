/* Walking a strided view of up to NN_MAX_DIMS dimensions, last dimension fastest. Included by nn.h. */
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

#endif /* NN_INDEX_H */
