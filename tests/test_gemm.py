"""Gemm and MatMul with a constant operand, float32: C == NumPy reference == onnx.reference."""

import numpy as np
import pytest
from onnx import helper

from conftest import check_float_model, check_op, make_model

GEMM_CASES = [
    # (M, K, N, transA, transB, alpha, beta, bias shape)
    (1, 16, 10, 0, 0, 1.0, 1.0, "n"),
    (1, 7, 3, 0, 1, 0.5, 2.0, "1n"),
    (3, 5, 4, 1, 0, 1.0, 1.0, "none"),
    (2, 9, 6, 1, 1, 1.5, 0.25, "scalar"),
    (4, 12, 1, 0, 1, 1.0, 1.0, "n"),
    (1, 1, 8, 0, 0, 1.0, 1.0, "1n"),
]


@pytest.mark.parametrize("m,k,n,ta,tb,alpha,beta,bias", GEMM_CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_gemm(rng, m, k, n, ta, tb, alpha, beta, bias, relu):
    a_shape = (k, m) if ta else (m, k)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    inits = {"B": b}
    ins = ["A", "B"]
    if bias != "none":
        c_shape = {"n": (n,), "1n": (1, n), "scalar": ()}[bias]
        inits["C"] = rng.standard_normal(c_shape).astype(np.float32)
        ins.append("C")
    nodes = [helper.make_node("Gemm", ins, ["Y"], transA=ta, transB=tb, alpha=alpha, beta=beta)]
    out = "Y"
    if relu:
        nodes.append(helper.make_node("Relu", ["Y"], ["R"]))
        out = "R"
    model = make_model(nodes, [("A", a_shape)], [(out, None)], inits)
    compiled = check_float_model(model, {"A": rng.standard_normal(a_shape).astype(np.float32)})
    assert [n.op_type for n in compiled.graph.nodes] == ["Gemm"]


@pytest.mark.parametrize("a_shape,b_shape,const", [
    ((1, 8), (8, 5), "B"),
    ((2, 3, 8), (8, 4), "B"),
    ((8,), (8, 3), "B"),
    ((1, 6), (6,), "B"),
    ((4, 6), (6, 5), "A"),
    ((3, 4), (4, 7), "A"),
    ((1, 1, 4, 6), (1, 6, 2), "B"),
])
def test_matmul_const_operand(rng, a_shape, b_shape, const):
    shapes = {"A": a_shape, "B": b_shape}
    inits = {const: rng.standard_normal(shapes[const]).astype(np.float32)}
    act = "B" if const == "A" else "A"
    model = make_model([helper.make_node("MatMul", ["A", "B"], ["Y"])], [(act, shapes[act])], [("Y", None)], inits)
    check_float_model(model, {act: rng.standard_normal(shapes[act]).astype(np.float32)})


# int8: the input's rounding summed over K with weights up to max|w|, plus weight rounding
@pytest.mark.parametrize("m,k,n,ta,tb,alpha,beta,bias", GEMM_CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_gemm_int8(rng, m, k, n, ta, tb, alpha, beta, bias, relu):
    a_shape = (k, m) if ta else (m, k)
    # output channels of very different magnitudes: per-channel scales matter
    b = rng.standard_normal((n, k) if tb else (k, n)) * rng.uniform(0.05, 1, (n, 1) if tb else (1, n))
    inits = {"B": b.astype(np.float32)}
    ins = ["A", "B"]
    if bias != "none":
        inits["C"] = rng.standard_normal({"n": (n,), "1n": (1, n), "scalar": ()}[bias]).astype(np.float32)
        ins.append("C")
    nodes = [helper.make_node("Gemm", ins, ["Y"], transA=ta, transB=tb, alpha=alpha, beta=beta)]
    if relu:
        nodes.append(helper.make_node("Relu", ["Y"], ["R"]))
    model = make_model(nodes, [("A", a_shape)], [("R" if relu else "Y", None)], inits)
    compiled = check_op(model, {"A": a_shape}, "int8", rng, 1.0, in_steps=0.5 * np.abs(b).sum(axis=0 if not tb else 1)
                        .max() * alpha)
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_s8"]


@pytest.mark.parametrize("a_shape,b_shape,const", [
    ((1, 8), (8, 5), "B"), ((2, 3, 8), (8, 4), "B"), ((8,), (8, 3), "B"), ((4, 6), (6, 5), "A"),
])
def test_matmul_int8(rng, a_shape, b_shape, const):
    shapes = {"A": a_shape, "B": b_shape}
    w = rng.standard_normal(shapes[const])
    act = "B" if const == "A" else "A"
    model = make_model([helper.make_node("MatMul", ["A", "B"], ["Y"])], [(act, shapes[act])], [("Y", None)],
                       {const: w.astype(np.float32)})
    check_op(model, {act: shapes[act]}, "int8", rng, 1.0, in_steps=0.5 * np.abs(w).sum(axis=0 if const == "B" else 1)
             .max())
