"""CastLike to float32: the input's own bytes, an alias as Reshape's (no memory, no code).

CastLike(x, target) casts x to the element type of `target`. Every run-time float tensor is
float32, so a float32 target leaves x as it is (ONNX's Cast to the same type), in float and
in int8 (the output keeps the input's scale and zero point). A constant input (the
expanded PRelu function casts its zero like x) is copied from a table: float32, or int8 at
the output's calibrated parameters. Any other target type is refused with its name.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import Const, KernelCall, Op, is_int8, qparams, register, shape_of


@register("CastLike")
class CastLike(Op):
    def check(self, node, graph):
        if len(node.inputs) < 2 or not node.inputs[1]:
            raise Unsupported("missing target_type input")
        target = graph.tensors[node.inputs[1]]
        dtype = str(target.data.dtype) if target.is_const else target.dtype
        if dtype != "float32":
            raise Unsupported(f"a cast to {dtype} is not supported (float32 targets only)")
        if graph.tensors[node.inputs[0]].dtype != "float32":
            raise Unsupported(f"a cast from {graph.tensors[node.inputs[0]].dtype} is not supported")

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        return [np.asarray(inputs[0], np.float32).copy()]

    def params_count(self, node, graph):
        return 0

    def output_qparams(self, node, graph, choose):
        if graph.const(node.inputs[0]) is not None:
            return [choose(node.outputs[0])]
        return [graph.tensors[node.inputs[0]].quant]

    def quantize(self, node, graph):
        value = graph.const(node.inputs[0])
        if value is None:
            return {}
        return {"table": qparams(graph, node.outputs[0]).quantize(np.asarray(value, np.float64))}

    def reference_s8(self, node, graph, inputs):
        table = node.attrs["q"].get("table")
        return [(inputs[0] if table is None else table).copy()]

    def alias_input(self, node, graph):
        return None if graph.const(node.inputs[0]) is not None else 0

    def kernels(self, node, graph):
        nbytes = graph.tensors[node.outputs[0]].nbytes
        value = graph.const(node.inputs[0])
        if value is None:
            source = node.inputs[0]
        elif is_int8(graph, node):
            source = Const(node.attrs["q"]["table"], "k")
        else:
            source = Const(np.asarray(value, np.float32), "k")
        return [KernelCall("nn_copy", ("src/shape/nn_copy.c",), "nn_copy_params", {"bytes": nbytes},
                           [source, node.outputs[0]], is_copy=value is None)]
