"""Precision: which layers compute with int16 activations (TFLite's 16x8 scheme), before quantize.

1. Each node asks for a precision: its entry in `per_layer` ({node name: {"precision": ...}}),
   else the model's `default` ("int8" or "int16").
2. A family without an int16 rule (Op.precisions, ops/base.py section 10) stays int8; the
   result lists the nodes asked for int16 that stay int8, and why.
3. A family that keeps its input's quantization (Op.keeps_qparams: Reshape, MaxPool...) keeps
   its input's precision, when it has a rule for it; a graph input is int16 when every node
   that reads it asked for int16 (the quantize pass applies the same rule).
4. node.attrs["precision"] holds the choice; passes/quantize.py inserts a Requantize node
   wherever a tensor meets a layer of the other precision.
"""

from __future__ import annotations

from codegen.errors import CompileError
from codegen.ir import Graph
from codegen.ops import get_op

PRECISIONS = ("int8", "int16")


def check_precision(value, where: str) -> str:
    if value not in PRECISIONS:
        raise CompileError(f"{where}: unknown precision {value!r} (choose from {', '.join(PRECISIONS)})")
    return value


def requested(graph: Graph, default: str = "int8", per_layer: dict | None = None) -> dict[str, str]:
    """Rule 1: node name -> the precision asked for."""
    check_precision(default, "--precision")
    per_layer = per_layer or {}
    names = {n.name for n in graph.nodes}
    asked = {}
    for name, entry in per_layer.items():
        if name in names and isinstance(entry, dict) and "precision" in entry:
            asked[name] = check_precision(entry["precision"], f"per-layer option of node '{name}'")
    return {n.name: asked.get(n.name, default) for n in graph.nodes}


def run(graph: Graph, default: str = "int8", per_layer: dict | None = None) -> dict:
    """Set node.attrs["precision"] on every node (rules 1-4); returns the report's summary:
    {"default", "int16": [node names], "kept_int8": [{"node", "op", "reason"}]}."""
    asked = requested(graph, default, per_layer)
    tensor_precision: dict[str, str] = {}
    for name in graph.inputs:
        readers = graph.consumers(name)
        tensor_precision[name] = "int16" if readers and all(asked[n.name] == "int16" for n in readers) else "int8"
    kept = []
    for node in graph.nodes:
        op = get_op(node.op_type)
        want = asked[node.name]
        if op.keeps_qparams and node.inputs and node.inputs[0] in tensor_precision:
            want = tensor_precision[node.inputs[0]]
        if want == "int16" and not op.supports_precision(node, graph, want):
            kept.append({"node": node.name, "op": node.op_type, "reason": "no int16 kernel for this operator"})
            want = "int8"
        node.attrs["precision"] = want
        for out in node.outputs:
            tensor_precision[out] = want
    return {"default": default, "int16": [n.name for n in graph.nodes if n.attrs["precision"] == "int16"],
            "kept_int8": kept}
