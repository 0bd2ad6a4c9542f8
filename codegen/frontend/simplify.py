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
    fold_matmul_bias(graph)
    fold_batchnorm(graph)
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
