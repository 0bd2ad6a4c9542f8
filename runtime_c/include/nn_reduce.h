/* reduce kernels. Included by nn.h. */
#ifndef NN_REDUCE_H
#define NN_REDUCE_H

#include <stdint.h>

#endif /* NN_REDUCE_H */
