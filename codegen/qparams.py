"""Quantization parameters and the compile-time float math that chooses them.

Rules (DESIGN.md, "Quantization scheme"):
1. Activations: int8, asymmetric, per tensor: real = scale * (q - zero_point). The range
   always contains 0 so that 0 is exact (padding, Relu); a range of zero width gets scale 1.
2. Weights: int8, symmetric, per output channel, in [-127, 127]: scale = max|w| / 127. A
   channel of zeros gets the median scale of the other channels (or 1), never 0.
3. Bias: int32 at scale input_scale * weight_scale[c], zero point 0. A channel whose weights
   are all nearly zero but whose bias is not (a dead neuron) would need a bias beyond int32:
   its weight scale is raised to |b[c]| / (input_scale * 2^30), so the bias takes at most half
   of the int32 accumulator and the reduction keeps the other half (the channel's output is
   its bias anyway; its weights round to 0 at that scale).
4. A real multiplier (input and weight scales over the output scale) becomes (m0, shift)
   through fixedpoint.quantize_multiplier.
5. int16 activations (TFLite's 16x8 scheme): symmetric per tensor, zero point 0, q in
   [-32768, 32767], scale = max(|lo|, |hi|) / 32767 (`from_range(lo, hi, bits=16)`); weights
   stay int8 per channel and the bias int32.
Scales are kept as float32 values so that the numbers in NAME.h are the numbers used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.fixedpoint import quantize_multipliers

QMIN, QMAX = -128, 127


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int
    bits: int = 8  # 8: int8 activations; 16: int16 (rule 5, zero point 0)

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def dtype(self) -> str:
        """The element type of a tensor with these parameters: "int8" or "int16"."""
        return f"int{self.bits}"

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real -> int8 (int16), rounding half to even as ONNX QuantizeLinear does."""
        q = np.rint(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, self.qmin, self.qmax).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.float32(self.scale) * (np.asarray(q, np.int32) - self.zero_point)).astype(np.float32)

    def clamp_range(self, lo: float, hi: float) -> tuple[int, int]:
        """The integer range that a fused activation [lo, hi] leaves: its bounds quantized, as TFLite does."""
        qmin, qmax = self.qmin, self.qmax
        qlo = qmin if lo == -math.inf else max(qmin, min(qmax, self.zero_point + round(lo / self.scale)))
        qhi = qmax if hi == math.inf else min(qmax, max(qmin, self.zero_point + round(hi / self.scale)))
        return int(qlo), int(max(qlo, qhi))


def f32(x: float) -> float:
    return float(np.float32(x))


