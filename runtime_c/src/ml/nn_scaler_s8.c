#include "nn.h"
#include "requant.h"

void nn_scaler_s8(const nn_scaler_s8_params *p, const int8_t *in, const int32_t *weight, const int32_t *bias,
                  const int32_t *multiplier, const int8_t *shift, int8_t *out)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        for (c = 0; c < p->cols; ++c) {
            int32_t i = r * p->cols + c;
            int32_t acc = weight[c] * ((int32_t)in[i] + p->input_offset) + bias[c];
            out[i] = nn_output_s8(acc, multiplier[c], shift[c], p->output_offset, -128, 127);
        }
    }
}
