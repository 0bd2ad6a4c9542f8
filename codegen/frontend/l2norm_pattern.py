"""torch's F.normalize(x, p=2, dim) as both exporters write it, fused into one LpNormalization
(simplify.py calls `fuse_l2_normalize`):

    n = ReduceL2(x, axes=[a])          one axis, keepdims 1
    c = Clip(n, eps)                   a constant lower bound eps >= 0, no upper bound
    [e = Expand(c, shape)]             to x's shape (the classic exporter)
    y = Div(x, c | e)

becomes LpNormalization(x, axis=a, p=2) with the internal attribute `epsilon` = eps: the
kernels divide by max(norm, eps), which is this chain's value exactly (a group of zeros gives
zeros either way). n, c and e must have no other reader and not be model outputs.
"""

from __future__ import annotations

from codegen.ir import Graph, Node


def _sole(graph: Graph, name: str, op_types: tuple[str, ...]) -> Node | None:
    if name in graph.outputs:
        return None
    readers = graph.consumers(name)
    if len(readers) == 1 and readers[0].op_type in op_types:
        return readers[0]
    return None


def fuse_l2_normalize(graph: Graph) -> None:
    for norm in [n for n in graph.nodes if n.op_type == "ReduceL2"]:
        _fuse_from(graph, norm)


def _axis(graph: Graph, node: Node, rank: int) -> int | None:
    if int(node.attrs.get("keepdims", 1)) != 1:
        return None
    if "axes" in node.attrs:
        raw = list(node.attrs["axes"])
    elif len(node.inputs) > 1 and node.inputs[1] and graph.const(node.inputs[1]) is not None:
        raw = graph.const(node.inputs[1]).reshape(-1).tolist()
    else:
        return None
    if len(raw) != 1 or not -rank <= int(raw[0]) < rank:
        return None
    return int(raw[0]) % rank


def _fuse_from(graph: Graph, norm: Node) -> None:
    x = norm.inputs[0]
    shape = graph.tensors[x].shape
    axis = _axis(graph, norm, len(shape))
    clip = None if axis is None else _sole(graph, norm.outputs[0], ("Clip",))
    if clip is None or len(clip.inputs) < 2 or not clip.inputs[1] or (len(clip.inputs) > 2 and clip.inputs[2]):
        return
    eps = graph.const(clip.inputs[1])
    if eps is None or eps.size != 1 or not float(eps.reshape(-1)[0]) >= 0:
        return
    chain = [norm, clip]
    divisor = clip.outputs[0]
    div = _sole(graph, divisor, ("Div", "Expand"))
    if div is not None and div.op_type == "Expand":
        if graph.tensors[div.outputs[0]].shape != shape:
            return
        chain.append(div)
        divisor = div.outputs[0]
        div = _sole(graph, divisor, ("Div",))
    if div is None or div.inputs != [x, divisor] or graph.tensors[div.outputs[0]].shape != shape:
        return
    at = graph.nodes.index(div)
    graph.nodes[at] = Node("LpNormalization", div.name, [x], list(div.outputs),
                           {"axis": axis, "p": 2, "epsilon": float(eps.reshape(-1)[0])})
    for node in chain:
        graph.nodes.remove(node)
