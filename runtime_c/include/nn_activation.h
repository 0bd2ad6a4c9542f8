/* activation kernels. Included by nn.h. */
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stdint.h>

#endif /* NN_ACTIVATION_H */
