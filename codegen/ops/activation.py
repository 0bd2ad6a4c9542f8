"""Elementwise activations: Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish.

Float: one kernel per function (nn_clamp_f32 for Relu and Clip, nn_leaky_relu_f32,
nn_sigmoid_f32, nn_tanh_f32, nn_hard_sigmoid_f32, nn_hard_swish_f32), in place, so a model
links only the math it uses.
int8: every one is a 256-entry table built at compile time: for each int8 input q,
table[q + 128] = quantize_out(f(dequantize_in(q))), so the kernel is one lookup and the
C equals the NumPy reference by construction.
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import KernelCall, Const, Op, is_int8, qparams, register, shape_of

FLOAT_KERNELS = {"Sigmoid": "nn_sigmoid_f32", "Tanh": "nn_tanh_f32", "HardSwish": "nn_hard_swish_f32"}


def clip_bounds(node, graph) -> tuple[float, float]:
    """Clip's bounds: attributes before opset 11, optional constant inputs after."""
    if node.op_type == "Relu":
        return 0.0, np.inf
    lo, hi = float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))
    for index, which in ((1, "min"), (2, "max")):
        if len(node.inputs) > index and node.inputs[index]:
            value = graph.const(node.inputs[index])
            if value is None:
                raise Unsupported(f"{which} must be a constant")
            if value.size != 1 or value.ndim > 1:
                raise Unsupported(f"{which} must be a scalar; it has shape {value.shape}")
            if index == 1:
                lo = float(value.reshape(-1)[0])
            else:
                hi = float(value.reshape(-1)[0])
    if np.isnan(lo) or np.isnan(hi):
        raise Unsupported("min and max must not be NaN")
    return lo, hi


def _coefficients(node) -> tuple[float, float]:
    if node.op_type == "LeakyRelu":
        return float(node.attrs.get("alpha", 0.01)), 0.0
    if node.op_type == "HardSigmoid":
        return float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))
    return 0.0, 0.0


def evaluate(node, graph, x: np.ndarray) -> np.ndarray:
    """The function in float32, in the same order of operations as the float kernels."""
    x = np.asarray(x, np.float32)
    alpha, beta = (np.float32(v) for v in _coefficients(node))
    t = node.op_type
    with np.errstate(over="ignore"):
        if t in ("Relu", "Clip"):
            lo, hi = clip_bounds(node, graph)
            return np.minimum(np.maximum(x, np.float32(lo)), np.float32(hi))
        if t == "LeakyRelu":
            return np.where(x >= 0, x, alpha * x)
        if t == "Sigmoid":
            e = np.exp(-np.abs(x))
            return np.where(x >= 0, np.float32(1) / (np.float32(1) + e), e / (np.float32(1) + e))
        if t == "Tanh":
            return np.tanh(x)
        if t == "HardSigmoid":
            return np.clip(alpha * x + beta, np.float32(0), np.float32(1))
        y = np.clip(x / np.float32(6) + np.float32(0.5), np.float32(0), np.float32(1))
        return x * y


@register("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish")
class Activation(Op):
    def check(self, node, graph):
        if node.op_type == "Clip":
            clip_bounds(node, graph)

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        return [evaluate(node, graph, inputs[0]).astype(np.float32)]

    def inplace_input(self, node, graph):
        return 0

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        q = np.arange(-128, 128)
        real = evaluate(node, graph, x.dequantize(q))
        return {"table": y.quantize(real)}

    def reference_s8(self, node, graph, inputs):
        return [node.attrs["q"]["table"][inputs[0].astype(np.int32) + 128]]

    def kernels(self, node, graph):
        size = graph.tensors[node.outputs[0]].size
        if is_int8(graph, node):
            return [KernelCall("nn_lut_s8", ("src/activation/nn_lut_s8.c",), "nn_lut_s8_params", {"size": size},
                               [node.inputs[0], Const(node.attrs["q"]["table"], "lut"), node.outputs[0]])]
        name, params_type, params = self._float_kernel(node, graph)
        return [KernelCall(name, (f"src/activation/{name}.c",), params_type, {"size": size, **params},
                           [node.inputs[0], node.outputs[0]])]

    def _float_kernel(self, node, graph) -> tuple[str, str, dict]:
        """The float32 function of each op: (kernel, params struct, coefficients)."""
        t = node.op_type
        alpha, beta = _coefficients(node)
        if t in ("Relu", "Clip"):
            lo, hi = clip_bounds(node, graph)
            return "nn_clamp_f32", "nn_clamp_f32_params", {"lo": lo, "hi": hi}
        if t == "LeakyRelu":
            return "nn_leaky_relu_f32", "nn_leaky_relu_f32_params", {"alpha": alpha}
        if t == "HardSigmoid":
            return "nn_hard_sigmoid_f32", "nn_hard_sigmoid_f32_params", {"alpha": alpha, "beta": beta}
        return FLOAT_KERNELS[t], "nn_unary_f32_params", {}
