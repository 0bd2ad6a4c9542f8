/* Cast between element types: float32, int32 (ONNX int64 and int32) and bool (uint8, 0 or 1).
 * Included by nn.h. Every kernel reads `size` elements; in == out is not allowed. */
#ifndef NN_CAST_H
#define NN_CAST_H

#include <stdint.h>

typedef struct {
    int32_t size;
} nn_cast_params;

/* float32 build: toward zero, saturated to int32's range, NaN -> 0 */
void nn_cast_f32_s32(const nn_cast_params *p, const float *in, int32_t *out);
/* x != 0 (NaN is true) */
void nn_cast_f32_u8(const nn_cast_params *p, const float *in, uint8_t *out);
void nn_cast_s32_f32(const nn_cast_params *p, const int32_t *in, float *out);
void nn_cast_u8_f32(const nn_cast_params *p, const uint8_t *in, float *out);
void nn_cast_s32_u8(const nn_cast_params *p, const int32_t *in, uint8_t *out);
void nn_cast_u8_s32(const nn_cast_params *p, const uint8_t *in, int32_t *out);

/*
 * int8 build, where the float32 side is an int8 tensor (real = scale * (q - zero_point)):
 * - nn_cast_s8_s32: out = table[q + 128], the 256 truncated real values;
 * - nn_cast_s8_u8: out = q != zero_point;
 * - nn_cast_s32_s8: out = round(x / scale) + zero_point, saturated (requant.h with m0, shift);
 * - nn_cast_u8_s8: out = levels[x != 0], the quantized 0 and 1.
 */
typedef struct {
    int32_t size;
    int32_t m0;
    int32_t shift;
    int32_t zero_point;
    int32_t levels[2];
} nn_cast_s8_params;

void nn_cast_s8_s32(const nn_cast_params *p, const int8_t *in, const int32_t *table, int32_t *out);
void nn_cast_s8_u8(const nn_cast_s8_params *p, const int8_t *in, uint8_t *out);
void nn_cast_s32_s8(const nn_cast_s8_params *p, const int32_t *in, int8_t *out);
void nn_cast_u8_s8(const nn_cast_s8_params *p, const uint8_t *in, int8_t *out);

#endif /* NN_CAST_H */
