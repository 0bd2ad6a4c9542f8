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

void nn_cast_f32_u8(const nn_cast_params *p, const float *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        /* true unless zero (+0 or -0); NaN fails both comparisons: true */
        out[i] = (uint8_t)!(in[i] >= 0.0f && in[i] <= 0.0f);
    }
}

void nn_cast_s32_f32(const nn_cast_params *p, const int32_t *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (float)in[i];
    }
}

void nn_cast_u8_f32(const nn_cast_params *p, const uint8_t *in, float *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = in[i] ? 1.0f : 0.0f;
    }
}

void nn_cast_s32_u8(const nn_cast_params *p, const int32_t *in, uint8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (uint8_t)(in[i] != 0);
    }
}

void nn_cast_u8_s32(const nn_cast_params *p, const uint8_t *in, int32_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = in[i] != 0;
    }
}
