/* pool kernels. Included by nn.h. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <stdint.h>

#endif /* NN_POOL_H */
