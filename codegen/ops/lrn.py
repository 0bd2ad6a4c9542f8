"""LRN: local response normalization across channels (AlexNet, GoogLeNet, ZFNet).

    square_sum[n, c, ...] = sum of x[n, i, ...]^2 for i in [c - floor((size-1)/2), c + ceil((size-1)/2)]
                            (clipped to the channels that exist)
    y = x / (bias + alpha / size * square_sum)^beta

on an input of rank 3 to 6, [N, C, D1, ...]. Float: nn_lrn_f32, the squares summed in window
order, then one powf per element (the NumPy reference sums in the same order).

int8: with x = s (q - z), the window's integer sum S = sum (q_i - z)^2 (at most
window * 255^2, so int32) gives the real square sum s^2 S, and

    y_q = z_y + round((q - z) * M(S)),   M(S) = (s / s_y) * (bias + alpha / size * s^2 * S)^(-beta).

M is a smooth monotone function of S that the compiler tabulates in fixed point: per octave
[2^e, 2^(e+1)) of S, 2^SEGMENT_BITS + 1 evenly spaced points, each a Q31 mantissa of the
octave's own power-of-two shift (so the mantissas keep 30 bits however far M falls).
The kernel finds S's octave, interpolates linearly between the two points around S with
the bits of S below them (an int64 product, floored), and requantizes q - z with that
multiplier and the octave's shift (requant.h). With 32 segments per octave the
interpolation is within beta (beta + 1) / 8192 of M (relative), a few hundredths of an
output step. S = 0 means q = z, whose output is z_y whatever M is.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import CompileError, Unsupported
from codegen.fixedpoint import output_s8, quantize_multiplier
from codegen.ops.base import Const, KernelCall, Op, is_int8, qparams, register, shape_of

SEGMENT_BITS = 5  # 2^5 linear segments per octave of the square sum
MAX_RANK = 6


def _attrs(node) -> tuple[int, float, float, float]:
    size = node.attrs.get("size")
    if size is None:
        raise Unsupported("the size attribute is required")
    size = int(size)
    if size < 1:
        raise Unsupported(f"size must be at least 1, not {size}")
    return size, float(node.attrs.get("alpha", 1e-4)), float(node.attrs.get("beta", 0.75)), \
        float(node.attrs.get("bias", 1.0))


def _window(size: int) -> tuple[int, int]:
    """Channels before and after c in its window."""
    return (size - 1) // 2, size // 2  # floor((size-1)/2), ceil((size-1)/2)


def _view(graph, node) -> tuple[int, int, int]:
    shape = shape_of(graph, node.inputs[0])
    return shape[0], shape[1], math.prod(shape[2:])


def square_sums(x: np.ndarray, size: int) -> np.ndarray:
    """Per element, the sum of squares over its channel window of x [N, C, inner], in window
    order (x's dtype: float32 as the float kernel, int64 as the int8 kernel's int32)."""
    before, after = _window(size)
    channels = x.shape[1]
    sq = x * x
    out = np.zeros_like(x)
    for c in range(channels):
        for i in range(max(0, c - before), min(channels - 1, c + after) + 1):
            out[:, c] += sq[:, i]
    return out


def _octaves(s_max: int) -> int:
    return max(1, int(s_max).bit_length())


def _octave_of(s: np.ndarray) -> np.ndarray:
    """floor(log2 s) for s >= 1 (0 for s = 0)."""
    e = np.zeros(s.shape, np.int64)
    for k in range(1, 32):
        e += s >= (1 << k)
    return e


@register("LRN")
class LRN(Op):
    def check(self, node, graph):
        size, _, _, _ = _attrs(node)
        rank = len(shape_of(graph, node.inputs[0]))
        if not 3 <= rank <= MAX_RANK:
            raise Unsupported(f"input rank {rank} is not supported (3 to {MAX_RANK}: [N, C, D1, ...])")

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def params_count(self, node, graph):
        return 0

    def macs(self, node, graph):
        n, c, inner = _view(graph, node)
        return n * c * inner * (min(_attrs(node)[0], c) + 1)

    def reference(self, node, graph, inputs):
        size, alpha, beta, bias = _attrs(node)
        n, c, inner = _view(graph, node)
        x = np.asarray(inputs[0], np.float32).reshape(n, c, inner)
        with np.errstate(all="ignore"):
            d = np.float32(bias) + np.float32(alpha / size) * square_sums(x, size)
            y = x / np.power(d, np.float32(beta))
        return [y.astype(np.float32).reshape(inputs[0].shape)]

    # ---- int8 ----

    def quantize(self, node, graph):
        size, alpha, beta, bias = _attrs(node)
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        _, channels, _ = _view(graph, node)
        largest = max(-128 - x.zero_point, 127 - x.zero_point, key=abs) ** 2
        s_max = min(size, channels) * largest
        if s_max >= 2**31:
            raise Unsupported(f"int8 LRN over a window of {min(size, channels)} channels overflows int32")
        octaves = _octaves(s_max)
        segments = 1 << SEGMENT_BITS
        table = np.zeros((octaves, segments + 1), np.int64)
        shifts = np.zeros(octaves, np.int32)
        for e in range(octaves):
            s = 2.0**e * (1.0 + np.arange(segments + 1) / segments)
            with np.errstate(all="ignore"):
                m = (x.scale / y.scale) * np.power(bias + alpha / size * x.scale**2 * s, -beta)
            if not np.all(np.isfinite(m)) or np.any(m < 0):
                raise Unsupported(f"int8 LRN: bias + alpha / size * square_sum is not positive for the input's "
                                  f"range (bias {bias:g})")
            try:
                _, shift = quantize_multiplier(float(m.max()))
            except CompileError:
                raise Unsupported(f"int8 LRN: the multiplier {m.max():.3g} is too large") from None
            table[e] = np.minimum(np.floor(m * 2.0 ** (31 - shift) + 0.5), 2**31 - 1)
            shifts[e] = shift
        return {"table": table.reshape(-1).astype(np.int32), "shifts": shifts}

    def reference_s8(self, node, graph, inputs):
        size = _attrs(node)[0]
        n, c, inner = _view(graph, node)
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        q = node.attrs["q"]
        d = inputs[0].astype(np.int64).reshape(n, c, inner) - x.zero_point
        s = square_sums(d, size)
        e = _octave_of(s)
        r = np.where(s > 0, s - (np.int64(1) << e), 0)  # s = 0 (q = z): any multiplier gives z_y
        low = np.maximum(e - SEGMENT_BITS, 0)
        j = np.where(e >= SEGMENT_BITS, r >> low, r << np.maximum(SEGMENT_BITS - e, 0))
        frac = np.where(e >= SEGMENT_BITS, r & ((np.int64(1) << low) - 1), 0)
        table = q["table"].astype(np.int64)
        a = table[e * ((1 << SEGMENT_BITS) + 1) + j]
        b = table[e * ((1 << SEGMENT_BITS) + 1) + j + 1]
        m = np.where(a >= b, a - (((a - b) * frac) >> low), a + (((b - a) * frac) >> low))
        out = output_s8(d, m, q["shifts"].astype(np.int64)[e], y.zero_point)
        return [out.reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        size, alpha, beta, bias = _attrs(node)
        n, c, inner = _view(graph, node)
        before, after = (min(w, c - 1) for w in _window(size))  # the same sums: no channel lies beyond
        geometry = {"batches": n, "channels": c, "inner": inner, "before": before, "after": after}
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {**geometry, "in_offset": -qparams(graph, node.inputs[0]).zero_point,
                      "out_offset": qparams(graph, node.outputs[0]).zero_point, "segment_bits": SEGMENT_BITS}
            return [KernelCall("nn_lrn_s8", ("src/lrn/nn_lrn_s8.c",), "nn_lrn_s8_params", params,
                               [node.inputs[0], Const(q["table"], "m"), Const(q["shifts"], "shift"),
                                node.outputs[0]])]
        params = {**geometry, "bias": bias, "scale": float(np.float32(alpha / size)), "beta": beta}
        return [KernelCall("nn_lrn_f32", ("src/lrn/nn_lrn_f32.c",), "nn_lrn_f32_params", params,
                           [node.inputs[0], node.outputs[0]])]
