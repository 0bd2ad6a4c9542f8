"""Slice, Split, Expand, Tile, DepthToSpace, SpaceToDepth and Gather: indexing that never
changes a value.

1. Slice, Split, Expand, Tile, DepthToSpace and SpaceToDepth are each a strided view of their
   input (`View`: an element offset, an output shape and an input stride per output axis,
   negative for a negative step, 0 for a broadcast or repeated axis), copied out dense by one
   byte-counting kernel (nn_strided_copy) that float32, int8 and int32 tensors share. A Tile
   views its output as (repeat, dim) pairs, which is why the kernel takes 2 * NN_MAX_DIMS axes.
2. Gather copies rows (nn_gather): data viewed as [outer, rows, inner], one row per index.
   Constant indices are checked at compile time (an index outside [-n, n) is refused, naming
   it) and emitted as an int32 table; run-time indices (token ids) are clamped by the kernel to
   the nearest row: below -n reads row 0, n or above reads row n - 1, so it never reads
   outside the table. The NumPy reference clamps the same way.
3. int8 and int16: every one of them keeps its input's scale and zero point (they only move
   bytes); a Gather from a constant table (an embedding) quantizes the table per tensor (int16:
   symmetric, for a node whose precision is int16) and its output carries the table's parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import (Const, KernelCall, Op, is_int8, is_int16, normalize_axis, register, require_const,
                              shape_of)
from codegen.qparams import from_range

MAX_DIMS = 6
VIEW_DIMS = 2 * MAX_DIMS


@dataclass
class View:
    """Output element (i_0..i_k) = input[offset + sum_d i_d * strides[d]] (in elements)."""

    offset: int
    shape: list[int]
    strides: list[int]

    def coalesced(self) -> "View":
        """The same view with size-1 axes dropped and neighbours that walk as one merged."""
        dims = [(n, s) for n, s in zip(self.shape, self.strides) if n != 1]
        merged: list[list[int]] = []
        for n, s in dims:
            if merged and merged[-1][1] == s * n:
                merged[-1] = [merged[-1][0] * n, s]
            else:
                merged.append([n, s])
        return View(self.offset, [n for n, _ in merged], [s for _, s in merged])

    def take(self, x: np.ndarray) -> np.ndarray:
        """The view applied in NumPy (used to test that a view describes its op)."""
        flat = np.asarray(x).reshape(-1)
        index = np.full(self.shape, self.offset, np.int64)
        for d, (n, s) in enumerate(zip(self.shape, self.strides)):
            index = index + (np.arange(n, dtype=np.int64) * s).reshape([n] + [1] * (len(self.shape) - d - 1))
        return flat[index]


def _strides(shape) -> list[int]:
    return [math.prod(shape[d + 1:]) for d in range(len(shape))]


def _elem_size(graph, name: str) -> int:
    return np.dtype(graph.tensors[name].dtype).itemsize


def _view_call(view: View, source, out: str, elem_size: int) -> KernelCall:
    v = view.coalesced()
    if len(v.shape) > VIEW_DIMS:  # cannot happen for rank <= MAX_DIMS inputs
        raise Unsupported(f"the copy needs {len(v.shape)} dimensions (at most {VIEW_DIMS})")
    pad = VIEW_DIMS - len(v.shape)
    params = {"size": math.prod(v.shape), "elem_size": elem_size, "offset": v.offset,
              "shape": [1] * pad + v.shape, "strides": [0] * pad + v.strides}
    return KernelCall("nn_strided_copy", ("src/shape/nn_strided_copy.c",), "nn_strided_copy_params", params,
                      [source, out])


def _check_rank(shape, what: str = "input") -> None:
    if len(shape) > MAX_DIMS:
        raise Unsupported(f"{what} rank {len(shape)} is above {MAX_DIMS}")


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


class _ViewOp(Op):
    """An op whose outputs are strided views of input 0 (`views`)."""

    keeps_qparams = True
    int_inputs = True  # the bytes of any element type (int32 ids, uint8 masks)
    precisions = ("int8", "int16")  # they only move elements

    def views(self, node, graph) -> list[View]:
        raise NotImplementedError

    def output_dtypes(self, node, graph):
        return [graph.tensors[node.inputs[0]].dtype] * len(node.outputs)

    def infer_shapes(self, node, graph):
        return [tuple(v.shape) for v in self.views(node, graph)]

    def check(self, node, graph):
        _check_rank(shape_of(graph, node.inputs[0]))
        for o, v in zip(node.outputs, self.views(node, graph)):
            _check_rank(v.shape, "output")
            if math.prod(v.shape) == 0:
                raise Unsupported(f"output '{o}' of shape {list(v.shape)} is empty")

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        return self.reference(node, graph, inputs)

    def kernels(self, node, graph):
        elem = _elem_size(graph, node.inputs[0])
        return [_view_call(v, node.inputs[0], o, elem) for o, v in zip(node.outputs, self.views(node, graph))]


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """ONNX Slice: negative start/end count from the end, then both are clamped to [0, dim]
    (step > 0) or [-1, dim - 1] with start in [0, dim - 1] (step < 0). Python ints: torch's
    INT64_MAX and INT64_MIN ends need no care."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


