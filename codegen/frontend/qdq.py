"""QuantizeLinear / DequantizeLinear pairs on activations (QDQ models).

1. `parse` reads one node's quantization: scale and zero point (constants), the integer type
   (the zero point's, else QuantizeLinear's `output_dtype`, else uint8; 8 and 16 bits), per
   tensor or per channel along `axis`. The importer makes each pair one FakeQuantize node
   (codegen/ops/quantize.py), so float mode computes the rounding and clamping the pair
   implies.
2. `for_int8` turns those nodes back into what int8 mode needs: the pair's scale and zero
   point are the tensor's own (the importer recorded them in graph.meta["qdq"]), so the node
   becomes an Identity and the simplifications run again (a Relu that a pair kept apart from
   its producer now fuses). A pair with no int8 form (per channel, 16 bits) is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from codegen.errors import CompileError
from codegen.frontend import simplify
from codegen.ir import Graph, Node, Tensor
from codegen.ops.quantize import INTEGER_RANGES
from codegen.qparams import QParams

_DTYPES = {onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT8: "int8",
           onnx.TensorProto.UINT16: "uint16", onnx.TensorProto.INT16: "int16"}


@dataclass
class Quantization:
    scale: np.ndarray  # float32, one value or one per channel
    zero_point: np.ndarray  # int64, the same size
    dtype: str  # uint8, int8, uint16, int16
    axis: int | None  # None: per tensor
    inputs: tuple[str, str]  # the scale's and zero point's tensor names ('' when absent)

    def same(self, other: "Quantization") -> bool:
        return (self.dtype == other.dtype and self.axis == other.axis
                and np.array_equal(self.scale, other.scale) and np.array_equal(self.zero_point, other.zero_point))

    def int8_params(self) -> QParams | None:
        """The tensor's int8 parameters, or None when the pair has no int8 form."""
        if self.axis is not None or self.dtype not in ("int8", "uint8"):
            return None
        offset = -128 if self.dtype == "uint8" else 0
        return QParams(float(self.scale[0]), int(self.zero_point[0]) + offset)

    def attrs(self) -> dict:
        qmin, qmax = INTEGER_RANGES[self.dtype]
        return {"axis": self.axis, "qmin": qmin, "qmax": qmax, "dtype": self.dtype}


def parse(proto: onnx.NodeProto, ins: list[str], tensors: dict[str, Tensor]) -> Quantization | str:
    """The node's quantization, or why it is not supported."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
    if attrs.get("block_size", 0):
        return "blocked quantization (block_size) is not supported"
    if attrs.get("precision", 0):
        return "the precision attribute is not supported"
    if proto.op_type == "DequantizeLinear" and attrs.get("output_dtype", 0) not in (0, onnx.TensorProto.FLOAT):
        return "only float32 outputs are supported"
    scale_name = ins[1] if len(ins) > 1 else ""
    zp_name = ins[2] if len(ins) > 2 else ""
    scale = tensors[scale_name].data if scale_name else None
    zp = tensors[zp_name].data if zp_name else None
    if scale is None or (zp_name and zp is None):
        return "scale and zero point must be constants"
    if scale.dtype != np.float32:
        return f"{scale.dtype} scale is not supported (float32)"
    if proto.op_type == "QuantizeLinear":
        dtype = _DTYPES.get(attrs.get("output_dtype", 0) or onnx.TensorProto.UINT8)
    else:
        dtype = tensors[ins[0]].dtype
    if zp is not None:
        dtype = str(zp.dtype)
    if dtype not in INTEGER_RANGES:
        return f"{dtype or 'this'} quantization is not supported ({', '.join(INTEGER_RANGES)})"
    zero_point = np.zeros(scale.size, np.int64) if zp is None else zp.astype(np.int64).reshape(-1)
    if zero_point.size != scale.size:
        return f"{scale.size} scales but {zero_point.size} zero points"
    shape = tensors[ins[0]].shape
    axis = None
    if scale.size != 1 or scale.ndim > 1:
        axis = int(attrs.get("axis", 1))
        if not -len(shape) <= axis < len(shape):
            return f"axis {axis} out of range for rank {len(shape)}"
        axis %= len(shape)
        if scale.ndim != 1 or scale.size != shape[axis]:
            return f"{scale.size} scales for {shape[axis]} channels along axis {axis}"
    scale = scale.astype(np.float32).reshape(-1)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        return "scale must be finite and > 0"
    return Quantization(scale, zero_point, dtype, axis, (scale_name, zp_name))


def for_int8(graph: Graph, label: str) -> None:
    """Replace every FakeQuantize node by an Identity (int8 mode; see the module's rule 2)."""
    rejected = []
    for i, node in enumerate(graph.nodes):
        if node.op_type != "FakeQuantize":
            continue
        a = node.attrs
        if a["axis"] is not None or a["dtype"] not in ("int8", "uint8"):
            what = "per-channel" if a["axis"] is not None else a["dtype"]
            rejected.append(f"QuantizeLinear/DequantizeLinear node '{node.name}': {what} quantization of an "
                            f"activation has no int8 form (compile with --float)")
            continue
        graph.nodes[i] = Node("Identity", node.name, node.inputs[:1], node.outputs)
    if rejected:
        raise CompileError(f"{label}: cannot quantize to int8: " + "; ".join(rejected))
    simplify.run(graph)
