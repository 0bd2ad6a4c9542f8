"""FakeQuantize: a QuantizeLinear -> DequantizeLinear pair on an activation, kept in float.

A QDQ model (onnxruntime's quantize_static) states each activation's quantization with such
a pair; float mode must keep what the pair computes, or the model changes: the quantizer
drops a Relu before a pair whose zero point is the range's minimum, and the clamp is then
the Relu. The frontend makes every pair one node (frontend/importer.py); int8 mode turns it
back into the tensor's scale and zero point (frontend/qdq.py).

Inputs: x, scale (float32, one value or one per channel along `axis`), zero point (same
size; absent: 0). Attributes: `axis` (normalized, or None per tensor), `qmin`, `qmax` (the
integer type's range: uint8 0..255, int8 -128..127, uint16, int16).

    y = (clamp(rint(x / s) + zp, qmin, qmax) - zp) * s          in float32

which is onnx.reference's QuantizeLinear (x / s in float32, round half to even, add the zero
point, saturate) followed by its DequantizeLinear ((q - zp) * s in float32), except that a
quotient beyond the int32 range saturates as the spec says (onnx.reference converts it to
int32 first, which wraps on some CPUs). Every step is exact or one IEEE float32 rounding, so
the float kernel (runtime_c/src/quantize/nn_fake_quantize_f32.c) gives the same bits. NaN
stays NaN (the clamp's comparisons are false for it, as in the kernel).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import Unsupported
from codegen.ops.base import Const, KernelCall, Op, register, shape_of

INTEGER_RANGES = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767)}


def tables(node, graph) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) as float32 vectors of one value or one per channel."""
    scale = np.asarray(graph.const(node.inputs[1]), np.float32).reshape(-1)
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zp = np.zeros_like(scale) if not zp_name else np.asarray(graph.const(zp_name)).astype(np.float32).reshape(-1)
    return scale, zp


def geometry(node, graph) -> tuple[int, int, int]:
    """(outer, channels, inner): the tensor as [outer, channels, inner] around `axis`."""
    shape = shape_of(graph, node.inputs[0])
    axis = node.attrs.get("axis")
    if axis is None:
        return 1, 1, int(np.prod(shape, dtype=np.int64))
    return (int(np.prod(shape[:axis], dtype=np.int64)), int(shape[axis]),
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def fake_quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, qmin: float, qmax: float) -> np.ndarray:
    """The float32 arithmetic of the kernel; `scale` and `zp` broadcast against x."""
    x = np.asarray(x, np.float32)
    s, z = np.asarray(scale, np.float32), np.asarray(zp, np.float32)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        v = np.rint(x / s) + z
    v = np.where(v < np.float32(qmin), np.float32(qmin), v)
    v = np.where(v > np.float32(qmax), np.float32(qmax), v)
    return ((v - z) * s).astype(np.float32)


def near_tie(node, graph, x: np.ndarray, steps: float) -> np.ndarray:
    """Where x / s lies within `steps` quantization steps of a rounding tie (k + 1/2): there
    two float computations of x that differ in the last bits (sums in another order) may
    round to neighbouring steps, both right."""
    scale, _ = tables(node, graph)
    outer, channels, inner = geometry(node, graph)
    t = np.asarray(x, np.float64).reshape(outer, channels, inner) / scale.astype(np.float64).reshape(1, -1, 1)
    with np.errstate(invalid="ignore"):
        return (np.abs(t - np.floor(t) - 0.5) <= steps).reshape(np.shape(x))


@register("FakeQuantize")
class FakeQuantize(Op):
    internal = True  # made by the frontend from a Q/DQ pair; not an ONNX operator

    def check(self, node, graph):
        scale, _ = tables(node, graph)
        channels = geometry(node, graph)[1]
        if scale.size != channels:
            raise Unsupported(f"{scale.size} scales for {channels} channels")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise Unsupported("scales must be finite and > 0")

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def reference(self, node, graph, inputs):
        scale, zp = tables(node, graph)
        outer, channels, inner = geometry(node, graph)
        x = np.asarray(inputs[0], np.float32).reshape(outer, channels, inner)
        y = fake_quantize(x, scale.reshape(1, -1, 1), zp.reshape(1, -1, 1), node.attrs["qmin"], node.attrs["qmax"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    def inplace_input(self, node, graph):
        return 0

    def params_count(self, node, graph):
        return 0

    def kernels(self, node, graph):
        scale, zp = tables(node, graph)
        outer, channels, inner = geometry(node, graph)
        params = {"outer": outer, "channels": channels, "inner": inner,
                  "qmin": float(node.attrs["qmin"]), "qmax": float(node.attrs["qmax"])}
        return [KernelCall("nn_fake_quantize_f32", ("src/quantize/nn_fake_quantize_f32.c",),
                           "nn_fake_quantize_f32_params", params,
                           [node.inputs[0], Const(scale, "scale"), Const(zp, "zp"), node.outputs[0]])]