def from_range(lo: float, hi: float, bits: int = 8) -> QParams:
    """Asymmetric int8 parameters covering [lo, hi] (widened to contain 0); bits=16: the
    symmetric int16 ones of rule 5.

    >>> from_range(-1.0, 3.0, bits=16)
    QParams(scale=9.155552834272385e-05, zero_point=0, bits=16)
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"range [{lo}, {hi}] is not finite")
    if bits == 16:
        scale = f32(max(-lo, hi) / 32767)
        if scale <= 0 or not math.isfinite(scale) or scale < 1e-30:
            return QParams(1.0, 0, 16)
        return QParams(scale, 0, 16)
    if bits != 8:
        raise ValueError(f"activations take 8 or 16 bits, not {bits}")
    scale = f32((hi - lo) / (QMAX - QMIN))
    if scale <= 0 or not math.isfinite(scale) or scale < 1e-30:
        return QParams(1.0, 0)
    zero_point = int(np.clip(round(QMIN - lo / scale), QMIN, QMAX))
    return QParams(scale, zero_point)


def weight_scales(w: np.ndarray, axis: int = 0) -> np.ndarray:
    """Per-channel symmetric scales along `axis` (float32, all > 0)."""
    moved = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    peak = np.abs(moved).max(axis=1) if moved.size else np.zeros(w.shape[axis])
    scales = (peak / 127.0).astype(np.float32)
    good = scales[(scales > 0) & np.isfinite(scales)]
    fill = np.float32(np.median(good)) if good.size else np.float32(1.0)
    return np.where((scales > 0) & np.isfinite(scales), scales, fill).astype(np.float32)


CLIP_FRACTIONS = np.arange(100, 0, -1) / 100.0  # of max|w|, from no clipping down
_CLIP_BLOCK = 1 << 22  # weights x fractions evaluated at once


def mse_weight_scales(w: np.ndarray, axis: int = 0) -> np.ndarray:
    """Per-channel symmetric scales along `axis` that minimise each channel's squared error of
    quantize-dequantize (rint(w / s) clamped to [-127, 127], times s), searched over
    s = f * max|w| / 127 for f in CLIP_FRACTIONS (the largest f of equal error wins).
    Channels of zeros get weight_scales' fill."""
    scales = weight_scales(w, axis)
    moved = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    if not moved.size:
        return scales
    peak = np.abs(moved).max(axis=1)
    live = np.flatnonzero((peak > 0) & np.isfinite(peak))
    cand = (CLIP_FRACTIONS[None, :] * peak[live, None] / 127.0).astype(np.float32).astype(np.float64)
    block = max(1, _CLIP_BLOCK // (moved.shape[1] * len(CLIP_FRACTIONS)))
    for start in range(0, len(live), block):
        rows = live[start:start + block]
        x = moved[rows][:, None, :]  # [channels, 1, K]
        s = cand[start:start + block][:, :, None]  # [channels, fractions, 1]
        err = ((np.clip(np.rint(x / s), -127, 127) * s - x) ** 2).sum(axis=2)
        scales[rows] = cand[start:start + block][np.arange(len(rows)), np.argmin(err, axis=1)]
    return scales.astype(np.float32)


BIAS_HEADROOM = 2**30


def floor_for_bias(scales: np.ndarray, b: np.ndarray | None, input_scale: float) -> np.ndarray:
    """Rule 3: each channel's weight scale raised so that |b[c]| / (input_scale * scale) <= 2^30.

    >>> floor_for_bias(np.float32([0.01, 1e-9]), np.float32([1.0, 1000.0]), 0.5).tolist()
    [0.009999999776482582, 1.862645149230957e-06]
    """
    scales = np.asarray(scales, np.float32)
    if b is None:
        return scales
    with np.errstate(all="ignore"):
        need = np.abs(np.asarray(b, np.float64).reshape(-1)) / (np.float64(input_scale) * BIAS_HEADROOM)
    need = np.where(np.isfinite(need), need, 0.0)
    floored = np.maximum(scales, need.astype(np.float32))
    short = floored.astype(np.float64) < need  # float32 rounding went below the need
    return np.where(short, np.nextafter(floored, np.float32(np.inf)), floored).astype(np.float32)


def quantize_weights(w: np.ndarray, axis: int = 0, scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights in [-127, 127], float32 scales per channel along `axis`)."""
    scales = weight_scales(w, axis) if scales is None else np.asarray(scales, np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.rint(np.asarray(w, np.float64) / scales.astype(np.float64).reshape(shape))
    return np.clip(q, -127, 127).astype(np.int8), scales


def layer_weights(node, w: np.ndarray, b: np.ndarray | None, input_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, float32 scales per output channel, axis 0) of a Conv, ConvTranspose, Gemm or
    MatMul layer: rules 2 and 3, unless the compression passes chose for this node:
    node.attrs["weight_scales"] replaces rule 2's scales (clipping: the weights beyond
    127 steps saturate), node.attrs["weight_q"] the int8 table itself (a chosen rounding of
    the weights at those scales). Rule 3's floor applies to either."""
    scales = node.attrs.get("weight_scales")
    scales = floor_for_bias(weight_scales(w, 0) if scales is None else scales, b, input_scale)
    q = node.attrs.get("weight_q")
    if q is not None:
        return np.asarray(q, np.int8).reshape(w.shape), scales
    return quantize_weights(w, axis=0, scales=scales)


def quantize_bias(b: np.ndarray | None, input_scale: float, w_scales: np.ndarray) -> np.ndarray:
    """int32 bias at scale input_scale * w_scales[c] (zeros when there is none)."""
    if b is None:
        return np.zeros(len(w_scales), np.int32)
    scale = np.float64(input_scale) * w_scales.astype(np.float64)
    q = np.rint(np.asarray(b, np.float64) / scale)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """(m0, shift) int32 arrays for real multipliers."""
    return quantize_multipliers(np.asarray(reals, np.float64))


def fold_input_offset(bias_q: np.ndarray, wq2d: np.ndarray, input_zero_point: int) -> np.ndarray:
    """bias[n] - zp * sum_k w[n, k]: the input zero point moved out of the inner loop.

    Raises Unsupported when an int32 accumulator could overflow for some int8 input: the
    bound is |bias'| + 128 * sum_k |w[n, k]| < 2^31."""
    from codegen.errors import Unsupported

    w = wq2d.astype(np.int64)
    folded = bias_q.astype(np.int64) - int(input_zero_point) * w.sum(axis=1)
    bound = np.abs(folded) + 128 * np.abs(w).sum(axis=1)
    if bound.size and bound.max() >= 2**31:
        raise Unsupported("an int32 accumulator could overflow (bias or reduction too large)")
    return folded.astype(np.int32)
