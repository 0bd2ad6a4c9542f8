"""LayerNormalization and InstanceNormalization: normalise groups of elements to mean 0 and
variance 1, then scale and shift them with constant per-element (LayerNorm) or per-channel
(InstanceNorm) values. One pair of kernels serves both (nn_norm_f32, nn_norm_s8; see
nn_norm.h): a group is `size` consecutive elements, `rows` groups follow each other.

Rules:
1. LayerNormalization (opset 17): the groups are the axes from `axis` (default -1) on. Scale
   (required) and B (optional) are constants broadcastable to those axes; stash_type must be 1
   (float32, the only type the computation is done in here). The Mean and InvStdDev outputs
   may be named but not read (the frontend drops them, frontend/layernorm_pattern.py).
2. InstanceNormalization: [N, C, D1, ...] with rank >= 3, one group per (n, c) over the
   spatial axes, constant scale and B of C values each.
3. float follows the spec's order: mean, x - mean, mean of squares, + epsilon, square root,
   reciprocal, times the normalised value, times scale, plus B.
4. int8 (in the manner of TFLite's integer layer norm): integer sum and sum of squares of
   the int8 inputs (the input zero point cancels in x - mean), the variance as one int64
   t = n * sum(x^2) - sum(x)^2 + round(n^2 epsilon / s_x^2) = n^2 (var + eps) / s_x^2, its
   inverse square root in fixed point (fixedpoint.inverse_sqrt: normalisation to [1/4, 1),
   a chord seed and four Newton steps), the normalised value d / sqrt(t) with d = n x - sum(x)
   in Q z_bits, times the int8 scale (symmetric, per tensor) plus B at scale s_g / 2^z_bits
   (int32), requantized to the output's scale. z_bits is the largest (<= 24) that keeps the
   int32 accumulator below 2^31: |d / sqrt(t)| <= sqrt(n).
   int16 (nn_norm_s16, zero points 0, groups of at most 32768): the same with the sum of
   squares and z in int64, Scale symmetric int16 per tensor, z * Scale + B in int64 (below
   2^47 with z_bits <= 24) requantized by fixedpoint.requantize64; z_bits is 24, lowered only
   until B fits int32.
5. LpNormalization (p 1 or 2, any axis): x / ||x||_p along the axis (nn_lpnorm_f32).
   A group of zeros gives zeros (as onnxruntime and the backend cases; onnx.reference also
   sums x rather than |x| for p = 1, so onnxruntime is the oracle of the tests). int8
   has a fixed output scale 1/128 and zero point 0 (values in [-1, 1], as TFLite's L2
   normalisation): the integer norm (sum of squares or of absolute values of x - zp), its
   inverse square root in fixed point (squared for p = 1: 1 / s = (1 / sqrt(s))^2), one
   multiply and a rounding shift per element (nn_lpnorm_s8). The frontend's fusion of torch's
   F.normalize (frontend/l2norm_pattern.py) adds the internal attribute `epsilon`: the norm's
   lower bound; int8 needs it below the input scale (a non-zero int8 group's norm is at least
   that, so the bound never applies). int16 (nn_lpnorm_s16): output scale 1/32768, the sums in
   int64, groups of at most 65535.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import inverse_sqrt, output64_s16, output_s8
from codegen.ops.base import (Const, KernelCall, Op, is_int8, is_int16, normalize_axis, qparams, register,
                              require_const, shape_of)
from codegen.qparams import QParams, multipliers, quantize_weights

MAX_GROUP = 65536  # int8: the int32 sum of squares of a group stays below 2^30
MAX_GROUP_S16 = 32768  # int16: size * sum of squares and size * x - sum(x) stay in range
Z_BITS_MAX = 24
ACC_HEADROOM = 2**29  # |z * gamma| and |beta| each below this: their sum fits int32


class _Normalization(Op):
    """What LayerNormalization and InstanceNormalization share; a subclass gives the geometry
    (`view`) and the scale and shift per index (`affine`)."""

    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            return self.view(node, graph)[1] <= MAX_GROUP_S16
        return precision in self.precisions

    def view(self, node, graph) -> tuple[int, int, int, int]:
        """(rows, size, channels, per_row) of nn_norm_params."""
        raise NotImplementedError

    def affine(self, node, graph) -> tuple[np.ndarray, np.ndarray | None]:
        """gamma and beta (None when absent) as float32 vectors of `size` (per element) or
        `channels` (per row) values."""
        raise NotImplementedError

    def epsilon(self, node) -> float:
        return float(np.float32(node.attrs.get("epsilon", 1e-5)))

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def inplace_input(self, node, graph):
        return 0  # each group is read whole before its first output is written

    def macs(self, node, graph):
        return 3 * graph.tensors[node.inputs[0]].size

    def reference(self, node, graph, inputs):
        rows, size, channels, per_row = self.view(node, graph)
        gamma, beta = self.affine(node, graph)
        x = np.asarray(inputs[0], np.float32).reshape(rows, size)
        mean = x.mean(axis=1, keepdims=True, dtype=np.float32)
        d = x - mean
        var = (d * d).mean(axis=1, keepdims=True, dtype=np.float32)
        inv = np.float32(1) / np.sqrt(var + np.float32(self.epsilon(node)))
        index = np.arange(rows)[:, None] % channels if per_row else np.arange(size)[None, :]
        y = d * inv * gamma[index]
        if beta is not None:
            y = y + beta[index]
        return [y.astype(np.float32).reshape(inputs[0].shape)]

    def params_count(self, node, graph):
        gamma, beta = self.affine(node, graph)
        return gamma.size + (0 if beta is None else beta.size)

    # ---- int8 ----

    def quantize(self, node, graph):
        rows, size, channels, per_row = self.view(node, graph)
        if size > MAX_GROUP:
            raise Unsupported(f"int8 normalisation of groups of {size} elements (at most {MAX_GROUP})")
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        if y.bits == 16:
            return self._quantize_s16(node, graph, x, y, size)
        gamma, beta = self.affine(node, graph)
        gq, (sg,) = quantize_weights(gamma.reshape(1, -1), axis=0)
        sg = float(sg)
        beta = np.zeros(gamma.shape, np.float64) if beta is None else beta.astype(np.float64)
        eps = self.epsilon(node) / (float(x.scale) ** 2) * size * size
        if eps >= 2**61:
            raise Unsupported(f"epsilon {self.epsilon(node):g} is too large for the input scale {x.scale:g}")
        z_bits = min(Z_BITS_MAX, math.floor(math.log2(ACC_HEADROOM / (128 * (math.sqrt(size) + 1)))))
        peak = float(np.abs(beta).max(initial=0.0)) / sg
        while z_bits >= 0 and peak * 2.0**z_bits >= ACC_HEADROOM:
            z_bits -= 1
        if z_bits < 0:
            raise Unsupported("B is too large next to Scale for int8")
        bq = np.rint(beta / sg * 2.0**z_bits).astype(np.int32)
        (m0,), (shift,) = multipliers([sg / 2.0**z_bits / float(y.scale)])
        return {"gamma": gq.reshape(-1), "beta": bq, "epsilon": max(1, round(eps)), "z_bits": z_bits,
                "multiplier": int(m0), "shift": int(shift), "output_offset": y.zero_point}

    def _quantize_s16(self, node, graph, x, y, size) -> dict:
        if size > MAX_GROUP_S16:
            raise Unsupported(f"int16 normalisation of groups of {size} elements (at most {MAX_GROUP_S16})")
        gamma, beta = self.affine(node, graph)
        gamma = gamma.astype(np.float64)
        sg = float(np.float32(np.abs(gamma).max(initial=0.0) / 32767)) or 1.0
        gq = np.clip(np.rint(gamma / sg), -32767, 32767).astype(np.int16)
        beta = np.zeros(gamma.shape, np.float64) if beta is None else beta.astype(np.float64)
        eps = self.epsilon(node) / (float(x.scale) ** 2) * size * size
        if eps >= 2**61:
            raise Unsupported(f"epsilon {self.epsilon(node):g} is too large for the input scale {x.scale:g}")
        z_bits, peak = Z_BITS_MAX, float(np.abs(beta).max(initial=0.0)) / sg
        while z_bits >= 0 and peak * 2.0**z_bits >= 2**31 - 1:
            z_bits -= 1
        if z_bits < 0:
            raise Unsupported("B is too large next to Scale for int16")
        bq = np.rint(beta / sg * 2.0**z_bits).astype(np.int32)
        (m0,), (shift,) = multipliers([sg / 2.0**z_bits / float(y.scale)])
        return {"gamma": gq, "beta": bq, "epsilon": max(1, round(eps)), "z_bits": z_bits, "multiplier": int(m0),
                "shift": int(shift)}

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        rows, size, channels, per_row = self.view(node, graph)
        x = inputs[0].astype(np.int64).reshape(rows, size)
        s1 = x.sum(axis=1, keepdims=True)
        t = size * (x * x).sum(axis=1, keepdims=True) - s1 * s1 + q["epsilon"]
        inv, e = inverse_sqrt(t)
        right = e.astype(np.int64) - q["z_bits"]
        d = size * x - s1
        z = (d * inv.astype(np.int64) + (np.int64(1) << (right - 1))) >> right
        index = np.arange(rows)[:, None] % channels if per_row else np.arange(size)[None, :]
        acc = z * q["gamma"].astype(np.int64)[index] + q["beta"].astype(np.int64)[index]
        if is_int16(graph, node):
            return [output64_s16(acc, q["multiplier"], q["shift"]).reshape(inputs[0].shape)]
        out = output_s8(acc, q["multiplier"], q["shift"], q["output_offset"])
        return [out.reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        rows, size, channels, per_row = self.view(node, graph)
        geometry = {"rows": rows, "size": size, "channels": channels, "per_row": per_row}
        if is_int16(graph, node):
            q = node.attrs["q"]
            params = {**geometry, **{k: q[k] for k in ("epsilon", "z_bits", "multiplier", "shift")}}
            return [KernelCall("nn_norm_s16", ("src/norm/nn_norm_s16.c",), "nn_norm_s16_params", params,
                               [node.inputs[0], Const(q["gamma"], "g"), Const(q["beta"], "b"), node.outputs[0]])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {**geometry, **{k: q[k] for k in ("epsilon", "z_bits", "multiplier", "shift", "output_offset")}}
            return [KernelCall("nn_norm_s8", ("src/norm/nn_norm_s8.c",), "nn_norm_s8_params", params,
                               [node.inputs[0], Const(q["gamma"], "g"), Const(q["beta"], "b"), node.outputs[0]])]
        gamma, beta = self.affine(node, graph)
        params = {**geometry, "epsilon": self.epsilon(node)}
        return [KernelCall("nn_norm_f32", ("src/norm/nn_norm_f32.c",), "nn_norm_params", params,
                           [node.inputs[0], Const(gamma, "g"), None if beta is None else Const(beta, "b"),
                            node.outputs[0]])]


@register("LayerNormalization")
class LayerNormalization(_Normalization):
    def axis(self, node, graph) -> int:
        rank = len(shape_of(graph, node.inputs[0]))
        return normalize_axis(int(node.attrs.get("axis", -1)), rank, node)

    def view(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        axis = self.axis(node, graph)
        return math.prod(shape[:axis]), math.prod(shape[axis:]), 1, 0

    def affine(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        inner = tuple(shape[self.axis(node, graph):])
        out = []
        for index, what in ((1, "Scale"), (2, "B")):
            if index >= len(node.inputs) or not node.inputs[index]:
                out.append(None)
                continue
            value = np.asarray(require_const(graph, node, index, what), np.float32)
            try:
                full = np.broadcast_to(value, inner) if value.ndim <= len(inner) else None
            except ValueError:
                full = None
            if full is None:
                raise Unsupported(f"{what} of shape {list(value.shape)} does not broadcast to the normalised "
                                  f"shape {list(inner)}")
            out.append(np.ascontiguousarray(full, np.float32).reshape(-1))
        return out[0], out[1]

    def check(self, node, graph):
        if len(shape_of(graph, node.inputs[0])) == 0:
            raise Unsupported("a scalar input has nothing to normalise")
        self.axis(node, graph)
        if int(node.attrs.get("stash_type", 1)) != 1:
            raise Unsupported(f"stash_type {node.attrs['stash_type']} (only 1, float32, is supported)")
        read = [o for o in node.outputs[1:] if o and (o in graph.outputs or graph.consumers(o))]
        if read:
            raise Unsupported("the Mean and InvStdDev outputs are not supported (only Y may be read)")
        self.affine(node, graph)

    def infer_shapes(self, node, graph):
        """Y, and the statistics' shapes for named Mean and InvStdDev outputs (dropped unread)."""
        shape = shape_of(graph, node.inputs[0])
        axis = self.axis(node, graph)
        stats = tuple(shape[:axis]) + (1,) * (len(shape) - axis)
        named = max((k + 1 for k, o in enumerate(node.outputs) if o), default=1)
        return [shape] + [stats] * (named - 1)


