#include "nn.h"

void nn_cast_f32_s32(const nn_cast_params *p, const float *in, int32_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        float x = in[i];
        /* NaN fails every comparison: it becomes 0 */
        out[i] = x >= 2147483648.0f ? INT32_MAX
                 : x <= -2147483648.0f ? INT32_MIN
                 : x > -2147483648.0f ? (int32_t)x : 0;
    }
}
