"""Structured pruning: whole output channels of Conv, Gemm and MatMul layers leave the float
graph, with every weight that computes or reads them, so the graph itself shrinks (fewer MACs,
fewer weights, smaller activations). codegen/passes/prune.py calls it for `--prune structured`.

A producer's output channels form a channel space on its output tensor: axis 1 of an
[N, C, ...] or [N, C] tensor. Following the space through the graph, in node order:

1. Producers: Conv with group 1, Gemm with a constant B (A computed), MatMul with a constant
   2-D right operand and a 2-D output. A removed channel takes its weight row and bias with it.
2. Pass-through: Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, the pools, Pad
   that leaves axis 1 alone, a depthwise Conv (group == in == out channels: its weights, bias
   and group shrink too), and Add/Sub/Mul/Div with a constant that is a scalar or varies per
   channel (sliced when it does).
3. Join: Add/Sub/Mul/Div of two tensors in channel spaces makes their spaces one group (a
   residual block's last conv and its shortcut): a channel leaves every producer of the group.
4. Terminators: a Conv with group 1 drops the matching input channels of its weights; Gemm and
   MatMul reading [N, C] drop the matching input features; a Flatten, or a Reshape/Squeeze to
   [N, C*H*W] that keeps the element order, before Gemm/MatMul carries the space as blocks of
   H*W features: channel c is features c*H*W ... (c+1)*H*W - 1, and a constant target shape
   follows. After a flatten only elementwise activations and rule 4 may read the tensor.
5. Anything else the space reaches leaves the whole group as it is, and the report says why:
   a graph output, Concat, Transpose, Softmax, a reduction, another reshape, a grouped Conv,
   an op not listed, or an Add whose other operand carries no channel space.

Channel choice: per group, the sum over its producers of each channel's squared L2 weight norm
(biases do not count), from the weights as they were before this pass; the smallest go, the
lower index first on ties. A group loses floor(ratio * C) channels and keeps at least one.
A removed channel's contribution is dropped, not folded: the pruned graph computes what the
original computes with the removed channels' weights and biases (and those of the depthwise
convs on the way) set to zero, wherever the ops on the way map zero to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from codegen.errors import CompileError
from codegen.ir import Graph, Node, Tensor
from codegen.ops import get_op

ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish"})
POOLS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
BINARY = frozenset({"Add", "Sub", "Mul", "Div"})
FLATTENS = frozenset({"Flatten", "Reshape", "Squeeze"})


@dataclass
class _Group:
    """Producers that lose the same channels, and what else shrinks with them."""

    producers: list[tuple[int, Node]]  # (position in graph.nodes, node)
    channels: int
    depthwise: list[Node] = field(default_factory=list)  # rule 2, carried along
    edits: list[tuple] = field(default_factory=list)  # (kind, node, detail), applied by _apply
    blocked: list[tuple[int, str]] = field(default_factory=list)  # (position, reason): rule 5


class _Spaces:
    """The channel space of every tensor, with the groups as a union-find keyed by the
    position of a group's first producer."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.groups: dict[int, _Group] = {}
        self.parent: dict[int, int] = {}
        # tensor -> (group key, block): block 0 when axis 1 holds the channels, else the
        # number of consecutive features per channel of a flattened [N, C * block] tensor
        self.at: dict[str, tuple[int, int]] = {}

    def find(self, key: int) -> int:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def group(self, tensor: str) -> _Group:
        return self.groups[self.find(self.at[tensor][0])]

    def union(self, keys: set[int]) -> int:
        roots = sorted({self.find(k) for k in keys})
        root = roots[0]
        for other in roots[1:]:
            merged, gone = self.groups[root], self.groups.pop(other)
            merged.producers = sorted(merged.producers + gone.producers, key=lambda p: p[0])
            merged.depthwise += gone.depthwise
            merged.edits += gone.edits
            merged.blocked += gone.blocked
            self.parent[other] = root
        return root

    def place(self, tensor: str, key: int, block: int, position: int) -> None:
        self.at[tensor] = (key, block)
        if tensor in self.graph.outputs:
            self.group(tensor).blocked.append((position, "feeds a graph output"))


def prune_channels(graph: Graph, ratio: float, per_layer: dict[str, float] | None = None,
                   excluded: dict[str, str] | None = None) -> list[dict]:
    """Remove floor(ratio * C) output channels (at least one kept) of every channel group of
    `graph`, in place; `per_layer` (node name -> ratio) overrides the ratio of the group holding
    that producer or depthwise conv (the smallest override wins); a group with a producer in
    `excluded` (node name -> reason) stays whole. Returns one entry per group, in the order of
    their first producers: {"layers", "channels", "kept", "removed", "reason"} where "reason"
    says why nothing was removed ("" when channels were)."""
    per_layer, excluded = per_layer or {}, excluded or {}
    for name, r in [("ratio", ratio), *per_layer.items()]:
        if not 0.0 <= r < 1.0:
            raise CompileError(f"structured pruning: {name} {r} must be in [0, 1)")
    spaces = _trace(graph)
    report, plans = [], []
    for key in sorted(spaces.groups):
        group = spaces.groups[key]
        removed, reason = _choose(graph, group, ratio, per_layer, excluded)
        report.append({"layers": [n.name for _, n in group.producers], "channels": group.channels,
                       "kept": group.channels - len(removed), "removed": [int(c) for c in removed],
                       "reason": reason})
        if len(removed):
            plans.append((group, np.setdiff1d(np.arange(group.channels), removed)))
    for group, kept in plans:  # every choice is made on the weights as they were
        _apply(graph, group, kept)
    if plans:
        for node in graph.nodes:
            for name, shape in zip(node.outputs, get_op(node.op_type).infer_shapes(node, graph)):
                graph.tensors[name].shape = tuple(int(d) for d in shape)
    return report


