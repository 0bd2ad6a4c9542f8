"""The layer normalisation that torch's classic exporter writes before opset 17, fused into one
LayerNormalization node (simplify.py calls `fuse_layernorm`):

    m = ReduceMean(x, axes)            axes: the last k axes, keepdims 1
    d = Sub(x, m)
    s = Pow(d, 2) | Mul(d, d)
    v = ReduceMean(s, axes)            the same axes
    e = Add(v, eps)                    eps: a constant scalar (either operand order)
    r = Sqrt(e)
    n = Div(d, r)
    [g = Mul(n, gamma)]                gamma: a constant that broadcasts to the last k axes
    [y = Add(g, beta)]                 beta: likewise

becomes LayerNormalization(x, gamma or ones, beta, axis=-k, epsilon=eps). Every intermediate
must have no reader outside the pattern (d has exactly the two, s/m/v/e/r one each) and not be a
model output; otherwise the nodes stay as they are.

Before that, a LayerNormalization's Mean and InvStdDev outputs that nothing reads are dropped
(the kernels compute Y only; a read one is refused by the op's check).
"""

from __future__ import annotations

import numpy as np

from codegen.ir import Graph, Node


def _readers(graph: Graph, name: str) -> list[Node]:
    return [] if name in graph.outputs else graph.consumers(name)


def _only(graph: Graph, name: str, op_type: str) -> Node | None:
    """The single reader of `name` when it is an `op_type` node (and `name` is no model output)."""
    readers = _readers(graph, name)
    if len(readers) == 1 and readers[0].op_type == op_type:
        return readers[0]
    return None


def _reduced_axes(graph: Graph, node: Node, rank: int) -> list[int] | None:
    if int(node.attrs.get("keepdims", 1)) != 1:
        return None
    if "axes" in node.attrs:
        raw = list(node.attrs["axes"])
    elif len(node.inputs) > 1 and node.inputs[1]:
        value = graph.const(node.inputs[1])
        if value is None:
            return None
        raw = value.reshape(-1).tolist()
    else:
        return None
    axes = sorted({int(a) % rank for a in raw if -rank <= int(a) < rank})
    if not axes or len(axes) != len(raw) or axes != list(range(rank - len(axes), rank)):
        return None
    return axes


def _other_const(graph: Graph, node: Node, name: str) -> np.ndarray | None:
    """The constant operand of a two-input node whose other operand is `name`."""
    if len(node.inputs) != 2 or name not in node.inputs:
        return None
    other = node.inputs[1] if node.inputs[0] == name else node.inputs[0]
    if other == name:
        return None
    return graph.const(other)


def _fits(value: np.ndarray | None, inner: tuple[int, ...]) -> bool:
    if value is None or value.ndim > len(inner):
        return False
    try:
        return np.broadcast_shapes(value.shape, inner) == inner
    except ValueError:
        return False


def drop_unread_statistics(graph: Graph) -> None:
    for node in [n for n in graph.nodes if n.op_type == "LayerNormalization" and len(n.outputs) > 1]:
        if not any(o and _readers(graph, o) or o in graph.outputs for o in node.outputs[1:]):
            node.outputs = node.outputs[:1]


def fuse_layernorm(graph: Graph) -> None:
    drop_unread_statistics(graph)
    for mean in [n for n in graph.nodes if n.op_type == "ReduceMean"]:
        if mean not in graph.nodes:
            continue
        _fuse_from(graph, mean)


def _fuse_from(graph: Graph, mean: Node) -> None:
    x = mean.inputs[0]
    shape = graph.tensors[x].shape
    axes = _reduced_axes(graph, mean, len(shape))
    if axes is None:
        return
    sub = _only(graph, mean.outputs[0], "Sub")
    if sub is None or sub.inputs != [x, mean.outputs[0]]:
        return
    d = sub.outputs[0]
    readers = _readers(graph, d)
    if len(readers) != 2:
        return
    square = next((r for r in readers if r.op_type in ("Pow", "Mul")), None)
    div = next((r for r in readers if r.op_type == "Div"), None)
    if square is None or div is None or div.inputs != [d, div.inputs[1]]:
        return
    if square.op_type == "Pow":
        exponent = graph.const(square.inputs[1]) if square.inputs[0] == d else None
        if exponent is None or exponent.size != 1 or float(exponent.reshape(-1)[0]) != 2.0:
            return
    elif square.inputs != [d, d]:
        return
    var = _only(graph, square.outputs[0], "ReduceMean")
    if var is None or _reduced_axes(graph, var, len(shape)) != axes:
        return
    add_eps = _only(graph, var.outputs[0], "Add")
    eps = None if add_eps is None else _other_const(graph, add_eps, var.outputs[0])
    if eps is None or eps.size != 1 or not float(eps.reshape(-1)[0]) >= 0:
        return
    sqrt = _only(graph, add_eps.outputs[0], "Sqrt")
    if sqrt is None or _only(graph, sqrt.outputs[0], "Div") is not div or div.inputs[1] != sqrt.outputs[0]:
        return
    inner = tuple(shape[axes[0]:])
    chain = [mean, sub, square, var, add_eps, sqrt, div]
    out = div.outputs[0]
    gamma = beta = None
    mul = _only(graph, out, "Mul")
    if mul is not None and _fits(_other_const(graph, mul, out), inner):
        gamma = _other_const(graph, mul, out)
        chain.append(mul)
        out = mul.outputs[0]
        add = _only(graph, out, "Add")
        if add is not None and _fits(_other_const(graph, add, out), inner):
            beta = _other_const(graph, add, out)
            chain.append(add)
            out = add.outputs[0]
    if graph.tensors[out].shape != shape:
        return
    name = div.name
    if gamma is None:
        gamma = np.ones(inner, np.float32)
    inputs = [x, graph.add_const(f"{name}_scale", np.asarray(gamma, np.float32))]
    if beta is not None:
        inputs.append(graph.add_const(f"{name}_bias", np.asarray(beta, np.float32)))
    attrs = {"axis": axes[0] - len(shape), "epsilon": float(np.float32(eps.reshape(-1)[0]))}
    at = graph.nodes.index(chain[-1])
    fused = Node("LayerNormalization", name, inputs, [out], attrs)
    graph.nodes[at] = fused
    for node in chain[:-1]:
        graph.nodes.remove(node)
