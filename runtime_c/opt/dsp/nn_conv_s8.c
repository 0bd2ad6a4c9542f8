/* nn_conv_s8 for cores with the DSP extension (Cortex-M4, M7, M33, M55).
 *
 * Two output positions at a time: their windows, plus input_offset (0 in padding), are copied
 * into one int16 column pair in scratch, then two output channels at a time take eight dual
 * 16-bit multiply-accumulates (SMLAD) per four weights, every word loaded serving two sums.
 * SXTB16 splits a word of four weights w0..w3 into the pairs (w0, w2) and (w1, w3), so the
 * column pair, for K = in_channels / groups * kernel_h * kernel_w and K4 = K & ~3, holds
 *     for each group of taps k..k+3 below K4:  p0[k] p0[k+2]  p0[k+1] p0[k+3]  p1[k] p1[k+2]  p1[k+1] p1[k+3]
 *     then for each tap k in [K4, K):          p0[k] p1[k]
 * (p0, p1 the two positions): 2 K int16, the scratch nn_conv.h asks for (4-byte aligned). A
 * last position without a partner is paired with itself.
 *
 * The copies, never an unaligned access: 1x1 windows take a halfword (on a halfword boundary,
 * else two bytes) per input channel and split them with SXTB16; 3x3 windows the four bytes of
 * a kernel row as two int16 pairs, repacked (PKHBT/PKHTB) into the groups, four kernel rows
 * (twelve taps, three groups) at a time, the rows of windows reaching into the padding byte by
 * byte and filled with the zero point; any other window tap by tap. The
 * channel pairs of a position pair run in one loop of fixed registers, requantized as
 * requant_dsp.h; a layer where some channel does not fit it, and a last odd channel, go through
 * nn_output_s8. Integer sums in another order: the portable kernel's result bit for bit. Without
 * the DSP extension (a strict build on the host) the same code runs with C in place of the
 * instructions. The file builds at the firmware's own level (-Os): the hot loop is assembly, and
 * -O2 would add about 1.2 KB of column-copy code for 2-7% fewer instructions. */
#include <string.h>

#include "nn.h"
#include "requant.h"
#include "requant_dsp.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t nn_sxtb16(int32_t v)
{
    return (int32_t)__sxtb16(v);
}

/* bytes 1 and 3, sign-extended to two int16 */
static inline int32_t nn_sxtb16_ror8(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int32_t nn_sadd16(int32_t a, int32_t b)
{
    return (int32_t)__sadd16(a, b);
}

static inline int32_t nn_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t nn_sat_s8(int32_t v)
{
    int32_t r; /* SSAT: ACLE's __ssat converts its result through unsigned int */
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}
#else
static inline int32_t nn_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

static inline int32_t nn_sxtb16(int32_t v)
{
    return nn_pack16((int8_t)(v & 0xFF), (int8_t)((v >> 16) & 0xFF));
}

static inline int32_t nn_sxtb16_ror8(int32_t v)
{
    return nn_pack16((int8_t)((v >> 8) & 0xFF), (int8_t)((v >> 24) & 0xFF));
}

static inline int32_t nn_sadd16(int32_t a, int32_t b)
{
    return nn_pack16((int16_t)(a & 0xFFFF) + (int16_t)(b & 0xFFFF), (a >> 16) + (b >> 16));
}

static inline int32_t nn_smlad(int32_t a, int32_t b, int32_t acc)
{
    return acc + (int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF) + (a >> 16) * (b >> 16);
}

static inline int32_t nn_sat_s8(int32_t v)
{
    return nn_clamp_s32(v, -128, 127);
}
#endif

/* (x's low half, y's low half) */
static inline int32_t nn_lo_lo(int32_t x, int32_t y)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(x), "r"(y));
    return r;
#else
    return (int32_t)(((uint32_t)x & 0xFFFFu) | ((uint32_t)y << 16));
#endif
}

/* (x's high half, y's high half) */
static inline int32_t nn_hi_hi(int32_t x, int32_t y)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(x), "r"(y));
    return r;
#else
    return (int32_t)(((uint32_t)x >> 16) | ((uint32_t)y & 0xFFFF0000u));
#endif
}

/* (x's low half, y's high half) */
static inline int32_t nn_lo_hi(int32_t x, int32_t y)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("pkhbt %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
    return r;
#else
    return (int32_t)(((uint32_t)x & 0xFFFFu) | ((uint32_t)y & 0xFFFF0000u));
#endif
}

/* (x's high half, y's low half) */
static inline int32_t nn_hi_lo(int32_t x, int32_t y)
{
    return nn_lo_lo((int32_t)((uint32_t)x >> 16), y);
}

/* the column pair (scratch) is word-aligned */
static inline int32_t nn_read32(const void *p)
{
    return nn_load32_aligned(p);
}

static inline void nn_write32(void *p, int32_t v)
{
    memcpy(p, &v, 4);
}

