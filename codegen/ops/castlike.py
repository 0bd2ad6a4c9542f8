"""CastLike to float32: the input's own bytes, an alias as Reshape's (no memory, no code).

CastLike(x, target) casts x to the element type of `target`. Every run-time float tensor is
float32, so a float32 target leaves x as it is (ONNX's Cast to the same type), in float and
in int8 (the output keeps the input's scale and zero point). A CastLike of a constant is
folded at import (frontend/importer.py, rule 3). Any other target type is refused with its
name.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import KernelCall, Op, register, shape_of


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

    keeps_qparams = True

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        return [inputs[0].copy()]

    def alias_input(self, node, graph):
        return 0

    def kernels(self, node, graph):
        nbytes = graph.tensors[node.outputs[0]].nbytes
        return [KernelCall("nn_copy", ("src/shape/nn_copy.c",), "nn_copy_params", {"bytes": nbytes},
                           [node.inputs[0], node.outputs[0]], is_copy=True)]
