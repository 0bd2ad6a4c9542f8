"""Gemm and MatMul with a constant operand, float32: C == NumPy reference == onnx.reference."""

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import MODES, check_float_model, check_op, make_model

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


# ---- MatMul + Add(constant bias) folds into one Gemm ----

def _linear(rng, x_shape, bias_shape, extra_output=False):
    k = x_shape[-1]
    inits = {"W": (rng.standard_normal((k, 6)) * 0.4).astype(np.float32),
             "b": (rng.standard_normal(bias_shape) * 2.0).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["X", "W"], ["M"], name="fc"), helper.make_node("Add", ["M", "b"], ["Y"])]
    outputs = [("Y", None)] + ([("M", None)] if extra_output else [])
    return make_model(nodes, [("X", x_shape)], outputs, inits)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("x_shape,bias_shape", [((3, 20), (6,)), ((2, 5, 20), (1, 1, 6)), ((4, 20), ())],
                         ids=["2d", "3d", "scalar-bias"])
def test_matmul_and_bias_add_fold_into_gemm(rng, mode, x_shape, bias_shape):
    model = _linear(rng, x_shape, bias_shape)
    w = next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "W")
    # one output step, plus each input's half step through the weights
    compiled = check_op(model, {"X": x_shape}, mode, rng, 1.0, in_steps=0.5 * np.abs(w).sum(axis=0).max())
    ops = [n.op_type for n in compiled.graph.nodes]
    assert ops.count("Gemm") == 1 and "Add" not in ops and "MatMul" not in ops
    assert set(ops) <= {"Gemm", "Reshape"}


def test_bias_add_that_cannot_fold_stays(rng):
    from codegen.frontend import import_model

    for model in (_linear(rng, (3, 20), (3, 6)), _linear(rng, (3, 20), (6,), extra_output=True)):
        ops = [n.op_type for n in import_model(model).nodes]
        assert "Add" in ops, ops  # a bias that varies along rows; a product that is also an output


def test_folded_bias_is_added_before_the_rounding(rng):
    """int8: the folded layer adds the bias in the int32 sum; unfolded, the product is rounded to
    int8 first. Over the same samples the folded output is closer to the float model."""
    from codegen.compiler import compile_model, quantize_inputs
    from codegen.reference import run_float, run_int8

    feeds = [{"X": rng.standard_normal((3, 20)).astype(np.float32)} for _ in range(16)]
    errors = []
    for extra in (False, True):
        model = _linear(np.random.default_rng(5), (3, 20), (6,), extra_output=extra)
        compiled = compile_model(model, "net", mode="int8", calib=feeds)
        noise = 0.0
        for f in feeds:
            got = run_int8(compiled.graph, quantize_inputs(compiled.graph, f))["Y"]
            want = run_float(compiled.float_graph, f)["Y"]
            noise += float(np.sum((compiled.graph.tensors["Y"].quant.dequantize(got) - want) ** 2))
        errors.append(noise)
    assert errors[0] < errors[1], errors
