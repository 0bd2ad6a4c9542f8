/* Data movement (Reshape copies, Transpose, Concat, Pad). Element-type generic: sizes are
 * in bytes or elements of `elem_size` bytes, so float32 and int8 models share these kernels.
 * Included by nn.h. */
#ifndef NN_SHAPE_H
#define NN_SHAPE_H

#include <stdint.h>

/* out[0 .. bytes) = in[0 .. bytes); in == out is allowed (nothing to do). */
typedef struct {
    int32_t bytes;
} nn_copy_params;

void nn_copy(const nn_copy_params *p, const void *in, void *out);

#endif /* NN_SHAPE_H */
