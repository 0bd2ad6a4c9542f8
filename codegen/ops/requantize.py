"""Requantize: one quantized tensor in another precision (int8 <-> int16), where layers of
different precisions meet. The quantize pass inserts it (passes/quantize.py); no ONNX model
carries it.

real = s_in * (x - zp_in) = s_out * (y - zp_out), so y = round((x - zp_in) * s_in / s_out) + zp_out,
the multiplier s_in / s_out as (m0, shift) (codegen/fixedpoint.py), clamped to the output type.
In float it is the identity.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8, output_s16
from codegen.ops.base import KernelCall, Op, qparams, register, shape_of
from codegen.qparams import multipliers

KERNELS = {("int8", "int16"): "nn_requantize_s8_s16", ("int16", "int8"): "nn_requantize_s16_s8"}


@register("Requantize")
class Requantize(Op):
    internal = True
    precisions = ("int8", "int16")

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        return [np.asarray(inputs[0], np.float32)]

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        src, dst = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
        if (src, dst) not in KERNELS:
            raise Unsupported(f"no requantization from {src} to {dst}")
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        m0, shift = multipliers(np.float64(x.scale) / np.float64(y.scale))
        return {"input_offset": -x.zero_point, "output_offset": y.zero_point,
                "multiplier": int(m0), "shift": int(shift)}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        acc = np.asarray(inputs[0], np.int64) + q["input_offset"]
        if graph.tensors[node.outputs[0]].dtype == "int16":
            return [output_s16(acc, q["multiplier"], q["shift"])]
        return [output_s8(acc, q["multiplier"], q["shift"], q["output_offset"])]

    def kernels(self, node, graph):
        src, dst = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
        name = KERNELS[(src, dst)]
        q = node.attrs["q"]
        params = {"size": graph.tensors[node.inputs[0]].size, **q}
        return [KernelCall(name, (f"src/quantize/{name}.c",), "nn_requantize_params", params,
                           [node.inputs[0], node.outputs[0]])]
