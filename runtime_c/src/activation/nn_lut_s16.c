#include "nn.h"
#include "requant.h"

void nn_lut_s16(const nn_lut_s16_params *p, const int16_t *in, const int32_t *table, int16_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t u = (int32_t)in[i] + 32768;
        const int32_t base = table[u >> 7];
        out[i] = (int16_t)nn_clamp_s32(base + (((table[(u >> 7) + 1] - base) * (u & 127) + 64) >> 7), -32768, 32767);
    }
}
