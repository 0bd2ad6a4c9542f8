"""Dense or sparse weights per layer, after quantization and before memory planning.

Every int8 Conv (groups 1 or depthwise), Gemm and MatMul gets `node.attrs["encoding"]`: the
codegen.sparse.Choice for its int8 weights on the target, by `policy` ("auto": the cost model;
"sparse": any layer with a zero weight; "dense"). The ops read it when they lower the node
(the kernel, its tables, scratch and in-place rules) and the report shows it. Zeros count
wherever they come from: pruning, the ONNX file (weights pruned in training), or weights that
round to zero in int8.
"""

from __future__ import annotations

from codegen import sparse
from codegen.ir import Graph
from codegen.ops import get_op
from codegen.ops.base import is_int8


def run(graph: Graph, features: tuple[str, ...] = (), policy: str = "auto") -> None:
    for node in graph.nodes:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or not is_int8(graph, node):
            continue
        layer = get_op(node.op_type).sparse_layer(node, graph)
        if layer is None:
            continue
        kind, weight, geometry = layer
        node.attrs["encoding"] = sparse.choose(weight, kind, features, geometry, policy)

