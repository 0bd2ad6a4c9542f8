"""Sum, Mean, Max, Min: one to N inputs with multidirectional broadcasting; any input may be a
constant (a node of constants only is folded at import).

Float: the binary kernels chained over the inputs in order (nn_add_f32 for Sum and Mean,
then nn_div_f32 by N for Mean; nn_max_f32, nn_min_f32): the first call broadcasts inputs 0
and 1 to the output's shape, each later call reads the output and the next input and writes
the output in place. The NumPy reference takes the same steps, so the float C is exact. One
input is a copy (nn_clamp_f32, which also applies a fused Relu/Clip).

int8 (rules numbered as the code refers to them):
1. Max, Min: every input is rescaled to the output's scale with its own multiplier, then
   compared (the rescale is monotonic, so the maximum of the rescaled values is the rescaled
   maximum): nn_max_s8 / nn_min_s8 on inputs 0 and 1, then on the output (multiplier 1, which
   passes it unchanged) and each next input. One input is the same kernel on (x, x): a rescale.
2. Sum, Mean of two inputs: Add's rule (eltwise.py): both to a common scale with 2^20
   headroom, added, rescaled once (nn_add_s8); Mean folds 1/2 into the output multiplier.
3. Sum, Mean of three or more: the same rule over N terms, accumulated in an int32 scratch
   buffer of the output's size (nn_sum_acc_s8 per input, then nn_sum_out_s8 rounds once);
   the headroom shrinks below 2^20 only when N terms could otherwise overflow int32.
A constant input is quantized per tensor from its own range.
int16 (zero points 0): the same rules without offsets (nn_max_s16 / nn_min_s16, nn_add_s16,
nn_sum_acc_s16 and nn_sum_out_s16), with 2^15 headroom (less when N terms could overflow int32).

Max and Min also take int32 tensors (ONNX int64 and int32: clamping token ids), in both
modes: nn_max_s32 / nn_min_s32 chained the same way, exact. Sum and Mean of integers are
refused (ONNX leaves their overflow undefined).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8, output_s16, requantize
from codegen.ops.base import (NO_CLAMP, Const, KernelCall, Op, Scratch, activation, apply_activation, is_int8,
                              is_int16, qparams, register, shape_of)
from codegen.ops.eltwise import LEFT_SHIFT, LEFT_SHIFT_S16, _const_qparams, broadcast_shape, broadcast_view
from codegen.qparams import multipliers

FLOAT_KERNELS = {"Sum": "nn_add_f32", "Mean": "nn_add_f32", "Max": "nn_max_f32", "Min": "nn_min_f32"}
UNIT = (1 << 30, 1)  # the Q31 multiplier 1.0: nn_requantize(x, 2^30, 1) == x


def sum_left_shift(count: int, bits: int = 8) -> int:
    """Rule 3's headroom: the largest shift <= 20 at which `count` terms, each at most
    255 * 2^(shift - 1) + 1 (an offset input times a multiplier <= 1/2, rounded), fit int32;
    int16: shift <= 15 and terms of at most 32768 * 2^(shift - 1) + 1."""
    shift, peak = (LEFT_SHIFT, 255) if bits == 8 else (LEFT_SHIFT_S16, 32768)
    while shift >= 0 and count * (peak * (1 << shift) // 2 + 1) > 2**31 - 1:
        shift -= 1
    if shift < 0:
        raise Unsupported(f"{count} inputs are too many for an int32 sum")
    return shift


def _is_int(node, graph) -> bool:
    """Whether the node works on int32 tensors (every run-time input int32, checked by `check`)."""
    return any(graph.tensors[n].dtype == "int32" for n in node.inputs if graph.const(n) is None)


@register("Sum", "Mean", "Max", "Min")
class Variadic(Op):
    fuses_activation = True
    int_inputs = True
    precisions = ("int8", "int16")

    def infer_shapes(self, node, graph):
        if not node.inputs or not all(node.inputs):
            raise Unsupported("every input must be present (at least one)")
        return [broadcast_shape([shape_of(graph, n) for n in node.inputs])]

    def check(self, node, graph):
        self.infer_shapes(node, graph)
        types = {graph.tensors[n].dtype for n in node.inputs if graph.const(n) is None}
        if types - {"float32", "int32"} or len(types) > 1:
            raise Unsupported(f"run-time inputs of types {sorted(types)}: all float32, or all int32 (Max and Min)")
        consts = [graph.const(n) for n in node.inputs if graph.const(n) is not None]
        if types == {"int32"}:
            if node.op_type not in ("Max", "Min"):
                raise Unsupported(f"{node.op_type} of int32 tensors is not supported (float32 only)")
            for value in consts:
                if value.dtype.kind not in "iu" or value.min(initial=0) < -2**31 or value.max(initial=0) >= 2**31:
                    raise Unsupported("an integer constant operand must fit int32")

    def output_dtypes(self, node, graph):
        return ["int32" if _is_int(node, graph) else "float32"]

    def reference(self, node, graph, inputs):
        if _is_int(node, graph):
            pick = np.minimum if node.op_type == "Min" else np.maximum
            y = np.asarray(inputs[0], np.int64)
            for x in inputs[1:]:
                y = pick(y, np.asarray(x, np.int64))
            return [y.astype(np.int32)]
        xs = [np.asarray(x, np.float32) for x in inputs]
        step = {"Sum": np.add, "Mean": np.add, "Max": np.maximum, "Min": np.minimum}[node.op_type]
        y = xs[0].copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for x in xs[1:]:
                y = step(y, x).astype(np.float32)
            if node.op_type == "Mean" and len(xs) > 1:
                y = (y / np.float32(len(xs))).astype(np.float32)
        return [apply_activation(node, y)]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size * max(len(node.inputs) - 1, 1)

    def inplace_input(self, node, graph):
        """Input 0 or 1 (the first call reads both before it writes), not repeated later."""
        out = shape_of(graph, node.outputs[0])
        for k, name in enumerate(node.inputs[:2]):
            if graph.const(name) is None and shape_of(graph, name) == out and node.inputs.count(name) == 1:
                return k
        return None

    def scratch_bytes(self, node, graph, in_place, features=()):
        if (is_int8(graph, node) or is_int16(graph, node)) and node.op_type in ("Sum", "Mean") and len(node.inputs) > 2:
            return 4 * graph.tensors[node.outputs[0]].size
        return 0

    # ---- int8 ----

    def quantize(self, node, graph):
        if _is_int(node, graph):
            return {"rule": "int32"}
        y = qparams(graph, node.outputs[0])
        scales, offsets, tables = [], [], []
        for name in node.inputs:
            value = graph.const(name)
            if value is None:
                qp, table = qparams(graph, name), None
            else:
                qp = _const_qparams(np.asarray(value, np.float64), y.bits)
                table = qp.quantize(np.asarray(value, np.float64))
            scales.append(qp.scale)
            offsets.append(-qp.zero_point)
            tables.append(table)
        act_min, act_max = y.clamp_range(*activation(node))
        q = {"tables": tables, "offsets": offsets, "out_offset": y.zero_point, "act_min": act_min,
             "act_max": act_max}
        count = len(node.inputs)
        if node.op_type in ("Max", "Min") or count == 1:  # rule 1
            m, s = multipliers([sc / y.scale for sc in scales])
            q.update(rule="rescale", multipliers=[int(v) for v in m], shifts=[int(v) for v in s])
            return q
        twice = 2.0 * max(scales)  # rules 2 and 3
        left_shift = sum_left_shift(count, y.bits)
        divisor = count if node.op_type == "Mean" else 1
        m, s = multipliers([sc / twice for sc in scales] + [twice / ((1 << left_shift) * y.scale * divisor)])
        q.update(rule="sum", left_shift=left_shift, multipliers=[int(v) for v in m[:-1]],
                 shifts=[int(v) for v in s[:-1]], out_multiplier=int(m[-1]), out_shift=int(s[-1]))
        return q

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        if q["rule"] == "int32":
            return self.reference(node, graph, inputs)
        xs = [(t if t is not None else x).astype(np.int64) for t, x in zip(q["tables"], inputs)]
        out_shape = shape_of(graph, node.outputs[0])
        if q["rule"] == "rescale":
            rescaled = [requantize(x + o, m, s).astype(np.int64)
                        for x, o, m, s in zip(xs, q["offsets"], q["multipliers"], q["shifts"])]
            pick = np.minimum if node.op_type == "Min" else np.maximum
            r = np.broadcast_to(rescaled[0], out_shape)
            for x in rescaled[1:]:
                r = pick(r, x)
            y = np.clip(r + q["out_offset"], q["act_min"], q["act_max"]).astype(graph.tensors[node.outputs[0]].dtype)
            return [np.broadcast_to(y, out_shape).copy()]
        acc = np.zeros(out_shape, np.int64)
        for x, o, m, s in zip(xs, q["offsets"], q["multipliers"], q["shifts"]):
            acc = acc + requantize((x + o) << q["left_shift"], m, s).astype(np.int64)
        if is_int16(graph, node):
            return [output_s16(acc, q["out_multiplier"], q["out_shift"], q["act_min"], q["act_max"])]
        y = output_s8(acc, q["out_multiplier"], q["out_shift"], q["out_offset"], q["act_min"], q["act_max"])
        return [y]

    # ---- kernels ----

    def kernels(self, node, graph):
        if is_int8(graph, node):
            return self._kernels_s8(node, graph)
        if is_int16(graph, node):
            return self._kernels_s16(node, graph)
        out = node.outputs[0]
        out_shape = shape_of(graph, out)
        integer = _is_int(node, graph)
        args = []
        for k, name in enumerate(node.inputs):
            value = graph.const(name)
            table = None if value is None else np.asarray(value, np.int32 if integer else np.float32)
            args.append(name if value is None else Const(table, "a" if k == 0 else "b" if k == 1 else "k"))
        if integer:
            return self._kernels_s32(node, graph, args)
        lo, hi = activation(node)
        if len(node.inputs) == 1:
            size = graph.tensors[out].size
            return [KernelCall("nn_clamp_f32", ("src/activation/nn_clamp_f32.c",), "nn_clamp_f32_params",
                               {"size": size, "lo": float(lo), "hi": float(hi)}, [args[0], out])]
        name = FLOAT_KERNELS[node.op_type]
        steps = [(args[0], args[1], [shape_of(graph, n) for n in node.inputs[:2]])]
        steps += [(out, a, [out_shape, shape_of(graph, n)]) for a, n in zip(args[2:], node.inputs[2:])]
        calls = []
        for j, (a, b, shapes) in enumerate(steps):
            last = j == len(steps) - 1 and node.op_type != "Mean"
            clamp = (lo, hi) if last else NO_CLAMP
            params = {"view": broadcast_view(shapes, out_shape), "act_min": float(clamp[0]),
                      "act_max": float(clamp[1])}
            calls.append(KernelCall(name, (f"src/eltwise/{name}.c",), "nn_binary_f32_params", params, [a, b, out]))
        if node.op_type == "Mean":
            divisor = np.array([len(node.inputs)], np.float32)
            params = {"view": broadcast_view([out_shape, (1,)], out_shape), "act_min": float(lo),
                      "act_max": float(hi)}
            calls.append(KernelCall("nn_div_f32", ("src/eltwise/nn_div_f32.c",), "nn_binary_f32_params", params,
                                    [out, Const(divisor, "k"), out]))
        return calls

    def _kernels_s32(self, node, graph, args):
        out = node.outputs[0]
        out_shape = shape_of(graph, out)
        shapes = [shape_of(graph, n) for n in node.inputs]
        name = "nn_min_s32" if node.op_type == "Min" else "nn_max_s32"
        steps = [(args[0], args[1 if len(args) > 1 else 0], shapes[:2] if len(args) > 1 else shapes * 2)]
        steps += [(out, a, [out_shape, s]) for a, s in zip(args[2:], shapes[2:])]
        return [KernelCall(name, (f"src/eltwise/{name}.c",), "nn_binary_s32_params",
                           {"view": broadcast_view(list(step_shapes), out_shape)}, [a, b, out])
                for a, b, step_shapes in steps]

    def _kernels_s8(self, node, graph):
        q = node.attrs["q"]
        out = node.outputs[0]
        out_shape = shape_of(graph, out)
        shapes = [shape_of(graph, n) for n in node.inputs]
        args = [n if t is None else Const(t, "a" if k == 0 else "b" if k == 1 else "k")
                for k, (n, t) in enumerate(zip(node.inputs, q["tables"]))]
        clamp = {"out_offset": q["out_offset"], "act_min": q["act_min"], "act_max": q["act_max"]}
        if q["rule"] == "rescale":
            name = "nn_min_s8" if node.op_type == "Min" else "nn_max_s8"
            ops = list(zip(args, shapes, q["offsets"], q["multipliers"], q["shifts"]))
            if len(ops) == 1:
                ops = ops * 2
            head = [(ops[0], ops[1])]
            unit = (out, out_shape, -q["out_offset"], *UNIT)
            steps = head + [(unit, op) for op in ops[2:]]
            calls = []
            for a, b in steps:
                params = {"view": broadcast_view([a[1], b[1]], out_shape), "a_offset": a[2], "a_multiplier": a[3],
                          "a_shift": a[4], "b_offset": b[2], "b_multiplier": b[3], "b_shift": b[4], **clamp}
                calls.append(KernelCall(name, (f"src/eltwise/{name}.c",), "nn_minmax_s8_params", params,
                                        [a[0], b[0], out]))
            return calls
        if len(node.inputs) == 2:  # rule 2: the Add kernel
            params = {"view": broadcast_view(shapes, out_shape), "left_shift": q["left_shift"],
                      "a_offset": q["offsets"][0], "a_multiplier": q["multipliers"][0], "a_shift": q["shifts"][0],
                      "b_offset": q["offsets"][1], "b_multiplier": q["multipliers"][1], "b_shift": q["shifts"][1],
                      "b_sign": 1, "out_multiplier": q["out_multiplier"], "out_shift": q["out_shift"], **clamp}
            return [KernelCall("nn_add_s8", ("src/eltwise/nn_add_s8.c",), "nn_add_s8_params", params,
                               [args[0], args[1], out])]
        calls = []  # rule 3
        for k, (arg, shape) in enumerate(zip(args, shapes)):
            params = {"view": broadcast_view([shape, out_shape], out_shape), "first": int(k == 0),
                      "left_shift": q["left_shift"], "offset": q["offsets"][k], "multiplier": q["multipliers"][k],
                      "shift": q["shifts"][k]}
            calls.append(KernelCall("nn_sum_acc_s8", ("src/eltwise/nn_sum_acc_s8.c",), "nn_sum_acc_s8_params",
                                    params, [arg, Scratch("int32_t")]))
        params = {"size": graph.tensors[out].size, "out_multiplier": q["out_multiplier"],
                  "out_shift": q["out_shift"], **clamp}
        calls.append(KernelCall("nn_sum_out_s8", ("src/eltwise/nn_sum_out_s8.c",), "nn_sum_out_s8_params", params,
                                [Scratch("int32_t"), out]))
        return calls

    def _kernels_s16(self, node, graph):
        """int16: the calls of _kernels_s8 without zero points."""
        q = node.attrs["q"]
        out = node.outputs[0]
        out_shape = shape_of(graph, out)
        shapes = [shape_of(graph, n) for n in node.inputs]
        args = [n if t is None else Const(t, "a" if k == 0 else "b" if k == 1 else "k")
                for k, (n, t) in enumerate(zip(node.inputs, q["tables"]))]
        clamp = {"act_min": q["act_min"], "act_max": q["act_max"]}
        if q["rule"] == "rescale":
            name = "nn_min_s16" if node.op_type == "Min" else "nn_max_s16"
            ops = list(zip(args, shapes, q["multipliers"], q["shifts"]))
            if len(ops) == 1:
                ops = ops * 2
            steps = [(ops[0], ops[1])] + [((out, out_shape, *UNIT), op) for op in ops[2:]]
            return [KernelCall(name, (f"src/eltwise/{name}.c",), "nn_minmax_s16_params",
                               {"view": broadcast_view([a[1], b[1]], out_shape), "a_multiplier": a[2], "a_shift": a[3],
                                "b_multiplier": b[2], "b_shift": b[3], **clamp}, [a[0], b[0], out])
                    for a, b in steps]
        if len(node.inputs) == 2:  # rule 2: the Add kernel
            params = {"view": broadcast_view(shapes, out_shape), "left_shift": q["left_shift"],
                      "a_multiplier": q["multipliers"][0], "a_shift": q["shifts"][0],
                      "b_multiplier": q["multipliers"][1], "b_shift": q["shifts"][1], "b_sign": 1, "out_multiplier": q["out_multiplier"],
                      "out_shift": q["out_shift"], **clamp}
            return [KernelCall("nn_add_s16", ("src/eltwise/nn_add_s16.c",), "nn_add_s16_params", params,
                               [args[0], args[1], out])]
        calls = [KernelCall("nn_sum_acc_s16", ("src/eltwise/nn_sum_acc_s16.c",), "nn_sum_acc_s16_params",
                            {"view": broadcast_view([shape, out_shape], out_shape), "first": int(k == 0),
                             "left_shift": q["left_shift"], "multiplier": q["multipliers"][k], "shift": q["shifts"][k]},
                            [arg, Scratch("int32_t")])
                 for k, (arg, shape) in enumerate(zip(args, shapes))]
        params = {"size": graph.tensors[out].size, "out_multiplier": q["out_multiplier"],
                  "out_shift": q["out_shift"], **clamp}
        calls.append(KernelCall("nn_sum_out_s16", ("src/eltwise/nn_sum_out_s16.c",), "nn_sum_out_s16_params", params,
                                [Scratch("int32_t"), out]))
        return calls