@register("Slice")
class Slice(_ViewOp):
    def ranges(self, node, graph) -> list[tuple[int, int, int]]:
        """(start, step, count) per input axis."""
        shape = shape_of(graph, node.inputs[0])
        rank = len(shape)
        # opset 10 and later: inputs (an older model's attributes become inputs in the version
        # converter, frontend/load.py)
        starts = _ints(require_const(graph, node, 1, "starts"))
        ends = _ints(require_const(graph, node, 2, "ends"))
        axes = _ints(require_const(graph, node, 3, "axes")) if len(node.inputs) > 3 and node.inputs[3] else None
        steps = _ints(require_const(graph, node, 4, "steps")) if len(node.inputs) > 4 and node.inputs[4] else None
        if axes is None:
            axes = list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise Unsupported(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
        axes = [normalize_axis(a, rank, node) for a in axes]
        if len(set(axes)) != len(axes):
            raise Unsupported(f"repeated axes {axes}")
        out = [(0, 1, d) for d in shape]
        for a, s, e, st in zip(axes, starts, ends, steps):
            if st == 0:
                raise Unsupported(f"step 0 on axis {a}")
            s, e = slice_bounds(s, e, st, shape[a])
            out[a] = (s, st, max(0, -(-(e - s) // st)))
        return out

    def views(self, node, graph):
        strides = _strides(shape_of(graph, node.inputs[0]))
        ranges = self.ranges(node, graph)
        return [View(sum(s * k for (s, _, _), k in zip(ranges, strides)), [n for _, _, n in ranges],
                     [st * k for (_, st, _), k in zip(ranges, strides)])]

    def reference(self, node, graph, inputs):
        x = np.asarray(inputs[0])
        for axis, (s, st, n) in enumerate(self.ranges(node, graph)):
            x = np.take(x, s + st * np.arange(n), axis=axis)
        return [np.ascontiguousarray(x)]


@register("Split")
class Split(_ViewOp):
    def sizes(self, node, graph) -> tuple[int, list[int]]:
        shape = shape_of(graph, node.inputs[0])
        axis = normalize_axis(int(node.attrs.get("axis", 0)), len(shape), node)
        dim, count = shape[axis], len(node.outputs)
        if "split" in node.attrs:
            sizes = _ints(node.attrs["split"])
        elif len(node.inputs) > 1 and node.inputs[1]:
            sizes = _ints(require_const(graph, node, 1, "split"))
        elif "num_outputs" in node.attrs:
            parts = int(node.attrs["num_outputs"])
            if parts < 1 or parts != count:
                raise Unsupported(f"num_outputs {parts} with {count} outputs")
            chunk = -(-dim // parts)  # the last chunk is smaller when dim does not divide
            sizes = [min(chunk, dim - k * chunk) for k in range(parts)]
            if sizes[-1] <= 0:
                raise Unsupported(f"axis {axis} of size {dim} cannot give {parts} outputs of {chunk}")
        else:
            if dim % count:
                raise Unsupported(f"axis {axis} of size {dim} does not split into {count} equal parts")
            sizes = [dim // count] * count
        if len(sizes) != count or sum(sizes) != dim or any(s < 0 for s in sizes):
            raise Unsupported(f"split {sizes} does not cut axis {axis} of size {dim} into {count} outputs")
        return axis, sizes

    def views(self, node, graph):
        shape = list(shape_of(graph, node.inputs[0]))
        axis, sizes = self.sizes(node, graph)
        strides = _strides(shape)
        views, at = [], 0
        for size in sizes:
            out = shape[:axis] + [size] + shape[axis + 1:]
            views.append(View(at * strides[axis], out, strides))
            at += size
        return views

    def reference(self, node, graph, inputs):
        axis, sizes = self.sizes(node, graph)
        return [np.ascontiguousarray(p) for p in np.split(np.asarray(inputs[0]), np.cumsum(sizes)[:-1], axis=axis)]


def broadcast_shape(a, b) -> list[int]:
    rank = max(len(a), len(b))
    a, b = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise Unsupported(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return out


@register("Expand")
class Expand(_ViewOp):
    def target(self, node, graph) -> list[int]:
        shape = _ints(require_const(graph, node, 1, "shape"))
        if any(d < 0 for d in shape):
            raise Unsupported(f"negative dimension in shape {shape}")
        return broadcast_shape(shape_of(graph, node.inputs[0]), shape)

    def views(self, node, graph):
        x = list(shape_of(graph, node.inputs[0]))
        out = self.target(node, graph)
        x = [1] * (len(out) - len(x)) + x
        strides = [0 if n == 1 else s for n, s in zip(x, _strides(x))]
        return [View(0, out, strides)]

    def reference(self, node, graph, inputs):
        return [np.ascontiguousarray(np.broadcast_to(inputs[0], self.target(node, graph)))]


@register("Tile")
class Tile(_ViewOp):
    def repeats(self, node, graph) -> list[int]:
        if len(node.inputs) != 2:
            raise Unsupported("Tile takes the input and its repeats (opset 6 and later)")
        reps = _ints(require_const(graph, node, 1, "repeats"))
        rank = len(shape_of(graph, node.inputs[0]))
        if len(reps) != rank or any(r < 1 for r in reps):
            raise Unsupported(f"repeats {reps} for rank {rank}: one positive count per axis is required")
        return reps

    def views(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        reps = self.repeats(node, graph)
        shape, strides = [], []
        for n, s, r in zip(x, _strides(x), reps):
            shape += [r, n]
            strides += [0, s]
        return [View(0, shape, strides)]  # (repeat, dim) pairs: the output's shape, split

    def infer_shapes(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        return [tuple(r * n for r, n in zip(self.repeats(node, graph), x))]

    def check(self, node, graph):
        _check_rank(shape_of(graph, node.inputs[0]))
        self.repeats(node, graph)

    def reference(self, node, graph, inputs):
        return [np.tile(inputs[0], self.repeats(node, graph))]


def _block_view(node, graph) -> tuple[list[int], list[int]]:
    """(shape of the 6-D view of the input, permutation) of DepthToSpace / SpaceToDepth."""
    shape = shape_of(graph, node.inputs[0])
    if len(shape) != 4:
        raise Unsupported(f"input rank {len(shape)}: [N, C, H, W] is required")
    b = int(node.attrs.get("blocksize", 0))
    if b < 1:
        raise Unsupported("blocksize must be a positive integer")
    n, c, h, w = shape
    mode = node.attrs.get("mode", "DCR")  # SpaceToDepth has a mode from opset 28
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("DCR", "CRD"):
        raise Unsupported(f"mode '{mode}' is not supported (DCR and CRD are)")
    if node.op_type == "SpaceToDepth":
        if h % b or w % b:
            raise Unsupported(f"H {h} and W {w} must be multiples of blocksize {b}")
        return [n, c, h // b, b, w // b, b], [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
    if c % (b * b):
        raise Unsupported(f"C {c} is not a multiple of blocksize^2 {b * b}")
    if mode == "DCR":
        return [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
    return [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]


@register("DepthToSpace", "SpaceToDepth")
class DepthToSpace(_ViewOp):
    def out_shape(self, node, graph) -> list[int]:
        n, c, h, w = shape_of(graph, node.inputs[0])
        b = int(node.attrs["blocksize"])
        if node.op_type == "SpaceToDepth":
            return [n, c * b * b, h // b, w // b]
        return [n, c // (b * b), h * b, w * b]

    def views(self, node, graph):
        shape, perm = _block_view(node, graph)
        strides = _strides(shape)
        return [View(0, [shape[p] for p in perm], [strides[p] for p in perm])]

    def infer_shapes(self, node, graph):
        _block_view(node, graph)
        return [tuple(self.out_shape(node, graph))]

    def reference(self, node, graph, inputs):
        shape, perm = _block_view(node, graph)
        y = np.transpose(np.asarray(inputs[0]).reshape(shape), perm)
        return [np.ascontiguousarray(y).reshape(self.out_shape(node, graph))]


@register("Gather")
class Gather(Op):
    int_inputs = True  # run-time int32 indices; data of any element type
    precisions = ("int8", "int16")

    def output_dtypes(self, node, graph):
        table = graph.const(node.inputs[0])
        if table is None:
            return [graph.tensors[node.inputs[0]].dtype]
        return [{"f": "float32", "b": "uint8"}.get(table.dtype.kind, "int32")]

    def index_bound(self, node, graph, index):
        return shape_of(graph, node.inputs[0])[self.axis(node, graph)] if index == 1 else None

    def axis(self, node, graph) -> int:
        return normalize_axis(int(node.attrs.get("axis", 0)), len(shape_of(graph, node.inputs[0])), node)

    def const_indices(self, node, graph) -> np.ndarray | None:
        """Constant indices with negative ones wrapped (check() has refused any out of range)."""
        value = graph.const(node.inputs[1])
        if value is None:
            return None
        n = shape_of(graph, node.inputs[0])[self.axis(node, graph)]
        return np.where(value < 0, value + n, value).astype(np.int32)

    def infer_shapes(self, node, graph):
        data, indices = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
        axis = self.axis(node, graph)
        return [tuple(data[:axis]) + tuple(indices) + tuple(data[axis + 1:])]

    def check(self, node, graph):
        data = shape_of(graph, node.inputs[0])
        _check_rank(data, "data")
        out = self.infer_shapes(node, graph)[0]
        _check_rank(out, "output")
        if math.prod(out) == 0:
            raise Unsupported(f"output of shape {list(out)} is empty")
        axis = self.axis(node, graph)
        if not data:
            raise Unsupported("data is a scalar; Gather needs at least one axis")
        if data[axis] == 0:
            raise Unsupported(f"axis {axis} of the data is empty: no row for any index")
        value = graph.const(node.inputs[1])
        if value is not None:
            if value.dtype.kind not in "iu":
                raise Unsupported(f"indices must be integers; they are {value.dtype}")
            bad = value[(value < -data[axis]) | (value >= data[axis])]
            if bad.size:
                raise Unsupported(f"index {int(bad.reshape(-1)[0])} is out of range for axis {axis} of size {data[axis]}")
        elif graph.tensors[node.inputs[1]].dtype != "int32":
            raise Unsupported(f"run-time indices must be integers; '{node.inputs[1]}' is "
                              f"{graph.tensors[node.inputs[1]].dtype}")

    def _take(self, node, graph, data, indices) -> np.ndarray:
        axis = self.axis(node, graph)
        n = np.asarray(data).shape[axis]
        i = np.asarray(indices).astype(np.int64)
        # negative indices count from the end; beyond [-n, n) the nearest row (nn_gather)
        i = np.clip(np.where(i < 0, i + n, i), 0, n - 1)
        return np.ascontiguousarray(np.take(np.asarray(data), i, axis=axis))

    def reference(self, node, graph, inputs):
        dtype = self.output_dtypes(node, graph)[0]
        return [self._take(node, graph, np.asarray(inputs[0]).astype(dtype), inputs[1])]

    def params_count(self, node, graph):
        return graph.tensors[node.inputs[0]].size if graph.const(node.inputs[0]) is not None else 0

    def output_qparams(self, node, graph, choose):
        table = graph.const(node.inputs[0])
        if table is None:
            return [graph.tensors[node.inputs[0]].quant]
        bits = 16 if node.attrs.get("precision") == "int16" else 8
        return [from_range(float(np.min(table)), float(np.max(table)), bits=bits)]

    def quantize(self, node, graph):
        table = graph.const(node.inputs[0])
        if table is None or not (is_int8(graph, node) or is_int16(graph, node)):  # an integer table stays
            return {}
        return {"table": graph.tensors[node.outputs[0]].quant.quantize(table)}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        if "table" in q:
            return [self._take(node, graph, q["table"], inputs[1])]
        return self.reference(node, graph, inputs)

    def kernels(self, node, graph):
        data = shape_of(graph, node.inputs[0])
        axis = self.axis(node, graph)
        out = graph.tensors[node.outputs[0]]
        elem = np.dtype(out.dtype).itemsize
        source = node.inputs[0]
        table = graph.const(source)
        if table is not None:
            source = Const(node.attrs["q"]["table"] if "table" in node.attrs.get("q", {}) else
                           np.asarray(table).astype(out.dtype), "table")
        indices = self.const_indices(node, graph)
        index_arg = node.inputs[1] if indices is None else Const(indices.reshape(-1), "index")
        params = {"outer": math.prod(data[:axis]), "rows": data[axis], "row_bytes": math.prod(data[axis + 1:]) * elem,
                  "count": graph.tensors[node.inputs[1]].size}
        return [KernelCall("nn_gather", ("src/shape/nn_gather.c",), "nn_gather_params", params,
                           [source, index_arg, node.outputs[0]])]
