"""Resize (opsets 10 to 19) and Upsample (opsets 7 and 9): nearest and linear, constant scales
or sizes, inputs of rank 1 to 4.

Every output coordinate's source is computed at compile time into small tables, one entry per
output position of each axis: nearest keeps one source index, linear two indices and the
weight of the second. On an axis of input length L and scale s (the given scale, or O / L
when sizes O are given) the output length is O = floor(s * L), and the spec's length_resized
is R = s * L, not rounded (as onnx.reference and the backend cases have it; onnxruntime takes
O instead, which differs when s * L is fractional). The source coordinate of output position
x is, per coordinate_transformation_mode: half_pixel (x + 0.5) / s - 0.5; pytorch_half_pixel
the same, or -0.5 when R <= 1; align_corners x * (L - 1) / (R - 1), or 0 when R == 1;
asymmetric x / s; tf_half_pixel_for_nn (x + 0.5) / s; half_pixel_symmetric the half-pixel
coordinate shifted by L / 2 * (1 - O / R), all in float64. Nearest rounds it by nearest_mode (round_prefer_floor,
round_prefer_ceil, floor, ceil; an integral coordinate is itself) and clamps it to [0, L - 1];
linear interpolates between floor(c) and floor(c) + 1, both clamped, with weight c - floor(c)
for the second. Models older than opset 11 are upgraded at load (frontend/load.py), which
turns Resize-10 and Upsample into Resize-11 nodes with their asymmetric coordinate and
onnxruntime's nearest rounding (floor when enlarging, ceiling when shrinking).
An axis whose scale is 1 and length unchanged is kept as it is (as both onnx.reference and
onnxruntime do, although tf_half_pixel_for_nn with round_prefer_ceil would move it by one).
Nearest may resize any axis. Linear resizes the last two axes at most: it runs as bilinear
on [planes, H, W] (a 1-D or unresized H has an identity table with weight 0).
Refused: cubic, antialias, tf_crop_and_resize, exclude_outside, keep_aspect_ratio_policy
other than stretch, non-constant scales or sizes, and an output with no element.

int8 keeps the input's scale and zero point. Nearest is a copy (the same kernel moves bytes
for float32 and int8). Linear weights become Q11 integers w (0 to 2048) and 2048 - w, so the
four products of a bilinear output sum to 2^22 times an interpolation of the values q + 128
(0 to 255, all non-negative, at most 255 * 2^22 < 2^31); the result is
(acc + 2^21) >> 22, minus 128: one rounding, half up, at the end. int16 the same with the
values q + 32768, Q14 weights (Q11 ones would be off by up to 16 steps between distant levels)
and the second products summed in int64: (acc + 2^27) >> 28 (nn_resize_linear_s16).
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import Const, KernelCall, Op, is_int8, is_int16, register, shape_of

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                    "half_pixel_symmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
LINEAR_BITS = 11  # int8: Q11 weights, 2048 is 1.0
LINEAR_BITS_S16 = 14  # int16: Q14 weights, 65535 * 2^14 < 2^31 for the first products
MAX_RANK = 4
MAX_OUTPUT = 1 << 26  # elements: the importer's bound on any tensor


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def source_coordinates(mode: str, out: int, size: int, scale: float, length: float) -> np.ndarray:
    """Float64 source coordinate of every output position of one axis (module docstring);
    `length` is the real-valued output length s * L (O when sizes are given)."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if length > 1 else np.full(out, -0.5)
    if mode == "align_corners":
        return x * (size - 1) / (length - 1) if length != 1 else np.zeros(out)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if mode == "half_pixel_symmetric":
        offset = size / 2 * (1 - out / length)
        return offset + (x + 0.5) / scale - 0.5
    raise Unsupported(f"coordinate_transformation_mode '{mode}' is not supported")


def nearest_indices(coord: np.ndarray, nearest: str, size: int) -> np.ndarray:
    floor = np.floor(coord)
    frac = coord - floor
    if nearest == "round_prefer_floor":
        idx = np.where(frac <= 0.5, floor, floor + 1)
    elif nearest == "round_prefer_ceil":
        idx = np.where(frac < 0.5, floor, floor + 1)
    elif nearest == "floor":
        idx = floor
    elif nearest == "ceil":
        idx = np.ceil(coord)
    else:
        raise Unsupported(f"nearest_mode '{nearest}' is not supported")
    return np.clip(idx, 0, size - 1).astype(np.int32)


