"""Quantize: turn a float graph into an int8 graph, in place.

1. Every run-time float32 tensor becomes int8 with QParams: graph inputs from their ranges;
   each node's outputs from `op.output_qparams` (calibrated ranges, the QDQ-given parameters,
   or the input's for ops that keep them). int32 and uint8 tensors (indices, labels, masks)
   stay as they are, without QParams.
2. Each node's op computes its integer parameters (`op.quantize`), kept in node.attrs["q"].
3. Every node that cannot run in int8 is named in one CompileError.
Constants stay float in graph.tensors: the integer tables live in node.attrs["q"].
"""

from __future__ import annotations

from codegen.errors import CompileError, Unsupported
from codegen.ir import Graph
from codegen.ops import get_op
from codegen.qparams import QParams, from_range


def run(graph: Graph, ranges: dict[str, tuple[float, float]], given: dict[str, QParams] | None = None) -> None:
    given = given or {}

    def choose(name: str) -> QParams | None:
        if name in graph.tensors and graph.tensors[name].dtype != "float32":
            return None  # (a name not in the graph: a node's internal value, Op.internal_ranges)
        if name in given:
            return given[name]
        if name not in ranges:
            raise Unsupported(f"tensor '{name}' has no calibrated range (pass --calib)")
        return from_range(*ranges[name])

    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype == "float32":
            t.quant, t.dtype = choose(name), "int8"
    rejected = []
    for node in graph.nodes:
        op = get_op(node.op_type)
        try:
            for name, qp in zip(node.outputs, op.output_qparams(node, graph, choose)):
                t = graph.tensors[name]
                if t.dtype == "float32":
                    t.quant, t.dtype = qp, "int8"
            node.attrs["q"] = op.quantize(node, graph)
        except (Unsupported, CompileError) as e:  # CompileError: arithmetic out of range (fixedpoint)
            rejected.append(f"{node.op_type} node '{node.name}': {e}")
    if rejected:
        raise CompileError(f"{graph.meta.get('source', graph.name)}: cannot quantize to int8: " + "; ".join(rejected))
