"""Reshape, Flatten, Squeeze, Unsqueeze and Identity: the same bytes under a new shape.

The planner makes the output an alias of the input, so these cost no memory and no code;
when it cannot (the input is a model input and the output a model output, say) the copy
kernel moves the bytes.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import KernelCall, Op, normalize_axis, register, require_const, shape_of


def _axes(node, graph, rank: int) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before opset 13, an optional input after."""
    if "axes" in node.attrs:
        axes = node.attrs["axes"]
    elif len(node.inputs) > 1 and node.inputs[1]:
        axes = require_const(graph, node, 1, "axes").tolist()
    else:
        return None
    return sorted(normalize_axis(int(a), rank, node) for a in axes)


@register("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
class Reshape(Op):
    int_inputs = True  # the bytes of any element type
    precisions = ("int8", "int16")

    def output_dtypes(self, node, graph):
        return [graph.tensors[node.inputs[0]].dtype]

    def infer_shapes(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        if node.op_type == "Identity":
            return [shape]
        if node.op_type == "Flatten":
            axis = int(node.attrs.get("axis", 1))  # in [-r, r]; a negative one counts from the back
            if not -len(shape) <= axis <= len(shape):
                raise Unsupported(f"axis {axis} out of range for rank {len(shape)}")
            axis += len(shape) if axis < 0 else 0
            return [(int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))]
        if node.op_type == "Squeeze":
            axes = _axes(node, graph, len(shape))
            if axes is None:
                return [tuple(d for d in shape if d != 1)]
            if any(shape[a] != 1 for a in axes):
                raise Unsupported(f"cannot squeeze axes {axes} of shape {shape}")
            return [tuple(d for i, d in enumerate(shape) if i not in axes)]
        if node.op_type == "Unsqueeze":
            return [self._unsqueeze(node, graph, shape)]
        value = require_const(graph, node, 1, "shape")
        if value.ndim != 1 or value.dtype.kind not in "iu":
            raise Unsupported(f"the shape must be a 1-D integer tensor; it is {value.dtype} of shape {value.shape}")
        target = [int(d) for d in value.tolist()]
        allowzero = int(node.attrs.get("allowzero", 0))
        if any(d < -1 for d in target):
            raise Unsupported(f"negative dimension in the target shape {target}")
        if not allowzero and any(d == 0 and i >= len(shape) for i, d in enumerate(target)):
            raise Unsupported(f"a 0 in the target shape {target} copies a dimension the input {shape} lacks")
        out = [shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
        if out.count(-1) > 1:
            raise Unsupported("more than one -1 in the target shape")
        total = math.prod(shape)
        if -1 in out:
            known = math.prod(d for d in out if d != -1)
            if known == 0 or total % known:
                raise Unsupported(f"cannot reshape {shape} to {target}")
            out[out.index(-1)] = total // known
        if math.prod(out) != total:
            raise Unsupported(f"cannot reshape {shape} to {target}")
        return [tuple(out)]

    def _unsqueeze(self, node, graph, shape):
        if "axes" in node.attrs:
            raw = node.attrs["axes"]
        else:
            raw = require_const(graph, node, 1, "axes").tolist()
        rank = len(shape) + len(raw)
        axes = sorted(normalize_axis(int(a), rank, node) for a in raw)
        if len(set(axes)) != len(axes):
            raise Unsupported(f"repeated axes {raw}")
        dims = iter(shape)
        return tuple(1 if i in axes else next(dims) for i in range(rank))

    def check(self, node, graph):
        self.infer_shapes(node, graph)

    def reference(self, node, graph, inputs):
        return [inputs[0].reshape(shape_of(graph, node.outputs[0]))]

    def params_count(self, node, graph):
        return 0

    keeps_qparams = True

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        return self.reference(node, graph, inputs)

    def alias_input(self, node, graph):
        return 0

    def kernels(self, node, graph):
        nbytes = graph.tensors[node.outputs[0]].nbytes
        return [
            KernelCall("nn_copy", ("src/shape/nn_copy.c",), "nn_copy_params", {"bytes": nbytes},
                       [node.inputs[0], node.outputs[0]], is_copy=True)
        ]
