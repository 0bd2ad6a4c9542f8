"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (1-D as H = 1, and 2-D).

ceil_mode, count_include_pad, dilations and auto_pad follow the ONNX rules of
conv.window_geometry. int8 and int16 keep the input's scale and zero point; the average rounds
half away from zero. int16 (zero point 0) sums a window in int32: at most 65535 cells.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import KernelCall, Op, is_int8, is_int16, register, shape_of
from codegen.ops.conv import as_2d, window_geometry, windows

MAX_S16_WINDOW = 65535  # cells: 65535 * 32768 plus half of 65535 stays inside int32


@register("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
class Pool(Op):
    keeps_qparams = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16" and not self._is_max(node):
            return math.prod(self.geometry(node, graph)["kernel"]) <= MAX_S16_WINDOW
        return precision in self.precisions

    def geometry(self, node, graph) -> dict:
        x = shape_of(graph, node.inputs[0])
        if len(x) not in (3, 4):
            raise Unsupported(f"{len(x) - 2}-D pooling is not supported (1-D and 2-D are)")
        if node.op_type.startswith("Global"):
            geo = window_geometry({}, x[2:], x[2:])
        else:
            if node.op_type == "MaxPool" and len(node.outputs) > 1 and node.outputs[1]:
                raise Unsupported("the Indices output is not supported")
            kernel = tuple(int(k) for k in node.attrs.get("kernel_shape", ()))
            if len(kernel) != len(x) - 2:
                raise Unsupported(f"kernel_shape {list(kernel)} does not match the input rank {len(x)}")
            geo = window_geometry(node.attrs, x[2:], kernel, bool(node.attrs.get("ceil_mode", 0)))
        geo = as_2d(geo, x[2:])
        geo["planes"] = x[0] * x[1]
        geo["include_pad"] = int(node.attrs.get("count_include_pad", 0))
        return geo

    def counts(self, geo: dict) -> np.ndarray:
        """[OH, OW] cells per window that count in an average (nn_pool_count)."""
        per_axis = []
        for a in range(2):
            lo, hi = (-geo["begin"][a], geo["in"][a] + geo["end"][a]) if geo["include_pad"] else (0, geo["in"][a])
            pos = (np.arange(geo["out"][a])[:, None] * geo["strides"][a] - geo["begin"][a]
                   + np.arange(geo["kernel"][a])[None, :] * geo["dilations"][a])
            per_axis.append(((pos >= lo) & (pos < hi)).sum(axis=1))
        return per_axis[0][:, None] * per_axis[1][None, :]

    def check(self, node, graph):
        geo = self.geometry(node, graph)
        if str(node.attrs.get("auto_pad", "NOTSET")).startswith("SAME"):
            # the spec's total padding (out - 1) * stride + extent - in is negative here: onnx.reference
            # crops the input, onnxruntime refuses the model; neither is a padding
            for a in range(2):
                extent = (geo["kernel"][a] - 1) * geo["dilations"][a] + 1
                if (geo["out"][a] - 1) * geo["strides"][a] + extent < geo["in"][a]:
                    raise Unsupported("auto_pad SAME with a stride larger than the window (negative padding)")
        # a window with no input cell has no maximum, and no average unless pad cells count
        counted = geo if not self._is_max(node) else {**geo, "include_pad": 0}
        if self.counts(counted).min() == 0:
            raise Unsupported("a window lies entirely in the padding")

    def infer_shapes(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        geo = self.geometry(node, graph)
        return [tuple(x[:2]) + tuple(geo["out"][-(len(x) - 2):])]

    def _windows(self, x: np.ndarray, geo: dict, pad_value) -> np.ndarray:
        n, c = x.shape[:2]
        return windows(x.reshape(n, c, *geo["in"]), geo, pad_value)

    def _is_max(self, node) -> bool:
        return node.op_type in ("MaxPool", "GlobalMaxPool")

    def reference(self, node, graph, inputs):
        geo = self.geometry(node, graph)
        x = np.asarray(inputs[0], np.float32)
        if self._is_max(node):
            y = self._windows(x, geo, -np.inf).max(axis=(2, 3))
        else:  # summed tap by tap in the kernel's order, so C and NumPy give the same bits (a QDQ
            # model's FakeQuantize after an average of quantized values often meets an exact tie)
            cols = self._windows(x, geo, 0.0)
            acc = np.zeros(cols.shape[:2] + cols.shape[4:], np.float32)
            for ky in range(cols.shape[2]):
                for kx in range(cols.shape[3]):
                    acc += cols[:, :, ky, kx]
            y = acc / self.counts(geo).astype(np.float32)
        return [y.astype(np.float32).reshape(shape_of(graph, node.outputs[0]))]

    def macs(self, node, graph):
        geo = self.geometry(node, graph)
        return geo["planes"] * math.prod(geo["out"]) * math.prod(geo["kernel"])

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        quant = graph.tensors[node.inputs[0]].quant
        if quant.bits == 16 and not self._is_max(node):
            cells = math.prod(self.geometry(node, graph)["kernel"])
            if cells > MAX_S16_WINDOW:
                raise Unsupported(f"an int16 average over {cells} cells could overflow its int32 sum "
                                  f"(at most {MAX_S16_WINDOW})")
        return {"zero_point": quant.zero_point}

    def reference_s8(self, node, graph, inputs):
        geo = self.geometry(node, graph)
        x = inputs[0].astype(np.int64)
        if is_int16(graph, node):  # zero point 0
            if self._is_max(node):
                y = self._windows(x, geo, -32768).max(axis=(2, 3))
            else:
                acc = self._windows(x, geo, 0).sum(axis=(2, 3))
                count = self.counts(geo)
                y = np.where(acc >= 0, (acc + count // 2) // count, -((-acc + count // 2) // count))
            return [np.clip(y, -32768, 32767).astype(np.int16).reshape(shape_of(graph, node.outputs[0]))]
        if self._is_max(node):
            y = self._windows(x, geo, -128).max(axis=(2, 3))
        else:
            zp = node.attrs["q"]["zero_point"]
            acc = self._windows(x - zp, geo, 0).sum(axis=(2, 3))
            count = self.counts(geo)
            y = np.where(acc >= 0, (acc + count // 2) // count, -((-acc + count // 2) // count)) + zp
        return [np.clip(y, -128, 127).astype(np.int8).reshape(shape_of(graph, node.outputs[0]))]

    def kernels(self, node, graph):
        geo = self.geometry(node, graph)
        params = {"planes": geo["planes"], "in_h": geo["in"][0], "in_w": geo["in"][1], "out_h": geo["out"][0],
                  "out_w": geo["out"][1], "kernel_h": geo["kernel"][0], "kernel_w": geo["kernel"][1],
                  "stride_h": geo["strides"][0], "stride_w": geo["strides"][1], "dilation_h": geo["dilations"][0],
                  "dilation_w": geo["dilations"][1], "pad_top": geo["begin"][0], "pad_left": geo["begin"][1],
                  "pad_bottom": geo["end"][0], "pad_right": geo["end"][1], "count_include_pad": geo["include_pad"]}
        kind = "maxpool" if self._is_max(node) else "avgpool"
        dtype = "s8" if is_int8(graph, node) else "s16" if is_int16(graph, node) else "f32"
        name = f"nn_{kind}_{dtype}"
        params_type = "nn_pool_params"
        if name == "nn_avgpool_s8":
            params, params_type = {"pool": params, "zero_point": node.attrs["q"]["zero_point"]}, "nn_avgpool_s8_params"
        return [KernelCall(name, (f"src/pool/{name}.c",), params_type, params, [node.inputs[0], node.outputs[0]])]
