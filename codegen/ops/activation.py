"""Elementwise activations and unary functions: Relu, LeakyRelu, Clip, Sigmoid, Tanh,
HardSigmoid, HardSwish, Elu, Selu, Exp, Log, Sqrt, Reciprocal, Abs, Neg, Erf, Softplus,
Gelu (opset 20, approximate "none" and "tanh") and Mish.

Float: one kernel per function (nn_clamp_f32 for Relu and Clip, nn_leaky_relu_f32,
nn_sigmoid_f32, nn_tanh_f32, nn_hard_sigmoid_f32, nn_hard_swish_f32, nn_elu_f32,
nn_selu_f32, nn_exp_f32, nn_log_f32, nn_sqrt_f32, nn_reciprocal_f32, nn_abs_f32, nn_neg_f32,
nn_erf_f32, nn_softplus_f32, nn_gelu_f32, nn_gelu_tanh_f32, nn_mish_f32), in place, so a model
links only the math it uses. Outside its domain a function gives NaN or Inf in float, as
ONNX and NumPy do (Log of a negative number, Reciprocal of zero).
int8: every one is a 256-entry table built at compile time: for each int8 input q,
table[q + 128] = quantize_out(f(dequantize_in(q))), so the kernel is one lookup and the
C equals the NumPy reference by construction. An infinite entry saturates (Log of 0 is -128,
Reciprocal of 0 is 127); a NaN entry (an input level outside the domain) is refused, and a
calibration that reaches NaN or Inf is refused before the table is built.
int16 (symmetric, zero point 0): Relu, Clip and LeakyRelu rescale with one multiplier per sign
and clamp (nn_leaky_relu_s16); the other functions read a 513-entry table with linear
interpolation (TFLite's 16-bit scheme, lut16.py). Log, Sqrt and Reciprocal stay int8: a
symmetric int16 input always reaches the levels where they are undefined or infinite, which no
interpolated table can follow.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import quantize_multiplier, requantize
from codegen.ops import lut16
from codegen.ops.base import KernelCall, Const, Op, is_int8, is_int16, qparams, register, shape_of

FLOAT_KERNELS = {"Sigmoid": "nn_sigmoid_f32", "Tanh": "nn_tanh_f32", "HardSwish": "nn_hard_swish_f32",
                 "Exp": "nn_exp_f32", "Log": "nn_log_f32", "Sqrt": "nn_sqrt_f32", "Reciprocal": "nn_reciprocal_f32",
                 "Abs": "nn_abs_f32", "Neg": "nn_neg_f32", "Erf": "nn_erf_f32", "Softplus": "nn_softplus_f32",
                 "Mish": "nn_mish_f32"}
SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


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
    if node.op_type == "Elu":
        return float(node.attrs.get("alpha", 1.0)), 0.0
    if node.op_type == "Selu":
        return float(node.attrs.get("alpha", SELU_ALPHA)), float(node.attrs.get("gamma", SELU_GAMMA))
    return 0.0, 0.0


def _gelu_approximation(node) -> str:
    approximate = node.attrs.get("approximate", "none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else str(approximate)
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate must be 'none' or 'tanh', not '{approximate}'")
    return approximate


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float32 (NumPy has none): each element through math.erf, rounded once."""
    x = np.asarray(x, np.float32)
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)).astype(np.float32).reshape(x.shape)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) as log1p(exp(-|x|)) plus x where x > 0, so exp never overflows."""
    e = np.log1p(np.exp(-np.abs(x)))
    return np.where(x > 0, x + e, e)


def lut_quantize(node, graph, function, undefined: str) -> dict:
    """The int8 rule of a unary function: table[q + 128] = quantize_out(function(dequantize_in(q)))
    for the 256 input levels q; a level where the function is NaN is refused, naming it."""
    x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
    levels = x.dequantize(np.arange(-128, 128))
    real = function(levels)
    if np.isnan(real).any():
        level = float(levels[np.isnan(real)][0])
        raise Unsupported(f"its int8 table is undefined: the input level {level:g} {undefined} (NaN)")
    return {"table": y.quantize(real)}


def lut_reference(node, inputs) -> list[np.ndarray]:
    return [node.attrs["q"]["table"][inputs[0].astype(np.int32) + 128]]


def lut_kernel(node, graph) -> KernelCall:
    """nn_lut_s8 over the node's 256-entry table (lut_quantize)."""
    return KernelCall("nn_lut_s8", ("src/activation/nn_lut_s8.c",), "nn_lut_s8_params",
                      {"size": graph.tensors[node.outputs[0]].size},
                      [node.inputs[0], Const(node.attrs["q"]["table"], "lut"), node.outputs[0]])