# ---- finding the groups ----

def _trace(graph: Graph) -> _Spaces:
    spaces = _Spaces(graph)
    for position, node in enumerate(graph.nodes):
        if any(name in spaces.at for name in node.inputs):
            _follow(spaces, position, node)
        channels = _produced_channels(graph, node)
        if channels is not None:  # rule 1
            spaces.parent[position] = position
            spaces.groups[position] = _Group([(position, node)], channels)
            spaces.place(node.outputs[0], position, 0, position)
    return spaces


def _produced_channels(graph: Graph, node: Node) -> int | None:
    if node.op_type == "Conv" and int(node.attrs.get("group", 1)) == 1:
        return int(graph.const(node.inputs[1]).shape[0])
    if node.op_type in ("Gemm", "MatMul") and graph.const(node.inputs[0]) is None:
        w = graph.const(node.inputs[1])
        out = graph.tensors[node.outputs[0]].shape
        if w is not None and w.ndim == 2 and len(out) == 2:
            return int(out[1])
    return None


def _follow(spaces: _Spaces, position: int, node: Node) -> None:
    """Rules 2 to 5 for a node that reads at least one tensor in a channel space."""
    graph, t = spaces.graph, node.op_type
    spaced = [(k, name) for k, name in enumerate(node.inputs) if name in spaces.at]
    keys = {spaces.at[name][0] for _, name in spaced}
    k, name = spaced[0]
    key, block = spaces.at[name]
    shape = graph.tensors[name].shape

    def stop(reason: str) -> None:
        for g in {spaces.find(x) for x in keys}:
            spaces.groups[g].blocked.append((position, reason))

    def edit(kind: str, detail=None) -> None:
        spaces.group(name).edits.append((kind, node, detail))

    if t == "Concat":
        return stop("meets a Concat")
    cannot = f"reaches {t} node {node.name}, which channels cannot pass"
    if t in BINARY:
        return _follow_binary(spaces, position, node, spaced, stop, cannot)
    if len(spaced) > 1 or k != 0:
        return stop(cannot)
    if t in ELEMENTWISE:
        return spaces.place(node.outputs[0], key, block, position)
    if t in ("Gemm", "MatMul"):
        if _reads_features(graph, node):
            return edit("features", max(block, 1))
        return stop(cannot)
    if t in FLATTENS and _flattens(graph, node):
        per_channel = block or math.prod(shape[2:])
        if t == "Reshape":
            edit("shape", per_channel)
        return spaces.place(node.outputs[0], key, per_channel if per_channel > 1 else 0, position)
    if block:  # rule 4: only activations and fully connected layers read a flattened space
        return stop(cannot)
    if t in POOLS:
        return spaces.place(node.outputs[0], key, 0, position)
    if t == "Pad":
        begin, end, _ = get_op("Pad").layout(node, graph)
        if begin[1] or end[1]:
            return stop(cannot)
        return spaces.place(node.outputs[0], key, 0, position)
    if t == "Conv":
        geo = get_op("Conv").geometry(node, graph)
        if geo["groups"] == 1:
            return edit("in_channels")
        if geo["groups"] == geo["in_channels"] == geo["out_channels"]:
            edit("depthwise")
            spaces.group(name).depthwise.append(node)
            return spaces.place(node.outputs[0], key, 0, position)
    return stop(cannot)


def _follow_binary(spaces: _Spaces, position: int, node: Node, spaced, stop, cannot: str) -> None:
    """Rules 2 and 3 for Add/Sub/Mul/Div."""
    graph = spaces.graph
    out = graph.tensors[node.outputs[0]].shape
    for _, name in spaced:
        shape = graph.tensors[name].shape
        if spaces.at[name][1] or len(shape) != len(out) or shape[1] != out[1]:
            return stop(cannot)
    slices = []
    for k, name in enumerate(node.inputs[:2]):
        if name in spaces.at:
            continue
        value = graph.const(name)
        if value is None:
            return stop(cannot)  # the other operand's channels cannot go
        axis = 1 - (len(out) - value.ndim)
        size = value.shape[axis] if axis >= 0 else 1
        if size == out[1] and size > 1:
            slices.append((k, axis))
        elif size != 1:
            return stop(cannot)
    key = spaces.union({spaces.at[name][0] for _, name in spaced})
    for k, axis in slices:
        spaces.groups[key].edits.append(("operand", node, (k, axis)))
    spaces.place(node.outputs[0], key, 0, position)


