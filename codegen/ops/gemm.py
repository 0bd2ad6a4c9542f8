"""Gemm and MatMul with one constant operand: a fully connected layer. Nodes that nn_fc cannot
take (two run-time operands, a constant operand with batch dimensions) are products of two
operands: ops/matmul.py.

Both lower to nn_fc_f32, which computes out[r, n] = bias[n] + sum_k in[r, k] * W[n, k]
with strides on `in` and `out`. With the constant on the right (x @ B) the rows are the
rows of x; with the constant on the left (A @ x) the rows are the columns of x and the
strides transpose the view, so no data is moved.

int16 activations (ops/base.py section 10), for the nodes nn_fc takes: nn_fc_s16, or
nn_fc_acc64_s16 where an int32 accumulator could overflow (|bias| + 32768 * sum |w| >= 2^31);
the weights stay dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen import sparse
from codegen.errors import Unsupported
from codegen.ir import Graph, Node
from codegen.fixedpoint import output64_s16, output_s8, output_s16
from codegen.ops.base import (
    Const,
    KernelCall,
    Op,
    activation,
    apply_activation,
    is_int8,
    is_int16,
    qparams,
    register,
    is_sparse,
    shape_of,
    sparse_tables,
)
from codegen.ops.matmul import BatchedMatMul
from codegen.qparams import fold_input_offset, layer_weights, multipliers, quantize_bias


@dataclass
class FcLayout:
    """How a node maps onto nn_fc: weight [out_features, in_features] and strides."""

    weight: np.ndarray
    bias: np.ndarray | None
    rows: int
    in_features: int
    out_features: int
    in_row_stride: int
    in_col_stride: int
    out_row_stride: int
    out_col_stride: int


def _gemm_layout(node: Node, graph: Graph) -> FcLayout:
    a_name, b_name = node.inputs[0], node.inputs[1]
    c_name = node.inputs[2] if len(node.inputs) > 2 else ""
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    trans_a = int(node.attrs.get("transA", 0))
    trans_b = int(node.attrs.get("transB", 0))
    a_const, b_const = graph.const(a_name), graph.const(b_name)
    a_shape, b_shape = shape_of(graph, a_name), shape_of(graph, b_name)
    m, k = (a_shape[1], a_shape[0]) if trans_a else a_shape
    n = b_shape[0] if trans_b else b_shape[1]
    c = graph.const(c_name) if c_name else None
    if c_name and c is None:
        raise Unsupported("bias C must be a constant")
    if c is not None and (c.ndim > 2 or any(d not in (1, t) for d, t in zip(c.shape[::-1], (n, m)))):
        raise Unsupported(f"bias C of shape {c.shape} does not broadcast to the output ({m}, {n})")

    if b_const is not None and a_const is None:
        weight = b_const.T if not trans_b else b_const  # [N, K]
        if c is not None and c.size > 1 and _varies(np.broadcast_to(c, (m, n)), axis=0):
            raise Unsupported(f"bias of shape {c.shape} varies across rows")
        bias = None if c is None else np.broadcast_to(c, (m, n))[0]
        in_strides = (1, m) if trans_a else (k, 1)
        layout = FcLayout(weight, bias, m, k, n, *in_strides, n, 1)
    elif a_const is not None and b_const is None:
        weight = a_const.T if trans_a else a_const  # [M, K]
        if c is not None and c.size > 1 and _varies(np.broadcast_to(c, (m, n)), axis=1):
            raise Unsupported(f"bias of shape {c.shape} varies across columns")
        bias = None if c is None else np.broadcast_to(c, (m, n))[:, 0]
        in_strides = (k, 1) if trans_b else (1, n)
        layout = FcLayout(weight, bias, n, k, m, *in_strides, 1, n)
    else:
        raise Unsupported("exactly one of A and B must be a constant")
    # alpha and beta of 1 (nearly always) leave a read-only view of the constant: no copy of
    # the weights each time a pass asks for the layout (AlexNet's fc6 holds 37.7 M floats)
    layout.weight = _scaled(layout.weight, alpha)
    if layout.bias is not None:
        layout.bias = _scaled(layout.bias, beta)
    return layout


def _varies(c: np.ndarray, axis: int) -> bool:
    """Whether the values of `c` differ along `axis`, compared exactly (the float32 standard
    deviation of equal values need not be 0: three rows of 0.94708097 give 6e-8)."""
    first = np.take(c, [0], axis=axis)
    return bool(np.any(c != first))


def _scaled(value: np.ndarray, factor: float) -> np.ndarray:
    if factor != 1.0:
        return (factor * value.astype(np.float32)).astype(np.float32)
    view = value.astype(np.float32, copy=False).view()
    view.flags.writeable = False
    return view


def _matmul_layout(node: Node, graph: Graph) -> FcLayout:
    a_name, b_name = node.inputs
    a_const, b_const = graph.const(a_name), graph.const(b_name)
    a_shape, b_shape = shape_of(graph, a_name), shape_of(graph, b_name)
    if b_const is not None and a_const is None:
        w = b_const.reshape(b_shape[-1], 1) if len(b_shape) == 1 else b_const
        if w.ndim > 2:
            if any(d != 1 for d in w.shape[:-2]):
                raise Unsupported("a constant right operand with batch dimensions is not supported")
            w = w.reshape(w.shape[-2:])
        k, n = w.shape
        rows = int(np.prod(a_shape[:-1], dtype=np.int64))
        return FcLayout(np.ascontiguousarray(w.T), None, rows, k, n, k, 1, n, 1)
    if a_const is not None and b_const is None:
        w = a_const.reshape(1, a_shape[0]) if len(a_shape) == 1 else a_const
        if w.ndim > 2:
            raise Unsupported("a constant left operand with batch dimensions is not supported")
        if len(b_shape) < 2 or any(d != 1 for d in b_shape[:-2]):
            raise Unsupported("a constant left operand needs a 2-D right operand")
        m, k = w.shape
        n = b_shape[-1]
        return FcLayout(np.ascontiguousarray(w), None, n, k, m, 1, n, 1, n)
    raise Unsupported("exactly one operand must be a constant")


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy.matmul's rule: 1-D operands gain and then lose a dimension; batch dims broadcast."""
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if not a or not b or a2[-1] != b2[-2]:
        raise Unsupported(f"shapes {a} and {b} do not multiply")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise Unsupported(f"batch dimensions of {a} and {b} do not broadcast") from None
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return tuple(out)


