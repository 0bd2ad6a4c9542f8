"""Comparisons, logic and selection: Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not,
And, Or, Xor, Where, ArgMax and ArgMin. Bool tensors are uint8 (0 or 1); indices are int32.

Comparisons broadcast (the nn_broadcast view of eltwise.py) and give bool. float32 operands
compare as IEEE floats (NaN is unordered: only "not equal" holds, which no op here asks);
int32 operands as integers; bool operands through the logic kernel, which also runs Not,
And, Or and Xor: each op is a 4-bit truth table over (a, b), so one kernel serves all.
int8 (float operands quantized): both operands move to a common scale with 2^20 headroom
(Add's rule: requantize((q - zero_point) << 20) with the multipliers scale / (2 max(scales)))
and the results compare as integers, exactly as the NumPy twin does. A constant operand is
quantized per tensor from its own range. Two reals that round to the same level compare equal.
Where selects between X and Y by a bool condition (three-way broadcasting). float32, int32
and bool tensors are moved as bytes; int8 brings X and Y to the output's scale through
256-entry tables (none where the parameters already match; a constant is quantized straight
to the output's parameters).
int16 operands (zero points 0): comparisons shift left by 15 bits instead of 20
(nn_compare_s16); Where rescales X and Y to the output's scale with a multiplier each
(nn_where_s16), a constant quantized straight to the output's parameters.
ArgMax/ArgMin: int32 indices along `axis` (keepdims, select_last_index); on int8 (and int16,
nn_argmax_s16) the quantized values order as the reals do (a tie between reals that share a level is broken by
select_last_index, like any tie).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s16, requantize
from codegen.ops.base import Const, KernelCall, Op, is_int16, normalize_axis, qparams, register, shape_of
from codegen.ops.cast import saturate_s32
from codegen.ops.eltwise import MAX_DIMS, broadcast_shape, broadcast_strides, broadcast_view
from codegen.qparams import from_range, multipliers

LEFT_SHIFT = 20
LEFT_SHIFT_S16 = 15
UNIT = (1 << 30, 1)  # the Q31 multiplier 1.0


def _wide(graph, names) -> bool:
    """Whether the run-time operands among `names` are int16 (the node runs in int16)."""
    return any(graph.const(n) is None and graph.tensors[n].dtype == "int16" for n in names if n)
# bit k of a comparison's mask: the answer when a < b (k = 0), a == b (1), a > b (2); unordered (3) is false
COMPARE_MASKS = {"Less": 0b001, "Equal": 0b010, "LessOrEqual": 0b011, "Greater": 0b100, "GreaterOrEqual": 0b110}
# bit 2a + b of a logic op's mask: its answer for bools a and b (Not reads a twice)
LOGIC_MASKS = {"And": 0b1000, "Or": 0b1110, "Xor": 0b0110, "Not": 0b0001,
               "Equal": 0b1001, "Less": 0b0010, "LessOrEqual": 0b1011, "Greater": 0b0100, "GreaterOrEqual": 0b1101}
_NUMPY = {"Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal, "Greater": np.greater,
          "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}


def _kind(graph, name: str) -> str:
    """'real' (float32, or int8 once quantized), 'int' or 'bool', for a run-time tensor or a constant."""
    value = graph.const(name)
    dtype = str(value.dtype) if value is not None else graph.tensors[name].dtype
    if dtype == "bool" or dtype == "uint8":
        return "bool"
    if dtype in ("float32", "int8", "int16") or np.dtype(dtype).kind == "f":
        return "real"
    return "int"


def _const_table(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "bool":
        return (np.asarray(value) != 0).astype(np.uint8)
    if kind == "int":
        return saturate_s32(value) if np.asarray(value).dtype.kind == "f" else np.asarray(value).astype(np.int32)
    return np.asarray(value, np.float32)


@register("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor")
class Compare(Op):
    int_inputs = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":  # real operands only (int32 and bool ones have one type)
            return _kind(graph, node.inputs[0]) == "real"
        return precision in self.precisions

    def _operands(self, node) -> list[str]:
        return node.inputs[:1] * 2 if node.op_type == "Not" else node.inputs[:2]

    def output_dtypes(self, node, graph):
        return ["uint8"]

    def infer_shapes(self, node, graph):
        return [broadcast_shape([shape_of(graph, n) for n in self._operands(node)])]

    def check(self, node, graph):
        self.infer_shapes(node, graph)
        kinds = {_kind(graph, n) for n in self._operands(node)}
        if len(kinds) > 1:
            raise Unsupported(f"operands of different element types ({', '.join(sorted(kinds))})")
        if node.op_type in ("Not", "And", "Or", "Xor") and kinds != {"bool"}:
            raise Unsupported("the operands must be bool")

    def reference(self, node, graph, inputs):
        if node.op_type == "Not":
            return [np.logical_not(inputs[0]).astype(np.uint8)]
        a, b = (np.asarray(x) for x in inputs[:2])
        with np.errstate(invalid="ignore"):
            return [_NUMPY[node.op_type](a, b).astype(np.uint8)]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def quantize(self, node, graph):
        if _kind(graph, node.inputs[0]) != "real":
            return {}
        bits = 16 if _wide(graph, self._operands(node)) else 8
        operands = []  # (QParams, int8 (int16) table of a constant or None)
        for name in self._operands(node):
            value = graph.const(name)
            if value is None:
                operands.append((qparams(graph, name), None))
            else:
                value = np.asarray(value, np.float64)
                qp = from_range(float(value.min(initial=0.0)), float(value.max(initial=0.0)), bits=bits)
                operands.append((qp, qp.quantize(value)))
        (a, a_table), (b, b_table) = operands
        twice = 2.0 * max(a.scale, b.scale)
        (ma, mb), (sa, sb) = multipliers([a.scale / twice, b.scale / twice])
        return {"a_table": a_table, "b_table": b_table, "a_offset": -a.zero_point, "b_offset": -b.zero_point,
                "a_multiplier": int(ma), "a_shift": int(sa), "b_multiplier": int(mb), "b_shift": int(sb)}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        if not q:
            return self.reference(node, graph, inputs)
        a = (q["a_table"] if q["a_table"] is not None else inputs[0]).astype(np.int64) + q["a_offset"]
        b = (q["b_table"] if q["b_table"] is not None else inputs[1]).astype(np.int64) + q["b_offset"]
        shift = LEFT_SHIFT_S16 if _wide(graph, self._operands(node)) else LEFT_SHIFT
        xa = requantize(a << shift, q["a_multiplier"], q["a_shift"])
        xb = requantize(b << shift, q["b_multiplier"], q["b_shift"])
        y = _NUMPY[node.op_type](xa, xb).astype(np.uint8)
        return [np.broadcast_to(y, shape_of(graph, node.outputs[0])).copy()]

    def kernels(self, node, graph):
        out = node.outputs[0]
        operands = self._operands(node)
        view = broadcast_view([shape_of(graph, n) for n in operands], shape_of(graph, out))
        kind = _kind(graph, node.inputs[0])
        q = node.attrs.get("q") or {}
        if kind == "real" and graph.tensors[out].dtype == "uint8" and q:
            args = [Const(q["a_table"], "a") if q["a_table"] is not None else operands[0],
                    Const(q["b_table"], "b") if q["b_table"] is not None else operands[1], out]
            keys = ("a_offset", "a_multiplier", "a_shift", "b_offset", "b_multiplier", "b_shift")
            wide = _wide(graph, operands)
            params = {"view": view, "mask": COMPARE_MASKS[node.op_type],
                      "left_shift": LEFT_SHIFT_S16 if wide else LEFT_SHIFT, **{k: q[k] for k in keys}}
            name = "nn_compare_s16" if wide else "nn_compare_s8"
            return [KernelCall(name, (f"src/compare/{name}.c",), "nn_compare_s8_params", params, args)]
        args = []
        for name in operands:
            value = graph.const(name)
            args.append(name if value is None else Const(_const_table(value, kind), "k"))
        if kind == "bool":
            params = {"view": view, "mask": LOGIC_MASKS[node.op_type]}
            return [KernelCall("nn_logic_u8", ("src/compare/nn_logic_u8.c",), "nn_compare_params", params,
                               [*args, out])]
        name = "nn_compare_f32" if kind == "real" else "nn_compare_s32"
        params = {"view": view, "mask": COMPARE_MASKS[node.op_type]}
        return [KernelCall(name, (f"src/compare/{name}.c",), "nn_compare_params", params, [*args, out])]


def where_view(shapes: list[tuple[int, ...]], out: tuple[int, ...]) -> dict:
    """The nn_where_view struct: the output shape and the element strides of cond, X and Y."""
    view = {"size": int(np.prod(out, dtype=np.int64)), "shape": [1] * (MAX_DIMS - len(out)) + list(out)}
    for key, shape in zip(("c_strides", "x_strides", "y_strides"), shapes):
        view[key] = broadcast_strides(shape, out)
    return view


@register("Where")
class Where(Op):
    int_inputs = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            return _kind(graph, node.inputs[1]) == "real"
        return precision in self.precisions

    def output_dtypes(self, node, graph):
        kind = _kind(graph, node.inputs[1])
        return [{"real": "float32", "int": "int32", "bool": "uint8"}[kind]]

    def infer_shapes(self, node, graph):
        return [broadcast_shape([shape_of(graph, n) for n in node.inputs[:3]])]

    def check(self, node, graph):
        self.infer_shapes(node, graph)
        if _kind(graph, node.inputs[0]) != "bool":
            raise Unsupported("the condition must be bool")
        if _kind(graph, node.inputs[1]) != _kind(graph, node.inputs[2]):
            raise Unsupported("X and Y have different element types")

    def reference(self, node, graph, inputs):
        c, x, y = (np.asarray(v) for v in inputs[:3])
        dtype = graph.tensors[node.outputs[0]].dtype
        return [np.where(c != 0, x, y).astype(dtype)]

    def quantize(self, node, graph):
        if _kind(graph, node.inputs[1]) != "real":
            return {}
        out = qparams(graph, node.outputs[0])
        if out.bits == 16:
            q = {}
            for key, name in (("x", node.inputs[1]), ("y", node.inputs[2])):
                value = graph.const(name)
                q[key + "_const"] = None if value is None else out.quantize(np.asarray(value, np.float64))
                real = 1.0 if value is not None else qparams(graph, name).scale / out.scale
                m, s = multipliers([real]) if real != 1.0 else ([UNIT[0]], [UNIT[1]])
                q[key + "_multiplier"], q[key + "_shift"] = int(m[0]), int(s[0])
            return q
        levels = np.arange(-128, 128, dtype=np.int8)
        q = {}
        for key, name in (("x", node.inputs[1]), ("y", node.inputs[2])):
            value = graph.const(name)
            if value is not None:
                q[key + "_const"], q[key + "_table"] = out.quantize(np.asarray(value, np.float64)), None
                continue
            qp = qparams(graph, name)
            q[key + "_const"] = None
            q[key + "_table"] = None if qp == out else out.quantize(qp.dequantize(levels))
        return q

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        if not q:
            return self.reference(node, graph, inputs)
        if is_int16(graph, node):
            x, y = (output_s16(np.asarray(q[k + "_const"] if q[k + "_const"] is not None else v, np.int64),
                               q[k + "_multiplier"], q[k + "_shift"]) for k, v in (("x", inputs[1]), ("y", inputs[2])))
            return [np.where(np.asarray(inputs[0]) != 0, x, y).astype(np.int16)]
        values = []
        for key, x in (("x", inputs[1]), ("y", inputs[2])):
            if q[key + "_const"] is not None:
                values.append(q[key + "_const"])
            elif q[key + "_table"] is not None:
                values.append(q[key + "_table"][np.asarray(x, np.int32) + 128])
            else:
                values.append(np.asarray(x))
        return [np.where(np.asarray(inputs[0]) != 0, values[0], values[1]).astype(np.int8)]

    def kernels(self, node, graph):
        out = node.outputs[0]
        view = where_view([shape_of(graph, n) for n in node.inputs[:3]], shape_of(graph, out))
        q = node.attrs.get("q") or {}
        cond = graph.const(node.inputs[0])
        cond = node.inputs[0] if cond is None else Const((np.asarray(cond) != 0).astype(np.uint8), "c")
        if q and is_int16(graph, node):
            args = [cond] + [name if q[key + "_const"] is None else Const(q[key + "_const"], key)
                             for key, name in (("x", node.inputs[1]), ("y", node.inputs[2]))]
            params = {"view": view, **{k: q[k] for k in ("x_multiplier", "x_shift", "y_multiplier", "y_shift")}}
            return [KernelCall("nn_where_s16", ("src/compare/nn_where_s16.c",), "nn_where_s16_params", params,
                               [*args, out])]
        if q:
            args = [cond]
            for key, name in (("x", node.inputs[1]), ("y", node.inputs[2])):
                if q[key + "_const"] is not None:
                    args += [Const(q[key + "_const"], key), None]
                else:
                    args += [name, Const(q[key + "_table"], "t" + key) if q[key + "_table"] is not None else None]
            return [KernelCall("nn_where_s8", ("src/compare/nn_where_s8.c",), "nn_where_params",
                               {"view": view, "elem_bytes": 1}, [*args, out])]
        kind = _kind(graph, node.inputs[1])
        args = [cond]
        for name, role in zip(node.inputs[1:3], ("x", "y")):
            value = graph.const(name)
            args.append(name if value is None else Const(_const_table(value, kind), role))
        elem = np.dtype(graph.tensors[out].dtype).itemsize
        return [KernelCall("nn_where", ("src/compare/nn_where.c",), "nn_where_params",
                           {"view": view, "elem_bytes": elem}, [*args, out])]


@register("ArgMax", "ArgMin")
class ArgMax(Op):
    int_inputs = True
    precisions = ("int8", "int16")

    def output_dtypes(self, node, graph):
        return ["int32"]

    def _axis(self, node, graph) -> int:
        return normalize_axis(int(node.attrs.get("axis", 0)), len(shape_of(graph, node.inputs[0])), node)

    def infer_shapes(self, node, graph):
        shape = list(shape_of(graph, node.inputs[0]))
        axis = self._axis(node, graph)
        if int(node.attrs.get("keepdims", 1)):
            shape[axis] = 1
        else:
            del shape[axis]
        return [tuple(shape)]

    def check(self, node, graph):
        self.infer_shapes(node, graph)
        if _kind(graph, node.inputs[0]) == "bool":
            raise Unsupported("the input must be float or integer, not bool")
        if shape_of(graph, node.inputs[0])[self._axis(node, graph)] == 0:
            raise Unsupported("the axis is empty")

    def reference(self, node, graph, inputs):
        x = np.asarray(inputs[0])
        axis = self._axis(node, graph)
        last = int(node.attrs.get("select_last_index", 0))
        if last:
            x = np.flip(x, axis)
        index = (np.argmin if node.op_type == "ArgMin" else np.argmax)(x, axis=axis)
        if last:
            index = x.shape[axis] - 1 - index
        return [index.astype(np.int32).reshape(shape_of(graph, node.outputs[0]))]

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        return self.reference(node, graph, inputs)

    def kernels(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        axis = self._axis(node, graph)
        params = {"outer": int(np.prod(shape[:axis], dtype=np.int64)), "length": int(shape[axis]),
                  "inner": int(np.prod(shape[axis + 1:], dtype=np.int64)),
                  "select_last": int(node.attrs.get("select_last_index", 0)), "is_min": int(node.op_type == "ArgMin")}
        suffix = {"float32": "f32", "int8": "s8", "int16": "s16", "int32": "s32"}[graph.tensors[node.inputs[0]].dtype]
        name = f"nn_argmax_{suffix}"
        return [KernelCall(name, (f"src/compare/{name}.c",), "nn_argmax_params", params,
                           [node.inputs[0], node.outputs[0]])]
