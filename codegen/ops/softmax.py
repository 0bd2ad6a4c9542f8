"""Softmax. Before opset 13 the input is flattened to 2-D at `axis` (default 1) and each row
normalized; from opset 13 on, values are normalized along `axis` (default -1).

int8 (output scale 1/256, zero point -128, as TFLite): a 256-entry table of exp(-s * d)
in fixed point for d = max - x, an integer sum, and one rounded division per element.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import Const, KernelCall, Op, is_int8, normalize_axis, register, shape_of
from codegen.qparams import QParams

OUTPUT_QPARAMS = QParams(1.0 / 256.0, -128)


@register("Softmax")
class Softmax(Op):
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
        return [OUTPUT_QPARAMS]

    def quantize(self, node, graph):
        _, size, _ = self.view(node, graph)
        bits = min(21, 29 - math.ceil(math.log2(max(size, 1))))
        if bits < 8:
            raise Unsupported(f"int8 softmax over {size} values is not supported")
        scale = graph.tensors[node.inputs[0]].quant.scale
        table = np.floor(np.exp(-scale * np.arange(256, dtype=np.float64)) * 2.0**bits + 0.5).astype(np.int32)
        return {"exp_table": table}

    def reference_s8(self, node, graph, inputs):
        outer, size, inner = self.view(node, graph)
        x = inputs[0].astype(np.int64).reshape(outer, size, inner)
        e = node.attrs["q"]["exp_table"].astype(np.int64)[x.max(axis=1, keepdims=True) - x]
        total = e.sum(axis=1, keepdims=True)
        y = np.minimum((256 * e + total // 2) // total - 128, 127)
        return [y.astype(np.int8).reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        outer, size, inner = self.view(node, graph)
        params = {"outer": outer, "axis_size": size, "inner": inner}
        if is_int8(graph, node):
            return [KernelCall("nn_softmax_s8", ("src/softmax/nn_softmax_s8.c",), "nn_softmax_params", params,
                               [node.inputs[0], Const(node.attrs["q"]["exp_table"], "exp"), node.outputs[0]])]
        return [KernelCall("nn_softmax_f32", ("src/softmax/nn_softmax_f32.c",), "nn_softmax_params", params,
                           [node.inputs[0], node.outputs[0]])]
