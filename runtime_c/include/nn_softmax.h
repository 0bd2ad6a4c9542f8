/* softmax kernels. Included by nn.h. */
#ifndef NN_SOFTMAX_H
#define NN_SOFTMAX_H

#include <stdint.h>

#endif /* NN_SOFTMAX_H */
