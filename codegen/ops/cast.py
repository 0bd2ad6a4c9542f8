"""Cast between the run-time element types: float32, int32 (ONNX int64 and int32) and bool
(uint8, 0 or 1). A Cast to the type a tensor already has is an Identity (the importer).

Float (runtime_c/src/cast/nn_cast_<from>_<to>.c): float32 -> int32 truncates toward zero and saturates
to int32's range (NaN gives 0: ONNX leaves both undefined, and C must not meet them);
anything -> bool is `x != 0`; int32 and bool -> float32 convert exactly, or to the nearest
float32 above 2^24.
int8 (the same files, s8 on the real side): the float32 side is an int8 tensor with QParams.
int8 -> int32 is a 256-entry int32 table of trunc(dequantize(q)) built at compile time;
int8 -> bool is `q != zero_point` (the real value is 0 exactly at the zero point);
int32 -> int8 is round(x / scale) + zero_point in fixed point (the requantization of
requant.h with the multiplier 1 / scale), saturated; bool -> int8 picks the quantized 0 or 1.
"""

from __future__ import annotations

import numpy as np
import onnx

from codegen.errors import Unsupported
from codegen.fixedpoint import INT32_MAX, INT32_MIN, output_s8, quantize_multiplier
from codegen.ops.base import Const, KernelCall, Op, qparams, register, shape_of

_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int32", onnx.TensorProto.INT32: "int32",
          onnx.TensorProto.BOOL: "uint8"}
_SUFFIX = {"float32": "f32", "int8": "s8", "int32": "s32", "uint8": "u8"}


def saturate_s32(x: np.ndarray) -> np.ndarray:
    """float -> int32 as nn_cast_f32_s32: toward zero, saturated, NaN -> 0."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        y = np.clip(np.trunc(np.nan_to_num(x, nan=0.0, posinf=INT32_MAX, neginf=INT32_MIN)), INT32_MIN, INT32_MAX)
    return y.astype(np.int32)


def convert(x: np.ndarray, to: str) -> np.ndarray:
    """The float-mode semantics for every pair of types."""
    x = np.asarray(x)
    if to == "uint8":
        return (x != 0).astype(np.uint8)
    if to == "int32":
        return saturate_s32(x) if x.dtype.kind == "f" else x.astype(np.int32)
    return x.astype(np.float32)


@register("Cast")
class Cast(Op):
    int_inputs = True

    def target(self, node) -> str:
        to = node.attrs.get("to")
        if to not in _TYPES:
            raise Unsupported(f"cast to {_type_name(to)} is not supported (float32, int64, int32 and bool are)")
        return _TYPES[to]

    def output_dtypes(self, node, graph):
        return [self.target(node)]

    def infer_shapes(self, node, graph):
        self.target(node)
        return [shape_of(graph, node.inputs[0])]

    def check(self, node, graph):
        self.target(node)

    def reference(self, node, graph, inputs):
        return [convert(inputs[0], self.target(node))]

    def _pair(self, node, graph) -> tuple[str, str]:
        return graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype

    def quantize(self, node, graph):
        src, dst = self._pair(node, graph)
        if src == "int8" and dst == "int32":
            q_in = qparams(graph, node.inputs[0])
            levels = np.arange(-128, 128, dtype=np.int8)
            return {"table": saturate_s32(q_in.dequantize(levels))}
        if src == "int8" and dst == "uint8":
            return {"zero_point": int(qparams(graph, node.inputs[0]).zero_point)}
        if dst != "int8":  # between int32 and bool: as in float mode
            return {}
        q_out = qparams(graph, node.outputs[0])
        if src == "int32":
            m0, shift = quantize_multiplier(1.0 / float(q_out.scale))
            return {"m0": m0, "shift": shift, "zero_point": int(q_out.zero_point)}
        if src == "uint8":
            return {"levels": [int(v) for v in q_out.quantize(np.array([0.0, 1.0], np.float32))]}
        raise Unsupported(f"no int8 rule for a cast from {src} to {dst}")

    def reference_s8(self, node, graph, inputs):
        src, dst = self._pair(node, graph)
        q, x = node.attrs["q"], np.asarray(inputs[0])
        if src == "int8" and dst == "int32":
            return [q["table"][x.astype(np.int32) + 128]]
        if src == "int8" and dst == "uint8":
            return [(x != q["zero_point"]).astype(np.uint8)]
        if src == "int32":
            return [output_s8(x, q["m0"], q["shift"], q["zero_point"])]
        if src == "uint8":
            return [np.where(x != 0, q["levels"][1], q["levels"][0]).astype(np.int8)]
        return [convert(x, dst)]  # between int32 and bool: as in float mode

    def kernels(self, node, graph):
        src, dst = self._pair(node, graph)
        size = graph.tensors[node.outputs[0]].size
        name = f"nn_cast_{_SUFFIX[src]}_{_SUFFIX[dst]}"
        if src == "int8" or dst == "int8":
            q = node.attrs["q"]
            source = (f"src/cast/{name}.c",)
            if "table" in q:
                return [KernelCall(name, source, "nn_cast_params", {"size": size},
                                   [node.inputs[0], Const(q["table"], "table"), node.outputs[0]])]
            params = {"size": size, "m0": q.get("m0", 0), "shift": q.get("shift", 0),
                      "zero_point": q.get("zero_point", 0), "levels": q.get("levels", [0, 0])}
            return [KernelCall(name, source, "nn_cast_s8_params", params, [node.inputs[0], node.outputs[0]])]
        return [KernelCall(name, (f"src/cast/{name}.c",), "nn_cast_params", {"size": size},
                           [node.inputs[0], node.outputs[0]])]


def _type_name(to) -> str:
    try:
        return onnx.TensorProto.DataType.Name(int(to))
    except (TypeError, ValueError):
        return repr(to)