@register("InstanceNormalization")
class InstanceNormalization(_Normalization):
    def view(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        return shape[0] * shape[1], math.prod(shape[2:]), shape[1], 1

    def affine(self, node, graph):
        channels = shape_of(graph, node.inputs[0])[1]
        out = []
        for index, what in ((1, "scale"), (2, "B")):
            value = np.asarray(require_const(graph, node, index, what), np.float32).reshape(-1)
            if value.size != channels:
                raise Unsupported(f"{what} has {value.size} values for {channels} channels")
            out.append(value)
        return out[0], out[1]

    def check(self, node, graph):
        shape = shape_of(graph, node.inputs[0])
        if len(shape) < 3:
            raise Unsupported(f"input rank {len(shape)} (N, C and at least one spatial axis are needed)")
        self.affine(node, graph)


LP_OUTPUT_QPARAMS = QParams(1.0 / 128.0, 0)
LP_OUTPUT_QPARAMS_S16 = QParams(1.0 / 32768.0, 0, 16)
MAX_LP_GROUP_S16 = 65535  # int16: sum of squares below 2^46


@register("LpNormalization")
class LpNormalization(Op):
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            return self.view(node, graph)[1] <= MAX_LP_GROUP_S16
        return precision in self.precisions

    def view(self, node, graph) -> tuple[int, int, int, int]:
        """(outer, size, inner, p) of nn_lpnorm_params."""
        shape = shape_of(graph, node.inputs[0])
        axis = normalize_axis(int(node.attrs.get("axis", -1)), len(shape), node)
        p = int(node.attrs.get("p", 2))
        if p not in (1, 2):
            raise Unsupported(f"p = {p} (1 and 2 are supported)")
        return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]), p

    def check(self, node, graph):
        if len(shape_of(graph, node.inputs[0])) == 0:
            raise Unsupported("a scalar input has no axis to normalise")
        self.view(node, graph)

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def inplace_input(self, node, graph):
        return 0  # each group's norm is summed before its first output is written

    def macs(self, node, graph):
        return 2 * graph.tensors[node.inputs[0]].size

    def params_count(self, node, graph):
        return 0

    def reference(self, node, graph, inputs):
        outer, size, inner, p = self.view(node, graph)
        x = np.asarray(inputs[0], np.float32).reshape(outer, size, inner)
        if p == 1:
            norm = np.abs(x).sum(axis=1, keepdims=True, dtype=np.float32)
        else:
            norm = np.sqrt((x * x).sum(axis=1, keepdims=True, dtype=np.float32))
        norm = np.maximum(norm, np.float32(node.attrs.get("epsilon", 0.0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(norm == 0, np.float32(0), x / norm)  # a group of zeros is zeros
        return [y.astype(np.float32).reshape(inputs[0].shape)]

    def output_qparams(self, node, graph, choose):
        return [LP_OUTPUT_QPARAMS_S16 if node.attrs.get("precision") == "int16" else LP_OUTPUT_QPARAMS]

    def quantize(self, node, graph):
        _, size, _, p = self.view(node, graph)
        if is_int16(graph, node):
            x = qparams(graph, node.inputs[0])
            if size > MAX_LP_GROUP_S16:
                raise Unsupported(f"int16 L{p} norm of {size} elements (at most {MAX_LP_GROUP_S16})")
            if float(node.attrs.get("epsilon", 0.0)) > x.scale:
                raise Unsupported(f"int16 with a norm bound {node.attrs['epsilon']:g} above the input scale "
                                  f"{x.scale:g}")
            return {"input_offset": 0}
        if size * (256 if p == 1 else 256 * 256) >= 2**31:
            raise Unsupported(f"int8 L{p} norm of {size} elements could overflow int32")
        x = qparams(graph, node.inputs[0])
        if float(node.attrs.get("epsilon", 0.0)) > x.scale:
            raise Unsupported(f"int8 with a norm bound {node.attrs['epsilon']:g} above the input scale {x.scale:g}")
        return {"input_offset": -x.zero_point}

    def reference_s8(self, node, graph, inputs):
        outer, size, inner, p = self.view(node, graph)
        v = inputs[0].astype(np.int64).reshape(outer, size, inner) + node.attrs["q"]["input_offset"]
        s = (np.abs(v) if p == 1 else v * v).sum(axis=1, keepdims=True)
        inv, e = inverse_sqrt(np.maximum(s, 1))
        inv, e = inv.astype(np.int64), e.astype(np.int64)
        wide = is_int16(graph, node)  # output scale 1/32768 instead of 1/128: 8 more bits
        scale, right = ((inv * inv) >> 30, 2 * e - (45 if wide else 37)) if p == 1 else (inv, e - (15 if wide else 7))
        q = (v * scale + (np.int64(1) << (right - 1))) >> right
        lo, hi = (-32768, 32767) if wide else (-128, 127)
        q = np.where(s > 0, np.clip(q, lo, hi), 0)
        return [q.astype(np.int16 if wide else np.int8).reshape(inputs[0].shape)]

    def kernels(self, node, graph):
        outer, size, inner, p = self.view(node, graph)
        params = {"outer": outer, "size": size, "inner": inner, "p": p, "input_offset": 0,
                  "epsilon": float(np.float32(node.attrs.get("epsilon", 0.0)))}
        if is_int16(graph, node):
            return [KernelCall("nn_lpnorm_s16", ("src/norm/nn_lpnorm_s16.c",), "nn_lpnorm_params", params,
                               [node.inputs[0], node.outputs[0]])]
        if is_int8(graph, node):
            params["input_offset"] = node.attrs["q"]["input_offset"]
            return [KernelCall("nn_lpnorm_s8", ("src/norm/nn_lpnorm_s8.c",), "nn_lpnorm_params", params,
                               [node.inputs[0], node.outputs[0]])]
        return [KernelCall("nn_lpnorm_f32", ("src/norm/nn_lpnorm_f32.c",), "nn_lpnorm_params", params,
                           [node.inputs[0], node.outputs[0]])]
