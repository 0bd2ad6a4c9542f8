"""Conv, 1-D and 2-D: strides, pads, auto_pad, dilations, groups (depthwise included).

A 1-D convolution runs as the 2-D one with H = 1. `window_geometry` is the ONNX rule for
output sizes and padding that the pooling ops share. int8: per-output-channel weight
scales, int32 bias, the input zero point as an offset added to every input (so padding,
which holds the zero point, contributes nothing), and a per-channel requantization.
float kernels: nn_conv_f32 (grouped, dilated, batch loop) and nn_conv_dw_f32 when
groups == in_channels == out_channels (depthwise, channel multiplier 1). int8 kernels:
nn_conv_dw_s8 for depthwise, nn_conv_s8 for the rest (on DSP cores through int16 columns
in scratch, two positions and two channels at a time). Both int8 kernels run in place where
the planner lets them (depthwise; 1x1 with stride 1), which keeps depthwise-separable stacks
in one activation buffer. int16 activations (ops/base.py section 10): nn_conv_s16 for every
grouping, or nn_conv_acc64_s16 where an int32 accumulator could overflow (|bias| + 32768 *
sum |w| >= 2^31); dense weights, never in place; on DSP cores through int16 columns in scratch.
"""

from __future__ import annotations

import math

import numpy as np

from codegen import sparse
from codegen.errors import Unsupported
from codegen.fixedpoint import output64_s16, output_s8, output_s16
from codegen.ops.base import (Const, KernelCall, Op, Scratch, activation, apply_activation, is_int8, is_int16,
                              is_sparse, qparams, register, require_const, shape_of, sparse_tables)
from codegen.ops.gemm import needs_acc64
from codegen.qparams import layer_weights, multipliers, quantize_bias


def window_geometry(attrs: dict, spatial: tuple[int, ...], kernel: tuple[int, ...],
                    ceil_mode: bool = False) -> dict:
    """Pads (begin, end), strides, dilations and output sizes of a sliding window (ONNX rules)."""
    rank = len(spatial)
    strides = [int(s) for s in attrs.get("strides", [1] * rank)]
    dilations = [int(d) for d in attrs.get("dilations", [1] * rank)]
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * rank)]
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank:
        raise Unsupported("strides, dilations or pads do not match the spatial rank")
    if min(strides + dilations + list(kernel)) < 1 or min(pads) < 0:
        raise Unsupported("strides, dilations and kernel sizes must be positive and pads not negative")
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    begin, end, out = [], [], []
    for i in range(rank):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-spatial[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + extent[i] - spatial[i])
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            begin.append(b)
            end.append(total - b)
        elif auto_pad == "VALID":
            begin.append(0)
            end.append(0)
        elif auto_pad == "NOTSET":
            begin.append(pads[i])
            end.append(pads[rank + i])
        else:
            raise Unsupported(f"auto_pad '{auto_pad}' is not supported")
        span = spatial[i] + begin[i] + end[i] - extent[i]
        if span < 0:
            raise Unsupported(f"kernel extent {extent[i]} exceeds the padded input {spatial[i] + begin[i] + end[i]}")
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= spatial[i] + begin[i]:
            o -= 1  # the last window would start in the end padding
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-spatial[i] // strides[i])
        out.append(o)
    return {"begin": begin, "end": end, "strides": strides, "dilations": dilations, "out": out, "kernel": list(kernel)}


def as_2d(geo: dict, spatial: tuple[int, ...]) -> dict:
    """The same geometry with a leading H = 1 for 1-D windows."""
    if len(spatial) == 2:
        return {**geo, "in": list(spatial)}
    return {"begin": [0] + geo["begin"], "end": [0] + geo["end"], "strides": [1] + geo["strides"],
            "dilations": [1] + geo["dilations"], "out": [1] + geo["out"], "kernel": [1] + geo["kernel"],
            "in": [1] + list(spatial)}


