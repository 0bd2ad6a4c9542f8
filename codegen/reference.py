"""Run an IR graph in NumPy, one node at a time, with each op's own reference.

Float mode follows the ONNX semantics in float32; it is the oracle the generated float C
is compared with. (The int8 mode, bit-exact with the C, joins with quantization.)
"""

from __future__ import annotations

import numpy as np

from codegen.ir import Graph
from codegen.ops import get_op


def run_float(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Return the model outputs (or every tensor, with keep_all) for one set of inputs."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        values[name] = np.asarray(feeds[name], dtype=np.float32).reshape(t.shape)
    for node in graph.nodes:
        inputs = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        outputs = get_op(node.op_type).reference(node, graph, inputs)
        for name, value in zip(node.outputs, outputs):
            values[name] = np.asarray(value, dtype=np.float32).reshape(graph.tensors[name].shape)
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}
