"""ReduceMean, ReduceMax, ReduceSum (the dynamo exporter's global pooling), ReduceMin, ReduceL1,
ReduceL2, ReduceSumSquare, ReduceLogSumExp and ReduceProd over any axes.

Axes come from the attribute (ReduceSum before opset 13, the others before 18) or the
optional constant input; keepdims and noop_with_empty_axes follow the spec. The kernels
(nn_reduce_sum_f32, nn_reduce_mean_f32, nn_reduce_max_f32, one per op so a model links only
what it uses) walk each output's box of reduced elements through strides, so any set of axes
works without moving data. `coalesce` drops size-1 axes and merges neighbouring axes of the
same kind first: global average pooling is one contiguous run per channel.

int8 (nn_reduce_s8) rescales the integer result to the output's own scale: the sum (mean,
sum), the maximum or minimum, the sum of |x - zp| (L1) or of (x - zp)^2 (sum of squares), or
for L2 the square root of the latter in Q14 (through fixedpoint.inverse_sqrt: s / sqrt(s)).
ReduceLogSumExp (nn_reduce_logsumexp_s8) is Softmax's integer rule without the division: the
maximum, a 256-entry exp table of the differences, an integer sum and its fixed-point log2,
all in output steps. ReduceProd has no int8 rule: a product of n int8 values multiplies their
relative rounding errors (half a step over a value of a few steps is tens of percent), so its
result would be noise next to any output scale calibration can choose; it runs in float32.
int16 (nn_reduce_s16, zero points 0): ReduceMean, ReduceSum, ReduceMax, ReduceMin and ReduceL1
over at most 65535 elements per output, in int32, rescaled once; ReduceSumSquare in int64
through requantize64; ReduceL2 and ReduceLogSumExp stay int8.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import inverse_sqrt, log2_q16, output64_s16, output_s8, output_s16
from codegen.ops.base import (Const, KernelCall, Op, is_int8, is_int16, normalize_axis, qparams, register,
                              require_const, shape_of)
from codegen.qparams import multipliers

MAX_DIMS = 6
CODES = {"ReduceMean": 0, "ReduceMax": 1, "ReduceSum": 2, "ReduceMin": 3, "ReduceL1": 4, "ReduceSumSquare": 5,
         "ReduceL2": 6}
FLOAT_KERNELS = {"ReduceMean": "nn_reduce_mean_f32", "ReduceMax": "nn_reduce_max_f32", "ReduceSum": "nn_reduce_sum_f32",
                 "ReduceMin": "nn_reduce_min_f32", "ReduceL1": "nn_reduce_l1_f32",
                 "ReduceSumSquare": "nn_reduce_sumsquare_f32", "ReduceL2": "nn_reduce_l2_f32",
                 "ReduceProd": "nn_reduce_prod_f32", "ReduceLogSumExp": "nn_reduce_logsumexp_f32"}
HELPERS = {"nn_reduce_mean_f32": "nn_reduce_sum_f32", "nn_reduce_l2_f32": "nn_reduce_sumsquare_f32",
           "nn_reduce_logsumexp_f32": "nn_reduce_max_f32"}  # the kernel that each one calls
L2_BITS = 14  # int8 L2: the square root in Q14
INT16_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceSumSquare")
MAX_COUNT_S16 = 65535  # elements per int16 sum: 65535 * 32768 < 2^31


def _pad(values: list[int], fill: int) -> list[int]:
    return [fill] * (MAX_DIMS - len(values)) + list(values)


def coalesce(shape, axes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(kept, reduced) dimensions of a dense `shape` as (size, stride in elements) lists, outer
    first: size-1 dimensions dropped, neighbours of the same kind merged (their elements are
    consecutive), so a reduction over the last axes has one contiguous reduced run."""
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    dims: list[list[int]] = []  # [size, stride, reduced]
    for i, d in enumerate(shape):
        if d == 1:
            continue
        red = int(i in axes)
        if dims and dims[-1][2] == red and dims[-1][1] == d * strides[i]:
            dims[-1][0] *= d
            dims[-1][1] = strides[i]
        else:
            dims.append([d, strides[i], red])
    kept = [(d, s) for d, s, r in dims if not r]
    reduced = [(d, s) for d, s, r in dims if r]
    return kept, reduced


