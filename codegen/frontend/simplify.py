"""Graph simplifications the frontend applies before any op sees the graph.

1. Identity nodes vanish: readers read the input instead; an Identity that produces a
   model output renames its producer's output when nothing else reads it.
1a. MatMul by a constant 2-D weight followed by the Add of a constant that varies only along
   the last axis (a Linear layer's bias, as torch and scikit-learn write it) becomes one Gemm
   with that bias as C, so int8 adds the bias in the int32 sum instead of rounding the
   product to int8 first; an input of rank above 2 is reshaped to [rows, K] and back (views,
   no copy).
2. BatchNormalization after a Conv, a ConvTranspose or a Gemm (constant weights, nothing else reading the
   intermediate) folds into the weights and bias: w' = w * s, b' = (b - mean) * s + beta
   with s = scale / sqrt(var + eps). A standalone BatchNormalization becomes a depthwise
   1x1 Conv with the same per-channel affine (a rank-2 input is reshaped to [N, C, 1]).
2a. Mul, Add, Sub and Div by a constant are affine maps y = s * x + t (x / c: s = 1 / c, never
   for a c with a zero; x - c: t = -c; c - x: s = -1, t = c). One whose constant is a scalar
   or varies only along the channel axis (axis 1 of a Conv, ConvTranspose or Gemm, the last
   axis of a MatMul by a constant weight; a MatMul takes scales only, its Add is rule 1a's)
   folds into its producer's weights and bias like rule 2, when nothing else reads the
   producer's output and no activation is fused into it yet. Two such nodes in a row, the
   first read only by the second, compose into one Mul, one Add, or a Mul then an Add; an
   Add then a Mul becomes a Mul then an Add only where the Mul then reaches a producer it
   folds into. Repeated until nothing changes: Conv, Mul, Add, Mul -> Conv.
3. Relu and Clip with constant bounds after an op that `fuses_activation`, when nothing
   else reads the intermediate, become that op's output clamp.
3a. The ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add) chain that torch writes for a
   layer norm before opset 17 becomes one LayerNormalization (frontend/layernorm_pattern.py).
3c. torch's F.normalize (ReduceL2, Clip, Expand, Div) becomes one LpNormalization
   (frontend/l2norm_pattern.py).
3b. GELU written out (erf or tanh form, torch's exports) becomes one Gelu node
   (frontend/gelu.py).
4. Nodes whose outputs nobody reads, and tensors nothing refers to, are dropped.
"""

from __future__ import annotations

import numpy as np

from codegen.frontend.gelu import fuse_gelu
from codegen.frontend.l2norm_pattern import fuse_l2_normalize
from codegen.frontend.layernorm_pattern import fuse_layernorm
from codegen.ir import Graph, Node, Tensor
from codegen.ops import get_op


def run(graph: Graph) -> None:
    drop_identity(graph)
    fold_affine(graph)
    fold_matmul_bias(graph)
    fold_batchnorm(graph)
    fold_affine(graph)
    fuse_gelu(graph)
    fuse_layernorm(graph)
    fuse_l2_normalize(graph)
    fuse_activation(graph)
    graph.remove_unused()


def _sole_reader(graph: Graph, tensor: str, node: Node) -> bool:
    return tensor not in graph.outputs and all(c is node for c in graph.consumers(tensor))


def drop_identity(graph: Graph) -> None:
    for node in [n for n in graph.nodes if n.op_type == "Identity"]:
        src, dst = node.inputs[0], node.outputs[0]
        if dst not in graph.outputs:
            graph.nodes.remove(node)
            graph.rename_uses(dst, src)
            continue
        producer = graph.producer(src)
        if producer is not None and _sole_reader(graph, src, node):
            graph.nodes.remove(node)
            producer.outputs = [dst if o == src else o for o in producer.outputs]
            del graph.tensors[src]


