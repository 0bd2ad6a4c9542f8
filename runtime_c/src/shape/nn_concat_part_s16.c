#include "nn.h"
#include "requant.h"

void nn_concat_part_s16(const nn_concat_part_s16_params *p, const int16_t *in, int16_t *out)
{
    const nn_concat_part_params *c = &p->part;
    int32_t o, k;
    for (o = 0; o < c->outer; ++o) {
        const int16_t *x = in + o * c->in_block;
        int16_t *y = out + o * c->out_block + c->offset;
        for (k = 0; k < c->in_block; ++k) {
            y[k] = (int16_t)nn_clamp_s32(nn_requantize(x[k], p->multiplier, p->shift), -32768, 32767);
        }
    }
}
