/* Comparisons, logic, Where and ArgMax/ArgMin. Bool tensors are uint8_t holding 0 or 1.
 * Included by nn.h after nn_eltwise.h (nn_broadcast). */
#ifndef NN_COMPARE_H
#define NN_COMPARE_H

#include <stdint.h>

/*
 * out[i] = (mask >> k) & 1 over the broadcast view (nn_broadcast in nn_eltwise.h), where for
 * nn_compare_f32 and nn_compare_s32 k is 0 when a < b, 1 when a == b, 2 when a > b and 3 when
 * they are unordered (a NaN): Less 0x1, Equal 0x2, LessOrEqual 0x3, Greater 0x4,
 * GreaterOrEqual 0x6. For nn_logic_u8, k = 2 * (a != 0) + (b != 0): And 0x8, Or 0xE,
 * Xor 0x6, Not 0x1 (with b = a), and the comparisons of bools.
 */
typedef struct {
    nn_broadcast view;
    int32_t mask;
} nn_compare_params;

void nn_compare_f32(const nn_compare_params *p, const float *a, const float *b, uint8_t *out);
void nn_compare_s32(const nn_compare_params *p, const int32_t *a, const int32_t *b, uint8_t *out);
void nn_logic_u8(const nn_compare_params *p, const uint8_t *a, const uint8_t *b, uint8_t *out);

/*
 * int8 comparison: both operands move to a common scale (requant.h),
 *   xa = nn_requantize((a + a_offset) << left_shift, a_multiplier, a_shift), xb likewise,
 * and k compares xa with xb as in nn_compare_s32.
 */
typedef struct {
    nn_broadcast view;
    int32_t mask;
    int32_t left_shift;
    int32_t a_offset;
    int32_t a_multiplier;
    int32_t a_shift;
    int32_t b_offset;
    int32_t b_multiplier;
    int32_t b_shift;
} nn_compare_s8_params;

void nn_compare_s8(const nn_compare_s8_params *p, const int8_t *a, const int8_t *b, uint8_t *out);
/* int16 (zero points 0: the offsets are 0, left_shift is 15): the same comparison of int16 operands. */
void nn_compare_s16(const nn_compare_s8_params *p, const int16_t *a, const int16_t *b, uint8_t *out);

/*
 * Where: out[i] = cond[.] ? x[.] : y[.] over a three-way broadcast: the output is dense with
 * shape `shape` (padded in front with 1s to NN_MAX_DIMS, `size` elements) and each operand
 * is read through its element strides (0 where it broadcasts).
 */
typedef struct {
    int32_t size;
    int32_t shape[NN_MAX_DIMS];
    int32_t c_strides[NN_MAX_DIMS];
    int32_t x_strides[NN_MAX_DIMS];
    int32_t y_strides[NN_MAX_DIMS];
} nn_where_view;

typedef struct {
    nn_where_view view;
    int32_t elem_bytes; /* 1 or 4: any element type, moved as bytes */
} nn_where_params;

void nn_where(const nn_where_params *p, const uint8_t *cond, const void *x, const void *y, void *out);
/* int8: x and y pass through the 256-entry tables tx and ty (NULL: as they are) to the output's scale */
void nn_where_s8(const nn_where_params *p, const uint8_t *cond, const int8_t *x, const int8_t *tx, const int8_t *y,
                 const int8_t *ty, int8_t *out);

/* int16 (zero points 0): x and y rescaled to the output's scale (a multiplier of 2^30 with shift 1
 * passes a value unchanged), out = clamp(nn_requantize(cond ? x : y, ...), -32768, 32767). */
typedef struct {
    nn_where_view view;
    int32_t x_multiplier;
    int32_t x_shift;
    int32_t y_multiplier;
    int32_t y_shift;
} nn_where_s16_params;

void nn_where_s16(const nn_where_s16_params *p, const uint8_t *cond, const int16_t *x, const int16_t *y, int16_t *out);

/*
 * ArgMax (is_min = 0) or ArgMin (1) of a tensor seen as [outer, length, inner] along the
 * axis: out[o * inner + i] is the index of the first extreme value (the last with
 * select_last = 1). length >= 1.
 */
typedef struct {
    int32_t outer;
    int32_t length;
    int32_t inner;
    int32_t select_last;
    int32_t is_min;
} nn_argmax_params;

void nn_argmax_f32(const nn_argmax_params *p, const float *in, int32_t *out);
void nn_argmax_s8(const nn_argmax_params *p, const int8_t *in, int32_t *out);
void nn_argmax_s16(const nn_argmax_params *p, const int16_t *in, int32_t *out);
void nn_argmax_s32(const nn_argmax_params *p, const int32_t *in, int32_t *out);

#endif /* NN_COMPARE_H */
