"""MatMul and Gemm as a product of two operands read at run time (attention: Q @ K^T, P @ V).

The Gemm/MatMul family (ops/gemm.py) hands a node here when no operand is a constant that
nn_fc can take as its weight table: both operands are activations, or a constant operand has
batch dimensions (kept as a table and read like an activation), or Gemm's constant C varies
along the axis nn_fc cannot broadcast.

1. Shapes: numpy.matmul's rule. A 1-D left operand is a row [1, K], a 1-D right operand a
   column [K, 1], and the added axis is removed from the output; batch dimensions broadcast;
   output rank at most 6. Gemm: 2-D operands, transA/transB as strided views (no copy).
2. Float (nn_matmul_f32): out = alpha * sum_k a * b + beta * C, the sum over k in order;
   C is a constant or a run-time tensor broadcast to [M, N], read through strides.
3. int8 (nn_matmul_s8): both operands per tensor (a constant one gets its own asymmetric
   scale and zero point from its range), acc = sum_k (a - za)(b - zb) in int32,
   out = requantize(sign(alpha) * acc + bias) with one multiplier
   |alpha| * sa * sb / s_out; Gemm's beta * C is an int32 bias at the product's scale
   |alpha| * sa * sb (a constant C only: a run-time C in int8 is refused). The kernel forms
   the same integer expanded, sum a b - zb * (row sum of a) - za * (column sum of b)
   + K za zb, with the column sums in n int32 of scratch; each of the four terms is at most
   K * 2^14 in magnitude, so K * 2^16 plus |bias| must stay below 2^31 (K up to 32767
   without a bias) and no partial sum overflows.
4. int16 (nn_matmul_s16, zero points 0): both operands symmetric per tensor (a constant one
   from its own range), acc = sum_k a b in int64 (K <= 65536), requantized once by
   fixedpoint.requantize64; without a bias (a Gemm with C stays int8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output64_s16, output_s8
from codegen.ops.base import (Const, KernelCall, Op, Scratch, activation, apply_activation, is_int8, is_int16,
                              qparams, shape_of)
from codegen.qparams import QParams, from_range, multipliers

MAX_DIMS = 6
ACC_LIMIT = 2**31
MAX_K_S16 = 1 << 16  # int16: K products of at most 2^30 stay below 2^47 (requantize64)


@dataclass
class MatMulView:
    """The nn_matmul_* geometry of a node (see runtime_c/include/nn_matmul.h)."""

    batch: list[int]
    a_batch_strides: list[int]
    b_batch_strides: list[int]
    m: int
    k: int
    n: int
    a_strides: tuple[int, int]  # (row, col) of the left operand as [M, K]
    b_strides: tuple[int, int]  # (row, col) of the right operand as [K, N]
    bias: str  # input name of Gemm's C, "" when absent
    bias_strides: tuple[int, int]
    alpha: float
    beta: float

    @property
    def count(self) -> int:
        return math.prod(self.batch)

    def struct(self) -> dict:
        return {"batch": self.batch, "a_batch_strides": self.a_batch_strides, "b_batch_strides": self.b_batch_strides,
                "m": self.m, "k": self.k, "n": self.n, "a_row_stride": self.a_strides[0],
                "a_col_stride": self.a_strides[1], "b_row_stride": self.b_strides[0],
                "b_col_stride": self.b_strides[1], "bias_row_stride": self.bias_strides[0],
                "bias_col_stride": self.bias_strides[1]}


def _batch_strides(shape: tuple[int, ...], matrix: int) -> list[int]:
    """Element strides of an operand's batch dimensions padded to MAX_DIMS (0 on a broadcast one)."""
    padded = (1,) * (MAX_DIMS - len(shape)) + tuple(shape)
    strides, step = [0] * MAX_DIMS, matrix
    for d in range(MAX_DIMS - 1, -1, -1):
        strides[d] = step if padded[d] != 1 else 0
        step *= padded[d]
    return strides


def _bias_strides(shape: tuple[int, ...], m: int, n: int) -> tuple[int, int]:
    if len(shape) > 2 or any(d not in (1, t) for d, t in zip(shape[::-1], (n, m))):
        raise Unsupported(f"bias C of shape {tuple(shape)} does not broadcast to the output ({m}, {n})")
    rows, cols = (1,) * (2 - len(shape)) + tuple(shape)
    return (cols if rows != 1 else 0), (1 if cols != 1 else 0)


