"""Softmax and LogSoftmax. Before opset 13 the input is flattened to 2-D at `axis` (default 1)
and each row normalized; from opset 13 on, values are normalized along `axis` (default -1).

int8 Softmax (output scale 1/256, zero point -128, as TFLite): a 256-entry table of exp(-s * d)
in fixed point for d = max - x, an integer sum, and one rounded division per element.

int16 Softmax (output scale 1/32768, zero point 0): exp(-s * d) * 2^15 for the 65536 values
of d = max - x through a 513-entry interpolated table (lut16.py), an integer sum, one rounded
division per element.

int16 LogSoftmax (output scale 1/2048, zero point 0: [-16, 0]): Softmax's interpolated exp
table and sum, its log2 in Q16, and per element -(d s_in + ln sum) in output steps (Q16, int64).

int8 LogSoftmax (output scale 1/16, zero point 127, as TFLite: [-15.9, 0]): the same exp table
and integer sum, log2 of the sum in Q16 (fixedpoint.log2_q16, bit by bit), turned into output
steps with one constant multiply, plus a 256-entry table of s * d in output steps (Q16).
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import log2_q16
from codegen.ops import lut16
from codegen.ops.base import Const, KernelCall, Op, is_int8, is_int16, normalize_axis, register, shape_of
from codegen.qparams import QParams

OUTPUT_QPARAMS = QParams(1.0 / 256.0, -128)
OUTPUT_QPARAMS_S16 = QParams(1.0 / 32768.0, 0, 16)
EXP_BITS_S16 = 15  # e <= 2^15: 32768 * e + sum / 2 < 2^31 for an axis of at most 2^15 values
MAX_AXIS_S16 = 1 << 15


@register("Softmax")
class Softmax(Op):
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            return "int16" in self.precisions and self.view(node, graph)[1] <= MAX_AXIS_S16
        return precision in self.precisions
    def view(self, node, graph) -> tuple[int, int, int]:
        shape = shape_of(graph, node.inputs[0])
        legacy = graph.opset < 13
        axis = normalize_axis(int(node.attrs.get("axis", 1 if legacy else -1)), len(shape), node)
        outer = math.prod(shape[:axis])
        if legacy:
            return outer, math.prod(shape[axis:]), 1
        return outer, shape[axis], math.prod(shape[axis + 1:])

    def check(self, node, graph):
        self.view(node, graph)

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        outer, size, inner = self.view(node, graph)
        x = np.asarray(inputs[0], np.float32).reshape(outer, size, inner)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return [(e / e.sum(axis=1, keepdims=True, dtype=np.float32)).astype(np.float32).reshape(inputs[0].shape)]

    def inplace_input(self, node, graph):
        return 0  # both kernels read each element before writing its place

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def params_count(self, node, graph):
        return 0

    def output_qparams(self, node, graph, choose):
        return [OUTPUT_QPARAMS_S16 if node.attrs.get("precision") == "int16" else OUTPUT_QPARAMS]

    def quantize(self, node, graph):
        _, size, _ = self.view(node, graph)
        if is_int16(graph, node):
            if size > MAX_AXIS_S16:
                raise Unsupported(f"int16 softmax over {size} values is not supported (at most {MAX_AXIS_S16})")
            scale = np.float64(graph.tensors[node.inputs[0]].quant.scale)
            # the table's input level l stands for d = l + 32768
            exp = lambda levels: np.exp(-scale * (levels + 32768)) * 2.0**EXP_BITS_S16  # noqa: E731
            return {"exp_table16": lut16.entries(exp, 1 << EXP_BITS_S16)}
        bits = min(21, 29 - math.ceil(math.log2(max(size, 1))))
        if bits < 8:
            raise Unsupported(f"int8 softmax over {size} values is not supported")
        scale = graph.tensors[node.inputs[0]].quant.scale
        table = np.floor(np.exp(-scale * np.arange(256, dtype=np.float64)) * 2.0**bits + 0.5).astype(np.int32)
        return {"exp_table": table}

    def reference_s8(self, node, graph, inputs):
        outer, size, inner = self.view(node, graph)
        x = inputs[0].astype(np.int64).reshape(outer, size, inner)
        if is_int16(graph, node):
            t = node.attrs["q"]["exp_table16"].astype(np.int64)
            d = x.max(axis=1, keepdims=True) - x
            e = t[d >> 7] + (((t[(d >> 7) + 1] - t[d >> 7]) * (d & 127) + 64) >> 7)
            total = e.sum(axis=1, keepdims=True)
            y = np.minimum((32768 * e + total // 2) // total, 32767)
            return [y.astype(np.int16).reshape(inputs[0].shape)]
        e = node.attrs["q"]["exp_table"].astype(np.int64)[x.max(axis=1, keepdims=True) - x]
        total = e.sum(axis=1, keepdims=True)
        y = np.minimum((256 * e + total // 2) // total - 128, 127)
        return [y.astype(np.int8).reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        outer, size, inner = self.view(node, graph)
        params = {"outer": outer, "axis_size": size, "inner": inner}
        if is_int16(graph, node):
            return [KernelCall("nn_softmax_s16", ("src/softmax/nn_softmax_s16.c",), "nn_softmax_params", params,
                               [node.inputs[0], Const(node.attrs["q"]["exp_table16"], "exp"), node.outputs[0]])]
        if is_int8(graph, node):
            return [KernelCall("nn_softmax_s8", ("src/softmax/nn_softmax_s8.c",), "nn_softmax_params", params,
                               [node.inputs[0], Const(node.attrs["q"]["exp_table"], "exp"), node.outputs[0]])]
        return [KernelCall("nn_softmax_f32", ("src/softmax/nn_softmax_f32.c",), "nn_softmax_params", params,
                           [node.inputs[0], node.outputs[0]])]


LOG_OUTPUT_QPARAMS = QParams(1.0 / 16.0, 127)
LN2_STEPS_Q16 = 726817  # round(16 ln 2 2^16): one unit of log2 in output steps (scale 1/16), Q16
DIFF_CAP = 1 << 24  # 256 output steps in Q16: beyond it every output saturates at -128


LOG_OUTPUT_QPARAMS_S16 = QParams(1.0 / 2048.0, 0, 16)
LN2_STEPS_Q16_S16 = round(2048 * math.log(2) * 2**16)  # ln 2 in int16 output steps (scale 1/2048), Q16


@register("LogSoftmax")
class LogSoftmax(Softmax):
    def reference(self, node, graph, inputs):
        outer, size, inner = self.view(node, graph)
        x = np.asarray(inputs[0], np.float32).reshape(outer, size, inner)
        shifted = x - x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True, dtype=np.float32))
        return [(shifted - lse).astype(np.float32).reshape(inputs[0].shape)]

    def output_qparams(self, node, graph, choose):
        return [LOG_OUTPUT_QPARAMS_S16 if node.attrs.get("precision") == "int16" else LOG_OUTPUT_QPARAMS]

    def quantize(self, node, graph):
        q = super().quantize(node, graph)
        if is_int16(graph, node):
            steps = round(float(graph.tensors[node.inputs[0]].quant.scale) / LOG_OUTPUT_QPARAMS_S16.scale * 2**16)
            if steps >= 2**31:
                raise Unsupported("int16 LogSoftmax of an input scale of 16 or more is not supported")
            return {**q, "input_steps": steps}
        _, size, _ = self.view(node, graph)
        bits = min(21, 29 - math.ceil(math.log2(max(size, 1))))
        scale = float(graph.tensors[node.inputs[0]].quant.scale)
        steps = np.floor(scale / LOG_OUTPUT_QPARAMS.scale * np.arange(256, dtype=np.float64) * 2.0**16 + 0.5)
        return {**q, "exp_bits": bits, "diff_table": np.minimum(steps, DIFF_CAP).astype(np.int32)}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        outer, size, inner = self.view(node, graph)
        x = inputs[0].astype(np.int64).reshape(outer, size, inner)
        d = x.max(axis=1, keepdims=True) - x
        if is_int16(graph, node):
            t = q["exp_table16"].astype(np.int64)
            total = (t[d >> 7] + (((t[(d >> 7) + 1] - t[d >> 7]) * (d & 127) + 64) >> 7)).sum(axis=1, keepdims=True)
            lse = ((log2_q16(total).astype(np.int64) - (15 << 16)) * LN2_STEPS_Q16_S16 + (1 << 15)) >> 16
            y = np.maximum(-((d * q["input_steps"] + lse + (1 << 15)) >> 16), -32768)
            return [y.astype(np.int16).reshape(inputs[0].shape)]
        total = q["exp_table"].astype(np.int64)[d].sum(axis=1, keepdims=True)
        lse = ((log2_q16(total).astype(np.int64) - (q["exp_bits"] << 16)) * LN2_STEPS_Q16 + (1 << 15)) >> 16
        y = np.maximum(127 - ((q["diff_table"].astype(np.int64)[d] + lse + (1 << 15)) >> 16), -128)
        return [y.astype(np.int8).reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        outer, size, inner = self.view(node, graph)
        params = {"outer": outer, "axis_size": size, "inner": inner}
        if is_int16(graph, node):
            q = node.attrs["q"]
            return [KernelCall("nn_logsoftmax_s16", ("src/softmax/nn_logsoftmax_s16.c",), "nn_logsoftmax_s16_params",
                               {**params, "input_steps": q["input_steps"], "ln2_steps": LN2_STEPS_Q16_S16},
                               [node.inputs[0], Const(q["exp_table16"], "exp"), node.outputs[0]])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            return [KernelCall("nn_logsoftmax_s8", ("src/softmax/nn_logsoftmax_s8.c",), "nn_logsoftmax_s8_params",
                               {**params, "exp_bits": q["exp_bits"]},
                               [node.inputs[0], Const(q["exp_table"], "exp"), Const(q["diff_table"], "diff"),
                                node.outputs[0]])]
        return [KernelCall("nn_logsoftmax_f32", ("src/softmax/nn_logsoftmax_f32.c",), "nn_softmax_params", params,
                           [node.inputs[0], node.outputs[0]])]
