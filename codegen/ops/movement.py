"""Transpose, Concat and Pad (constant mode): data movement that never changes a value.

The kernels count in bytes (nn_transpose, nn_concat_part, nn_pad), so float32, int8 and
int16 share them. int8 and int16 keep the input's scale and zero point; a Concat input whose
parameters differ from the output's is rescaled while it is copied (nn_concat_part_s8,
nn_concat_part_s16: int16 is symmetric, so only the scale changes). Transpose
merges axes that stay neighbours (a perm keeping the last axis copies runs with memcpy);
Concat is one nn_concat_part call per input (constant inputs as tables); Pad allows
negative pads (cropping).
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8, output_s16
from codegen.ops.base import (KernelCall, Const, Op, is_int8, is_int16, normalize_axis, qparams, register,
                              require_const, shape_of)
from codegen.qparams import multipliers

MAX_DIMS = 6


def _pad(values, fill: int) -> list[int]:
    return [fill] * (MAX_DIMS - len(values)) + [int(v) for v in values]


def coalesce_transpose(shape, perm) -> tuple[list[int], list[int]]:
    """An equivalent smaller transpose: (input shape, perm) with size-1 axes dropped and input
    axes that stay neighbours in the output merged, so a perm keeping the last axis copies runs."""
    keep = [a for a in range(len(shape)) if shape[a] != 1]
    index = {a: i for i, a in enumerate(keep)}
    dims = [shape[a] for a in keep]
    groups: list[list[int]] = []  # merged input axes, in output order
    for a in (index[a] for a in perm if shape[a] != 1):
        if groups and groups[-1][-1] + 1 == a:
            groups[-1].append(a)
        else:
            groups.append([a])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])  # groups in input order
    in_shape = [math.prod(dims[a] for a in groups[g]) for g in order]
    return in_shape, [order.index(g) for g in range(len(groups))]


def _elem_size(graph, name: str) -> int:
    return np.dtype(graph.tensors[name].dtype).itemsize


@register("Transpose")
class Transpose(Op):
    keeps_qparams = True
    precisions = ("int8", "int16")

    def perm(self, node, graph) -> list[int]:
        rank = len(shape_of(graph, node.inputs[0]))
        perm = [int(p) for p in node.attrs.get("perm", range(rank - 1, -1, -1))]
        if sorted(normalize_axis(p, rank, node) for p in perm) != list(range(rank)):
            raise Unsupported(f"perm {perm} is not a permutation of {rank} axes")
        return [p % rank for p in perm]

    def check(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        merged, _ = coalesce_transpose(shape, self.perm(node, graph))
        if len(merged) > MAX_DIMS:
            raise Unsupported(f"rank {len(shape)} transpose needs {len(merged)} dimensions "
                              f"(at most {MAX_DIMS} are supported)")

    def infer_shapes(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        return [tuple(shape[p] for p in self.perm(node, graph))]

    def reference(self, node, graph, inputs):
        return [np.ascontiguousarray(np.transpose(inputs[0], self.perm(node, graph)))]

    def quantize(self, node, graph):
        return {}

    reference_s8 = reference

    def params_count(self, node, graph):
        return 0

    def kernels(self, node, graph):
        shape, perm = coalesce_transpose(shape_of(graph, node.inputs[0]), self.perm(node, graph))
        strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
        params = {"size": math.prod(shape), "elem_size": _elem_size(graph, node.inputs[0]),
                  "shape": _pad([shape[p] for p in perm], 1), "strides": _pad([strides[p] for p in perm], 0)}
        return [KernelCall("nn_transpose", ("src/shape/nn_transpose.c",), "nn_transpose_params", params,
                           [node.inputs[0], node.outputs[0]])]


@register("Concat")
class Concat(Op):
    precisions = ("int8", "int16")

    def axis(self, node, graph) -> int:
        rank = len(shape_of(graph, node.inputs[0]))
        if "axis" not in node.attrs:
            raise Unsupported("the axis attribute is required")
        return normalize_axis(int(node.attrs["axis"]), rank, node)

    def infer_shapes(self, node, graph):
        shapes = [shape_of(graph, i) for i in node.inputs]
        axis = self.axis(node, graph)
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(a != b for d, (a, b) in enumerate(zip(s, shapes[0])) if d != axis):
                raise Unsupported(f"shapes {[list(x) for x in shapes]} do not concatenate on axis {axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return [tuple(out)]

    def check(self, node, graph):
        self.infer_shapes(node, graph)

    def reference(self, node, graph, inputs):
        return [np.concatenate([np.asarray(x) for x in inputs], axis=self.axis(node, graph))]

    def params_count(self, node, graph):
        return 0

    def _parts(self, node, graph) -> list[dict]:
        out = shape_of(graph, node.outputs[0])
        axis = self.axis(node, graph)
        outer, inner = math.prod(out[:axis]), math.prod(out[axis + 1:])
        parts, offset = [], 0
        for name in node.inputs:
            block = shape_of(graph, name)[axis] * inner
            parts.append({"outer": outer, "in_block": block, "out_block": out[axis] * inner, "offset": offset})
            offset += block
        return parts

    def output_qparams(self, node, graph, choose):
        quants = {graph.tensors[i].quant for i in node.inputs if graph.const(i) is None}
        return [quants.pop()] if len(quants) == 1 and all(graph.const(i) is None for i in node.inputs) \
            else [choose(node.outputs[0])]

    def quantize(self, node, graph):
        y = qparams(graph, node.outputs[0])
        inputs = []
        for name in node.inputs:
            value = graph.const(name)
            if value is not None:
                inputs.append({"table": y.quantize(value)})
                continue
            x = qparams(graph, name)
            if x == y:
                inputs.append({})
                continue
            (m0,), (shift,) = multipliers([x.scale / y.scale])
            if y.bits == 16:
                inputs.append({"multiplier": int(m0), "shift": int(shift)})
                continue
            inputs.append({"input_offset": -x.zero_point, "multiplier": int(m0), "shift": int(shift),
                           "output_offset": y.zero_point})
        return {"inputs": inputs}

    def reference_s8(self, node, graph, inputs):
        parts = []
        for x, q in zip(inputs, node.attrs["q"]["inputs"]):
            if "table" in q:
                x = q["table"]
            elif q and "input_offset" not in q:  # int16
                x = output_s16(x.astype(np.int64), q["multiplier"], q["shift"])
            elif q:
                x = output_s8(x.astype(np.int64) + q["input_offset"], q["multiplier"], q["shift"], q["output_offset"])
            parts.append(np.asarray(x).astype(graph.tensors[node.outputs[0]].dtype))
        return [np.concatenate(parts, axis=self.axis(node, graph))]

    def kernels(self, node, graph):
        calls = []
        int8 = is_int8(graph, node) or is_int16(graph, node)  # quantized
        elem = _elem_size(graph, node.outputs[0])
        for k, (name, part) in enumerate(zip(node.inputs, self._parts(node, graph))):
            q = node.attrs["q"]["inputs"][k] if int8 else {}
            value = graph.const(name)
            source = name
            if value is not None:
                source = Const(q["table"] if int8 else np.asarray(value, np.float32), "k")
            if "multiplier" in q and is_int16(graph, node):
                params = {"part": part, "multiplier": q["multiplier"], "shift": q["shift"]}
                calls.append(KernelCall("nn_concat_part_s16", ("src/shape/nn_concat_part_s16.c",),
                                        "nn_concat_part_s16_params", params, [source, node.outputs[0]]))
                continue
            if "multiplier" in q:
                params = {"part": part, **{key: q[key] for key in ("input_offset", "multiplier", "shift",
                                                                   "output_offset")}}
                calls.append(KernelCall("nn_concat_part_s8", ("src/shape/nn_concat_part_s8.c",),
                                        "nn_concat_part_s8_params", params, [source, node.outputs[0]]))
                continue
            params = {key: v * elem if key != "outer" else v for key, v in part.items()}
            calls.append(KernelCall("nn_concat_part", ("src/shape/nn_concat_part.c",), "nn_concat_part_params",
                                    params, [source, node.outputs[0]]))
        return calls


def _pad_crop(x: np.ndarray, begin: list[int], end: list[int], value) -> np.ndarray:
    """np.pad where a negative pad removes elements (ONNX Pad allows both)."""
    crop = tuple(slice(max(-b, 0), d - max(-e, 0)) for d, b, e in zip(x.shape, begin, end))
    return np.pad(x[crop], [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)], constant_values=value)


@register("Pad")
class Pad(Op):
    keeps_qparams = True
    precisions = ("int8", "int16")

    def layout(self, node, graph) -> tuple[list[int], list[int], float]:
        """(pads at the beginning, pads at the end, constant value) per axis of the input."""
        rank = len(shape_of(graph, node.inputs[0]))
        mode = node.attrs.get("mode", "constant")
        if mode != "constant":
            raise Unsupported(f"mode '{mode}' is not supported (constant is)")
        if "pads" in node.attrs:
            pads = [int(p) for p in node.attrs["pads"]]
            value = float(node.attrs.get("value", 0.0))
        else:
            pads = [int(p) for p in require_const(graph, node, 1, "pads").reshape(-1)]
            value = 0.0
            if len(node.inputs) > 2 and node.inputs[2]:
                value = float(require_const(graph, node, 2, "constant_value").reshape(-1)[0])
        axes = list(range(rank))
        if len(node.inputs) > 3 and node.inputs[3]:
            axes = [normalize_axis(int(a), rank, node) for a in require_const(graph, node, 3, "axes").reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise Unsupported(f"{len(pads)} pads for {len(axes)} axes")
        if len(set(axes)) != len(axes):
            raise Unsupported(f"repeated axes {axes}")
        if rank > MAX_DIMS:
            raise Unsupported(f"rank {rank} is above {MAX_DIMS}")
        begin, end = [0] * rank, [0] * rank
        for i, a in enumerate(axes):
            begin[a], end[a] = pads[i], pads[len(axes) + i]
        shape = shape_of(graph, node.inputs[0])
        # negative pads crop; the crop must fit in the input and leave a non-empty output
        if any(d + min(b, 0) + min(e, 0) < 0 or d + b + e < 1 for d, b, e in zip(shape, begin, end)):
            raise Unsupported(f"pads {pads} crop more than shape {list(shape)} holds")
        return begin, end, value

    def check(self, node, graph):
        self.layout(node, graph)

    def infer_shapes(self, node, graph):
        begin, end, _ = self.layout(node, graph)
        return [tuple(d + b + e for d, b, e in zip(shape_of(graph, node.inputs[0]), begin, end))]

    def reference(self, node, graph, inputs):
        begin, end, value = self.layout(node, graph)
        x = np.asarray(inputs[0])
        return [_pad_crop(x, begin, end, np.asarray(value).astype(x.dtype))]

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        _, _, value = self.layout(node, graph)
        x = qparams(graph, node.inputs[0])
        q = int(x.quantize(np.array(value)))
        if abs(float(x.dequantize(np.array(q))) - value) > x.scale / 2:
            raise Unsupported(f"pad value {value:g} lies outside the input's int{x.bits} range "
                              f"[{float(x.dequantize(np.array(x.qmin))):g}, {float(x.dequantize(np.array(x.qmax))):g}]")
        return {"value": q}

    def reference_s8(self, node, graph, inputs):
        begin, end, _ = self.layout(node, graph)
        return [_pad_crop(inputs[0], begin, end, np.asarray(node.attrs["q"]["value"], inputs[0].dtype))]

    def kernels(self, node, graph):
        begin, _, value = self.layout(node, graph)
        if is_int8(graph, node):
            raw = np.array([node.attrs["q"]["value"]], np.int8).tobytes()
        elif is_int16(graph, node):
            raw = np.array([node.attrs["q"]["value"]], "<i2").tobytes()
        else:
            raw = np.array([value], "<f4").tobytes()
        params = {"elem_size": len(raw), "in_shape": _pad(shape_of(graph, node.inputs[0]), 1),
                  "out_shape": _pad(shape_of(graph, node.outputs[0]), 1), "begin": _pad(begin, 0),
                  "value": list(raw.ljust(4, b"\0"))}
        return [KernelCall("nn_pad", ("src/shape/nn_pad.c",), "nn_pad_params", params,
                           [node.inputs[0], node.outputs[0]])]
