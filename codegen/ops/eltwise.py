"""Add, Sub, Mul, Div with NumPy broadcasting: a constant operand on either side, or two
activations (residual blocks).

The kernels read both inputs through a broadcast view (strides 0 on broadcast dimensions),
so nothing is expanded in memory. Float: one kernel per op (nn_add_f32, nn_sub_f32,
nn_mul_f32, nn_div_f32) sharing nn_binary_f32_params, with the fused Relu/Clip as the
output clamp; an output with the shape of an activation input may overwrite it. int8 (TFLite's scheme): Add/Sub bring both inputs to a
common scale with 2^20 headroom and rescale the sum; Mul rescales the product of the
offset inputs; Div by a constant is Mul by its reciprocal. Div by an activation looks up,
for each of the divisor's 256 levels q, the multiplier scale_a / (scale_b * (q - zero_b) *
scale_out) (m0 and shift, negative m0 for a negative divisor) and requantizes the offset
dividend with it: one rounding, as for Mul. A zero divisor saturates (the zero point for
0 / 0). A constant operand is quantized per tensor from its own range.
int16 (symmetric, zero point 0; TFLite's 16-bit rule): Add/Sub shift both inputs left by 15
bits before their multipliers (nn_add_s16); Mul requantizes the int32 product once
(nn_mul_s16); Div by a constant is Mul by its reciprocal; a constant operand is symmetric int16.
Div by an activation stays int8 (its multiplier tables would need 65536 entries).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import INT32_MAX, SHIFT_MAX, output_s8, output_s16, quantize_multiplier, requantize
from codegen.ops.base import (Const, KernelCall, Op, activation, apply_activation, is_int8, is_int16, qparams,
                              register, shape_of)
from codegen.qparams import QParams, from_range, multipliers

MAX_DIMS = 6
LEFT_SHIFT = 20
LEFT_SHIFT_S16 = 15  # |x| * 2^15 <= 2^30 for int16 x
FLOAT_KERNELS = {"Add": "nn_add_f32", "Sub": "nn_sub_f32", "Mul": "nn_mul_f32", "Div": "nn_div_f32"}


def broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape of ONNX multidirectional broadcasting, at most MAX_DIMS dimensions."""
    try:
        out = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise Unsupported(f"shapes {', '.join(str(list(s)) for s in shapes)} do not broadcast") from None
    if len(out) > MAX_DIMS:
        raise Unsupported(f"rank {len(out)} is above {MAX_DIMS}")
    return out


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Element strides of an input of `shape` read at every index of `out`, padded in front to
    MAX_DIMS: dense strides, 0 where the input broadcasts."""
    padded_out = (1,) * (MAX_DIMS - len(out)) + tuple(out)
    padded = (1,) * (MAX_DIMS - len(shape)) + tuple(shape)
    strides, step = [0] * MAX_DIMS, 1
    for d in range(MAX_DIMS - 1, -1, -1):
        strides[d] = step if padded[d] != 1 or padded_out[d] == 1 else 0
        step *= padded[d]
    return strides


def broadcast_view(shapes: list[tuple[int, ...]], out: tuple[int, ...]) -> dict:
    """The nn_broadcast struct: output shape and per-input element strides, padded to 6 dims."""
    if len(out) > MAX_DIMS:
        raise Unsupported(f"rank {len(out)} is above {MAX_DIMS}")
    view = {"size": int(np.prod(out, dtype=np.int64)),
            "contiguous": int(all(tuple(s) == tuple(out) for s in shapes)),
            "shape": [1] * (MAX_DIMS - len(out)) + list(out)}
    for key, shape in zip(("a_strides", "b_strides"), shapes):
        view[key] = broadcast_strides(shape, out)
    return view


def divisor_multipliers(real: float, zero_point: int) -> tuple[np.ndarray, np.ndarray]:
    """(m0, shift) int32 tables over the divisor's levels -128..127: real / (level - zero_point)
    in Q31 (requant.h), m0 negative for a negative divisor; a zero divisor gets the largest
    multiplier, so that any nonzero dividend saturates (and 0 / 0 gives the zero point)."""
    m0, shift = np.zeros(256, np.int32), np.zeros(256, np.int32)
    for k, level in enumerate(range(-128, 128)):
        d = level - zero_point
        if d == 0:
            m0[k], shift[k] = INT32_MAX, SHIFT_MAX
            continue
        m, e = quantize_multiplier(min(real / abs(d), 2.0 ** (SHIFT_MAX - 1)))
        m0[k], shift[k] = (m if d > 0 else -m), e
    return m0, shift


def _const_qparams(value: np.ndarray, bits: int = 8) -> QParams:
    return from_range(float(value.min(initial=0.0)), float(value.max(initial=0.0)), bits=bits)


@register("Add", "Sub", "Mul", "Div")
class Binary(Op):
    fuses_activation = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16" and node.op_type == "Div" and graph.const(node.inputs[1]) is None:
            return False  # by an activation: int8 only
        return precision in self.precisions

    def infer_shapes(self, node, graph):
        return [broadcast_shape([shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])])]

    def check(self, node, graph):
        self.infer_shapes(node, graph)

    def reference(self, node, graph, inputs):
        a, b = (np.asarray(x, np.float32) for x in inputs)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[node.op_type](a, b)
        return [apply_activation(node, y.astype(np.float32))]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def inplace_input(self, node, graph):
        out = shape_of(graph, node.outputs[0])
        for k, name in enumerate(node.inputs[:2]):
            if graph.const(name) is None and shape_of(graph, name) == out:
                return k
        return None

    # ---- int8 ----

    def quantize(self, node, graph):
        y = qparams(graph, node.outputs[0])
        operands = []  # (QParams, int8 table or None) per input
        for k, name in enumerate(node.inputs[:2]):
            value = graph.const(name)
            if value is None:
                operands.append((qparams(graph, name), None))
                continue
            value = np.asarray(value, np.float64)
            if node.op_type == "Div" and k == 1:
                if np.any(value == 0):
                    raise Unsupported(f"int{y.bits} division by a constant with zeros")
                value = 1.0 / value
            qp = _const_qparams(value, y.bits)
            operands.append((qp, qp.quantize(value)))
        (a, a_table), (b, b_table) = operands
        act_min, act_max = y.clamp_range(*activation(node))
        if y.bits == 16:
            return self._quantize_s16(node, a, a_table, b, b_table, y, act_min, act_max)
        q = {"a_table": a_table, "b_table": b_table, "a_offset": -a.zero_point, "b_offset": -b.zero_point,
             "out_offset": y.zero_point, "act_min": act_min, "act_max": act_max}
        if node.op_type == "Div" and b_table is None:
            q["b_table"], q["m0"], q["shift"] = None, *divisor_multipliers(a.scale / (b.scale * y.scale), b.zero_point)
        elif node.op_type in ("Add", "Sub"):
            twice = 2.0 * max(a.scale, b.scale)
            (ma, mb, mo), (sa, sb, so) = multipliers([a.scale / twice, b.scale / twice,
                                                      twice / ((1 << LEFT_SHIFT) * y.scale)])
            q.update(left_shift=LEFT_SHIFT, a_multiplier=int(ma), a_shift=int(sa), b_multiplier=int(mb),
                     b_shift=int(sb), b_sign=1 if node.op_type == "Add" else -1, out_multiplier=int(mo),
                     out_shift=int(so))
        else:
            (mo,), (so,) = multipliers([a.scale * b.scale / y.scale])
            q.update(out_multiplier=int(mo), out_shift=int(so))
        return q

    def _quantize_s16(self, node, a, a_table, b, b_table, y, act_min, act_max) -> dict:
        q = {"a_table": a_table, "b_table": b_table, "act_min": act_min, "act_max": act_max}
        if node.op_type == "Div" and b_table is None:
            raise Unsupported("int16 division by an activation is not supported (int8 is)")
        if node.op_type in ("Add", "Sub"):
            twice = 2.0 * max(a.scale, b.scale)
            (ma, mb, mo), (sa, sb, so) = multipliers([a.scale / twice, b.scale / twice,
                                                      twice / ((1 << LEFT_SHIFT_S16) * y.scale)])
            q.update(left_shift=LEFT_SHIFT_S16, a_multiplier=int(ma), a_shift=int(sa), b_multiplier=int(mb),
                     b_shift=int(sb), b_sign=1 if node.op_type == "Add" else -1, out_multiplier=int(mo),
                     out_shift=int(so))
        else:
            (mo,), (so,) = multipliers([a.scale * b.scale / y.scale])
            q.update(out_multiplier=int(mo), out_shift=int(so))
        return q

    def _reference_s16(self, node, graph, inputs) -> list[np.ndarray]:
        q = node.attrs["q"]
        a = (q["a_table"] if q["a_table"] is not None else inputs[0]).astype(np.int64)
        b = (q["b_table"] if q["b_table"] is not None else inputs[1]).astype(np.int64)
        if node.op_type in ("Add", "Sub"):
            xa = requantize(a << q["left_shift"], q["a_multiplier"], q["a_shift"]).astype(np.int64)
            xb = requantize(b << q["left_shift"], q["b_multiplier"], q["b_shift"]).astype(np.int64) * q["b_sign"]
            acc = xa + xb
        else:
            acc = a * b
        y = output_s16(acc, q["out_multiplier"], q["out_shift"], q["act_min"], q["act_max"])
        return [np.broadcast_to(y, shape_of(graph, node.outputs[0])).copy()]

    def reference_s8(self, node, graph, inputs):
        if is_int16(graph, node):
            return self._reference_s16(node, graph, inputs)
        q = node.attrs["q"]
        a = (q["a_table"] if q["a_table"] is not None else inputs[0]).astype(np.int64) + q["a_offset"]
        b = (q["b_table"] if q["b_table"] is not None else inputs[1]).astype(np.int64) + q["b_offset"]
        if "m0" in q:  # Div by an activation: the divisor's level picks the multiplier
            level = np.asarray(inputs[1], np.int64) + 128
            y = output_s8(a, q["m0"][level], q["shift"][level], q["out_offset"], q["act_min"], q["act_max"])
            return [np.broadcast_to(y, shape_of(graph, node.outputs[0])).copy()]
        if node.op_type in ("Add", "Sub"):
            xa = requantize(a << q["left_shift"], q["a_multiplier"], q["a_shift"]).astype(np.int64)
            xb = requantize(b << q["left_shift"], q["b_multiplier"], q["b_shift"]).astype(np.int64) * q["b_sign"]
            acc = xa + xb
        else:
            acc = a * b
        y = output_s8(acc, q["out_multiplier"], q["out_shift"], q["out_offset"], q["act_min"], q["act_max"])
        return [np.broadcast_to(y, shape_of(graph, node.outputs[0])).copy()]

    def kernels(self, node, graph):
        out = node.outputs[0]
        shapes = [shape_of(graph, n) for n in node.inputs[:2]]
        view = broadcast_view(shapes, shape_of(graph, out))
        if is_int16(graph, node):
            q = node.attrs["q"]
            args = [Const(q["a_table"], "a") if q["a_table"] is not None else node.inputs[0],
                    Const(q["b_table"], "b") if q["b_table"] is not None else node.inputs[1], out]
            if node.op_type in ("Add", "Sub"):
                keys = ("left_shift", "a_multiplier", "a_shift", "b_multiplier", "b_shift", "b_sign",
                        "out_multiplier", "out_shift", "act_min", "act_max")
                name = "nn_add_s16"
            else:
                keys = ("out_multiplier", "out_shift", "act_min", "act_max")
                name = "nn_mul_s16"
            params = {"view": view, **{k: q[k] for k in keys}}
            return [KernelCall(name, (f"src/eltwise/{name}.c",), f"{name}_params", params, args)]
        if is_int8(graph, node):
            q = node.attrs["q"]
            args = [Const(q["a_table"], "a") if q["a_table"] is not None else node.inputs[0],
                    Const(q["b_table"], "b") if q["b_table"] is not None else node.inputs[1], out]
            if "m0" in q:
                keys = ("a_offset", "out_offset", "act_min", "act_max")
                params = {"view": view, **{k: q[k] for k in keys}}
                return [KernelCall("nn_div_s8", ("src/eltwise/nn_div_s8.c",), "nn_div_s8_params", params,
                                   [args[0], node.inputs[1], Const(q["m0"], "m0"), Const(q["shift"], "shift"), out])]
            if node.op_type in ("Add", "Sub"):
                keys = ("left_shift", "a_offset", "a_multiplier", "a_shift", "b_offset", "b_multiplier", "b_shift",
                        "b_sign", "out_multiplier", "out_shift", "out_offset", "act_min", "act_max")
                name = "nn_add_s8"
            else:
                keys = ("a_offset", "b_offset", "out_multiplier", "out_shift", "out_offset", "act_min", "act_max")
                name = "nn_mul_s8"
            params = {"view": view, **{k: q[k] for k in keys}}
            return [KernelCall(name, (f"src/eltwise/{name}.c",), f"{name}_params", params, args)]
        args = []
        for name in node.inputs[:2]:
            value = graph.const(name)
            args.append(name if value is None else Const(np.asarray(value, np.float32), "k"))
        lo, hi = activation(node)
        params = {"view": view, "act_min": float(lo), "act_max": float(hi)}
        name = FLOAT_KERNELS[node.op_type]
        return [KernelCall(name, (f"src/eltwise/{name}.c",), "nn_binary_f32_params", params, [*args, out])]
