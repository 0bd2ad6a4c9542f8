#include "nn.h"

void nn_scaler_f32(const nn_rows_params *p, const float *in, const float *offset, const float *scale, float *out)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        for (c = 0; c < p->cols; ++c) {
            out[r * p->cols + c] = (in[r * p->cols + c] - offset[c]) * scale[c];
        }
    }
}