def fold_matmul_bias(graph: Graph) -> None:
    for mm in [n for n in graph.nodes if n.op_type == "MatMul"]:
        x, w_name = mm.inputs
        w, out = graph.const(w_name), mm.outputs[0]
        readers = graph.consumers(out)
        if w is None or w.ndim != 2 or graph.const(x) is not None or len(readers) != 1 or out in graph.outputs:
            continue
        add = readers[0]
        x_shape, out_shape = graph.tensors[x].shape, graph.tensors[out].shape
        if add.op_type != "Add" or len(x_shape) < 2 or graph.tensors[x].dtype != "float32":
            continue
        c = graph.const(add.inputs[1] if add.inputs[0] == out else add.inputs[0])
        n = w.shape[1]
        if c is None or c.ndim > len(out_shape) or c.size not in (1, n) or c.shape[:-1] != (1,) * (c.ndim - 1) \
                or graph.tensors[add.outputs[0]].shape != out_shape:
            continue
        bias = np.broadcast_to(c.reshape(-1).astype(np.float32), (n,))
        gemm_in, gemm_out = x, add.outputs[0]
        nodes = []
        if len(x_shape) > 2:  # [..., K] -> [rows, K] -> Gemm -> [..., N]
            rows = int(np.prod(x_shape[:-1], dtype=np.int64))
            gemm_in = graph.fresh_name(f"{mm.name}_rows")
            gemm_out = graph.fresh_name(f"{mm.name}_gemm")
            graph.tensors[gemm_in] = Tensor(gemm_in, (rows, w.shape[0]), "float32")
            graph.tensors[gemm_out] = Tensor(gemm_out, (rows, n), "float32")
            nodes.append(Node("Reshape", f"{mm.name}_rows", [x, graph.add_const(f"{mm.name}_rows_shape",
                              np.array([rows, w.shape[0]], np.int64))], [gemm_in]))
        nodes.append(Node("Gemm", mm.name, [gemm_in, w_name, graph.add_const(f"{mm.name}_bias", bias.copy())],
                          [gemm_out]))
        if len(x_shape) > 2:
            nodes.append(Node("Reshape", f"{mm.name}_shape", [gemm_out, graph.add_const(
                f"{mm.name}_out_shape", np.array(out_shape, np.int64))], [add.outputs[0]]))
        at = graph.nodes.index(mm)
        graph.nodes[at:at + 1] = nodes
        graph.nodes.remove(add)


def fold_batchnorm(graph: Graph) -> None:
    for bn in [n for n in graph.nodes if n.op_type == "BatchNormalization"]:
        x = bn.inputs[0]
        scale, beta, mean, var = (graph.const(i).astype(np.float64) for i in bn.inputs[1:5])
        s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        t = beta - mean * s
        producer = graph.producer(x)
        if producer is not None and _sole_reader(graph, x, bn) and _fold_into(graph, producer, s, t):
            producer.outputs = [bn.outputs[0]]
            graph.nodes.remove(bn)
        else:
            _to_depthwise_conv(graph, bn, s, t)