def windows(x: np.ndarray, geo: dict, pad_value) -> np.ndarray:
    """[N, C, KH, KW, OH, OW] view of every window of x [N, C, H, W] (padded with pad_value)."""
    (pt, pl), (pb, pr) = geo["begin"], geo["end"]
    (sh, sw), (dh, dw), (oh, ow), (kh, kw) = geo["strides"], geo["dilations"], geo["out"], geo["kernel"]
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    h, w = x.shape[2], x.shape[3]
    extra_h, extra_w = max(0, need_h - (h + pt + pb)), max(0, need_w - (w + pl + pr))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + extra_h), (pl, pr + extra_w)), constant_values=pad_value)
    cols = np.empty(x.shape[:2] + (kh, kw, oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, :, ky, kx] = xp[:, :, ky * dh: ky * dh + (oh - 1) * sh + 1: sh,
                                    kx * dw: kx * dw + (ow - 1) * sw + 1: sw]
    return cols


def conv_operands(node, graph, what: str) -> tuple[tuple[int, ...], np.ndarray, tuple[int, ...], int]:
    """(input shape, constant weights, kernel shape, groups) of a Conv or ConvTranspose, checked
    for what both take: 1-D or 2-D, weights of the input's rank, kernel_shape equal to theirs."""
    x = shape_of(graph, node.inputs[0])
    w = require_const(graph, node, 1, "weights W")
    if len(x) not in (3, 4):
        raise Unsupported(f"{len(x) - 2}-D {what} is not supported (1-D and 2-D are)")
    if w.ndim != len(x):
        raise Unsupported(f"weights of rank {w.ndim} for an input of rank {len(x)}")
    kernel = tuple(int(k) for k in node.attrs.get("kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise Unsupported(f"kernel_shape {list(kernel)} differs from the weights' {list(w.shape[2:])}")
    return x, w, kernel, int(node.attrs.get("group", 1))


def check_bias(node, graph, channels: int) -> None:
    """The optional bias B: a constant of one value per output channel."""
    if len(node.inputs) > 2 and node.inputs[2]:
        b = require_const(graph, node, 2, "bias B")
        if b.size != channels:
            raise Unsupported(f"bias of {b.size} values for {channels} channels")


@register("Conv")
class Conv(Op):
    fuses_activation = True
    precisions = ("int8", "int16")

    def geometry(self, node, graph) -> dict:
        x, w, kernel, groups = conv_operands(node, graph, "convolution")
        if groups < 1 or x[1] % groups or w.shape[0] % groups or w.shape[1] * groups != x[1]:
            raise Unsupported(f"group {groups} does not divide {x[1]} input and {w.shape[0]} output channels")
        check_bias(node, graph, int(w.shape[0]))
        geo = as_2d(window_geometry(node.attrs, x[2:], kernel), x[2:])
        geo.update(batch=x[0], in_channels=x[1], out_channels=int(w.shape[0]), groups=groups)
        return geo

    def check(self, node, graph):
        self.geometry(node, graph)

    def infer_shapes(self, node, graph):
        geo = self.geometry(node, graph)
        x = shape_of(graph, node.inputs[0])
        return [(x[0], geo["out_channels"]) + tuple(geo["out"][-(len(x) - 2):])]

    def _weights(self, node, graph) -> tuple[np.ndarray, np.ndarray | None]:
        w = graph.const(node.inputs[1]).astype(np.float32)
        b = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        w = w.reshape(w.shape[:2] + (1,) * (4 - w.ndim) + w.shape[2:]) if w.ndim == 3 else w
        return w, None if b is None else np.asarray(b, np.float32).reshape(-1)

    def _convolve(self, x: np.ndarray, w: np.ndarray, geo: dict, pad_value, acc_dtype) -> np.ndarray:
        n, c = x.shape[:2]
        g = geo["groups"]
        x4 = x.reshape(n, c, *geo["in"])
        cols = windows(x4, geo, pad_value).astype(acc_dtype)  # [N, C, KH, KW, OH, OW]
        cols = cols.reshape(n, g, c // g, *cols.shape[2:])
        wg = w.astype(acc_dtype).reshape(g, w.shape[0] // g, *w.shape[1:])
        out = np.einsum("ngcklyx,gockl->ngoyx", cols, wg)
        return out.reshape(n, w.shape[0], *geo["out"])

    def reference(self, node, graph, inputs):
        geo = self.geometry(node, graph)
        w, b = self._weights(node, graph)
        y = self._convolve(np.asarray(inputs[0], np.float32), w, geo, 0.0, np.float32)
        if b is not None:
            y = y + b.reshape(1, -1, 1, 1)
        return [apply_activation(node, y.astype(np.float32)).reshape(shape_of(graph, node.outputs[0]))]

    def reference_in_kernel_order(self, node, graph, inputs):
        """As nn_conv_f32 and nn_conv_dw_f32 sum: the bias, then input channel by input
        channel, kernel row by row, tap by tap, one float32 product and one addition each
        (the padded taps the kernels skip add a zero here, which changes nothing)."""
        geo = self.geometry(node, graph)
        w, b = self._weights(node, graph)
        x = np.asarray(inputs[0], np.float32)
        n, c = x.shape[:2]
        cols = windows(x.reshape(n, c, *geo["in"]), geo, 0.0)  # [N, C, KH, KW, OH, OW]
        cout, group_in = w.shape[:2]
        first = (np.arange(cout) // (cout // geo["groups"])) * group_in  # each output's first input channel
        acc = np.zeros((n, cout, *geo["out"]), np.float32)
        if b is not None:
            acc += b.reshape(1, -1, 1, 1)
        for ic in range(group_in):
            for ky in range(geo["kernel"][0]):
                for kx in range(geo["kernel"][1]):
                    taps = cols[:, ic:ic + 1, ky, kx] if geo["groups"] == 1 else cols[:, first + ic, ky, kx]
                    acc += taps * w[:, ic, ky, kx].reshape(1, -1, 1, 1)
        return [apply_activation(node, acc).reshape(shape_of(graph, node.outputs[0]))]

    def macs(self, node, graph):
        geo = self.geometry(node, graph)
        per_out = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel"])
        return geo["batch"] * geo["out_channels"] * math.prod(geo["out"]) * per_out

    def _params(self, geo: dict) -> dict:
        return {"batch": geo["batch"], "in_channels": geo["in_channels"], "in_h": geo["in"][0], "in_w": geo["in"][1],
                "out_channels": geo["out_channels"], "out_h": geo["out"][0], "out_w": geo["out"][1],
                "groups": geo["groups"], "kernel_h": geo["kernel"][0], "kernel_w": geo["kernel"][1],
                "stride_h": geo["strides"][0], "stride_w": geo["strides"][1], "dilation_h": geo["dilations"][0],
                "dilation_w": geo["dilations"][1], "pad_top": geo["begin"][0], "pad_left": geo["begin"][1]}

    # ---- int8 ----

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        w, b = self._weights(node, graph)
        wq, scales = layer_weights(node, w, b, x.scale)
        bias = quantize_bias(b, x.scale, scales)
        if is_int16(graph, node):  # zero points 0: no offsets
            m0, shift = multipliers(x.scale * scales.astype(np.float64) / y.scale)
            act_min, act_max = y.clamp_range(*activation(node))
            return {"weight": wq, "bias": bias, "multiplier": m0, "shift": shift, "act_min": act_min,
                    "act_max": act_max, "acc64": needs_acc64(wq.reshape(len(wq), -1), bias)}
        bound = np.abs(bias.astype(np.int64)) + 256 * np.abs(wq.astype(np.int64)).reshape(len(wq), -1).sum(axis=1)
        if bound.max(initial=0) >= 2**31:
            raise Unsupported("an int32 accumulator could overflow (bias or reduction too large)")
        m0, shift = multipliers(x.scale * scales.astype(np.float64) / y.scale)
        act_min, act_max = y.clamp_range(*activation(node))
        return {"weight": wq, "bias": bias, "multiplier": m0, "shift": shift, "input_offset": -x.zero_point,
                "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max}

    def sparse_layer(self, node, graph):
        if is_int16(graph, node):  # int16: dense weights only
            return None
        geo, weight = self.geometry(node, graph), node.attrs["q"]["weight"]
        if self._depthwise(geo):
            return "dw", weight.reshape(geo["out_channels"], -1), self._params(geo)
        if geo["groups"] == 1:
            return "conv", weight, self._params(geo)
        return None  # grouped: dense only

    def reference_s8(self, node, graph, inputs):
        geo, q = self.geometry(node, graph), node.attrs["q"]
        if is_int16(graph, node):
            acc = self._convolve(inputs[0].astype(np.int64), q["weight"], geo, 0, np.int64)
            acc = acc + q["bias"].reshape(1, -1, 1, 1)
            y = (output64_s16 if q["acc64"] else output_s16)(acc, q["multiplier"].reshape(1, -1, 1, 1),
                                                             q["shift"].reshape(1, -1, 1, 1), q["act_min"],
                                                             q["act_max"])
            return [y.reshape(shape_of(graph, node.outputs[0]))]
        x = inputs[0].astype(np.int64) + q["input_offset"]
        acc = self._convolve(x, q["weight"], geo, 0, np.int64) + q["bias"].reshape(1, -1, 1, 1)
        y = output_s8(acc, q["multiplier"].reshape(1, -1, 1, 1), q["shift"].reshape(1, -1, 1, 1),
                      q["output_offset"], q["act_min"], q["act_max"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    @staticmethod
    def _depthwise(geo: dict) -> bool:
        """groups == in_channels == out_channels: depthwise with channel multiplier 1."""
        return geo["groups"] == geo["in_channels"] == geo["out_channels"]

    @staticmethod
    def _pointwise(geo: dict) -> bool:
        """A 1x1 convolution, stride 1, no padding, one group: a matrix product per image."""
        return (geo["kernel"] == [1, 1] and geo["strides"] == [1, 1] and geo["begin"] == [0, 0]
                and geo["end"] == [0, 0] and geo["groups"] == 1)

    def inplace_input(self, node, graph):
        # int8 only: the depthwise kernel copies each input plane aside before writing its
        # output plane; the 1x1 kernel copies each column before writing its outputs (the
        # planner checks that the input dies here and that the sizes match)
        if not is_int8(graph, node) or is_sparse(node):  # the sparse kernels read the input throughout
            return None
        geo = self.geometry(node, graph)
        return 0 if self._depthwise(geo) or self._pointwise(geo) else None

    def scratch_bytes(self, node, graph, in_place, features=()):
        if is_int16(graph, node):  # the DSP kernel's column: K int16, K rounded up to even
            geo = self.geometry(node, graph)
            k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel"])
            return 2 * (k + k % 2) if "dsp" in features else 0
        if not is_int8(graph, node):
            return 0
        geo = self.geometry(node, graph)
        if is_sparse(node):
            return sparse.scratch_bytes("dw" if self._depthwise(geo) else "conv", self._params(geo))
        if self._depthwise(geo):  # the padded input plane (nn_conv.h)
            padded = any(geo["begin"]) or any(geo["end"])
            span = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in
                    zip(geo["out"], geo["strides"], geo["kernel"], geo["dilations"])]
            if "dsp" in features:  # the DSP kernel's rows: word multiples, 4 bytes longer at least
                span[1] = (span[1] + 7) // 4 * 4
            return math.prod(span) if padded or in_place else 0
        column = 2 * geo["in_channels"] // geo["groups"] * math.prod(geo["kernel"])  # int16 per tap
        if "dsp" in features:  # two positions at a time, and rows of K not a multiple of 4 copied as words
            k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel"])
            return 2 * column + (geo["out_channels"] * (k + 3) // 4 * 4 if k % 4 else 0)
        return column if in_place else 0  # otherwise the portable kernel reads the input directly

    def kernels(self, node, graph):
        geo = self.geometry(node, graph)
        if is_int16(graph, node):
            q = node.attrs["q"]
            name = "nn_conv_acc64_s16" if q["acc64"] else "nn_conv_s16"
            params = {"g": self._params(geo), "act_min": q["act_min"], "act_max": q["act_max"]}
            return [KernelCall(name, (f"src/conv/{name}.c",), "nn_conv_s16_params", params,
                               [node.inputs[0], Const(q["weight"].reshape(geo["out_channels"], -1), "w"),
                                Const(q["bias"], "b"), Const(q["multiplier"], "m"),
                                Const(q["shift"].astype(np.int8), "s"), Scratch("int16_t"), node.outputs[0]])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {"g": self._params(geo), "input_offset": q["input_offset"], "output_offset": q["output_offset"],
                      "act_min": q["act_min"], "act_max": q["act_max"]}
            tables = [Const(q["bias"], "b"), Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s")]
            rows = q["weight"].reshape(geo["out_channels"], -1)
            if is_sparse(node):
                kind, weight, _ = self.sparse_layer(node, graph)
                encoding = node.attrs["encoding"].encoding
                function, source, params_type = sparse.sparse_kernel(kind)
                scratch = [Scratch("int8_t")] if kind == "dw" else []
                return [KernelCall(function, (source,), params_type, sparse.sparse_params(kind, params, encoding),
                                   [node.inputs[0], *sparse_tables(weight, encoding), *tables, *scratch,
                                    node.outputs[0]])]
            if self._depthwise(geo):
                return [KernelCall("nn_conv_dw_s8", ("src/conv/nn_conv_dw_s8.c",), "nn_conv_s8_params", params,
                                   [node.inputs[0], Const(rows, "w"), *tables, Scratch("int8_t"), node.outputs[0]])]
            return [KernelCall("nn_conv_s8", ("src/conv/nn_conv_s8.c",), "nn_conv_s8_params", params,
                               [node.inputs[0], Const(rows, "w"), *tables, Scratch("int16_t"),
                                node.outputs[0]])]
        w, b = self._weights(node, graph)
        lo, hi = activation(node)
        params = {"g": self._params(geo), "act_min": float(lo), "act_max": float(hi)}
        # depthwise with channel multiplier 1: a loop without the group bookkeeping
        name = "nn_conv_dw_f32" if self._depthwise(geo) else "nn_conv_f32"
        return [KernelCall(name, (f"src/conv/{name}.c",), "nn_conv_f32_params", params,
                           [node.inputs[0], Const(w, "w"), None if b is None else Const(b, "b"), node.outputs[0]])]
