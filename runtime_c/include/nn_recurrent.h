/* Recurrent layers: LSTM and GRU, one direction per call. Included by nn.h. */
#ifndef NN_RECURRENT_H
#define NN_RECURRENT_H

#include <stdint.h>

/*
 * Shapes and strides shared by every recurrent kernel (all counts in elements):
 *   x[t * x_seq_stride + b * x_batch_stride + k]               t < seq_len, b < batch, k < input_size
 *   y[y_offset + t * y_seq_stride + b * y_batch_stride + j]     j < hidden_size (every step's h)
 *   y_h[state_offset + b * state_batch_stride + j]              (the last h; y_c likewise the last c)
 * ONNX layout 0 (X [S, B, I], Y [S, D, B, H], Y_h [D, B, H]) and layout 1 (X [B, S, I],
 * Y [B, S, D, H], Y_h [B, D, H]) are both such strides; direction d of a bidirectional layer
 * is a second call with its own weights, reverse = 1 and the offsets of d. reverse = 1 walks
 * t from seq_len - 1 down to 0. y, y_h, y_c may each be NULL (an output nobody reads).
 * Weights of one direction, ONNX gate order, row-major: w [G * H, I], r [G * H, H]
 * (LSTM G = 4: i, o, f, c; GRU G = 3: z, r, h). h0 / c0: [batch, H] or NULL (zeros).
 * The state lives in `scratch` (the caller's arena; size below); x and the outputs must not
 * overlap each other or the scratch.
 */
typedef struct {
    int32_t seq_len;
    int32_t batch;
    int32_t input_size;
    int32_t hidden_size;
    int32_t reverse;
    int32_t x_seq_stride;
    int32_t x_batch_stride;
    int32_t y_offset;
    int32_t y_seq_stride;
    int32_t y_batch_stride;
    int32_t state_offset;
    int32_t state_batch_stride;
} nn_lstm_f32_params;

/*
 * float32 LSTM: per step and batch row, g[n] = b[n] + sum_k x[k] w[n, k] + sum_k h[k] r[n, k]
 * (summed in that order), then c = f * c + i * tanhf(g_c), h = o * tanhf(c) with i, o, f the
 * sigmoid of their rows (as nn_sigmoid_f32). b: [4H], Wb + Rb, or NULL.
 * scratch: (4 H + 2 batch H) floats.
 */
void nn_lstm_f32(const nn_lstm_f32_params *p, const float *x, const float *w, const float *r, const float *b,
                 const float *h0, const float *c0, float *y, float *y_h, float *y_c, float *scratch);

typedef struct {
    int32_t seq_len;
    int32_t batch;
    int32_t input_size;
    int32_t hidden_size;
    int32_t reverse;
    int32_t x_seq_stride;
    int32_t x_batch_stride;
    int32_t y_offset;
    int32_t y_seq_stride;
    int32_t y_batch_stride;
    int32_t state_offset;
    int32_t state_batch_stride;
    int32_t linear_before_reset; /* 0 or 1, as the ONNX attribute */
} nn_gru_f32_params;

/*
 * float32 GRU: z, r = sigmoid(b + x w^T + h r^T) over their rows;
 *   linear_before_reset 0: n = tanhf(b_h + x w_h^T + (r * h) r_h^T)      b_h = Wb_h + Rb_h
 *   linear_before_reset 1: n = tanhf(b_h + x w_h^T + r * (rb + h r_h^T)) b_h = Wb_h, rb = Rb_h [H]
 *   h = (1 - z) * n + z * h.
 * b: [3H] (Wb + Rb for z and r, b_h for h) or NULL; rb: [H] or NULL (unused when
 * linear_before_reset is 0). scratch: (4 H + batch H) floats.
 */
void nn_gru_f32(const nn_gru_f32_params *p, const float *x, const float *w, const float *r, const float *b,
                const float *rb, const float *h0, float *y, float *y_h, float *scratch);

/*
 * int16 gate functions of the int8 layers: x in Q3.12 (x / 4096, [-8, 8)), result in Q0.15.
 * A 513-entry table at every 1/32 (entries i and i + 1 around (x + 32768) >> 7) and linear
 * interpolation over the low 7 bits: t[i] + ((t[i + 1] - t[i]) * low + 64) >> 7.
 * sigmoid in [0, 32767], tanh in [-32767, 32767].
 */
int16_t nn_gate_sigmoid_s16(int16_t x);
int16_t nn_gate_tanh_s16(int16_t x);