def linear_taps(coord: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first index, second index, weight of the second) of every output position."""
    floor = np.floor(coord)
    i0 = np.clip(floor, 0, size - 1).astype(np.int32)
    i1 = np.clip(floor + 1, 0, size - 1).astype(np.int32)
    return i0, i1, coord - floor


@register("Resize")
class Resize(Op):
    keeps_qparams = True
    precisions = ("int8", "int16")

    def plan(self, node, graph) -> dict:
        """Mode, output shape and per-axis source tables (None for an axis kept as it is)."""
        shape = shape_of(graph, node.inputs[0])
        rank = len(shape)
        attrs = node.attrs
        mode = _text(attrs.get("mode"), "nearest")
        if mode not in ("nearest", "linear"):
            raise Unsupported(f"mode '{mode}' is not supported (nearest and linear are)")
        if not 1 <= rank <= MAX_RANK:
            raise Unsupported(f"rank {rank} is not supported (1 to {MAX_RANK})")
        if _text(attrs.get("coordinate_transformation_mode"), "half_pixel") == "tf_crop_and_resize":
            raise Unsupported("coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
        if int(attrs.get("antialias", 0)):
            raise Unsupported("antialias is not supported")
        if int(attrs.get("exclude_outside", 0)):
            raise Unsupported("exclude_outside is not supported")
        if _text(attrs.get("keep_aspect_ratio_policy"), "stretch") != "stretch":
            raise Unsupported(f"keep_aspect_ratio_policy '{_text(attrs['keep_aspect_ratio_policy'], '')}' "
                              "is not supported (stretch is)")
        scales = self._const_input(node, graph, 2, "scales")
        sizes = self._const_input(node, graph, 3, "sizes")
        if (scales is None) == (sizes is None):
            raise Unsupported("exactly one of scales and sizes must be given")
        axes = [int(a) for a in attrs.get("axes", range(rank))]
        if sorted(a % rank for a in axes if -rank <= a < rank) != sorted(set(a % rank for a in axes)) or \
                any(not -rank <= a < rank for a in axes):
            raise Unsupported(f"axes {axes} are not distinct axes of rank {rank}")
        axes = [a % rank for a in axes]
        given = scales if scales is not None else sizes
        if given.size != len(axes):
            raise Unsupported(f"{given.size} {'scales' if scales is not None else 'sizes'} for {len(axes)} axes")
        out, factor, length = list(shape), [1.0] * rank, [float(d) for d in shape]
        for a, v in zip(axes, given.reshape(-1).tolist()):
            if scales is not None:
                if not math.isfinite(v) or v <= 0:
                    raise Unsupported(f"scale {v} is not positive")
                factor[a] = float(np.float32(v))
                length[a] = shape[a] * factor[a]
                out[a] = int(math.floor(length[a]))
            else:
                out[a] = int(v)
                factor[a] = out[a] / shape[a] if out[a] > 0 else 0.0
                length[a] = float(out[a])
            if out[a] < 1:
                raise Unsupported(f"output length {out[a]} on axis {a}")
        if math.prod(out) > MAX_OUTPUT:  # before the source tables, which are as long as the output axes
            raise Unsupported(f"output shape {tuple(out)} has more than {MAX_OUTPUT} elements, far beyond a "
                              "microcontroller's memory")
        coord_mode = _text(attrs.get("coordinate_transformation_mode"), "half_pixel")
        if coord_mode not in COORDINATE_MODES:
            raise Unsupported(f"coordinate_transformation_mode '{coord_mode}' is not supported")
        nearest = _text(attrs.get("nearest_mode"), "round_prefer_floor")
        if mode == "nearest" and nearest not in NEAREST_MODES:
            raise Unsupported(f"nearest_mode '{nearest}' is not supported")
        if mode == "linear" and coord_mode == "tf_half_pixel_for_nn":
            raise Unsupported("coordinate_transformation_mode 'tf_half_pixel_for_nn' is for nearest only")
        tables: list = []
        for a in range(rank):
            if out[a] == shape[a] and factor[a] == 1.0:  # an axis kept as it is, whatever the modes say
                tables.append(None)
                continue
            coord = source_coordinates(coord_mode, out[a], shape[a], factor[a], length[a])
            if mode == "nearest":
                tables.append(nearest_indices(coord, nearest, shape[a]))
            else:
                tables.append(linear_taps(coord, shape[a]))
        if mode == "linear" and any(t is not None for t in tables[:-2]):
            raise Unsupported("linear resize of an axis other than the last two is not supported")
        return {"mode": mode, "out": out, "tables": tables, "shape": list(shape)}

    @staticmethod
    def _const_input(node, graph, index: int, what: str) -> np.ndarray | None:
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        value = graph.const(node.inputs[index])
        if value is None:
            raise Unsupported(f"{what} must be a constant")
        return None if value.size == 0 else value

    def check(self, node, graph):
        self.plan(node, graph)

    def infer_shapes(self, node, graph):
        return [tuple(self.plan(node, graph)["out"])]

    def params_count(self, node, graph):
        return 0

    # ---- tables and references ----

    def _nearest_table(self, plan) -> np.ndarray:
        """Source index per output position of each of 4 axes (padded in front), concatenated."""
        pad = MAX_RANK - len(plan["shape"])
        parts = [np.zeros(1, np.int32)] * pad
        for a, t in enumerate(plan["tables"]):
            parts.append(np.arange(plan["out"][a], dtype=np.int32) if t is None else t)
        return np.concatenate(parts).astype(np.int32)

    def _linear_axes(self, plan) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(i0, i1, weight) of H and W: the last two axes (H is 1 long for rank 1)."""
        shape, out = plan["shape"], plan["out"]
        axes = []
        for a in (len(shape) - 2, len(shape) - 1):
            if a < 0:
                axes.append((np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1)))
            elif plan["tables"][a] is None:
                ident = np.arange(out[a], dtype=np.int32)
                axes.append((ident, ident, np.zeros(out[a])))
            else:
                axes.append(plan["tables"][a])
        return axes

    def _gather(self, x: np.ndarray, plan) -> np.ndarray:
        for a, t in enumerate(plan["tables"]):
            if t is not None:
                x = np.take(x, t, axis=a)
        return np.ascontiguousarray(x)

    def _bilinear(self, x: np.ndarray, plan, weights) -> tuple[np.ndarray, ...]:
        """The four corners [planes, OH, OW] of every output and the weights of H and W."""
        (y0, y1, fy), (x0, x1, fx) = self._linear_axes(plan)
        h = x.shape[-2] if x.ndim >= 2 else 1
        planes = x.reshape(-1, h, x.shape[-1])
        rows0, rows1 = planes[:, y0], planes[:, y1]
        return rows0[:, :, x0], rows0[:, :, x1], rows1[:, :, x0], rows1[:, :, x1], weights(fy), weights(fx)

    def reference(self, node, graph, inputs):
        plan = self.plan(node, graph)
        x = np.asarray(inputs[0])
        if plan["mode"] == "nearest":
            return [self._gather(x, plan)]
        a, b, c, d, fy, fx = self._bilinear(x.astype(np.float32), plan, lambda f: f.astype(np.float32))
        one = np.float32(1)
        wy, wx = fy[None, :, None], fx[None, None, :]
        top = a * (one - wx) + b * wx
        bottom = c * (one - wx) + d * wx
        return [(top * (one - wy) + bottom * wy).astype(np.float32).reshape(plan["out"])]

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        plan = self.plan(node, graph)
        if plan["mode"] == "nearest":
            return [self._gather(np.asarray(inputs[0]), plan)]
        wide = is_int16(graph, node)
        half, bits = (32768, LINEAR_BITS_S16) if wide else (128, LINEAR_BITS)  # values q + half, non-negative
        a, b, c, d, wy, wx = self._bilinear(inputs[0].astype(np.int64) + half, plan, lambda f: self._fixed(f, bits))
        wy, wx = wy[None, :, None], wx[None, None, :]
        one = 1 << bits
        top = a * (one - wx) + b * wx
        bottom = c * (one - wx) + d * wx
        acc = top * (one - wy) + bottom * wy
        y = ((acc + (1 << (2 * bits - 1))) >> (2 * bits)) - half
        return [y.astype(graph.tensors[node.outputs[0]].dtype).reshape(plan["out"])]

    @staticmethod
    def _fixed(f: np.ndarray, bits: int) -> np.ndarray:
        return np.floor(f * (1 << bits) + 0.5).astype(np.int64)

    # ---- kernels ----

    def kernels(self, node, graph):
        plan = self.plan(node, graph)
        pad = [1] * (MAX_RANK - len(plan["shape"]))
        if plan["mode"] == "nearest":
            elem = np.dtype(graph.tensors[node.inputs[0]].dtype).itemsize
            params = {"elem_size": elem, "in_shape": pad + plan["shape"], "out_shape": pad + plan["out"]}
            return [KernelCall("nn_resize_nearest", ("src/resize/nn_resize_nearest.c",), "nn_resize_nearest_params",
                               params, [node.inputs[0], Const(self._nearest_table(plan), "idx"), node.outputs[0]])]
        (y0, y1, fy), (x0, x1, fx) = self._linear_axes(plan)
        shape = plan["shape"]
        h = shape[-2] if len(shape) >= 2 else 1
        params = {"planes": math.prod(shape) // (h * shape[-1]), "in_h": h, "in_w": shape[-1],
                  "out_h": len(y0), "out_w": len(x0)}
        index = Const(np.concatenate([y0, y1, x0, x1]).astype(np.int32), "idx")
        if is_int8(graph, node) or is_int16(graph, node):
            bits = LINEAR_BITS if is_int8(graph, node) else LINEAR_BITS_S16
            weights = Const(np.concatenate([self._fixed(fy, bits), self._fixed(fx, bits)]).astype(np.int32), "w")
            name = "nn_resize_linear_s8" if is_int8(graph, node) else "nn_resize_linear_s16"
            return [KernelCall(name, (f"src/resize/{name}.c",), "nn_resize_linear_params",
                               params, [node.inputs[0], index, weights, node.outputs[0]])]
        weights = Const(np.concatenate([fy, fx]).astype(np.float32), "w")
        return [KernelCall("nn_resize_linear_f32", ("src/resize/nn_resize_linear_f32.c",), "nn_resize_linear_params",
                           params, [node.inputs[0], index, weights, node.outputs[0]])]