def matmul_view(node, graph) -> MatMulView:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    if node.op_type == "Gemm":
        if len(a) != 2 or len(b) != 2:
            raise Unsupported("Gemm operands must be 2-D")
        trans_a, trans_b = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        m, k = (a[1], a[0]) if trans_a else a
        kb, n = (b[1], b[0]) if trans_b else b
        if k != kb:
            raise Unsupported(f"inner dimensions differ: {k} and {kb}")
        c_name = node.inputs[2] if len(node.inputs) > 2 else ""
        bias_strides = _bias_strides(shape_of(graph, c_name), m, n) if c_name else (0, 0)
        return MatMulView([1] * MAX_DIMS, [0] * MAX_DIMS, [0] * MAX_DIMS, m, k, n,
                          (1, m) if trans_a else (k, 1), (1, k) if trans_b else (n, 1), c_name, bias_strides,
                          float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0)))
    if not a or not b:
        raise Unsupported("MatMul operands must have at least one dimension")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        raise Unsupported(f"shapes {a} and {b} do not multiply")
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        raise Unsupported(f"batch dimensions of {a} and {b} do not broadcast") from None
    if len(batch) + 2 > MAX_DIMS:
        raise Unsupported(f"rank {len(batch) + 2} is above {MAX_DIMS}")
    m, k, n = a2[-2], a2[-1], b2[-1]
    return MatMulView([1] * (MAX_DIMS - len(batch)) + list(batch), _batch_strides(a2[:-2], m * k),
                      _batch_strides(b2[:-2], k * n), m, k, n, (k, 1), (n, 1), "", (0, 0), 1.0, 1.0)