BATCHED = BatchedMatMul()


def runs_batched(node: Node, graph: Graph) -> bool:
    """Whether nn_fc cannot take the node (its layout refuses it): matmul.py computes it then.
    Two constant operands stay here, refused (the frontend folds such a product)."""
    if all(graph.const(name) is not None for name in node.inputs[:2]):
        return False
    try:
        _gemm_layout(node, graph) if node.op_type == "Gemm" else _matmul_layout(node, graph)
    except Unsupported:
        return True
    return False


ACC32_LIMIT = 2**31


def needs_acc64(wq2d: np.ndarray, bias: np.ndarray) -> bool:
    """Whether an int32 accumulator of int16 inputs times int8 weights could overflow:
    |bias[n]| + 32768 * sum_k |w[n, k]| >= 2^31 for some output n."""
    bound = np.abs(bias.astype(np.int64)) + 32768 * np.abs(wq2d.astype(np.int64)).sum(axis=1)
    return bool(bound.size and bound.max() >= ACC32_LIMIT)


@register("Gemm", "MatMul")
class FullyConnected(Op):
    fuses_activation = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if runs_batched(node, graph):
            return BATCHED.supports_precision(node, graph, precision)
        return precision in self.precisions

    def layout(self, node: Node, graph: Graph) -> FcLayout:
        if node.op_type == "Gemm":
            return _gemm_layout(node, graph)
        return _matmul_layout(node, graph)

    def check(self, node: Node, graph: Graph) -> None:
        if runs_batched(node, graph):
            return BATCHED.check(node, graph)
        self.layout(node, graph)

    def infer_shapes(self, node, graph):
        a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
        if node.op_type == "Gemm":
            if len(a) != 2 or len(b) != 2:
                raise Unsupported("Gemm operands must be 2-D")
            m = a[1] if node.attrs.get("transA", 0) else a[0]
            ka = a[0] if node.attrs.get("transA", 0) else a[1]
            kb = b[1] if node.attrs.get("transB", 0) else b[0]
            n = b[0] if node.attrs.get("transB", 0) else b[1]
            if ka != kb:
                raise Unsupported(f"inner dimensions differ: {ka} and {kb}")
            return [(m, n)]
        return [_matmul_shape(a, b)]

    def reference(self, node, graph, inputs):
        if node.op_type == "Gemm":
            a, b = inputs[0], inputs[1]
            a = a.T if node.attrs.get("transA", 0) else a
            b = b.T if node.attrs.get("transB", 0) else b
            y = np.float32(node.attrs.get("alpha", 1.0)) * (a @ b)
            if len(inputs) > 2 and inputs[2] is not None:
                y = y + np.float32(node.attrs.get("beta", 1.0)) * inputs[2]
        else:
            y = np.matmul(inputs[0], inputs[1])
        return [apply_activation(node, y.astype(np.float32))]

    def reference_in_kernel_order(self, node, graph, inputs):
        """As nn_fc_f32 sums, from the same tables: the bias, then feature by feature."""
        if runs_batched(node, graph):
            return BATCHED.reference_in_kernel_order(node, graph, inputs)
        fc = self.layout(node, graph)
        flat = np.asarray(inputs[graph.const(node.inputs[0]) is not None], np.float32).reshape(-1)
        r = np.arange(fc.rows)[:, None]
        k = np.arange(fc.in_features)[None, :]
        x = flat[r * fc.in_row_stride + k * fc.in_col_stride]  # [rows, in_features]
        w = np.ascontiguousarray(fc.weight, np.float32)
        acc = np.zeros((fc.rows, fc.out_features), np.float32)
        if fc.bias is not None:
            acc += fc.bias.astype(np.float32)[None, :]
        for i in range(fc.in_features):
            acc += x[:, i:i + 1] * w[None, :, i]
        out = np.empty(fc.rows * fc.out_features, np.float32)
        out[r * fc.out_row_stride + np.arange(fc.out_features)[None, :] * fc.out_col_stride] = acc
        return [apply_activation(node, out.reshape(shape_of(graph, node.outputs[0])))]

    def macs(self, node, graph):
        if runs_batched(node, graph):
            return BATCHED.macs(node, graph)
        fc = self.layout(node, graph)
        return fc.rows * fc.in_features * fc.out_features

    def params_count(self, node, graph):
        if runs_batched(node, graph):
            return BATCHED.params_count(node, graph)
        fc = self.layout(node, graph)
        return fc.weight.size + (0 if fc.bias is None else fc.bias.size)

    def _activation_input(self, node, graph) -> str:
        return node.inputs[1] if graph.const(node.inputs[0]) is not None else node.inputs[0]

    def _strides(self, fc: FcLayout):
        return {
            "rows": fc.rows,
            "in_features": fc.in_features,
            "out_features": fc.out_features,
            "in_row_stride": fc.in_row_stride,
            "in_col_stride": fc.in_col_stride,
            "out_row_stride": fc.out_row_stride,
            "out_col_stride": fc.out_col_stride,
        }

    def quantize(self, node, graph):
        if runs_batched(node, graph):
            return BATCHED.quantize(node, graph)
        fc = self.layout(node, graph)
        x, y = qparams(graph, self._activation_input(node, graph)), qparams(graph, node.outputs[0])
        wq, w_scales = layer_weights(node, fc.weight, fc.bias, x.scale)
        if is_int16(graph, node):  # zero points 0: nothing to fold
            bias = quantize_bias(fc.bias, x.scale, w_scales)
            m0, shift = multipliers(x.scale * w_scales.astype(np.float64) / y.scale)
            act_min, act_max = y.clamp_range(*activation(node))
            return {"weight": wq, "bias": bias, "multiplier": m0, "shift": shift, "act_min": act_min,
                    "act_max": act_max, "acc64": needs_acc64(wq, bias)}
        bias = fold_input_offset(quantize_bias(fc.bias, x.scale, w_scales), wq, x.zero_point)
        m0, shift = multipliers(x.scale * w_scales.astype(np.float64) / y.scale)
        act_min, act_max = y.clamp_range(*activation(node))
        return {"weight": wq, "bias": bias, "multiplier": m0, "shift": shift,
                "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max}

    def scratch_bytes(self, node, graph, in_place, features=()):
        return BATCHED.scratch_bytes(node, graph, in_place, features) if runs_batched(node, graph) else 0

    def sparse_layer(self, node, graph):
        if runs_batched(node, graph) or is_int16(graph, node):  # int16: dense weights only
            return None
        return "fc", node.attrs["q"]["weight"], self._strides(self.layout(node, graph))

    def reference_s8(self, node, graph, inputs):
        if runs_batched(node, graph):
            return BATCHED.reference_s8(node, graph, inputs)
        fc, q = self.layout(node, graph), node.attrs["q"]
        flat = inputs[graph.const(node.inputs[0]) is not None].reshape(-1).astype(np.int64)
        r = np.arange(fc.rows)[:, None]
        k = np.arange(fc.in_features)[None, :]
        x = flat[r * fc.in_row_stride + k * fc.in_col_stride]  # [rows, in_features]
        acc = x @ q["weight"].astype(np.int64).T + q["bias"]
        if is_int16(graph, node):
            y = (output64_s16 if q["acc64"] else output_s16)(acc, q["multiplier"], q["shift"], q["act_min"],
                                                             q["act_max"])
        else:
            y = output_s8(acc, q["multiplier"], q["shift"], q["output_offset"], q["act_min"], q["act_max"])
        out = np.empty(fc.rows * fc.out_features, y.dtype)
        n = np.arange(fc.out_features)[None, :]
        out[r * fc.out_row_stride + n * fc.out_col_stride] = y
        return [out.reshape(shape_of(graph, node.outputs[0]))]

    def kernels(self, node, graph):
        if runs_batched(node, graph):
            return BATCHED.kernels(node, graph)
        fc = self.layout(node, graph)
        act = self._activation_input(node, graph)
        if is_int16(graph, node):
            q = node.attrs["q"]
            name = "nn_fc_acc64_s16" if q["acc64"] else "nn_fc_s16"
            params = {**self._strides(fc), "act_min": q["act_min"], "act_max": q["act_max"]}
            return [KernelCall(name, (f"src/fc/{name}.c",), "nn_fc_s16_params", params,
                               [act, Const(q["weight"], "w"), Const(q["bias"], "b"), Const(q["multiplier"], "m"),
                                Const(q["shift"].astype(np.int8), "s"), node.outputs[0]])]
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {**self._strides(fc), "output_offset": q["output_offset"],
                      "act_min": q["act_min"], "act_max": q["act_max"]}
            tables = [Const(q["bias"], "b"), Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s")]
            if is_sparse(node):
                encoding = node.attrs["encoding"].encoding
                function, source, params_type = sparse.sparse_kernel("fc")
                return [KernelCall(function, (source,), params_type, sparse.sparse_params("fc", params, encoding),
                                   [act, *sparse_tables(q["weight"], encoding), *tables, node.outputs[0]])]
            return [KernelCall("nn_fc_s8", ("src/fc/nn_fc_s8.c",), "nn_fc_s8_params", params,
                               [act, Const(q["weight"], "w"), *tables, node.outputs[0]])]
        lo, hi = activation(node)
        params = {**self._strides(fc), "act_min": float(lo), "act_max": float(hi)}
        bias = None if fc.bias is None else Const(fc.bias.astype(np.float32), "b")
        return [
            KernelCall(
                "nn_fc_f32",
                ("src/fc/nn_fc_f32.c",),
                "nn_fc_f32_params",
                params,
                [act, Const(np.ascontiguousarray(fc.weight, np.float32), "w"), bias, node.outputs[0]],
            )
        ]
