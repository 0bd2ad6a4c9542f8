#include "nn.h"
#include "requant.h"

void nn_concat_part_s8(const nn_concat_part_s8_params *p, const int8_t *in, int8_t *out)
{
    const nn_concat_part_params *c = &p->part;
    int32_t o, k;
    for (o = 0; o < c->outer; ++o) {
        const int8_t *x = in + o * c->in_block;
        int8_t *y = out + o * c->out_block + c->offset;
        for (k = 0; k < c->in_block; ++k) {
            y[k] = nn_output_s8(x[k] + p->input_offset, p->multiplier, p->shift, p->output_offset, -128, 127);
        }
    }
}
