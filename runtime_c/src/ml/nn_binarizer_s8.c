#include "nn.h"

void nn_binarizer_s8(const nn_binarizer_s8_params *p, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)((int32_t)in[i] > p->threshold ? p->one : p->zero);
    }
}
