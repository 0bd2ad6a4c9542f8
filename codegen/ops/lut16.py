"""int16 unary functions through a 513-entry table with linear interpolation (TFLite's 16-bit
lookup scheme), the int16 counterpart of the 256-entry int8 tables of activation.py.

1. The 65536 int16 input levels are cut into 512 segments of 128 levels; knot k is the input
   level 128 k - 32768, k in [0, 512] (the last one lies one step past the int16 range and
   closes the last segment). With F the function in output levels, F(l) =
   f(dequantize_in(l)) / output scale, entry k is F at knot k moved by half the chord's error
   at the middle of its segments: e_j = F(middle of segment j) - (F(knot j) + F(knot j + 1)) / 2,
   table[k] = round(F(knot k) + (e_(k-1) + e_k) / 4) (one segment at either end: e / 2), so that
   a curved segment's chord is off by about e / 2 at its ends and -e / 2 at its middle, not e.
   Entries are int32, clipped to [-2^22, 2^22]: an entry beyond the int16 range keeps the chord
   next to it straight (the kernel clamps the result), infinity saturates there.
2. An input level x reads its segment k = (x + 32768) >> 7 and its place f = (x + 32768) & 127
   in it: y = clamp(table[k] + (((table[k + 1] - table[k]) * f + 64) >> 7)) (floor shift) to
   [-32768, 32767]. nn_lut_s16 in runtime_c computes the same integers.
3. A NaN (a knot or a middle outside the function's domain) is refused, naming the input level.
Between knots the function is replaced by its chord: the error is about h^2 / 16 * max|f''|
with h = 128 input steps, on top of the output rounding.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import Const, KernelCall
from codegen.qparams import QParams

SEGMENT = 128  # input levels per segment
KNOTS = 65536 // SEGMENT + 1  # 513
ENTRY_LIMIT = 1 << 22  # |entry|: (2 * 2^22) * 127 stays inside int32


def table(x: QParams, y: QParams, function) -> np.ndarray:
    """The 513 int32 entries of `function` (real -> real, vectorised, float32 in) from input
    parameters x to output parameters y (rules 1 and 3)."""
    def steps(levels):
        real_in = (np.float64(x.scale) * levels).astype(np.float32)
        real = np.asarray(function(real_in), np.float64)
        if np.isnan(real).any():
            level = float(real_in[np.isnan(real)][0])
            raise Unsupported(f"its int16 table is undefined: the input level {level:g} is outside the "
                              "function's domain")
        with np.errstate(invalid="ignore", over="ignore"):
            return real / np.float64(y.scale)

    return entries(steps)


def entries(steps, limit: int = ENTRY_LIMIT) -> np.ndarray:
    """Rule 1's 513 int32 entries, clipped to [-limit, limit], of a function given in levels:
    `steps(levels)` maps int64 input levels to real output levels (infinities allowed)."""
    levels = np.arange(2 * KNOTS - 1, dtype=np.int64) * (SEGMENT // 2) - 32768  # knots and middles
    values = np.clip(np.asarray(steps(levels), np.float64), -limit, limit)
    knots, middles = values[0::2], values[1::2]
    error = middles - (knots[:-1] + knots[1:]) / 2
    shift = np.zeros(KNOTS)
    shift[:-1] += error / 4
    shift[1:] += error / 4
    shift[[0, -1]] *= 2
    return np.clip(np.rint(knots + shift), -limit, limit).astype(np.int32)


def lookup(entries: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Rule 2 over int16 inputs: the integers nn_lut_s16 computes."""
    u = np.asarray(inputs, np.int64) + 32768
    k = u >> 7
    t = np.asarray(entries, np.int64)
    base = t[k]
    return np.clip(base + (((t[k + 1] - base) * (u & (SEGMENT - 1)) + 64) >> 7), -32768, 32767).astype(np.int16)


def kernel(node, graph, entries: np.ndarray) -> KernelCall:
    """nn_lut_s16 over the node's 513-entry table."""
    return KernelCall("nn_lut_s16", ("src/activation/nn_lut_s16.c",), "nn_lut_s16_params",
                      {"size": graph.tensors[node.outputs[0]].size},
                      [node.inputs[0], Const(np.asarray(entries, np.int32), "lut"), node.outputs[0]])
