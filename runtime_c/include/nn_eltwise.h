/* eltwise kernels. Included by nn.h. */
#ifndef NN_ELTWISE_H
#define NN_ELTWISE_H

#include <stdint.h>

#endif /* NN_ELTWISE_H */
