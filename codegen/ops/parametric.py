"""Elementwise functions of an activation and a constant: PRelu (a slope tensor) and Pow (a
scalar exponent).

PRelu: y = x if x > 0 else x * slope, the slope broadcast to x's shape (unidirectional:
per channel as torch writes it, [C, 1, 1], or a scalar, or any shape that broadcasts).
Float: nn_prelu_f32. int8 (nn_prelu_s8): with d = q - zero point of the input, a positive d
is rescaled by input scale / output scale; a negative one is multiplied by the int8 slope and
rescaled by input scale * slope scale / output scale. Each slope element is quantized on a
scale of its own (symmetric, like per-channel weights): the learned slopes of one layer span
orders of magnitude (0.01 next to 0.3), and one scale for all would leave the small ones a
few int8 levels (several percent off); per element the int8 slope is +-127 and the Q31
multiplier carries its magnitude, for 8 bytes of multiplier and shift per channel. int16
(nn_prelu_s16): the same with zero points 0.

Pow: a run-time base and a constant scalar exponent (a scalar or a one-element tensor).
Float: nn_pow_f32, powf with exact special cases (exponent 2: x * x, 0.5: sqrtf, 1: x,
-1: 1 / x, 3: x * x * x) that the NumPy reference takes too, so those are bit-exact; other
exponents go through the C library's powf, whose last bit the reference (the power in double
precision, rounded once) need not share. int8: the 256-entry table of
activation.py (a NaN entry, a negative level to a fractional power, is refused; an
infinite one saturates). int16: the 513-entry interpolated table of lut16.py, for exponents
that are whole numbers >= 0 (the others meet negative bases or a pole in a symmetric range).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import requantize
from codegen.ops.activation import lut_kernel, lut_quantize, lut_reference
from codegen.ops import lut16
from codegen.ops.base import Const, KernelCall, Op, is_int8, is_int16, qparams, register, shape_of
from codegen.ops.eltwise import broadcast_view
from codegen.qparams import multipliers, quantize_weights

POW_MODES = {2.0: 1, 0.5: 2, 1.0: 3, -1.0: 4, 3.0: 5}


def _slope(node, graph) -> np.ndarray:
    if len(node.inputs) < 2 or not node.inputs[1]:
        raise Unsupported("missing slope")
    slope = graph.const(node.inputs[1])
    if slope is None:
        raise Unsupported("the slope must be a constant")
    return np.asarray(slope, np.float32)


@register("PRelu")
class PRelu(Op):
    precisions = ("int8", "int16")

    def infer_shapes(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        s = shape_of(graph, node.inputs[1])
        try:
            ok = len(s) <= len(x) and tuple(np.broadcast_shapes(x, s)) == tuple(x)
        except ValueError:
            ok = False
        if not ok:
            raise Unsupported(f"slope of shape {list(s)} does not broadcast to the input's {list(x)}")
        if len(x) > 6:
            raise Unsupported(f"rank {len(x)} is above 6")
        return [x]

    def check(self, node, graph):
        _slope(node, graph)
        self.infer_shapes(node, graph)

    def reference(self, node, graph, inputs):
        x = np.asarray(inputs[0], np.float32)
        slope = np.asarray(inputs[1], np.float32)
        return [np.where(x > 0, x, x * slope).astype(np.float32)]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def inplace_input(self, node, graph):
        return 0

    def quantize(self, node, graph):
        slope = _slope(node, graph).astype(np.float64)
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        flat = slope.reshape(-1)
        slope_q, scales = quantize_weights(flat, axis=0)
        (pos_m,), (pos_s,) = multipliers([x.scale / y.scale])
        neg_m, neg_s = multipliers(np.float64(x.scale) * scales.astype(np.float64) / y.scale)
        shape = slope.shape
        return {"slope": slope_q.reshape(shape), "neg_multiplier": neg_m.reshape(shape),
                "neg_shift": neg_s.reshape(shape), "in_offset": -x.zero_point, "pos_multiplier": int(pos_m),
                "pos_shift": int(pos_s), "out_offset": y.zero_point, "act_min": y.qmin, "act_max": y.qmax}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        d = inputs[0].astype(np.int64) + q["in_offset"]
        pos = requantize(d, q["pos_multiplier"], q["pos_shift"]).astype(np.int64)
        neg = requantize(d * q["slope"].astype(np.int64), q["neg_multiplier"], q["neg_shift"]).astype(np.int64)
        y = np.where(d > 0, pos, neg) + q["out_offset"]
        return [np.clip(y, q["act_min"], q["act_max"]).astype(graph.tensors[node.outputs[0]].dtype)]

    def kernels(self, node, graph):
        x, out = node.inputs[0], node.outputs[0]
        out_shape = shape_of(graph, out)
        view = broadcast_view([out_shape, shape_of(graph, node.inputs[1])], out_shape)
        if is_int16(graph, node):
            q = node.attrs["q"]
            keys = ("pos_multiplier", "pos_shift", "act_min", "act_max")
            return [KernelCall("nn_prelu_s16", ("src/eltwise/nn_prelu_s16.c",), "nn_prelu_s16_params",
                               {"view": view, **{k: q[k] for k in keys}},
                               [x, Const(q["slope"], "w"), Const(q["neg_multiplier"], "m"),
                                Const(q["neg_shift"], "shift"), out])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            keys = ("in_offset", "pos_multiplier", "pos_shift", "out_offset", "act_min", "act_max")
            return [KernelCall("nn_prelu_s8", ("src/eltwise/nn_prelu_s8.c",), "nn_prelu_s8_params",
                               {"view": view, **{k: q[k] for k in keys}},
                               [x, Const(q["slope"], "w"), Const(q["neg_multiplier"], "m"),
                                Const(q["neg_shift"], "shift"), out])]
        return [KernelCall("nn_prelu_f32", ("src/eltwise/nn_prelu_f32.c",), "nn_prelu_f32_params", {"view": view},
                           [x, Const(_slope(node, graph), "w"), out])]


def _exponent(node, graph) -> float:
    if len(node.inputs) < 2 or not node.inputs[1]:
        raise Unsupported("missing exponent")
    value = graph.const(node.inputs[1])
    if value is None:
        raise Unsupported("the exponent must be a constant (a run-time exponent is not supported)")
    if value.size != 1:
        raise Unsupported(f"the exponent must be a scalar; it has shape {list(value.shape)}")
    if value.dtype.kind not in "fiu":
        raise Unsupported(f"exponent of element type {value.dtype} is not supported")
    e = float(np.float32(value.reshape(-1)[0]))
    if not np.isfinite(e):
        raise Unsupported("the exponent must be finite")
    return e


def power(x: np.ndarray, e: float) -> np.ndarray:
    """x ** e in float32 as nn_pow_f32 computes it (the same special cases)."""
    x = np.asarray(x, np.float32)
    f32 = np.float32
    with np.errstate(all="ignore"):
        mode = POW_MODES.get(e, 0)
        if mode == 1:
            return x * x
        if mode == 2:
            return np.sqrt(x)
        if mode == 3:
            return x.copy()
        if mode == 4:
            return f32(1) / x
        if mode == 5:
            return x * x * x
        # powf's value rounded once from double precision: libm's powf (glibc, newlib) may differ
        # from it in the last bit, inside the float tolerance
        return np.power(x.astype(np.float64), np.float64(f32(e))).astype(np.float32)


@register("Pow")
class Pow(Op):
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            e = _exponent(node, graph)
            return e >= 0 and e == int(e)
        return precision in self.precisions

    def infer_shapes(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        e = shape_of(graph, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else ()
        try:
            out = tuple(np.broadcast_shapes(x, e))
        except ValueError:
            raise Unsupported(f"shapes {list(x)} and {list(e)} do not broadcast") from None
        return [out]

    def check(self, node, graph):
        _exponent(node, graph)
        if graph.const(node.inputs[0]) is not None:
            raise Unsupported("the base must be a run-time tensor")
        if self.infer_shapes(node, graph)[0] != shape_of(graph, node.inputs[0]):
            raise Unsupported("the exponent must not broadcast the base to a larger shape")

    def reference(self, node, graph, inputs):
        return [power(inputs[0], _exponent(node, graph))]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def inplace_input(self, node, graph):
        return 0

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        e = _exponent(node, graph)
        if is_int16(graph, node):
            x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
            return {"table16": lut16.table(x, y, lambda real: power(real, e))}
        return lut_quantize(node, graph, lambda real: power(real, e), f"to the power {e:g} is undefined")

    def reference_s8(self, node, graph, inputs):
        if is_int16(graph, node):
            return [lut16.lookup(node.attrs["q"]["table16"], inputs[0])]
        return lut_reference(node, inputs)

    def kernels(self, node, graph):
        size = graph.tensors[node.outputs[0]].size
        if is_int16(graph, node):
            return [lut16.kernel(node, graph, node.attrs["q"]["table16"])]
        if is_int8(graph, node):
            return [lut_kernel(node, graph)]
        e = _exponent(node, graph)
        params = {"size": size, "mode": POW_MODES.get(e, 0), "exponent": e}
        return [KernelCall("nn_pow_f32", ("src/activation/nn_pow_f32.c",), "nn_pow_f32_params", params,
                           [node.inputs[0], node.outputs[0]])]