def evaluate(node, graph, x: np.ndarray) -> np.ndarray:
    """The function in float32, in the same order of operations as the float kernels."""
    x = np.asarray(x, np.float32)
    alpha, beta = (np.float32(v) for v in _coefficients(node))
    t = node.op_type
    f32 = np.float32
    with np.errstate(all="ignore"):
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
        if t == "Elu":
            return np.where(x >= 0, x, alpha * (np.exp(x) - f32(1)))
        if t == "Selu":
            return np.where(x > 0, beta * x, beta * (alpha * np.exp(x) - alpha))
        if t == "Exp":
            return np.exp(x)
        if t == "Log":
            return np.log(x)
        if t == "Sqrt":
            return np.sqrt(x)
        if t == "Reciprocal":
            return f32(1) / x
        if t == "Abs":
            return np.abs(x)
        if t == "Neg":
            return -x
        if t == "Erf":
            return _erf(x)
        if t == "Softplus":
            return _softplus(x)
        if t == "Mish":
            return x * np.tanh(_softplus(x))
        if t == "Gelu":
            if _gelu_approximation(node) == "none":
                return f32(0.5) * x * (f32(1) + _erf(x * f32(0.70710678118654752)))
            inner = f32(0.79788456080286536) * (x + f32(0.044715) * x * x * x)
            return f32(0.5) * x * (f32(1) + np.tanh(inner))
        y = np.clip(x / np.float32(6) + np.float32(0.5), np.float32(0), np.float32(1))
        return x * y


RESCALED_S16 = ("Relu", "Clip", "LeakyRelu")  # int16 through nn_leaky_relu_s16, the others a 513-entry table


@register("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Exp", "Abs",
          "Neg", "Erf", "Softplus", "Gelu", "Mish")
class Activation(Op):
    precisions = ("int8", "int16")

    def check(self, node, graph):
        if node.op_type == "Clip":
            clip_bounds(node, graph)
        if node.op_type == "Gelu":
            _gelu_approximation(node)

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        return [evaluate(node, graph, inputs[0]).astype(np.float32)]

    def inplace_input(self, node, graph):
        return 0

    def params_count(self, node, graph):
        return 0

    def quantize(self, node, graph):
        function = lambda real: evaluate(node, graph, real)  # noqa: E731
        if qparams(graph, node.outputs[0]).bits != 16:
            return lut_quantize(node, graph, function, "is outside the function's domain")
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        if node.op_type not in RESCALED_S16:
            return {"table16": lut16.table(x, y, function)}
        lo, hi = clip_bounds(node, graph) if node.op_type != "LeakyRelu" else (-np.inf, np.inf)
        pos = quantize_multiplier(x.scale / y.scale)
        alpha = _coefficients(node)[0] if node.op_type == "LeakyRelu" else 1.0
        m0, shift = quantize_multiplier(abs(alpha) * x.scale / y.scale)
        act_min, act_max = y.clamp_range(lo, hi)
        return {"pos_multiplier": pos[0], "pos_shift": pos[1], "neg_multiplier": m0 if alpha >= 0 else -m0,
                "neg_shift": shift, "act_min": act_min, "act_max": act_max}

    def reference_s8(self, node, graph, inputs):
        if not is_int16(graph, node):
            return lut_reference(node, inputs)
        q = node.attrs["q"]
        if "table16" in q:
            return [lut16.lookup(q["table16"], inputs[0])]
        x = inputs[0].astype(np.int64)
        y = np.where(x >= 0, requantize(x, q["pos_multiplier"], q["pos_shift"]),
                     requantize(x, q["neg_multiplier"], q["neg_shift"]))
        return [np.clip(y, q["act_min"], q["act_max"]).astype(np.int16)]

    def kernels(self, node, graph):
        size = graph.tensors[node.outputs[0]].size
        if is_int8(graph, node):
            return [lut_kernel(node, graph)]
        if is_int16(graph, node):
            q = node.attrs["q"]
            if "table16" in q:
                return [lut16.kernel(node, graph, q["table16"])]
            keys = ("pos_multiplier", "pos_shift", "neg_multiplier", "neg_shift", "act_min", "act_max")
            return [KernelCall("nn_leaky_relu_s16", ("src/activation/nn_leaky_relu_s16.c",),
                               "nn_leaky_relu_s16_params", {"size": size, **{k: q[k] for k in keys}},
                               [node.inputs[0], node.outputs[0]])]
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
        if t == "Elu":
            return "nn_elu_f32", "nn_elu_f32_params", {"alpha": alpha}
        if t == "Selu":
            return "nn_selu_f32", "nn_selu_f32_params", {"alpha": alpha, "gamma": beta}
        if t == "Gelu":
            name = "nn_gelu_f32" if _gelu_approximation(node) == "none" else "nn_gelu_tanh_f32"
            return name, "nn_unary_f32_params", {}
        return FLOAT_KERNELS[t], "nn_unary_f32_params", {}


@register("Log", "Sqrt", "Reciprocal")
class DomainActivation(Activation):
    """The functions with levels outside their domain (NaN) or at a pole: int8 tables only."""

    precisions = ("int8",)
