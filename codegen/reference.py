"""Run an IR graph in NumPy, one node at a time, with each op's own reference.

Float mode follows the ONNX semantics in float32 (int32 and uint8 for indices, labels and
masks); it is the oracle the generated float C is compared with. Int8 mode runs a quantized graph with each op's integer reference: the
same integers as the int8 C, bit for bit.
"""

from __future__ import annotations

import numpy as np

from codegen.ir import Graph
from codegen.ops import get_op


def run_float(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False,
              kernel_order: bool = False) -> dict[str, np.ndarray]:
    """Return the model outputs (or every tensor, with keep_all) for one set of inputs.
    `kernel_order`: sums in the float kernels' order (Op.reference_in_kernel_order)."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        values[name] = as_input(feeds[name], t.dtype).reshape(t.shape)
    for node in graph.nodes:
        inputs = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        op = get_op(node.op_type)
        outputs = (op.reference_in_kernel_order if kernel_order else op.reference)(node, graph, inputs)
        for name, value in zip(node.outputs, outputs):
            t = graph.tensors[name]
            values[name] = np.asarray(value, dtype=t.dtype).reshape(t.shape)
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}


def as_input(value, dtype: str) -> np.ndarray:
    """A model input as its tensor's element type: float32 as is; int8 (already quantized) and
    int32 wrap as C's conversions do; uint8 (bool) as 0 or 1."""
    value = np.asarray(value)
    if dtype == "uint8":
        return (value != 0).astype(np.uint8)
    if dtype == "float32":
        return value.astype(np.float32)
    return value.astype(np.int64).astype(dtype)


def run_int8(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Integer run of a quantized graph; `feeds` hold int8 arrays (quantize the float inputs first)."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        values[name] = as_input(feeds[name], t.dtype).reshape(t.shape)
    for node in graph.nodes:
        inputs = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        outputs = get_op(node.op_type).reference_s8(node, graph, inputs)
        for name, value in zip(node.outputs, outputs):
            value = np.asarray(value)
            t = graph.tensors[name]
            assert value.dtype == np.dtype(t.dtype), f"{node.op_type} node '{node.name}' produced {value.dtype}"
            values[name] = value.reshape(t.shape)
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}