def _fold_into(graph: Graph, producer: Node, s: np.ndarray, t: np.ndarray) -> bool:
    ins = producer.inputs
    if producer.op_type == "Conv":
        w = graph.const(ins[1])
        if w is None or (len(ins) > 2 and ins[2] and graph.const(ins[2]) is None):
            return False
        b = graph.const(ins[2]) if len(ins) > 2 and ins[2] else np.zeros(w.shape[0])
        w2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        b2 = b * s + t
        producer.inputs = [ins[0], graph.add_const(f"{producer.name}_w", w2.astype(np.float32)),
                           graph.add_const(f"{producer.name}_b", b2.astype(np.float32))]
        return True
    if producer.op_type == "ConvTranspose":  # weights [C_in, C_out / group, ...]: output channels on axis 1 per group
        w = graph.const(ins[1])
        if w is None or (len(ins) > 2 and ins[2] and graph.const(ins[2]) is None):
            return False
        groups = int(producer.attrs.get("group", 1))
        b = graph.const(ins[2]) if len(ins) > 2 and ins[2] else np.zeros(w.shape[1] * groups)
        grouped = w.reshape((groups, w.shape[0] // groups) + w.shape[1:])
        w2 = (grouped * s.reshape((groups, 1, -1) + (1,) * (w.ndim - 2))).reshape(w.shape)
        producer.inputs = [ins[0], graph.add_const(f"{producer.name}_w", w2.astype(np.float32)),
                           graph.add_const(f"{producer.name}_b", (b * s + t).astype(np.float32))]
        return True
    if producer.op_type == "Gemm":
        w, a = graph.const(ins[1]), graph.const(ins[0])
        if w is None or a is not None or (len(ins) > 2 and ins[2] and graph.const(ins[2]) is None):
            return False
        alpha, beta = float(producer.attrs.get("alpha", 1.0)), float(producer.attrs.get("beta", 1.0))
        trans_b = int(producer.attrs.get("transB", 0))
        n = w.shape[0] if trans_b else w.shape[1]
        c = graph.const(ins[2]) if len(ins) > 2 and ins[2] else np.zeros(n)
        m = graph.tensors[producer.outputs[0]].shape[0]
        c_rows = np.broadcast_to(beta * c, (m, n))
        if (c_rows != c_rows[0]).any():
            return False
        w2 = alpha * w * (s[:, None] if trans_b else s[None, :])
        c2 = c_rows[0] * s + t
        producer.inputs = [ins[0], graph.add_const(f"{producer.name}_w", w2.astype(np.float32)),
                           graph.add_const(f"{producer.name}_b", c2.astype(np.float32))]
        producer.attrs.update(alpha=1.0, beta=1.0)
        return True
    return False


AFFINE_OPS = ("Mul", "Add", "Sub", "Div")


def _affine(graph: Graph, node: Node) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(x, s, t) with output = s * x + t for a Mul/Add/Sub/Div of a float tensor x by a constant that
    does not broadcast x to a larger shape (s, t float64, broadcastable to x); None otherwise."""
    if node.op_type not in AFFINE_OPS or len(node.inputs) != 2 or len(node.outputs) != 1:
        return None
    a, b = node.inputs
    ca, cb = graph.const(a), graph.const(b)
    if (ca is None) == (cb is None):
        return None
    x, c, const_first = (b, ca, True) if cb is None else (a, cb, False)
    shape = graph.tensors[x].shape
    if graph.tensors[x].dtype != "float32" or c.dtype.kind != "f" or c.ndim > len(shape) \
            or graph.tensors[node.outputs[0]].shape != shape or np.broadcast_shapes(c.shape, shape) != shape:
        return None
    c = c.astype(np.float64)
    one, zero = np.ones(()), np.zeros(())
    if node.op_type == "Mul":
        return x, c, zero
    if node.op_type == "Add":
        return x, one, c
    if node.op_type == "Sub":
        return (x, -one, c) if const_first else (x, one, -c)
    if const_first or not c.all():  # c / x is not affine; x / 0 stays as written
        return None
    return x, 1.0 / c, zero


def _channel_vector(v: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`v` (broadcastable to `shape`) as one value per index of `axis`, if it varies along no other axis."""
    padded = v.reshape((1,) * (len(shape) - v.ndim) + v.shape)
    if any(n != 1 for i, n in enumerate(padded.shape) if i != axis):
        return None
    return np.broadcast_to(padded.reshape(-1), (shape[axis],)).astype(np.float64)


def _fold_affine_into_producer(graph: Graph, node: Node, x: str, s: np.ndarray, t: np.ndarray) -> bool:
    producer = graph.producer(x)
    if producer is None or not _sole_reader(graph, x, node) or "activation" in producer.attrs:
        return False
    shape = graph.tensors[x].shape
    if producer.op_type in ("Conv", "ConvTranspose", "Gemm") and len(shape) >= 2:
        s_vec, t_vec = _channel_vector(s, shape, 1), _channel_vector(t, shape, 1)
        if s_vec is None or t_vec is None or not _fold_into(graph, producer, s_vec, t_vec):
            return False
    elif producer.op_type == "MatMul":  # scales only: the bias Add is fold_matmul_bias's
        w = graph.const(producer.inputs[1])
        s_vec = _channel_vector(s, shape, len(shape) - 1)
        if w is None or w.ndim != 2 or graph.const(producer.inputs[0]) is not None or s_vec is None or t.any():
            return False
        producer.inputs = [producer.inputs[0],
                           graph.add_const(f"{producer.name}_w", (w * s_vec[None, :]).astype(np.float32))]
    else:
        return False
    producer.outputs = [node.outputs[0]]
    graph.nodes.remove(node)
    return True


def _folds_into_producer(graph: Graph, x: str) -> bool:
    producer = graph.producer(x)
    return producer is not None and producer.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") \
        and "activation" not in producer.attrs and len(graph.consumers(x)) == 1 and x not in graph.outputs


def _compose_affine(graph: Graph, first: Node, second: Node, x: str, s: np.ndarray, t: np.ndarray) -> bool:
    """Replace `first` (s1 * x + t1, read only by `second`) and `second` by the composed s * x + t."""
    mid, out = first.outputs[0], second.outputs[0]
    scales, shifts = bool((s != 1).any()), bool(t.any())
    was_add_mul = first.op_type in ("Add", "Sub") and second.op_type in ("Mul", "Div")
    if scales and shifts and not (was_add_mul and _folds_into_producer(graph, x)):
        return False  # still two nodes, and the Mul would fold into nothing
    nodes = []
    if scales or not shifts:
        scale = graph.add_const(f"{first.name}_scale", s.astype(np.float32))
        nodes.append(Node("Mul", first.name, [x, scale], [mid if shifts else out]))
    if shifts:
        shift = graph.add_const(f"{second.name}_shift", t.astype(np.float32))
        nodes.append(Node("Add", second.name, [mid if scales else x, shift], [out]))
    graph.nodes.remove(second)
    at = graph.nodes.index(first)
    graph.nodes[at:at + 1] = nodes
    return True


def fold_affine(graph: Graph) -> None:
    """Rule 2a: constant Mul/Add/Sub/Div into a Conv/ConvTranspose/Gemm/MatMul, and chains of them
    composed, until nothing changes."""
    changed = True
    while changed:
        changed = False
        for node in list(graph.nodes):
            affine = _affine(graph, node)
            if affine is None:
                continue
            x, s, t = affine
            if _fold_affine_into_producer(graph, node, x, s, t):
                changed = True
                break
            readers = graph.consumers(node.outputs[0])
            if len(readers) != 1 or node.outputs[0] in graph.outputs:
                continue
            after = _affine(graph, readers[0])
            if after is None or after[0] != node.outputs[0]:
                continue
            s2, t2 = after[1], after[2]
            if _compose_affine(graph, node, readers[0], x, s * s2, s2 * t + t2):
                changed = True
                break


def _to_depthwise_conv(graph: Graph, bn: Node, s: np.ndarray, t: np.ndarray) -> None:
    x, y = bn.inputs[0], bn.outputs[0]
    shape = graph.tensors[x].shape
    channels = shape[1]
    spatial = max(len(shape) - 2, 1)
    w = graph.add_const(f"{bn.name}_w", s.reshape((channels, 1) + (1,) * spatial).astype(np.float32))
    b = graph.add_const(f"{bn.name}_b", t.astype(np.float32))
    attrs = {"group": channels, "kernel_shape": [1] * spatial}
    at = graph.nodes.index(bn)
    if len(shape) >= 3:
        graph.nodes[at] = Node("Conv", bn.name, [x, w, b], [y], attrs)
        return
    # rank 2: [N, C] -> [N, C, 1] -> conv -> [N, C]
    x3, y3 = graph.fresh_name(f"{x}_3d"), graph.fresh_name(f"{y}_3d")
    graph.tensors[x3] = Tensor(x3, shape + (1,), "float32")
    graph.tensors[y3] = Tensor(y3, shape + (1,), "float32")
    to3 = graph.add_const(f"{bn.name}_shape3", np.array(shape + (1,), np.int64))
    to2 = graph.add_const(f"{bn.name}_shape2", np.array(shape, np.int64))
    graph.nodes[at: at + 1] = [
        Node("Reshape", f"{bn.name}/reshape_in", [x, to3], [x3]),
        Node("Conv", bn.name, [x3, w, b], [y3], attrs),
        Node("Reshape", f"{bn.name}/reshape_out", [y3, to2], [y]),
    ]


def _clamp_bounds(graph: Graph, node: Node) -> tuple[float, float] | None:
    if node.op_type == "Relu":
        return 0.0, np.inf
    lo, hi = -np.inf, np.inf
    if len(node.inputs) > 1 and node.inputs[1]:
        v = graph.const(node.inputs[1])
        if v is None:
            return None
        lo = float(v)
    if len(node.inputs) > 2 and node.inputs[2]:
        v = graph.const(node.inputs[2])
        if v is None:
            return None
        hi = float(v)
    return lo, hi


def fuse_activation(graph: Graph) -> None:
    for node in [n for n in graph.nodes if n.op_type in ("Relu", "Clip")]:
        producer = graph.producer(node.inputs[0])
        if producer is None or not _sole_reader(graph, node.inputs[0], node):
            continue
        op = get_op(producer.op_type)
        bounds = _clamp_bounds(graph, node)
        if op is None or not op.fuses_activation or bounds is None:
            continue
        old_lo, old_hi = producer.attrs.get("activation", (-np.inf, np.inf))
        lo, hi = max(old_lo, bounds[0]), min(old_hi, bounds[1])
        if not lo <= hi or not (old_lo <= bounds[1] and bounds[0] <= old_hi):
            continue
        producer.attrs["activation"] = (lo, hi)
        producer.outputs = [node.outputs[0]]
        graph.nodes.remove(node)