def _operands(node, graph, view: MatMulView, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The operands as [batch..., M, K] and [batch..., K, N] arrays (views, broadcast by matmul)."""
    a, b = inputs[0], inputs[1]
    if node.op_type == "Gemm":
        a = a.T if node.attrs.get("transA", 0) else a
        b = b.T if node.attrs.get("transB", 0) else b
        return a, b
    return (a.reshape(1, -1) if a.ndim == 1 else a), (b.reshape(-1, 1) if b.ndim == 1 else b)


def _bias(node, view: MatMulView, inputs: list[np.ndarray]) -> np.ndarray | None:
    return inputs[2] if view.bias and len(inputs) > 2 and inputs[2] is not None else None


def _const_qparams(value: np.ndarray, bits: int = 8) -> QParams:
    return from_range(float(value.min(initial=0.0)), float(value.max(initial=0.0)), bits=bits)


class BatchedMatMul(Op):
    """The contract methods for the nodes ops/gemm.py routes here (not registered itself)."""

    fuses_activation = True
    precisions = ("int8", "int16")

    def supports_precision(self, node, graph, precision):
        if precision == "int16":
            view = matmul_view(node, graph)
            return not view.bias and view.k <= MAX_K_S16 and view.alpha != 0.0
        return precision in self.precisions

    def check(self, node, graph):
        matmul_view(node, graph)

    def reference_in_kernel_order(self, node, graph, inputs):
        """As nn_matmul_f32 sums: k in order, then alpha times the sum plus beta times C."""
        view = matmul_view(node, graph)
        a, b = _operands(node, graph, view, [np.asarray(x, np.float32) if x is not None else None for x in inputs])
        acc = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (view.m, view.n), np.float32)
        for i in range(view.k):
            acc += a[..., :, i:i + 1] * b[..., i:i + 1, :]
        y = np.float32(view.alpha) * acc
        c = _bias(node, view, inputs)
        if c is not None:
            y = y + np.float32(view.beta) * np.asarray(c, np.float32)
        return [apply_activation(node, y.astype(np.float32).reshape(shape_of(graph, node.outputs[0])))]

    def scratch_bytes(self, node, graph, in_place, features=()):
        return 4 * matmul_view(node, graph).n if is_int8(graph, node) else 0

    def macs(self, node, graph):
        view = matmul_view(node, graph)
        return view.count * view.m * view.k * view.n

    def params_count(self, node, graph):
        return sum(graph.tensors[i].size for i in node.inputs if i and graph.const(i) is not None)

    def _operand_qparams(self, graph, name: str, bits: int = 8) -> tuple[QParams, np.ndarray | None]:
        value = graph.const(name)
        if value is None:
            return qparams(graph, name), None
        qp = _const_qparams(np.asarray(value, np.float64), bits)
        return qp, qp.quantize(value)

    def quantize(self, node, graph):
        view = matmul_view(node, graph)
        y = qparams(graph, node.outputs[0])
        (qa, a_table), (qb, b_table) = (self._operand_qparams(graph, name, y.bits) for name in node.inputs[:2])
        if y.bits == 16:
            if not self.supports_precision(node, graph, "int16"):
                raise Unsupported("int16 MatMul with a bias C, alpha 0 or K above 65536 is not supported")
            (m0,), (shift,) = multipliers([abs(view.alpha) * float(qa.scale) * float(qb.scale) / y.scale])
            act_min, act_max = y.clamp_range(*activation(node))
            return {"a_table": a_table, "b_table": b_table, "product_sign": -1 if view.alpha < 0 else 1,
                    "multiplier": int(m0), "shift": int(shift), "act_min": act_min, "act_max": act_max}
        if view.alpha == 0.0:
            raise Unsupported("int8 Gemm with alpha 0 is not supported")
        product_scale = abs(view.alpha) * float(qa.scale) * float(qb.scale)
        bias = None
        bound = view.k * 2**16
        if view.bias:
            c = graph.const(view.bias)
            if c is None:
                raise Unsupported("int8 Gemm with a run-time C is not supported")
            with np.errstate(all="ignore"):
                real = view.beta * np.asarray(c, np.float64) / product_scale
            if not np.all(np.isfinite(real)) or (real.size and np.abs(real).max() + bound >= ACC_LIMIT):
                raise Unsupported("an int32 accumulator could overflow (bias C too large for the product's scale)")
            bias = np.rint(real).astype(np.int32).reshape(np.shape(c) or (1,))
        if bound >= ACC_LIMIT:
            raise Unsupported(f"an int32 accumulator could overflow (K = {view.k})")
        (m0,), (shift,) = multipliers([product_scale / y.scale])
        act_min, act_max = y.clamp_range(*activation(node))
        return {"a_table": a_table, "b_table": b_table, "bias": bias, "a_offset": -qa.zero_point,
                "b_offset": -qb.zero_point, "product_sign": -1 if view.alpha < 0 else 1, "multiplier": int(m0),
                "shift": int(shift), "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max}

    def reference_s8(self, node, graph, inputs):
        view, q = matmul_view(node, graph), node.attrs["q"]
        a_in = q["a_table"] if q["a_table"] is not None else inputs[0]
        b_in = q["b_table"] if q["b_table"] is not None else inputs[1]
        a, b = _operands(node, graph, view, [np.asarray(a_in, np.int64), np.asarray(b_in, np.int64)])
        if is_int16(graph, node):
            acc = q["product_sign"] * np.matmul(a, b)
            y = output64_s16(acc, q["multiplier"], q["shift"], q["act_min"], q["act_max"])
            return [y.reshape(shape_of(graph, node.outputs[0]))]
        acc = q["product_sign"] * np.matmul(a + q["a_offset"], b + q["b_offset"])
        if q["bias"] is not None:
            bias = q["bias"].astype(np.int64)
            acc = acc + bias.reshape(graph.tensors[view.bias].shape)
        y = output_s8(acc, q["multiplier"], q["shift"], q["output_offset"], q["act_min"], q["act_max"])
        return [y.reshape(shape_of(graph, node.outputs[0]))]

    def kernels(self, node, graph):
        view = matmul_view(node, graph)
        out = node.outputs[0]
        if is_int16(graph, node):
            q = node.attrs["q"]
            geometry = {k: v for k, v in view.struct().items() if not k.startswith("bias")}
            params = {**geometry, **{key: q[key] for key in ("product_sign", "multiplier", "shift", "act_min",
                                                              "act_max")}}
            args = [Const(q["a_table"], "a") if q["a_table"] is not None else node.inputs[0],
                    Const(q["b_table"], "b") if q["b_table"] is not None else node.inputs[1], out]
            return [KernelCall("nn_matmul_s16", ("src/fc/nn_matmul_s16.c",), "nn_matmul_s16_params", params, args)]
        if is_int8(graph, node):
            q = node.attrs["q"]
            params = {**view.struct(), **{key: q[key] for key in ("a_offset", "b_offset", "product_sign", "multiplier",
                                                                 "shift", "output_offset", "act_min", "act_max")}}
            args = [Const(q["a_table"], "a") if q["a_table"] is not None else node.inputs[0],
                    Const(q["b_table"], "b") if q["b_table"] is not None else node.inputs[1],
                    None if q["bias"] is None else Const(q["bias"], "c"), Scratch("int32_t"), out]
            return [KernelCall("nn_matmul_s8", ("src/fc/nn_matmul_s8.c",), "nn_matmul_s8_params", params, args)]
        lo, hi = activation(node)
        params = {**view.struct(), "alpha": view.alpha, "beta": view.beta, "act_min": float(lo), "act_max": float(hi)}
        args = []
        for name, role in zip([*node.inputs[:2], view.bias], "abc"):
            value = graph.const(name) if name else None
            args.append(None if not name else name if value is None else Const(np.asarray(value, np.float32), role))
        return [KernelCall("nn_matmul_f32", ("src/fc/nn_matmul_f32.c",), "nn_matmul_f32_params", params,
                           [*args, out])]