/*
 * int8 LSTM (TFLite's 8x8_16 integer LSTM scheme). x: int8 (its zero point is folded into wb);
 * h: int8 with zero point hidden_offset (also Y and Y_h). Per gate row n:
 *   ax = wb[n] + sum_k x[k] w[n, k],  ah = rb[n] + sum_k h[k] r[n, k]           (int32; the
 *        biases hold the folded zero points: wb = bias - x_zero_point * sum_k w[n, k] ...)
 *   g[n] = sat16(nn_requantize(ax, wm[n], ws[n]) + nn_requantize(ah, rm[n], rs[n]))  (Q3.12)
 *   i, o, f = nn_gate_sigmoid_s16(g), cg = nn_gate_tanh_s16(g)                  (Q0.15)
 *   c = sat16(rdiv(f * c, 15) + rdiv(i * cg, 30 - cell_frac))   (int16 at 2^-cell_frac, in [0, 15])
 *   t = nn_gate_tanh_s16(c in Q3.12: rdiv(c, cell_frac - 12), or c * 2^(12 - cell_frac) saturated)
 *   h = nn_output_s8(o * t, h_multiplier, h_shift, hidden_offset, -128, 127)
 * (rdiv: nn_rounding_divide_by_pot). y_c gets nn_output_s8(c, c_multiplier, c_shift, c_offset).
 * h0: int8 [batch, H] (never NULL); c0: int16 [batch, H] at 2^-cell_frac (never NULL).
 * w, r: int8 per-row scaled; wm/rm Q31 multipliers and ws/rs shifts per row.
 * scratch (4-byte aligned): 4 H int32 gates, then batch H int16 cells, then batch H int8 h.
 */
typedef struct {
    int32_t seq_len;
    int32_t batch;
    int32_t input_size;
    int32_t hidden_size;
    int32_t reverse;
    int32_t x_seq_stride;
    int32_t x_batch_stride;
    int32_t y_offset;
    int32_t y_seq_stride;
    int32_t y_batch_stride;
    int32_t state_offset;
    int32_t state_batch_stride;
    int32_t hidden_offset;
    int32_t h_multiplier;
    int32_t h_shift;
    int32_t cell_frac;
    int32_t c_multiplier;
    int32_t c_shift;
    int32_t c_offset;
} nn_lstm_s8_params;

void nn_lstm_s8(const nn_lstm_s8_params *p, const int8_t *x, const int8_t *w, const int32_t *wb,
                const int32_t *wm, const int8_t *ws, const int8_t *r, const int32_t *rb, const int32_t *rm,
                const int8_t *rs, const int8_t *h0, const int16_t *c0, int8_t *y, int8_t *y_h, int8_t *y_c,
                int32_t *scratch);

/*
 * int8 GRU, the same accumulators and Q3.12 requantization. z, r = nn_gate_sigmoid_s16(g).
 *   linear_before_reset 1: hr = sat16(nn_requantize(ah_h, rm, rs)) (rb holds Rb_h);
 *                          n = tanh(sat16(nn_requantize(ax_h, wm, ws) + rdiv(r * hr, 15)))
 *   linear_before_reset 0: rh[k] = hidden_offset + rdiv(r[k] * (h[k] - hidden_offset), 15) (int8);
 *                          n = tanh(sat16(nn_requantize(ax_h, wm, ws) + nn_requantize(rh . r_h, rm, rs)))
 *   h = clamp(hidden_offset + nn_requantize((32768 - z) * n, h_multiplier, h_shift)
 *             + rdiv(z * (h - hidden_offset), 15), -128, 127)
 * scratch (4-byte aligned): 3 H int32 gates, then batch H int8 h, then H int8 (r * h).
 */
typedef struct {
    int32_t seq_len;
    int32_t batch;
    int32_t input_size;
    int32_t hidden_size;
    int32_t reverse;
    int32_t x_seq_stride;
    int32_t x_batch_stride;
    int32_t y_offset;
    int32_t y_seq_stride;
    int32_t y_batch_stride;
    int32_t state_offset;
    int32_t state_batch_stride;
    int32_t hidden_offset;
    int32_t h_multiplier;
    int32_t h_shift;
    int32_t linear_before_reset;
} nn_gru_s8_params;

void nn_gru_s8(const nn_gru_s8_params *p, const int8_t *x, const int8_t *w, const int32_t *wb,
               const int32_t *wm, const int8_t *ws, const int8_t *r, const int32_t *rb, const int32_t *rm,
               const int8_t *rs, const int8_t *h0, int8_t *y, int8_t *y_h, int32_t *scratch);

#endif /* NN_RECURRENT_H */