def _logsumexp(x, axis):
    peak = x.max(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        return peak + np.log(np.exp(x - peak).sum(axis=axis, keepdims=True, dtype=np.float32))


FLOAT_RULES = {"ReduceMean": np.mean, "ReduceMax": np.max, "ReduceSum": np.sum, "ReduceMin": np.min,
               "ReduceL1": lambda x, axis, keepdims: np.abs(x).sum(axis=axis, keepdims=keepdims),
               "ReduceSumSquare": lambda x, axis, keepdims: (x * x).sum(axis=axis, keepdims=keepdims),
               "ReduceL2": lambda x, axis, keepdims: np.sqrt((x * x).sum(axis=axis, keepdims=keepdims)),
               "ReduceProd": np.prod,
               "ReduceLogSumExp": lambda x, axis, keepdims: _logsumexp(x, axis)}


@register("ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare",
          "ReduceLogSumExp", "ReduceProd")
class Reduce(Op):
    precisions = ("int8", "int16")  # int16: INT16_OPS only (supports_precision)

    def axes(self, node, graph) -> list[int] | None:
        """Sorted reduced axes; None for the identity (empty axes with noop_with_empty_axes)."""
        rank = len(shape_of(graph, node.inputs[0]))
        if "axes" in node.attrs:
            raw = list(node.attrs["axes"])
        elif len(node.inputs) > 1 and node.inputs[1]:
            raw = require_const(graph, node, 1, "axes").reshape(-1).tolist()
        else:
            raw = []
        if not raw:
            return None if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        axes = sorted({normalize_axis(int(a), rank, node) for a in raw})
        if len(axes) != len(raw):
            raise Unsupported(f"repeated axes {raw}")
        return axes

    def check(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        if math.prod(shape) == 0:
            raise Unsupported("reducing an empty tensor")
        kept, reduced = coalesce(shape, self.axes(node, graph) or [])
        if len(kept) > MAX_DIMS or len(reduced) > MAX_DIMS:
            raise Unsupported(f"rank {len(shape)} is above {MAX_DIMS}")

    def infer_shapes(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        axes = self.axes(node, graph)
        if axes is None:
            return [shape]
        if node.attrs.get("keepdims", 1):
            return [tuple(1 if i in axes else d for i, d in enumerate(shape))]
        return [tuple(d for i, d in enumerate(shape) if i not in axes)]

    def reference(self, node, graph, inputs):
        axes = self.axes(node, graph)
        x = np.asarray(inputs[0], np.float32)
        # empty axes with noop_with_empty_axes reduce over no axis: each element alone (|x| for L1)
        with np.errstate(over="ignore"):
            y = FLOAT_RULES[node.op_type](x, axis=tuple(axes or ()), keepdims=True)
        return [np.asarray(y, np.float32).reshape(shape_of(graph, node.outputs[0]))]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def params_count(self, node, graph):
        return 0

    def view(self, node, graph) -> dict:
        """The nn_reduce_params geometry (see nn_reduce.h)."""
        shape = shape_of(graph, node.inputs[0])
        kept, reduced = coalesce(shape, self.axes(node, graph) or [])
        return {"outer_shape": _pad([d for d, _ in kept], 1), "outer_strides": _pad([s for _, s in kept], 0),
                "inner_shape": _pad([d for d, _ in reduced], 1), "inner_strides": _pad([s for _, s in reduced], 0),
                "out_size": math.prod(d for d, _ in kept), "count": math.prod(d for d, _ in reduced)}

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            return node.op_type in INT16_OPS and self.view(node, graph)["count"] <= MAX_COUNT_S16
        return precision in self.precisions

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        count = self.view(node, graph)["count"]
        op = node.op_type
        if y.bits == 16:
            if op not in INT16_OPS or count > MAX_COUNT_S16:
                raise Unsupported(f"no int16 rule for {op} over {count} elements")
            real = {"ReduceMean": x.scale / count, "ReduceSumSquare": x.scale * x.scale}.get(op, x.scale)
            (m0,), (shift,) = multipliers([real / y.scale])
            return {"multiplier": int(m0), "shift": int(shift)}
        if op == "ReduceProd":
            raise Unsupported("ReduceProd has no int8 rule (a product of int8 values multiplies their rounding "
                              "errors); compile the model in float32")
        if op == "ReduceLogSumExp":
            return self._quantize_logsumexp(node, graph, x, y, count)
        squares = op in ("ReduceSumSquare", "ReduceL2")
        if count * (256 * 256 if squares else 256) >= 2**31:
            raise Unsupported(f"int8 {'sum of squares' if squares else 'sum'} of {count} elements could overflow int32")
        real = {"ReduceMean": x.scale / count, "ReduceSumSquare": x.scale * x.scale,
                "ReduceL2": x.scale / 2**L2_BITS}.get(op, x.scale) / y.scale
        (m0,), (shift,) = multipliers([real])
        return {"input_offset": -x.zero_point, "multiplier": int(m0), "shift": int(shift),
                "output_offset": y.zero_point}

    def _quantize_logsumexp(self, node, graph, x, y, count):
        bits = min(21, 29 - math.ceil(math.log2(max(count, 1))))
        if bits < 8:
            raise Unsupported(f"int8 ReduceLogSumExp over {count} values is not supported")
        steps, ln2 = round(x.scale / y.scale * 2**16), round(math.log(2) / y.scale * 2**16)
        if max(steps, ln2) >= 2**31:
            raise Unsupported(f"int8 ReduceLogSumExp with an output scale of {y.scale:g} is too fine")
        table = np.floor(np.exp(-x.scale * np.arange(256, dtype=np.float64)) * 2.0**bits + 0.5).astype(np.int32)
        return {"exp_table": table, "exp_bits": bits, "input_offset": -x.zero_point, "input_steps": steps,
                "ln2_steps": ln2, "output_offset": y.zero_point}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        axes = tuple(self.axes(node, graph) or ())
        op = node.op_type
        if op == "ReduceLogSumExp":
            x = inputs[0].astype(np.int64)
            peak = x.max(axis=axes, keepdims=True)
            total = q["exp_table"].astype(np.int64)[peak - x].sum(axis=axes, keepdims=True)
            lse = ((log2_q16(total).astype(np.int64) - (q["exp_bits"] << 16)) * q["ln2_steps"] + (1 << 15)) >> 16
            steps = (peak + q["input_offset"]) * q["input_steps"] + lse
            y = np.clip(((steps + (1 << 15)) >> 16) + q["output_offset"], -128, 127).astype(np.int8)
            return [y.reshape(shape_of(graph, node.outputs[0]))]
        if is_int16(graph, node):
            x = inputs[0].astype(np.int64)
            if op == "ReduceSumSquare":
                y = output64_s16((x * x).sum(axis=axes, keepdims=True), q["multiplier"], q["shift"])
                return [y.reshape(shape_of(graph, node.outputs[0]))]
            if op in ("ReduceMax", "ReduceMin"):
                acc = (x.max if op == "ReduceMax" else x.min)(axis=axes, keepdims=True)
            else:
                acc = (np.abs(x) if op == "ReduceL1" else x).sum(axis=axes, keepdims=True)
            return [output_s16(acc, q["multiplier"], q["shift"]).reshape(shape_of(graph, node.outputs[0]))]
        x = inputs[0].astype(np.int64) + q["input_offset"]
        if op in ("ReduceMax", "ReduceMin"):
            acc = (x.max if op == "ReduceMax" else x.min)(axis=axes, keepdims=True)
        elif op == "ReduceL1":
            acc = np.abs(x).sum(axis=axes, keepdims=True)
        elif op in ("ReduceSumSquare", "ReduceL2"):
            acc = (x * x).sum(axis=axes, keepdims=True)
            if op == "ReduceL2":
                acc = _root_q14(acc)
        else:
            acc = x.sum(axis=axes, keepdims=True)
        y = output_s8(acc, q["multiplier"], q["shift"], q["output_offset"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    def kernels(self, node, graph):
        view = self.view(node, graph)
        args = [node.inputs[0], node.outputs[0]]
        if is_int16(graph, node):
            q = node.attrs["q"]
            params = {"r": view, "op": CODES[node.op_type], "multiplier": q["multiplier"], "shift": q["shift"]}
            return [KernelCall("nn_reduce_s16", ("src/reduce/nn_reduce_s16.c",), "nn_reduce_s16_params", params, args)]
        if is_int8(graph, node):
            q = node.attrs["q"]
            if node.op_type == "ReduceLogSumExp":
                keys = ("exp_bits", "input_offset", "input_steps", "ln2_steps", "output_offset")
                return [KernelCall("nn_reduce_logsumexp_s8", ("src/reduce/nn_reduce_logsumexp_s8.c",),
                                   "nn_reduce_logsumexp_s8_params", {"r": view, **{k: q[k] for k in keys}},
                                   [node.inputs[0], Const(q["exp_table"], "exp"), node.outputs[0]])]
            params = {"r": view, "op": CODES[node.op_type],
                      **{k: q[k] for k in ("input_offset", "multiplier", "shift", "output_offset")}}
            return [KernelCall("nn_reduce_s8", ("src/reduce/nn_reduce_s8.c",), "nn_reduce_s8_params", params, args)]
        name = FLOAT_KERNELS[node.op_type]
        sources = (f"src/reduce/{name}.c",)
        if name in HELPERS:
            sources += (f"src/reduce/{HELPERS[name]}.c",)
        return [KernelCall(name, sources, "nn_reduce_params", view, args)]


def _root_q14(s: np.ndarray) -> np.ndarray:
    """round(sqrt(s) * 2^14) for 0 <= s < 2^31 as root_q14 in nn_reduce_s8.c: s * inverse_sqrt(s)."""
    s = np.asarray(s, np.int64)
    y, e = inverse_sqrt(np.maximum(s, 1))
    e = e.astype(np.int64)
    root = (s * y.astype(np.int64) + (np.int64(1) << (e - 15))) >> (e - L2_BITS)
    return np.where(s == 0, 0, root)