def _reads_features(graph: Graph, node: Node) -> bool:
    """Gemm/MatMul computing A [N, C] @ constant B, features on A's axis 1."""
    a, w = graph.tensors[node.inputs[0]].shape, graph.const(node.inputs[1])
    if w is None or w.ndim != 2 or len(a) != 2:
        return False
    return node.op_type == "MatMul" or not node.attrs.get("transA", 0)


def _flattens(graph: Graph, node: Node) -> bool:
    """[N, d1, d2, ...] -> [N, d1 * d2 * ...]: the same element order, features on axis 1."""
    x, y = graph.tensors[node.inputs[0]].shape, graph.tensors[node.outputs[0]].shape
    return len(x) >= 2 and len(y) == 2 and y[0] == x[0] and y[1] == math.prod(x[1:])


# ---- choosing and removing the channels ----

def _choose(graph: Graph, group: _Group, ratio: float, per_layer: dict[str, float],
            excluded: dict[str, str]) -> tuple[np.ndarray, str]:
    """The channels to remove (sorted), or none and the reason."""
    none = np.zeros(0, np.int64)
    for _, node in group.producers:
        if node.name in excluded:
            return none, excluded[node.name]
    if group.blocked:
        return none, min(group.blocked, key=lambda b: b[0])[1]
    members = [n.name for _, n in group.producers] + [n.name for n in group.depthwise]
    overrides = [per_layer[n] for n in members if n in per_layer]
    r = min(overrides) if overrides else ratio
    count = min(int(math.floor(r * group.channels + 1e-9)), group.channels - 1)
    if count <= 0:
        return none, "ratio removes no channel"
    score = sum(np.square(_channel_rows(graph, node).astype(np.float64)).sum(axis=1)
                for _, node in group.producers)
    return np.sort(np.argsort(score, kind="stable")[:count]), ""


def _channel_rows(graph: Graph, node: Node) -> np.ndarray:
    """The producer's weights as [output channel, everything it reads]."""
    if node.op_type == "Conv":
        w = graph.const(node.inputs[1])
        return w.reshape(w.shape[0], -1)
    return get_op(node.op_type).layout(node, graph).weight  # [N, K], Gemm's alpha applied


def _apply(graph: Graph, group: _Group, kept: np.ndarray) -> None:
    for _, node in group.producers:
        if node.op_type == "Conv":
            _take(graph, node, 1, kept, 0, "w")
            _take_bias(graph, node, kept, 0)
        elif node.op_type == "Gemm":
            _take(graph, node, 1, kept, 0 if node.attrs.get("transB", 0) else 1, "w")
            _take_bias(graph, node, kept, -1)
        else:
            _take(graph, node, 1, kept, 1, "w")
    for kind, node, detail in group.edits:
        if kind == "depthwise":
            _take(graph, node, 1, kept, 0, "w")
            _take_bias(graph, node, kept, 0)
            node.attrs = {**node.attrs, "group": len(kept)}
        elif kind == "in_channels":
            _take(graph, node, 1, kept, 1, "w")
        elif kind == "operand":
            k, axis = detail
            _take(graph, node, k, kept, axis, "c")
        elif kind == "features":
            features = (kept[:, None] * detail + np.arange(detail)[None, :]).reshape(-1)
            trans_b = node.op_type == "Gemm" and node.attrs.get("transB", 0)
            _take(graph, node, 1, features, 1 if trans_b else 0, "w")
        elif kind == "shape" and len(node.inputs) > 1 and graph.const(node.inputs[1]) is not None:
            target = np.array(graph.const(node.inputs[1]), copy=True)
            if target.size == 2 and target[1] > 0:
                target[1] = len(kept) * detail
                _replace(graph, node, 1, target, "shape")


def _take_bias(graph: Graph, node: Node, kept: np.ndarray, axis: int) -> None:
    if len(node.inputs) > 2 and node.inputs[2]:
        bias = graph.const(node.inputs[2])
        if bias.ndim and bias.shape[axis] > 1:  # a Gemm bias of one value broadcasts and stays
            _take(graph, node, 2, kept, axis, "b")


def _take(graph: Graph, node: Node, k: int, index: np.ndarray, axis: int, role: str) -> None:
    _replace(graph, node, k, np.take(graph.const(node.inputs[k]), index, axis=axis), role)


def _replace(graph: Graph, node: Node, k: int, value: np.ndarray, role: str) -> None:
    """Give the node's constant input k a new value; one other readers share is left to them
    and the node gets its own copy under a fresh name."""
    name = node.inputs[k]
    if name in graph.outputs or any(c is not node for c in graph.consumers(name)):
        name = graph.fresh_name(f"{node.name}_{role}")
        node.inputs[k] = name
    value = np.ascontiguousarray(value)
    graph.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value)
