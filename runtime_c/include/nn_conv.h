/* conv kernels. Included by nn.h. */
#ifndef NN_CONV_H
#define NN_CONV_H

#include <stdint.h>

#endif /* NN_CONV_H */
