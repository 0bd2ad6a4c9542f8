"""ConvTranspose, 1-D and 2-D: strides, pads, output_padding, output_shape, auto_pad,
dilations, groups (depthwise included); constant weights and an optional bias.

The kernels gather instead of scattering: output position o (per axis) receives input
position i through tap k when o + pad_begin - k * dilation == i * stride, so every output
is one sum, requantized once in int8, and the 1-D case runs as the 2-D one with H = 1.
These (k, i) pairs of every output row and column are listed at compile time in a small
table, so the kernels neither divide nor test taps that reach no input.
The weights [in_channels, out_channels / groups, kH, kW] are laid out at compile time as
[out_channels][kH][kW][in_channels / groups], the order in which the kernels read them.

Output sizes and padding (the ONNX rule): natural = stride * (in - 1) + output_padding +
(kernel - 1) * dilation + 1. Without output_shape and with auto_pad NOTSET the output is
natural - pad_begin - pad_end. With output_shape (or auto_pad SAME_*, where it is in *
stride) the total padding natural - output_shape is split: SAME_UPPER puts the smaller half
first, NOTSET and SAME_LOWER the larger one; a negative total (an output larger than the
natural one, by less than a stride) leaves outputs that no input reaches at the bias; with
auto_pad SAME_* it is refused (onnxruntime keeps the natural size there, against the spec),
and so is an output_shape a stride or more beyond the natural size. VALID pads nothing.

int8: per-output-channel symmetric weights, int32 bias and per-channel requantization as
Conv's (conv.py), the input zero point added to every input, a fused Relu/Clip as the
output clamp. Float sums run in the kernel's order (reference_in_kernel_order): the bias,
then tap row by tap row, tap by tap, input channel by input channel.
int16 activations (zero points 0): the same sums over int16 inputs in int32
(nn_conv_transpose_s16) or, where |bias| + 32768 * sum |w| could reach 2^31, in int64
(nn_conv_transpose_acc64_s16), as Conv's int16 rule chooses.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output64_s16, output_s8, output_s16
from codegen.ops.base import (Const, KernelCall, Op, activation, apply_activation, is_int8, is_int16, qparams,
                              register, shape_of)
from codegen.ops.conv import check_bias, conv_operands
from codegen.ops.gemm import needs_acc64
from codegen.qparams import layer_weights, multipliers, quantize_bias


def transpose_geometry(attrs: dict, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> dict:
    """Pads (begin), strides, dilations and output sizes of a transposed convolution (ONNX rules)."""
    rank = len(spatial)
    strides = [int(s) for s in attrs.get("strides", [1] * rank)]
    dilations = [int(d) for d in attrs.get("dilations", [1] * rank)]
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * rank)]
    out_pad = [int(p) for p in attrs.get("output_padding", [0] * rank)]
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise Unsupported(f"auto_pad '{auto_pad}' is not supported")
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank or len(out_pad) != rank:
        raise Unsupported("strides, dilations, pads or output_padding do not match the spatial rank")
    if min(strides + dilations + list(kernel)) < 1 or min(pads + out_pad) < 0:
        raise Unsupported("strides, dilations and kernel sizes must be positive, pads and output_padding "
                          "not negative")
    for a in range(rank):
        if out_pad[a] >= max(strides[a], dilations[a]):
            raise Unsupported(f"output_padding {out_pad[a]} must be smaller than the stride or the dilation")
    shape = attrs.get("output_shape")
    if shape is not None:
        shape = [int(s) for s in shape]
        shape = shape[-rank:] if len(shape) == rank + 2 else shape
        if len(shape) != rank or min(shape) < 1:
            raise Unsupported(f"output_shape {list(attrs['output_shape'])} does not give {rank} positive sizes")
    natural = [strides[a] * (spatial[a] - 1) + out_pad[a] + (kernel[a] - 1) * dilations[a] + 1 for a in range(rank)]
    if shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = [spatial[a] * strides[a] for a in range(rank)]
    begin, out = [], []
    for a in range(rank):
        if shape is not None:
            total = natural[a] - shape[a]
            if total < 0 and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                # the spec asks for output in * stride; onnxruntime gives the natural size instead
                raise Unsupported(f"auto_pad {auto_pad} with a negative total padding ({total}) on spatial axis {a}")
            if total < 1 - strides[a]:
                raise Unsupported(f"output_shape {shape[a]} exceeds the natural size {natural[a]} by a stride or more "
                                  f"on spatial axis {a}")
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
            out.append(shape[a])
        elif auto_pad == "VALID":
            begin.append(0)
            out.append(natural[a])
        else:
            begin.append(pads[a])
            out.append(natural[a] - pads[a] - pads[rank + a])
            if out[-1] < 1:
                raise Unsupported(f"pads {pads} leave no output on spatial axis {a}")
    return {"begin": begin, "strides": strides, "dilations": dilations, "out": out, "kernel": list(kernel)}


def tap_sources(out: int, begin: int, stride: int, dilation: int, kernel: int, size: int) -> np.ndarray:
    """[kernel, out] input index that tap k brings to output o, or -1 where none does."""
    t = np.arange(out)[None, :] + begin - np.arange(kernel)[:, None] * dilation
    i = np.where(t % stride == 0, t // stride, -1)
    return np.where((t >= 0) & (i < size), i, -1)


@register("ConvTranspose")
class ConvTranspose(Op):
    fuses_activation = True
    precisions = ("int8", "int16")

    def geometry(self, node, graph) -> dict:
        x, w, kernel, groups = conv_operands(node, graph, "transposed convolution")
        if groups < 1 or x[1] % groups or w.shape[0] != x[1]:
            raise Unsupported(f"group {groups} and weights of {w.shape[0]} input channels do not fit "
                              f"{x[1]} input channels")
        out_channels = int(w.shape[1]) * groups
        check_bias(node, graph, out_channels)
        geo = transpose_geometry(node.attrs, x[2:], kernel)
        if len(x) == 3:
            geo = {"begin": [0] + geo["begin"], "strides": [1] + geo["strides"], "dilations": [1] + geo["dilations"],
                   "out": [1] + geo["out"], "kernel": [1] + geo["kernel"]}
        geo.update(batch=x[0], in_channels=x[1], out_channels=out_channels, groups=groups,
                   **{"in": [1, x[2]] if len(x) == 3 else list(x[2:])})
        return geo

    def check(self, node, graph):
        self.geometry(node, graph)

    def infer_shapes(self, node, graph):
        geo = self.geometry(node, graph)
        x = shape_of(graph, node.inputs[0])
        return [(x[0], geo["out_channels"]) + tuple(geo["out"][-(len(x) - 2):])]

    def _weights(self, node, graph, geo) -> tuple[np.ndarray, np.ndarray | None]:
        """Weights in the kernels' layout [out_channels, kH, kW, in_channels / groups] and the bias."""
        w = graph.const(node.inputs[1]).astype(np.float32)
        w = w.reshape(w.shape[:2] + tuple(geo["kernel"]))  # 1-D: kH = 1
        g = geo["groups"]
        gin, gout = w.shape[0] // g, w.shape[1]
        wk = w.reshape(g, gin, gout, *geo["kernel"]).transpose(0, 2, 3, 4, 1).reshape(g * gout, *geo["kernel"], gin)
        b = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        return np.ascontiguousarray(wk), None if b is None else np.asarray(b, np.float32).reshape(-1)

    def _taps(self, geo) -> list[np.ndarray]:
        return [tap_sources(geo["out"][a], geo["begin"][a], geo["strides"][a], geo["dilations"][a],
                            geo["kernel"][a], geo["in"][a]) for a in range(2)]

    def _gather_sum(self, x: np.ndarray, wk: np.ndarray, geo: dict, acc: np.ndarray) -> np.ndarray:
        """acc[n, oc, oy, ox] += sum in kernel order over ky, kx, ic of x[.., ic, iy, ix] * wk[oc, ky, kx, ic]."""
        n = x.shape[0]
        g, gin = geo["groups"], wk.shape[3]
        gout = wk.shape[0] // g
        xg = x.reshape(n, g, gin, *geo["in"])
        rows, cols = self._taps(geo)
        acc = acc.reshape(n, g, gout, *geo["out"])
        wg = wk.reshape(g, gout, *wk.shape[1:])
        zero = np.zeros((), acc.dtype)
        for ky in range(geo["kernel"][0]):
            if (rows[ky] < 0).all():
                continue
            for kx in range(geo["kernel"][1]):
                if (cols[kx] < 0).all():
                    continue
                valid = (rows[ky] >= 0)[:, None] & (cols[kx] >= 0)[None, :]
                taps = xg[:, :, :, np.maximum(rows[ky], 0)[:, None], np.maximum(cols[kx], 0)[None, :]]
                for ic in range(gin):
                    prod = taps[:, :, ic:ic + 1] * wg[None, :, :, ky, kx, ic, None, None]
                    acc += np.where(valid, prod, zero)
        return acc.reshape(n, g * gout, *geo["out"])

    def reference(self, node, graph, inputs):
        return self.reference_in_kernel_order(node, graph, inputs)

    def reference_in_kernel_order(self, node, graph, inputs):
        """As nn_conv_transpose_f32 sums: the bias, then tap row by row, tap by tap, input channel
        by input channel of the output's group, one float32 product and one addition each."""
        geo = self.geometry(node, graph)
        wk, b = self._weights(node, graph, geo)
        x = np.asarray(inputs[0], np.float32)
        acc = np.zeros((x.shape[0], geo["out_channels"], *geo["out"]), np.float32)
        if b is not None:
            acc += b.reshape(1, -1, 1, 1)
        y = self._gather_sum(x.reshape(x.shape[0], x.shape[1], *geo["in"]), wk, geo, acc)
        return [apply_activation(node, y).reshape(shape_of(graph, node.outputs[0]))]

    def macs(self, node, graph):
        geo = self.geometry(node, graph)
        rows, cols = self._taps(geo)
        hits = int((rows >= 0).sum()) * int((cols >= 0).sum())  # (output, tap) pairs that reach an input
        return geo["batch"] * geo["out_channels"] * geo["in_channels"] // geo["groups"] * hits

    def _params(self, geo: dict) -> dict:
        return {"batch": geo["batch"], "in_channels": geo["in_channels"], "in_h": geo["in"][0], "in_w": geo["in"][1],
                "out_channels": geo["out_channels"], "out_h": geo["out"][0], "out_w": geo["out"][1],
                "groups": geo["groups"], "kernel_h": geo["kernel"][0], "kernel_w": geo["kernel"][1],
                "stride_h": geo["strides"][0], "stride_w": geo["strides"][1], "dilation_h": geo["dilations"][0],
                "dilation_w": geo["dilations"][1], "pad_top": geo["begin"][0], "pad_left": geo["begin"][1]}

    # ---- int8 ----

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        geo = self.geometry(node, graph)
        w, b = self._weights(node, graph, geo)
        wq, scales = layer_weights(node, w, b, x.scale)
        bias = quantize_bias(b, x.scale, scales)
        if y.bits == 16:  # zero points 0: no offsets
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

    def reference_s8(self, node, graph, inputs):
        geo, q = self.geometry(node, graph), node.attrs["q"]
        x = inputs[0].astype(np.int64) + q.get("input_offset", 0)
        acc = np.zeros((x.shape[0], geo["out_channels"], *geo["out"]), np.int64) + q["bias"].reshape(1, -1, 1, 1)
        acc = self._gather_sum(x.reshape(x.shape[0], x.shape[1], *geo["in"]), q["weight"].astype(np.int64), geo, acc)
        if is_int16(graph, node):
            y = (output64_s16 if q["acc64"] else output_s16)(acc, q["multiplier"].reshape(1, -1, 1, 1),
                                                             q["shift"].reshape(1, -1, 1, 1), q["act_min"], q["act_max"])
            return [y.reshape(shape_of(graph, node.outputs[0]))]
        y = output_s8(acc, q["multiplier"].reshape(1, -1, 1, 1), q["shift"].reshape(1, -1, 1, 1),
                      q["output_offset"], q["act_min"], q["act_max"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    def _tap_table(self, geo) -> np.ndarray:
        """The (tap, input position) pairs of every output row and column (nn_conv.h)."""
        index, pairs = [], []
        for sources in self._taps(geo):  # [kernel, out]
            valid = (sources >= 0).T  # [out, kernel]
            index.append(np.concatenate([[0], np.cumsum(valid.sum(axis=1))]))
            k = np.nonzero(valid)[1]  # row-major: by output, then ascending tap
            pairs.append(np.stack([k, sources.T[valid]], axis=1).reshape(-1))
        return np.concatenate(index + pairs).astype(np.int32)

    def kernels(self, node, graph):
        geo = self.geometry(node, graph)
        taps = Const(self._tap_table(geo), "taps")
        if is_int16(graph, node):
            q = node.attrs["q"]
            name = "nn_conv_transpose_acc64_s16" if q["acc64"] else "nn_conv_transpose_s16"
            params = {"g": self._params(geo), "act_min": q["act_min"], "act_max": q["act_max"]}
            return [KernelCall(name, (f"src/conv/{name}.c",), "nn_conv_s16_params",
                               params, [node.inputs[0], Const(q["weight"], "w"), Const(q["bias"], "b"),
                                        Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s"),
                                        taps, node.outputs[0]])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {"g": self._params(geo), "input_offset": q["input_offset"], "output_offset": q["output_offset"],
                      "act_min": q["act_min"], "act_max": q["act_max"]}
            return [KernelCall("nn_conv_transpose_s8", ("src/conv/nn_conv_transpose_s8.c",), "nn_conv_s8_params",
                               params, [node.inputs[0], Const(q["weight"], "w"), Const(q["bias"], "b"),
                                        Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s"),
                                        taps, node.outputs[0]])]
        w, b = self._weights(node, graph, geo)
        lo, hi = activation(node)
        params = {"g": self._params(geo), "act_min": float(lo), "act_max": float(hi)}
        return [KernelCall("nn_conv_transpose_f32", ("src/conv/nn_conv_transpose_f32.c",), "nn_conv_f32_params",
                           params, [node.inputs[0], Const(w, "w"), None if b is None else Const(b, "b"), taps,
                                    node.outputs[0]])]

