"""The integer requantization primitives: the NumPy twin of runtime_c/include/requant.h.

A real multiplier M > 0 is stored as (m0, shift) with M ~= m0 * 2^(shift - 31),
m0 in [2^30, 2^31 - 1] and shift in [-31, 30]. `requantize(acc, m0, shift)` is
round(acc * M) computed exactly as the C does it (see requant.h for the three steps).
Every function takes NumPy integer arrays (or scalars) and broadcasts, so per-channel
multipliers apply along an axis for free. Arithmetic is carried out in int64, where
nothing can overflow, and the results are int32.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import CompileError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
SHIFT_MIN, SHIFT_MAX = -31, 30


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(m0, shift) for a real multiplier M >= 0, with m0 * 2^(shift - 31) as close to M as Q31 allows.

    M = q * 2^e with q in [0.5, 1); m0 = round(q * 2^31) (half away from zero), shift = e.
    Below 2^-32 the mantissa is shifted right so that shift stays at -31 (precision fades
    gracefully to 0 instead of dropping to 0 at once).

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(1.0)
    (1073741824, 1)
    >>> quantize_multiplier(0.0)
    (0, 0)
    """
    if not math.isfinite(real) or real < 0:
        raise CompileError(f"requantization multiplier {real!r} is not a finite non-negative number")
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    m0 = math.floor(q * 2**31 + 0.5)
    if m0 == 2**31:
        m0 //= 2
        shift += 1
    if shift > SHIFT_MAX:
        raise CompileError(f"requantization multiplier {real:.6g} is too large for Q31 with shift <= {SHIFT_MAX}")
    if shift < SHIFT_MIN:
        if SHIFT_MIN - shift > 31:
            return 0, 0
        m0 = int(rounding_divide_by_pot(np.int64(m0), SHIFT_MIN - shift))
        shift = SHIFT_MIN
    return int(m0), int(shift)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array: (m0 int32 array, shift int32 array)."""
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    shape = np.shape(reals)
    m0 = np.array([p[0] for p in pairs], dtype=np.int32).reshape(shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int32).reshape(shape)
    return m0, shift


def sat_doubling_high_mul(a, b) -> np.ndarray:
    """round(a * b / 2^31) with gemmlowp's nudge and truncation toward zero (ties go toward
    +infinity); INT32_MIN * INT32_MIN saturates to INT32_MAX."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    q = np.where(ab >= 0, ab + (1 << 30), ab + 1 - (1 << 30))
    high = np.where(q >= 0, q >> 31, -((-q) >> 31))
    high = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)
    return high.astype(np.int32)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """round(x / 2^exponent), half away from zero; exponent in [0, 31]."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> exponent) + (remainder > threshold)).astype(np.int32)


def requantize(acc, m0, shift) -> np.ndarray:
    """round(acc * m0 * 2^(shift - 31)) exactly as nn_requantize in requant.h; int32 result."""
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    x = np.clip(acc * (np.int64(1) << left), INT32_MIN, INT32_MAX)
    high = sat_doubling_high_mul(x, m0)
    return rounding_divide_by_pot(high, np.maximum(-shift, 0))


def output_s8(acc, m0, shift, offset, lo: int = -128, hi: int = 127) -> np.ndarray:
    """An int8 output as nn_output_s8 in requant.h computes it: requantize, add the output zero
    point, clamp to [lo, hi]. The sum is formed in int64: a requantized value near the int32
    limits (a saturated accumulator with m0 close to 2^31) plus the offset must saturate, not wrap."""
    y = requantize(acc, m0, shift).astype(np.int64) + np.asarray(offset, np.int64)
    return np.clip(y, lo, hi).astype(np.int8)


def output_s16(acc, m0, shift, lo: int = -32768, hi: int = 32767) -> np.ndarray:
    """An int16 output (zero point 0) as nn_output_s16 in requant.h: requantize an int32
    accumulator, clamp to [lo, hi]."""
    return np.clip(requantize(acc, m0, shift), lo, hi).astype(np.int16)


ACC64_LIMIT = 2**47  # requantize64 saturates its accumulator to (-2^47, 2^47)


def requantize64(acc, m0, shift) -> np.ndarray:
    """round(acc * M) for an int64 accumulator, exactly as nn_requantize64 in requant.h; int32 result.

    The Q31 mantissa is rounded to 16 bits, m = (m0 + 2^15) >> 16 (at most 2^15), so that
    acc * m fits int64 once |acc| < 2^47 (acc is saturated there first); M ~= m * 2^(shift - 15)
    and the product is shifted right by r = 15 - shift with rounding (ties toward +infinity),
    or left (saturated) when r < 0; the result saturates to int32."""
    acc = np.clip(np.asarray(acc, dtype=np.int64), 1 - ACC64_LIMIT, ACC64_LIMIT - 1)
    m = (np.asarray(m0, dtype=np.int64) + (1 << 15)) >> 16
    r = 15 - np.asarray(shift, dtype=np.int64)
    p = acc * m
    down = (p + (np.int64(1) << np.maximum(r - 1, 0))) >> np.maximum(r, 0)
    up = np.clip(p, INT32_MIN, INT32_MAX) << np.maximum(-r, 0)
    y = np.where(r > 0, down, up)
    return np.clip(y, INT32_MIN, INT32_MAX).astype(np.int32)


def output64_s16(acc, m0, shift, lo: int = -32768, hi: int = 32767) -> np.ndarray:
    """An int16 output of an int64 accumulator as nn_output64_s16 in requant.h."""
    return np.clip(requantize64(acc, m0, shift), lo, hi).astype(np.int16)


INV_SQRT_SEED = (1252698795, 715827883)  # round(7/3 * 2^29), round(4/3 * 2^29)


def inverse_sqrt(t) -> tuple[np.ndarray, np.ndarray]:
    """(y, e) with 1 / sqrt(t) ~= y * 2^-e, y in [2^29, 2^30], for integers 1 <= t < 2^62, exactly
    as nn_inv_sqrt in runtime_c/include/nn_norm.h computes them: t = u * 4^j with u in
    [2^28, 2^30) (right shifts truncate), the chord seed y0 = 7/3 - 4/3 u in Q29, four Newton
    steps y <- y (3 - u y^2) / 2 with floor shifts, e = 44 + j. Relative error below 2^-27."""
    u = np.array(t, dtype=np.int64, copy=True)
    if np.any(u < 1) or np.any(u >= 2**62):
        raise ValueError("inverse_sqrt takes integers in [1, 2^62)")
    j = np.zeros_like(u)
    while np.any(u >= 1 << 30):
        big = u >= 1 << 30
        u = np.where(big, u >> 2, u)
        j += big
    while np.any(u < 1 << 28):
        small = u < 1 << 28
        u = np.where(small, u << 2, u)
        j -= small
    y = INV_SQRT_SEED[0] - ((u * INV_SQRT_SEED[1]) >> 30)
    for _ in range(4):
        y2 = (y * y) >> 29
        y = (y * ((3 << 29) - ((u * y2) >> 30))) >> 30
    return y.astype(np.int32), (44 + j).astype(np.int32)


def log2_q16(x) -> np.ndarray:
    """log2(x) in Q16 for integers 1 <= x < 2^31, truncated, exactly as nn_log2_q16 in
    runtime_c/include/nn_softmax.h: the top bit's position, then 16 fractional bits from
    squaring the mantissa in Q30 (floored products), one bit per square that reaches 2."""
    x = np.array(x, dtype=np.int64, copy=True)
    if np.any(x < 1) or np.any(x >= 2**31):
        raise ValueError("log2_q16 takes integers in [1, 2^31)")
    p = np.zeros_like(x)
    while np.any((p < 30) & ((x >> np.minimum(p + 1, 62)) != 0)):
        p += (p < 30) & ((x >> np.minimum(p + 1, 62)) != 0)
    result = p << 16
    m = x << (30 - p)
    for i in range(15, -1, -1):
        m = (m * m) >> 30
        bit = m >= 1 << 31
        m = np.where(bit, m >> 1, m)
        result |= bit.astype(np.int64) << i
    return result.astype(np.int32)
