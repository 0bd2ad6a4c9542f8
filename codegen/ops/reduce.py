"""ReduceMean, ReduceMax, ReduceSum over any axes (the dynamo exporter's global pooling).

Axes come from the attribute (ReduceSum before opset 13, the others before 18) or the
optional constant input; keepdims and noop_with_empty_axes follow the spec. The kernels
(nn_reduce_sum_f32, nn_reduce_mean_f32, nn_reduce_max_f32, one per op so a model links only
what it uses) walk each output's box of reduced elements through strides, so any set of axes
works without moving data. `coalesce` drops size-1 axes and merges neighbouring axes of the
same kind first: global average pooling is one contiguous run per channel. int8 rescales the
sum or the max to the output's own scale (nn_reduce_s8).
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8
from codegen.ops.base import KernelCall, Op, is_int8, normalize_axis, qparams, register, require_const, shape_of
from codegen.qparams import multipliers

MAX_DIMS = 6
CODES = {"ReduceMean": 0, "ReduceMax": 1, "ReduceSum": 2}


def _pad(values: list[int], fill: int) -> list[int]:
    return [fill] * (MAX_DIMS - len(values)) + list(values)


def coalesce(shape, axes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(kept, reduced) dimensions of a dense `shape` as (size, stride in elements) lists, outer
    first: size-1 dimensions dropped, neighbours of the same kind merged (their elements are
    consecutive), so a reduction over the last axes has one contiguous reduced run."""
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    dims: list[list[int]] = []  # [size, stride, reduced]
    for i, d in enumerate(shape):
        if d == 1:
            continue
        red = int(i in axes)
        if dims and dims[-1][2] == red and dims[-1][1] == d * strides[i]:
            dims[-1][0] *= d
            dims[-1][1] = strides[i]
        else:
            dims.append([d, strides[i], red])
    kept = [(d, s) for d, s, r in dims if not r]
    reduced = [(d, s) for d, s, r in dims if r]
    return kept, reduced


@register("ReduceMean", "ReduceMax", "ReduceSum")
class Reduce(Op):
    def axes(self, node, graph) -> list[int] | None:
        """Sorted reduced axes; None for the identity (empty axes with noop_with_empty_axes)."""
        rank = len(shape_of(graph, node.inputs[0]))
        if "axes" in node.attrs:
            raw = list(node.attrs["axes"])
        elif len(node.inputs) > 1 and node.inputs[1]:
            raw = require_const(graph, node, 1, "axes").reshape(-1).tolist()
        else:
            raw = []
        if not raw:
            return None if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        axes = sorted({normalize_axis(int(a), rank, node) for a in raw})
        if len(axes) != len(raw):
            raise Unsupported(f"repeated axes {raw}")
        return axes

    def check(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        if math.prod(shape) == 0:
            raise Unsupported("reducing an empty tensor")
        kept, reduced = coalesce(shape, self.axes(node, graph) or [])
        if len(kept) > MAX_DIMS or len(reduced) > MAX_DIMS:
            raise Unsupported(f"rank {len(shape)} is above {MAX_DIMS}")

    def infer_shapes(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        axes = self.axes(node, graph)
        if axes is None:
            return [shape]
        if node.attrs.get("keepdims", 1):
            return [tuple(1 if i in axes else d for i, d in enumerate(shape))]
        return [tuple(d for i, d in enumerate(shape) if i not in axes)]

    def reference(self, node, graph, inputs):
        axes = self.axes(node, graph)
        x = np.asarray(inputs[0], np.float32)
        if axes is None:
            return [x]
        fn = {"ReduceMean": np.mean, "ReduceMax": np.max, "ReduceSum": np.sum}[node.op_type]
        y = fn(x, axis=tuple(axes), keepdims=True)
        return [np.asarray(y, np.float32).reshape(shape_of(graph, node.outputs[0]))]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def params_count(self, node, graph):
        return 0

    def view(self, node, graph) -> dict:
        """The nn_reduce_params geometry (see nn_reduce.h)."""
        shape = shape_of(graph, node.inputs[0])
        kept, reduced = coalesce(shape, self.axes(node, graph) or [])
        return {"outer_shape": _pad([d for d, _ in kept], 1), "outer_strides": _pad([s for _, s in kept], 0),
                "inner_shape": _pad([d for d, _ in reduced], 1), "inner_strides": _pad([s for _, s in reduced], 0),
                "out_size": math.prod(d for d, _ in kept), "count": math.prod(d for d, _ in reduced)}

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        count = self.view(node, graph)["count"]
        if count * 256 >= 2**31:
            raise Unsupported(f"int8 sum of {count} elements could overflow int32")
        real = x.scale / y.scale / (count if node.op_type == "ReduceMean" else 1)
        (m0,), (shift,) = multipliers([real])
        return {"input_offset": -x.zero_point, "multiplier": int(m0), "shift": int(shift),
                "output_offset": y.zero_point}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        axes = self.axes(node, graph)
        x = inputs[0].astype(np.int64) + q["input_offset"]
        acc = x.max(axis=tuple(axes or ()), keepdims=True) if node.op_type == "ReduceMax" else \
            x.sum(axis=tuple(axes or ()), keepdims=True)
        y = output_s8(acc, q["multiplier"], q["shift"], q["output_offset"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    def kernels(self, node, graph):
        view = self.view(node, graph)
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {"r": view, "op": CODES[node.op_type],
                      **{k: q[k] for k in ("input_offset", "multiplier", "shift", "output_offset")}}
            return [KernelCall("nn_reduce_s8", ("src/reduce/nn_reduce_s8.c",), "nn_reduce_s8_params", params,
                               [node.inputs[0], node.outputs[0]])]
        name = {"ReduceMean": "nn_reduce_mean_f32", "ReduceMax": "nn_reduce_max_f32",
                "ReduceSum": "nn_reduce_sum_f32"}[node.op_type]
        sources = (f"src/reduce/{name}.c",)
        if node.op_type == "ReduceMean":  # the mean divides the sum
            sources += ("src/reduce/nn_reduce_sum_f32.c",)
        return [KernelCall(name, sources, "nn_reduce_params", view, [node.inputs[0], node.outputs[0]])]
