"""Quantize: turn a float graph into an int8 graph, in place.

1. Every run-time float32 tensor becomes int8 with QParams: graph inputs from their ranges;
   each node's outputs from `op.output_qparams` (calibrated ranges, the QDQ-given parameters,
   or the input's for ops that keep them). int32 and uint8 tensors (indices, labels, masks)
   stay as they are, without QParams.
2. Each node's op computes its integer parameters (`op.quantize`), kept in node.attrs["q"].
3. Every node that cannot run in int8 is named in one CompileError.
4. Precision (passes/precision.py): a node whose node.attrs["precision"] is "int16" (and whose
   family has an int16 rule) gets int16 outputs, symmetric (qparams.from_range(..., bits=16));
   a graph input is int16 when every node reading it is. Where a node reads a tensor of the
   other precision, a Requantize node (ops/requantize.py) converts it first, once per tensor
   and precision, its parameters from the tensor's calibrated range.
Constants stay float in graph.tensors: the integer tables live in node.attrs["q"].
"""

from __future__ import annotations

from codegen.errors import CompileError, Unsupported
from codegen.ir import Graph, Node, Tensor
from codegen.ops import get_op
from codegen.qparams import QParams, from_range

QUANTIZED = ("int8", "int16")


def node_precision(node: Node, graph: Graph) -> str:
    """Rule 4: the node's precision, int8 unless it asks for int16 and its op takes it."""
    want = node.attrs.get("precision", "int8")
    return "int16" if want == "int16" and get_op(node.op_type).supports_precision(node, graph, want) else "int8"


def run(graph: Graph, ranges: dict[str, tuple[float, float]], given: dict[str, QParams] | None = None) -> None:
    given = given or {}

    def chooser(bits: int):
        def choose(name: str) -> QParams | None:
            if name in graph.tensors and graph.tensors[name].dtype != "float32":
                return None  # (a name not in the graph: a node's internal value, Op.internal_ranges)
            if name in given:
                qp = given[name]
                return qp if bits == 8 else from_range(*grid_range(qp), bits=bits)
            if name not in ranges:
                raise Unsupported(f"tensor '{name}' has no calibrated range (pass --calib)")
            return from_range(*(wide_range(ranges, name) if bits == 16 else ranges[name]), bits=bits)
        return choose

    choose8, choose16 = chooser(8), chooser(16)
    precision = {node.name: node_precision(node, graph) for node in graph.nodes}
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype == "float32":
            readers = graph.consumers(name)
            wide = bool(readers) and all(precision[n.name] == "int16" for n in readers)
            t.quant = (choose16 if wide else choose8)(name)
            t.dtype = t.quant.dtype
    converted: dict[tuple[str, str], str] = {}
    nodes: list[Node] = []
    rejected = []
    for node in graph.nodes:
        op = get_op(node.op_type)
        want = precision[node.name]
        try:
            for k, name in enumerate(node.inputs):
                t = graph.tensors.get(name) if name else None
                if t is not None and not t.is_const and t.dtype in QUANTIZED and t.dtype != want:
                    if (name, want) not in converted:
                        calibrated = wide_range(ranges, name) if want == "int16" else ranges.get(name)
                        converted[(name, want)] = _requantize(graph, nodes, name, want, calibrated)
                    node.inputs[k] = converted[(name, want)]
            choose = choose16 if want == "int16" else choose8
            for name, qp in zip(node.outputs, op.output_qparams(node, graph, choose)):
                t = graph.tensors[name]
                if t.dtype == "float32":
                    t.quant, t.dtype = qp, qp.dtype
            node.attrs["q"] = op.quantize(node, graph)
        except (Unsupported, CompileError) as e:  # CompileError: arithmetic out of range (fixedpoint)
            rejected.append(f"{node.op_type} node '{node.name}': {e}")
        nodes.append(node)
    graph.nodes = nodes
    if rejected:
        raise CompileError(f"{graph.meta.get('source', graph.name)}: cannot quantize to int8: " + "; ".join(rejected))


def wide_range(ranges: dict, name: str) -> tuple[float, float] | None:
    """An int16 tensor's range: its min/max when calibration clipped it (calibrate.Ranges.minmax;
    65,536 levels leave no rounding error that a clipped value would be worth)."""
    return getattr(ranges, "minmax", {}).get(name, ranges.get(name))


def grid_range(qp: QParams) -> tuple[float, float]:
    """The real values [lo, hi] that a tensor's integer grid spans."""
    return qp.scale * (qp.qmin - qp.zero_point), qp.scale * (qp.qmax - qp.zero_point)


def _requantize(graph: Graph, nodes: list[Node], name: str, precision: str, calibrated) -> str:
    """Rule 4: append a Requantize node making `name` a `precision` tensor; returns its output.
    The new parameters cover the tensor's calibrated range (else the range of its grid)."""
    src = graph.tensors[name]
    lo, hi = calibrated if calibrated is not None else grid_range(src.quant)
    qp = from_range(lo, hi, bits=16 if precision == "int16" else 8)
    out = graph.fresh_name(f"{name}_{precision}")
    graph.tensors[out] = Tensor(out, src.shape, qp.dtype, quant=qp)
    node = Node("Requantize", out, [name], [out])
    node.attrs["precision"] = precision
    node.attrs["q"] = get_op("Requantize").quantize(node, graph)
    nodes.append(node)
    return out