/* the halfword at a 2-byte aligned address */
static inline int32_t nn_read16(const int8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Two pixels' channel vectors as a column pair: the first position's pair (c, c + 2) and the
 * second's from the even and odd bytes of h0 | h2 << 16 (h the channel's two bytes, the first
 * position's in byte 0), and so on */
static inline void nn_put_1x1(int32_t h0, int32_t h1, int32_t h2, int32_t h3, int32_t offsets, int16_t *col)
{
    /* in unsigned arithmetic: a halfword of 0x8000 or more shifted by 16 overflows int32 */
    const int32_t w02 = (int32_t)((uint32_t)h0 | (uint32_t)h2 << 16);
    const int32_t w13 = (int32_t)((uint32_t)h1 | (uint32_t)h3 << 16);
    nn_write32(col, nn_sadd16(nn_sxtb16(w02), offsets));
    nn_write32(col + 2, nn_sadd16(nn_sxtb16(w13), offsets));
    nn_write32(col + 4, nn_sadd16(nn_sxtb16_ror8(w02), offsets));
    nn_write32(col + 6, nn_sadd16(nn_sxtb16_ror8(w13), offsets));
}

/* 1x1 windows, the pixels at x and x + 1 of every input channel (x the first's in plane 0);
 * x and plane even: halfword loads on halfword boundaries */
__attribute__((noinline))
static void nn_pair_1x1(const int8_t *x, int32_t plane, int32_t channels, int32_t k4, int32_t input_offset,
                        int16_t *col)
{
    const int32_t offsets = nn_lo_lo(input_offset, input_offset);
    int32_t c;
    for (c = 0; c < k4; c += 4, x += 4 * plane, col += 8) {
        nn_put_1x1(nn_read16(x), nn_read16(x + plane), nn_read16(x + 2 * plane), nn_read16(x + 3 * plane), offsets,
                   col);
    }
    for (; c < channels; ++c, x += plane, col += 2) { /* the first position to byte 0, the second to byte 2 */
        const int32_t h = nn_read16(x);
        nn_write32(col, nn_sadd16(nn_sxtb16(h | h << 8), offsets));
    }
}

/* nn_pair_1x1 for an odd plane: the channels' halfwords alternate between halfword
 * boundaries and odd addresses, where they are built from bytes (requant_dsp.h); `odd`: x is
 * odd */
__attribute__((noinline))
static void nn_pair_1x1_odd_plane(const int8_t *x, int32_t plane, int32_t channels, int32_t k4, int32_t input_offset,
                                  int16_t *col, int32_t odd)
{
    const int32_t offsets = nn_lo_lo(input_offset, input_offset);
    int32_t c;
    if (odd) {
        for (c = 0; c < k4; c += 4, x += 4 * plane, col += 8) {
            nn_put_1x1(nn_load16_any(x), nn_read16(x + plane), nn_load16_any(x + 2 * plane), nn_read16(x + 3 * plane),
                       offsets, col);
        }
    } else {
        for (c = 0; c < k4; c += 4, x += 4 * plane, col += 8) {
            nn_put_1x1(nn_read16(x), nn_load16_any(x + plane), nn_read16(x + 2 * plane), nn_load16_any(x + 3 * plane),
                       offsets, col);
        }
    }
    for (; c < channels; ++c, x += plane, col += 2) {
        const int32_t h = ((uintptr_t)x & 1u) ? nn_load16_any(x) : nn_read16(x);
        nn_write32(col, nn_sadd16(nn_sxtb16(h | h << 8), offsets));
    }
}

/* 1x1 windows inside the input anywhere: pixels a and b (offsets from x in plane 0) */
__attribute__((noinline))
static void nn_pair_1x1_apart(const int8_t *x, int32_t a, int32_t b, int32_t plane, int32_t channels, int32_t k4,
                              int32_t input_offset, int16_t *col)
{
    const int32_t offsets = nn_lo_lo(input_offset, input_offset), p2 = 2 * plane, p3 = 3 * plane;
    int32_t c;
    for (c = 0; c < k4; c += 4, x += 4 * plane, col += 8) {
        nn_put_1x1((uint8_t)x[a] | (uint8_t)x[b] << 8, (uint8_t)x[a + plane] | (uint8_t)x[b + plane] << 8,
                   (uint8_t)x[a + p2] | (uint8_t)x[b + p2] << 8, (uint8_t)x[a + p3] | (uint8_t)x[b + p3] << 8,
                   offsets, col);
    }
    for (; c < channels; ++c, x += plane, col += 2) {
        nn_write32(col, nn_sadd16(nn_sxtb16((uint8_t)x[a] | (uint8_t)x[b] << 16), offsets));
    }
}

/* Where the next tap of one position goes in a column pair: group slots from d at `phase`
 * (0..3, the tap's place in its group of four) for `left` more taps, then every other int16
 * from `tail`. */
typedef struct {
    int16_t *d;
    int16_t *tail;
    int32_t phase;
    int32_t left;
} nn_slot_cursor;

/* n taps src[0], src[step], ... plus offset; src NULL: n zeros */
static inline void nn_put_taps(nn_slot_cursor *s, const int8_t *src, int32_t step, int32_t n, int32_t offset)
{
    static const int8_t zero = 0;
    int32_t m = n < s->left ? n : s->left;
    int32_t phase = s->phase;
    int16_t *d = s->d;
    s->left -= m;
    n -= m;
    if (src == NULL) {
        src = &zero;
        step = 0;
        offset = 0;
    }
    while (m > 0) { /* slots 0, 2, 1, 3 of each group: (k0, k2), (k1, k3) */
        switch (phase) {
        case 0:
            d[0] = (int16_t)(*src + offset);
            src += step;
            if (--m == 0) {
                phase = 1;
                break;
            }
            /* fall through */
        case 1:
            d[2] = (int16_t)(*src + offset);
            src += step;
            if (--m == 0) {
                phase = 2;
                break;
            }
            /* fall through */
        case 2:
            d[1] = (int16_t)(*src + offset);
            src += step;
            if (--m == 0) {
                phase = 3;
                break;
            }
            /* fall through */
        default:
            d[3] = (int16_t)(*src + offset);
            src += step;
            d += 8;
            phase = 0;
            --m;
        }
    }
    s->d = d;
    s->phase = phase;
    for (; n > 0; --n, src += step, s->tail += 2) {
        *s->tail = (int16_t)(*src + offset);
    }
}

static void nn_put_zeros(nn_slot_cursor *s, int32_t n)
{
    nn_put_taps(s, NULL, 0, n, 0);
}

/* The first output position past those whose window, `extent` wide, ends inside `size` (the
 * input plus the padding before it): o * stride + extent <= size. */
static int32_t nn_inside_end(int32_t size, int32_t extent, int32_t stride)
{
    return size < extent ? 0 : (size - extent) / stride + 1;
}

/* The window under output position (oy, ox), plus input_offset (0 in padding), as position j
 * (0 or 1) of a column pair, from its kernel row `first` on (a kernel row: one input channel and
 * ky, kernel_w taps); x points at the group's first input plane. */
static void nn_window_to_pair(const nn_conv_geometry *g, const int8_t *x, int32_t channels, int32_t oy, int32_t ox,
                              int32_t input_offset, int32_t k4, int16_t *col, int32_t j, int32_t first)
{
    const int32_t plane = g->in_h * g->in_w;
    const int32_t y0 = oy * g->stride_h - g->pad_top;
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    const int32_t kh = g->kernel_h, kw = g->kernel_w, dw = g->dilation_w, row_step = g->dilation_h * g->in_w;
    const int32_t k = first * kw;
    int32_t ic, ky, ky0, ky1, kx0, kx1;
    nn_slot_cursor s;
    s.d = col + 2 * (k & ~3) + 4 * j;
    s.tail = col + 2 * k4 + j;
    s.phase = k & 3;
    s.left = k4 - k;
    if (s.left < 0) { /* only taps after the groups are left */
        s.tail -= 2 * s.left;
        s.left = 0;
    }
    nn_window_taps(y0, kh, g->dilation_h, g->in_h, &ky0, &ky1);
    nn_window_taps(x0, kw, dw, g->in_w, &kx0, &kx1);
    ic = first / kh;
    ky = first - ic * kh;
    if (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw) { /* wholly inside */
        const int8_t *r = x + ic * plane + y0 * g->in_w + x0;
        for (; ic < channels; ++ic, r += plane, ky = 0) {
            const int8_t *row = r + ky * row_step;
            for (; ky < kh; ++ky, row += row_step) {
                nn_put_taps(&s, row, dw, kw, input_offset);
            }
        }
        return;
    }
    for (; ic < channels; ++ic, ky = 0) {
        for (; ky < kh; ++ky) {
            if (ky < ky0 || ky >= ky1 || kx1 <= kx0) {
                nn_put_zeros(&s, kw);
                continue;
            }
            nn_put_zeros(&s, kx0);
            nn_put_taps(&s, x + ic * plane + (y0 + ky * g->dilation_h) * g->in_w + x0 + kx0 * dw, dw, kx1 - kx0,
                        input_offset);
            nn_put_zeros(&s, kw - kx1);
        }
    }
}

/* Kernel row (input channel, ky) of a 3-wide window as the two int16 pairs (e, o): the four
 * inputs r0..r3 at p (any address: four byte loads, paired by PKHBT), plus the input offset,
 * as e = (r0, r2) and o = (r1, r3). */
__attribute__((always_inline))
static inline void nn_row3(const int8_t *p, int32_t offsets, int32_t *e, int32_t *o)
{
    *e = nn_sadd16(nn_lo_lo(p[0], p[2]), offsets);
    *o = nn_sadd16(nn_lo_lo(p[1], p[3]), offsets);
}

/* Four consecutive kernel rows, 12 taps, into three groups of the column pair at d. The first
 * position's taps of row i are (e.lo, o.lo, e.hi) of (e, o) = (e_i, o_i), its word starting at
 * its window; the second position's are (o.lo, e.hi, o.hi) of (f_i, u_i), its word starting one
 * byte before its window. */
static inline void nn_put_rows3(int16_t *d, int32_t e0, int32_t o0, int32_t e1, int32_t o1, int32_t e2, int32_t o2,
                                int32_t e3, int32_t o3, int32_t f0, int32_t u0, int32_t f1, int32_t u1, int32_t f2,
                                int32_t u2, int32_t f3, int32_t u3)
{
    /* taps 0..11 from rows 0 (0..2), 1 (3..5), 2 (6..8), 3 (9..11); per group the first
     * position's (k0, k2) and (k1, k3), then the second's */
    nn_write32(d, e0);
    nn_write32(d + 2, nn_lo_lo(o0, e1));
    nn_write32(d + 4, u0);
    nn_write32(d + 6, nn_hi_lo(f0, u1));
    nn_write32(d + 8, nn_lo_lo(o1, e2));
    nn_write32(d + 10, nn_hi_lo(e1, o2));
    nn_write32(d + 12, nn_hi_lo(f1, u2));
    nn_write32(d + 14, nn_hi_hi(u1, f2));
    nn_write32(d + 16, nn_hi_lo(e2, o3));
    nn_write32(d + 18, e3);
    nn_write32(d + 20, nn_hi_hi(u2, f3));
    nn_write32(d + 22, u3);
}

/* nn_window3x3_to_pair's loop: `blocks` times four input channels (twelve kernel rows) from r,
 * then `rest` (0..2) more sets of four kernel rows; `second`: from the first position's window
 * to the second position's word, stride_w - 1 (0: the same word). */
static inline void nn_window3x3_channels(const int8_t *r, int32_t second, int32_t plane, int32_t row_step,
                                         int32_t offsets, int32_t blocks, int32_t rest, int16_t *d)
{
    const int32_t rs2 = 2 * row_step;
    int32_t e0, o0, e1, o1, e2, o2, e3, o3, f0, u0, f1, u1, f2, u2, f3, u3;
    for (; blocks > 0 || rest > 0; --blocks, r += 4 * plane, d += 72) {
        const int8_t *c1 = r + plane, *c2 = c1 + plane, *c3 = c2 + plane;
        /* rows: channel 0 ky 0..2, channel 1 ky 0 */
        nn_row3(r, offsets, &e0, &o0);
        nn_row3(r + row_step, offsets, &e1, &o1);
        nn_row3(r + rs2, offsets, &e2, &o2);
        nn_row3(c1, offsets, &e3, &o3);
        if (second == 0) {
            nn_put_rows3(d, e0, o0, e1, o1, e2, o2, e3, o3, e0, o0, e1, o1, e2, o2, e3, o3);
        } else {
            nn_row3(r + second, offsets, &f0, &u0);
            nn_row3(r + row_step + second, offsets, &f1, &u1);
            nn_row3(r + rs2 + second, offsets, &f2, &u2);
            nn_row3(c1 + second, offsets, &f3, &u3);
            nn_put_rows3(d, e0, o0, e1, o1, e2, o2, e3, o3, f0, u0, f1, u1, f2, u2, f3, u3);
        }
        if (blocks <= 0 && rest == 1) {
            return;
        }
        /* channel 1 ky 1, 2, channel 2 ky 0, 1 */
        nn_row3(c1 + row_step, offsets, &e0, &o0);
        nn_row3(c1 + rs2, offsets, &e1, &o1);
        nn_row3(c2, offsets, &e2, &o2);
        nn_row3(c2 + row_step, offsets, &e3, &o3);
        if (second == 0) {
            nn_put_rows3(d + 24, e0, o0, e1, o1, e2, o2, e3, o3, e0, o0, e1, o1, e2, o2, e3, o3);
        } else {
            nn_row3(c1 + row_step + second, offsets, &f0, &u0);
            nn_row3(c1 + rs2 + second, offsets, &f1, &u1);
            nn_row3(c2 + second, offsets, &f2, &u2);
            nn_row3(c2 + row_step + second, offsets, &f3, &u3);
            nn_put_rows3(d + 24, e0, o0, e1, o1, e2, o2, e3, o3, f0, u0, f1, u1, f2, u2, f3, u3);
        }
        if (blocks <= 0 && rest == 2) {
            return;
        }
        /* channel 2 ky 2, channel 3 ky 0..2 */
        nn_row3(c2 + rs2, offsets, &e0, &o0);
        nn_row3(c3, offsets, &e1, &o1);
        nn_row3(c3 + row_step, offsets, &e2, &o2);
        nn_row3(c3 + rs2, offsets, &e3, &o3);
        if (second == 0) {
            nn_put_rows3(d + 48, e0, o0, e1, o1, e2, o2, e3, o3, e0, o0, e1, o1, e2, o2, e3, o3);
        } else {
            nn_row3(c2 + rs2 + second, offsets, &f0, &u0);
            nn_row3(c3 + second, offsets, &f1, &u1);
            nn_row3(c3 + row_step + second, offsets, &f2, &u2);
            nn_row3(c3 + rs2 + second, offsets, &f3, &u3);
            nn_put_rows3(d + 48, e0, o0, e1, o1, e2, o2, e3, o3, f0, u0, f1, u1, f2, u2, f3, u3);
        }
    }
}

/* 3x3 windows (dilation 1), both positions of the pair in one output row with their windows
 * wholly inside: four kernel rows (12 taps, three groups) at a time, four input channels (nine
 * groups) per loop; the kernel rows left and any taps after the groups go through
 * nn_window_to_pair. With stride 1 the second position's word is the first's. */
__attribute__((noinline))
static void nn_window3x3_to_pair(const nn_conv_geometry *g, const int8_t *x, int32_t channels, int32_t oy,
                                 int32_t ox, int32_t input_offset, int32_t k4, int16_t *col)
{
    const int32_t plane = g->in_h * g->in_w, row_step = g->dilation_h * g->in_w;
    const int32_t offsets = nn_lo_lo(input_offset, input_offset);
    const int32_t periods = 3 * channels >> 2; /* four kernel rows each */
    const int8_t *r = x + (oy * g->stride_h - g->pad_top) * g->in_w + ox * g->stride_w - g->pad_left;
    if (g->stride_w == 1) {
        nn_window3x3_channels(r, 0, plane, row_step, offsets, periods / 3, periods % 3, col);
    } else {
        nn_window3x3_channels(r, g->stride_w - 1, plane, row_step, offsets, periods / 3, periods % 3, col);
    }
    if (4 * periods + 1 == 3 * channels) { /* the last kernel row: the three taps after the groups */
        const int8_t *last = r + (channels - 1) * plane + 2 * row_step;
        int32_t e, o, f, u;
        nn_row3(last, offsets, &e, &o);
        nn_row3(last + g->stride_w - 1, offsets, &f, &u);
        col += 2 * k4;
        nn_write32(col, nn_lo_lo(e, u));
        nn_write32(col + 2, nn_lo_hi(o, f));
        nn_write32(col + 4, nn_hi_hi(e, u));
    } else if (4 * periods < 3 * channels) {
        nn_window_to_pair(g, x, channels, oy, ox, input_offset, k4, col, 0, 4 * periods);
        nn_window_to_pair(g, x, channels, oy, ox + 1, input_offset, k4, col, 1, 4 * periods);
    }
}

/* One position's 3x3 window, some of it in the padding, for an input at least 4 wide: each
 * kernel row inside is three byte loads from the window's columns clamped to the input (so
 * that the compiler cannot merge them into one unaligned word load), tap kx in byte kx (the
 * first position of a pair) or kx + 1 (the second: the layouts of nn_put_rows3), the bytes of
 * columns outside then replaced by the zero point (it adds nothing after the input offset):
 * (word & keep) | fill. */
typedef struct {
    int32_t origin;     /* row 0 of the window, channel 0: relative to the group's first plane */
    int32_t rows;       /* bit ky: kernel row inside */
    int32_t c0, c1, c2; /* the columns of taps 0, 1, 2, clamped to the input */
    int32_t keep, fill;
} nn_edge_window;

/* The window of output position (oy, ox) as the first (at 0) or second (at 1) of a pair */
static void nn_edge_window_init(const nn_conv_geometry *g, int32_t oy, int32_t ox, int32_t at, int32_t zero_points,
                                nn_edge_window *e)
{
    const int32_t y0 = oy * g->stride_h - g->pad_top, x0 = ox * g->stride_w - g->pad_left;
    int32_t k;
    e->origin = y0 * g->in_w;
    e->c0 = nn_clamp_s32(x0, 0, g->in_w - 1);
    e->c1 = nn_clamp_s32(x0 + 1, 0, g->in_w - 1);
    e->c2 = nn_clamp_s32(x0 + 2, 0, g->in_w - 1);
    e->rows = 0;
    e->keep = 0;
    for (k = 0; k < 3; ++k) {
        const int32_t y = y0 + k * g->dilation_h, x = x0 + k;
        e->rows |= (y >= 0 && y < g->in_h) << k;
        e->keep |= (int32_t)((x >= 0 && x < g->in_w ? 0xFFu : 0u) << (8 * (k + at)));
    }
    e->fill = zero_points & ~e->keep;
}

/* Kernel row ky of the channel at_channel bytes on, as a word of the layout of nn_put_rows3;
 * `shift` 8 * at */
__attribute__((always_inline)) static inline int32_t nn_edge_word(const nn_edge_window *e, const int8_t *x,
                                                                  int32_t at_channel, int32_t ky, int32_t row_step,
                                                                  int32_t zero_points, int32_t shift)
{
    const uint8_t *r;
    uint32_t v;
    if (!(e->rows >> ky & 1)) {
        return zero_points;
    }
    r = (const uint8_t *)x + (e->origin + at_channel + ky * row_step);
    v = ((uint32_t)r[e->c0] | (uint32_t)r[e->c1] << 8 | (uint32_t)r[e->c2] << 16) << shift;
    return (int32_t)(v & (uint32_t)e->keep) | e->fill;
}

/* The next kernel row of both positions of the pair: (e, o) the first's, (f, u) the second's */
static inline void nn_edge_rows(const nn_edge_window *a, const nn_edge_window *b, const int8_t *x, int32_t *channel,
                                int32_t *ky, int32_t plane, int32_t row_step, int32_t zero_points, int32_t offsets,
                                int32_t *e, int32_t *o, int32_t *f, int32_t *u)
{
    const int32_t va = nn_edge_word(a, x, *channel, *ky, row_step, zero_points, 0);
    const int32_t vb = nn_edge_word(b, x, *channel, *ky, row_step, zero_points, 8);
    *e = nn_sadd16(nn_sxtb16(va), offsets);
    *o = nn_sadd16(nn_sxtb16_ror8(va), offsets);
    *f = nn_sadd16(nn_sxtb16(vb), offsets);
    *u = nn_sadd16(nn_sxtb16_ror8(vb), offsets);
    if (++*ky == 3) {
        *ky = 0;
        *channel += plane;
    }
}

/* nn_window3x3_to_pair for any two positions (the second may be the first) whose windows may
 * reach into the padding, the input at least 4 wide */
__attribute__((noinline))
static void nn_window3x3_edges_to_pair(const nn_conv_geometry *g, const int8_t *x, int32_t channels, int32_t oy0,
                                       int32_t ox0, int32_t oy1, int32_t ox1, int32_t input_offset, int32_t k4,
                                       int16_t *col)
{
    const int32_t plane = g->in_h * g->in_w, row_step = g->dilation_h * g->in_w;
    const int32_t offsets = nn_lo_lo(input_offset, input_offset);
    const int32_t zero_points = (int32_t)(0x01010101u * (uint8_t)-input_offset);
    const int32_t periods = 3 * channels >> 2;
    int32_t q, channel = 0, ky = 0;
    int32_t e0, o0, f0, u0, e1, o1, f1, u1, e2, o2, f2, u2, e3, o3, f3, u3;
    int16_t *d = col;
    nn_edge_window a, b;
    nn_edge_window_init(g, oy0, ox0, 0, zero_points, &a);
    nn_edge_window_init(g, oy1, ox1, 1, zero_points, &b);
    for (q = 0; q < periods; ++q, d += 24) {
        nn_edge_rows(&a, &b, x, &channel, &ky, plane, row_step, zero_points, offsets, &e0, &o0, &f0, &u0);
        nn_edge_rows(&a, &b, x, &channel, &ky, plane, row_step, zero_points, offsets, &e1, &o1, &f1, &u1);
        nn_edge_rows(&a, &b, x, &channel, &ky, plane, row_step, zero_points, offsets, &e2, &o2, &f2, &u2);
        nn_edge_rows(&a, &b, x, &channel, &ky, plane, row_step, zero_points, offsets, &e3, &o3, &f3, &u3);
        nn_put_rows3(d, e0, o0, e1, o1, e2, o2, e3, o3, f0, u0, f1, u1, f2, u2, f3, u3);
    }
    if (4 * periods < 3 * channels) {
        nn_window_to_pair(g, x, channels, oy0, ox0, input_offset, k4, col, 0, 4 * periods);
        nn_window_to_pair(g, x, channels, oy1, ox1, input_offset, k4, col, 1, 4 * periods);
    }
}

/* a[0], a[1] += row w (at any address) times p0, p1 of the column pair (K = k_size taps) */
static void nn_mac_1x2(const int8_t *w, const int16_t *col, int32_t k_size, int32_t *a)
{
    const int32_t k4 = k_size & ~3;
    int32_t k;
    for (k = 0; k < k4; k += 4, col += 8) {
        const int32_t v = nn_load32_any(w + k), even = nn_sxtb16(v), odd = nn_sxtb16_ror8(v);
        a[0] = nn_smlad(odd, nn_read32(col + 2), nn_smlad(even, nn_read32(col), a[0]));
        a[1] = nn_smlad(odd, nn_read32(col + 6), nn_smlad(even, nn_read32(col + 4), a[1]));
    }
    for (; k < k_size; ++k, col += 2) {
        a[0] += w[k] * col[0];
        a[1] += w[k] * col[1];
    }
}

/* The outputs of output channels [oc, oc + count) at the column pair's positions (the second
 * when `two`), through requant.h */
__attribute__((noinline))
static void nn_pair_outputs(const nn_conv_s8_params *p, const int8_t *weight, int32_t k_size, const int16_t *col,
                            const int32_t *bias, const int32_t *multiplier, const int8_t *shift, int32_t oc,
                            int32_t count, int32_t two, int32_t positions, int8_t *out)
{
    const int32_t end = oc + count;
    for (; oc < end; ++oc) {
        int8_t *dst = out + oc * positions;
        int32_t a[2];
        a[0] = a[1] = bias[oc];
        nn_mac_1x2(weight + oc * k_size, col, k_size, a);
        dst[0] = nn_output_s8(a[0], multiplier[oc], shift[oc], p->output_offset, p->act_min, p->act_max);
        if (two) {
            dst[1] = nn_output_s8(a[1], multiplier[oc], shift[oc], p->output_offset, p->act_min, p->act_max);
        }
    }
}

/* Output channel pairs at both positions of the column pair, every channel within
 * nn_requant_dsp_fits(): the loop's state, in the order its loads expect */
typedef struct {
    const int8_t *w;           /* 0: row a of the next channel pair (row b `row` bytes on) */
    const int16_t *col;        /* 4: the column pair */
    int32_t row;               /* 8: from one weight row to the next, a multiple of 4 */
    int32_t groups;            /* 12: K4 / 4 */
    const int32_t *bias;       /* 16: of the next channel pair, as the three after it */
    const int32_t *multiplier; /* 20 */
    const int8_t *shift;       /* 24 */
    int8_t *dst;               /* 28: the next pair's first output (first channel, first position) */
    const int8_t *w_end;       /* 32: w after the last pair */
    int32_t positions;         /* 36: from one channel's outputs to the next */
    int32_t c_unit;            /* 40: 2 output_offset + 1 */
    int32_t taps;              /* 44: K - K4 */
    int32_t lo4, hi4;          /* 48, 52: act_min and act_max in every byte */
} nn_pair_loop;

#if defined(__ARM_FEATURE_DSP)
/* The loop in fixed registers (the weight rows word-aligned: the caller checks), saving those it uses as a call would: while the 2x2 block runs
 * every register is taken, so the state's address waits on the stack. Block: a00, a01, a10,
 * a11 (rows a and b times p0 and p1) in r0..r3; w r4, column r5, K r6, group pairs r7; one
 * group's four column words r8..r11 (p0 (k0, k2), (k1, k3), p1 (k0, k2), (k1, k3)); the weight
 * words of rows b ([w + K]) and a ([w], moving on) split by SXTB16 in r12 and lr. */
#define NN_GROUP_2X2                                                                                              \
    "ldmia r5!, {r8, r9, r10, r11}\n\t"                                                                           \
    "ldr r12, [r4, r6]\n\t"                                                                                       \
    "sxtb16 lr, r12\n\t"                                                                                          \
    "sxtb16 r12, r12, ror #8\n\t"                                                                                 \
    "smlad r2, lr, r8, r2\n\t"                                                                                    \
    "smlad r3, lr, r10, r3\n\t"                                                                                   \
    "smlad r2, r12, r9, r2\n\t"                                                                                   \
    "smlad r3, r12, r11, r3\n\t"                                                                                  \
    "ldr r12, [r4], #4\n\t"                                                                                       \
    "sxtb16 lr, r12\n\t"                                                                                          \
    "sxtb16 r12, r12, ror #8\n\t"                                                                                 \
    "smlad r0, lr, r8, r0\n\t"                                                                                    \
    "smlad r1, lr, r10, r1\n\t"                                                                                   \
    "smlad r0, r12, r9, r0\n\t"                                                                                   \
    "smlad r1, r12, r11, r1\n\t"

/* One channel's two outputs from accumulators a0, a1 (requant_dsp.h: e = -shift, c = c_unit
 * << (e - 1), out = ssat(smmlar(2 acc, m0, c - [acc < 0]) >> e, 8)), `store`d as two bytes at
 * dst r11 (byte stores: dst may be odd), which then moves on by `positions`; multiplier r9 and
 * shift r10 move on by one channel. lr holds the loop state; r5..r7, r12 are free. */
#define NN_PUT_CHANNEL(a0, a1, store)                                                                             \
    "ldr r7, [lr, #40]\n\t"                                                                                       \
    "ldr r5, [r9], #4\n\t"                                                                                        \
    "ldrsb r6, [r10], #1\n\t"                                                                                     \
    "mvn r12, r6\n\t"                                                                                             \
    "lsl r7, r7, r12\n\t"                                                                                         \
    "rsb r6, r6, #0\n\t"                                                                                          \
    "add r12, r7, " a0 ", asr #31\n\t"                                                                            \
    "lsl " a0 ", " a0 ", #1\n\t"                                                                                  \
    "smmlar " a0 ", " a0 ", r5, r12\n\t"                                                                          \
    "asr " a0 ", " a0 ", r6\n\t"                                                                                  \
    "ssat " a0 ", #8, " a0 "\n\t"                                                                                 \
    "add r12, r7, " a1 ", asr #31\n\t"                                                                            \
    "lsl " a1 ", " a1 ", #1\n\t"                                                                                  \
    "smmlar " a1 ", " a1 ", r5, r12\n\t"                                                                          \
    "asr " a1 ", " a1 ", r6\n\t"                                                                                  \
    "ssat " a1 ", #8, " a1 "\n\t"                                                                                 \
    store "ldr r7, [lr, #36]\n\t"                                                                               \
    "add r11, r11, r7\n\t"

#define NN_STORE_BYTES(a0, a1)                                                                                    \
    "strb " a0 ", [r11]\n\t"                                                                                      \
    "strb " a1 ", [r11, #1]\n\t"

/* Both bytes packed, narrowed at once to [lo4, hi4] (SSUB8 sets a byte's GE flag when the
 * first operand is no less, SEL keeps it there), then stored */
#define NN_CLAMP_STORE_BYTES(a0, a1)                                                                              \
    "bfi " a0 ", " a1 ", #8, #8\n\t"                                                                               \
    "ldrd r5, r6, [lr, #48]\n\t"                                                                                  \
    "ssub8 r12, " a0 ", r5\n\t"                                                                                   \
    "sel " a0 ", " a0 ", r5\n\t"                                                                                  \
    "ssub8 r12, r6, " a0 "\n\t"                                                                                   \
    "sel " a0 ", " a0 ", r6\n\t"                                                                                  \
    "strb " a0 ", [r11]\n\t"                                                                                      \
    "lsr " a0 ", " a0 ", #8\n\t"                                                                                  \
    "strb " a0 ", [r11, #1]\n\t"

/* Per channel pair: the 2x2 block over the groups (pairs of groups, an odd one first), the
 * taps after them one at a time (SMLABB/SMLABT: row tap times p0 or p1), the outputs. */
#define NN_PAIR_LOOP(put)                                                                                         \
    "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n"                                                           \
    "1:\n\t"                                                                                                      \
    "ldr lr, [sp]\n\t"                                                                                            \
    "ldmia lr, {r4, r5, r6, r7}\n\t"                                                                              \
    "ldr r12, [lr, #16]\n\t"                                                                                      \
    "ldrd r0, r2, [r12]\n\t"                                                                                      \
    "mov r1, r0\n\t"                                                                                              \
    "mov r3, r2\n\t"                                                                                              \
    "lsrs r7, r7, #1\n\t"                                                                                         \
    "bcc 5f\n\t" NN_GROUP_2X2 "5:\n\t"                                                                            \
    "cmp r7, #0\n\t"                                                                                              \
    "beq 4f\n"                                                                                                    \
    "3:\n\t" NN_GROUP_2X2 NN_GROUP_2X2 "subs r7, r7, #1\n\t"                                                      \
    "bne 3b\n"                                                                                                    \
    "4:\n\t"                                                                                                      \
    "ldr r12, [sp]\n\t"                                                                                           \
    "ldr r7, [r12, #44]\n\t"                                                                                      \
    "cbz r7, 6f\n"                                                                                                \
    "7:\n\t"                                                                                                      \
    "ldr r8, [r5], #4\n\t"                                                                                        \
    "ldrsb r12, [r4, r6]\n\t"                                                                                     \
    "ldrsb lr, [r4], #1\n\t"                                                                                      \
    "smlabb r0, lr, r8, r0\n\t"                                                                                   \
    "smlabt r1, lr, r8, r1\n\t"                                                                                   \
    "smlabb r2, r12, r8, r2\n\t"                                                                                  \
    "smlabt r3, r12, r8, r3\n\t"                                                                                  \
    "subs r7, r7, #1\n\t"                                                                                         \
    "bne 7b\n"                                                                                                    \
    "6:\n\t"                                                                                                      \
    "ldr lr, [sp]\n\t"                                                                                            \
    "ldr r4, [lr]\n\t"                                                                                            \
    "add r4, r4, r6, lsl #1\n\t" /* past row b: the next pair's row a */                                         \
    "add r12, lr, #16\n\t"                                                                                        \
    "ldmia r12, {r8, r9, r10, r11}\n\t" /* bias, multiplier, shift, dst */                                       \
    "add r8, r8, #8\n\t" put                                                                                      \
    "add r12, lr, #16\n\t"                                                                                        \
    "stmia r12, {r8, r9, r10, r11}\n\t"                                                                           \
    "str r4, [lr]\n\t"                                                                                            \
    "ldr r12, [lr, #32]\n\t"                                                                                      \
    "cmp r4, r12\n\t"                                                                                             \
    "bne 1b\n\t"                                                                                                  \
    "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"

__attribute__((noinline)) static void nn_pair_loop_run(nn_pair_loop *state)
{
    register nn_pair_loop *l __asm__("r0") = state;
    __asm__ volatile(NN_PAIR_LOOP(NN_PUT_CHANNEL("r0", "r1", NN_STORE_BYTES("r0", "r1"))
                                      NN_PUT_CHANNEL("r2", "r3", NN_STORE_BYTES("r2", "r3")))
                     : "+r"(l)
                     :
                     : "r1", "r2", "r3", "r12", "cc", "memory");
}

__attribute__((noinline)) static void nn_pair_loop_run_clamped(nn_pair_loop *state)
{
    register nn_pair_loop *l __asm__("r0") = state;
    __asm__ volatile(NN_PAIR_LOOP(NN_PUT_CHANNEL("r0", "r1", NN_CLAMP_STORE_BYTES("r0", "r1"))
                                      NN_PUT_CHANNEL("r2", "r3", NN_CLAMP_STORE_BYTES("r2", "r3")))
                     : "+r"(l)
                     :
                     : "r1", "r2", "r3", "r12", "cc", "memory");
}
#else
/* The same loop in C */
static void nn_pair_loop_run(nn_pair_loop *l)
{
    const int32_t lo = (int8_t)(l->lo4 & 0xFF), hi = (int8_t)(l->hi4 & 0xFF), k_size = 4 * l->groups + l->taps;
    for (; l->w != l->w_end; l->w += 2 * l->row, l->bias += 2, l->multiplier += 2, l->shift += 2,
                             l->dst += 2 * l->positions) {
        int32_t a[4], ch;
        a[0] = a[1] = l->bias[0];
        a[2] = a[3] = l->bias[1];
        nn_mac_1x2(l->w, l->col, k_size, a);
        nn_mac_1x2(l->w + l->row, l->col, k_size, a + 2);
        for (ch = 0; ch < 2; ++ch) {
            const int32_t m0 = l->multiplier[ch], s = l->shift[ch];
            const int32_t c = (int32_t)((uint32_t)l->c_unit << (-s - 1));
            int8_t *dst = l->dst + ch * l->positions;
            dst[0] = (int8_t)nn_clamp_s32(nn_sat_s8(nn_requant_dsp(a[2 * ch], m0, -s, c)), lo, hi);
            dst[1] = (int8_t)nn_clamp_s32(nn_sat_s8(nn_requant_dsp(a[2 * ch + 1], m0, -s, c)), lo, hi);
        }
    }
}

static void nn_pair_loop_run_clamped(nn_pair_loop *l)
{
    nn_pair_loop_run(l);
}
#endif

#define NN_SINGLE_PAIRS 8 /* channel pairs per run for a position without a partner */

/* Channel pairs [0, pairs) from w (bias, multiplier, shift, dst at the first) at a column pair
 * whose two halves are one position: the loop writes both into a buffer, the first goes out. */
__attribute__((noinline))
static void nn_single_outputs(nn_pair_loop *loop, const int8_t *w, const int32_t *bias, const int32_t *multiplier,
                              const int8_t *shift, int32_t pairs, int32_t full_range, int8_t *dst)
{
    const int32_t positions = loop->positions;
    int8_t both[4 * NN_SINGLE_PAIRS];
    int32_t i, n;
    loop->positions = 2;
    for (; pairs > 0; pairs -= n) {
        n = pairs < NN_SINGLE_PAIRS ? pairs : NN_SINGLE_PAIRS;
        loop->w = w;
        loop->w_end = w + 2 * n * loop->row;
        loop->bias = bias;
        loop->multiplier = multiplier;
        loop->shift = shift;
        loop->dst = both;
        if (full_range) {
            nn_pair_loop_run(loop);
        } else {
            nn_pair_loop_run_clamped(loop);
        }
        for (i = 0; i < 2 * n; ++i, dst += positions) {
            *dst = both[2 * i];
        }
        w += 2 * n * loop->row;
        bias += 2 * n;
        multiplier += 2 * n;
        shift += 2 * n;
    }
    loop->positions = positions;
}

void nn_conv_s8(const nn_conv_s8_params *p, const int8_t *in, const int8_t *weight, const int32_t *bias,
                const int32_t *multiplier, const int8_t *shift, int16_t *scratch, int8_t *out)
{
    const nn_conv_geometry *g = &p->g;
    const int32_t group_in = g->in_channels / g->groups;
    const int32_t group_out = g->out_channels / g->groups;
    const int32_t k_size = group_in * g->kernel_h * g->kernel_w;
    const int32_t k4 = k_size & ~3;
    const int32_t plane = g->in_h * g->in_w;
    const int32_t positions = g->out_h * g->out_w;
    const int32_t pairs = group_out / 2;
    /* 1x1 and 3x3 windows: those of the output positions [y_first, y1_end) x [x_first, x1_end)
     * (1x1), [y_first, y3_end) x [x_first, x3_end) (3x3) lie inside */
    const int32_t win1x1 = g->kernel_h == 1 && g->kernel_w == 1;
    const int32_t pointwise = win1x1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 && g->pad_left == 0 &&
                              g->out_h == g->in_h && g->out_w == g->in_w; /* position p reads pixel p */
    const int32_t win3x3 = g->kernel_h == 3 && g->kernel_w == 3 && g->dilation_w == 1;
    const int32_t y_first = (g->pad_top + g->stride_h - 1) / g->stride_h;
    const int32_t x_first = (g->pad_left + g->stride_w - 1) / g->stride_w;
    const int32_t y1_end = nn_inside_end(g->in_h + g->pad_top, 1, g->stride_h);
    const int32_t x1_end = nn_inside_end(g->in_w + g->pad_left, 1, g->stride_w);
    const int32_t y3_end = nn_inside_end(g->in_h + g->pad_top, 2 * g->dilation_h + 1, g->stride_h);
    const int32_t x3_end = nn_inside_end(g->in_w + g->pad_left, 3, g->stride_w);
    const int32_t full_range = p->act_min == -128 && p->act_max == 127;
    /* the loop loads weight words: rows on word boundaries, the table's own or, when K is not a
     * multiple of 4, a copy in scratch after the column pair with rows padded to words */
    const int32_t row = (k_size + 3) & ~3;
    const int8_t *rows = k_size == row ? weight : (const int8_t *)(scratch + 2 * k_size);
    int32_t n, grp, pos, oc, fast = p->act_min >= -128 && p->act_min <= p->act_max && p->act_max <= 127;
    nn_pair_loop loop;
    fast = fast && ((uintptr_t)rows & 3u) == 0;
    /* |acc| <= |bias| + K * 128 * 256: weights in [-127, 127], inputs plus offset in [-255, 255] */
    for (oc = 0; oc < g->out_channels && fast; ++oc) {
        const int64_t b = bias[oc] < 0 ? -(int64_t)bias[oc] : bias[oc];
        fast = nn_requant_dsp_fits(b + ((int64_t)k_size << 15), shift[oc], p->output_offset);
    }
    if (fast && rows != weight) {
        for (oc = 0; oc < g->out_channels; ++oc) {
            int8_t *copy = (int8_t *)(scratch + 2 * k_size) + oc * row;
            memcpy(copy, weight + oc * k_size, (size_t)k_size);
            memset(copy + k_size, 0, (size_t)(row - k_size));
        }
    }
    loop.col = scratch;
    loop.row = row;
    loop.groups = k4 >> 2;
    loop.positions = positions;
    loop.c_unit = 2 * p->output_offset + 1;
    loop.taps = k_size - k4;
    loop.lo4 = (int32_t)(0x01010101u * (uint8_t)p->act_min);
    loop.hi4 = (int32_t)(0x01010101u * (uint8_t)p->act_max);
    for (n = 0; n < g->batch; ++n) {
        const int8_t *image = in + n * g->in_channels * plane;
        int8_t *result = out + n * g->out_channels * positions;
        for (grp = 0; grp < g->groups; ++grp) {
            const int8_t *x = image + grp * group_in * plane;
            const int32_t oc0 = grp * group_out;
            int32_t oy = 0, ox = 0;
            for (pos = 0; pos < positions; pos += 2) {
                /* the pair: (oy, ox) and the next position (ny, nx), or (oy, ox) again for a last one alone */
                const int32_t two = pos + 1 < positions;
                const int32_t nx = two && ox + 1 == g->out_w ? 0 : ox + two;
                const int32_t ny = two && ox + 1 == g->out_w ? oy + 1 : oy;
                if (pointwise && two && (((uintptr_t)(x + pos) | (uint32_t)plane) & 1u) == 0) {
                    nn_pair_1x1(x + pos, plane, group_in, k4, p->input_offset, scratch);
                } else if (pointwise && two && (plane & 1)) {
                    nn_pair_1x1_odd_plane(x + pos, plane, group_in, k4, p->input_offset, scratch,
                                          (int32_t)((uintptr_t)(x + pos) & 1u));
                } else if (pointwise && two) { /* x odd, plane even */
                    nn_pair_1x1_apart(x, pos, pos + 1, plane, group_in, k4, p->input_offset, scratch);
                } else if (win1x1 && oy >= y_first && ny < y1_end && ox >= x_first && ox < x1_end && nx >= x_first &&
                           nx < x1_end) {
                    nn_pair_1x1_apart(x, (oy * g->stride_h - g->pad_top) * g->in_w + ox * g->stride_w - g->pad_left,
                                      (ny * g->stride_h - g->pad_top) * g->in_w + nx * g->stride_w - g->pad_left,
                                      plane, group_in, k4, p->input_offset, scratch);
                } else if (win3x3 && two && ny == oy && oy >= y_first && oy < y3_end && ox >= x_first && nx < x3_end) {
                    nn_window3x3_to_pair(g, x, group_in, oy, ox, p->input_offset, k4, scratch);
                } else if (win3x3 && g->in_w >= 4) {
                    nn_window3x3_edges_to_pair(g, x, group_in, oy, ox, ny, nx, p->input_offset, k4, scratch);
                } else {
                    nn_window_to_pair(g, x, group_in, oy, ox, p->input_offset, k4, scratch, 0, 0);
                    nn_window_to_pair(g, x, group_in, ny, nx, p->input_offset, k4, scratch, 1, 0);
                }
                oy = ny;
                ox = nx + 1;
                if (ox == g->out_w) {
                    ox = 0;
                    ++oy;
                }
                oc = oc0;
                if (fast && !two && pairs > 0) {
                    nn_single_outputs(&loop, rows + oc0 * row, bias + oc0, multiplier + oc0, shift + oc0, pairs,
                                      full_range, result + oc0 * positions + pos);
                    oc += 2 * pairs;
                }
                if (fast && two && pairs > 0) {
                    loop.w = rows + oc0 * row;
                    loop.w_end = loop.w + 2 * pairs * row;
                    loop.bias = bias + oc0;
                    loop.multiplier = multiplier + oc0;
                    loop.shift = shift + oc0;
                    loop.dst = result + oc0 * positions + pos;
                    if (full_range) {
                        nn_pair_loop_run(&loop);
                    } else {
                        nn_pair_loop_run_clamped(&loop);
                    }
                    oc += 2 * pairs;
                }
                nn_pair_outputs(p, weight, k_size, scratch, bias, multiplier, shift, oc, oc0 + group_out - oc, two,
                                positions, result + pos);
            }
        }
    }
}
