#include "nn.h"
#include "requant.h"

void nn_cast_s8_s32(const nn_cast_params *p, const int8_t *in, const int32_t *table, int32_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = table[in[i] + 128];
    }
}

void nn_cast_s8_u8(const nn_cast_s8_params *p, const int8_t *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (uint8_t)(in[i] != p->zero_point);
    }
}

void nn_cast_s32_s8(const nn_cast_s8_params *p, const int32_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = nn_output_s8(in[i], p->m0, p->shift, p->zero_point, -128, 127);
    }
}

void nn_cast_u8_s8(const nn_cast_s8_params *p, const uint8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)p->levels[in[i] != 0];
    }
}
