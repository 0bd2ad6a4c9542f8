"""Folding of constant Mul/Add/Sub/Div into Conv/ConvTranspose/Gemm/MatMul and of constant chains
(codegen/frontend/simplify.py rule 2a): the folded graph's layers, float equality with
onnx.reference, and int8 that is bit-exact with its reference and no worse than unfolded."""

import numpy as np
import pytest
from onnx import helper

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.frontend import simplify
from codegen.reference import run_float, run_int8
from conftest import check_float_model, make_model, onnxruntime_oracle, random_feeds


def _w(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _scales(rng, *shape):
    """Away from zero, both signs."""
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(np.float32)


def _conv(rng, tail, c=4, extra=None):
    """x [1, 3, 6, 6] -> Conv (4 channels, 3x3, bias) -> `tail` nodes reading 'h' and writing 'y'."""
    inits = {"W": _w(rng, c, 3, 3, 3), "B": _w(rng, c), **(extra or {})}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])] + tail
    return make_model(nodes, [("x", (1, 3, 6, 6))], [("y", (1, c, 6, 6))], inits), {"x": (1, 3, 6, 6)}


def _gemm(rng, tail, extra=None):
    inits = {"W": _w(rng, 5, 8), "C": _w(rng, 5), **(extra or {})}
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["h"], transB=1, alpha=0.5)] + tail
    return make_model(nodes, [("x", (2, 8))], [("y", (2, 5))], inits), {"x": (2, 8)}


def _deconv(rng, tail, extra=None):
    inits = {"W": _w(rng, 4, 3, 2, 2), "B": _w(rng, 6), **(extra or {})}
    nodes = [helper.make_node("ConvTranspose", ["x", "W", "B"], ["h"], group=2, strides=[2, 2])] + tail
    return make_model(nodes, [("x", (1, 4, 3, 3))], [("y", (1, 6, 6, 6))], inits), {"x": (1, 4, 3, 3)}


def _matmul(rng, tail, extra=None, rank=2):
    x_shape = (2, 3, 8)[-rank:]
    inits = {"W": _w(rng, 8, 5), **(extra or {})}
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"])] + tail
    return make_model(nodes, [("x", x_shape)], [("y", x_shape[:-1] + (5,))], inits), {"x": x_shape}


def _op(op, a, b, out="y"):
    return helper.make_node(op, [a, b], [out])


FOLDS = {  # name -> (model builder, layers after folding)
    "conv_mul_per_channel": (lambda r: _conv(r, [_op("Mul", "h", "k")], extra={"k": _scales(r, 4, 1, 1)}),
                             ["Conv"]),
    "conv_scalar_mul_const_first": (lambda r: _conv(r, [_op("Mul", "k", "h")], extra={"k": np.float32(-1.7)}),
                                    ["Conv"]),
    "conv_add_rank4": (lambda r: _conv(r, [_op("Add", "h", "k")], extra={"k": _w(r, 1, 4, 1, 1)}), ["Conv"]),
    "conv_add_const_first": (lambda r: _conv(r, [_op("Add", "k", "h")], extra={"k": _w(r, 4, 1, 1)}), ["Conv"]),
    "conv_sub": (lambda r: _conv(r, [_op("Sub", "h", "k")], extra={"k": _w(r, 4, 1, 1)}), ["Conv"]),
    "conv_sub_const_first": (lambda r: _conv(r, [_op("Sub", "k", "h")], extra={"k": _w(r, 1, 4, 1, 1)}),
                             ["Conv"]),
    "conv_div_per_channel": (lambda r: _conv(r, [_op("Div", "h", "k")], extra={"k": _scales(r, 4, 1, 1)}),
                             ["Conv"]),
    "conv_div_scalar": (lambda r: _conv(r, [_op("Div", "h", "k")], extra={"k": np.array([3.0], np.float32)}),
                        ["Conv"]),
    "conv_chain": (lambda r: _conv(r, [_op("Mul", "h", "k1", "a"), _op("Add", "a", "k2", "b"),
                                       _op("Mul", "k3", "b", "y")],
                                   extra={"k1": _scales(r, 4, 1, 1), "k2": _w(r, 4, 1, 1), "k3": np.float32(0.3)}),
                   ["Conv"]),
    "conv_mul_then_relu": (lambda r: _conv(r, [_op("Mul", "h", "k", "a"), helper.make_node("Relu", ["a"], ["y"])],
                                           extra={"k": _scales(r, 4, 1, 1)}), ["Conv"]),
    "gemm_mul_per_feature": (lambda r: _gemm(r, [_op("Mul", "h", "k")], extra={"k": _scales(r, 5)}), ["Gemm"]),
    "gemm_sub_div_chain": (lambda r: _gemm(r, [_op("Sub", "k1", "h", "a"), _op("Div", "a", "k2")],
                                           extra={"k1": _w(r, 1, 5), "k2": _scales(r, 5)}), ["Gemm"]),
    "deconv_mul_add": (lambda r: _deconv(r, [_op("Mul", "h", "k1", "a"), _op("Add", "a", "k2")],
                                         extra={"k1": _scales(r, 6, 1, 1), "k2": _w(r, 1, 6, 1, 1)}),
                       ["ConvTranspose"]),
    "matmul_mul_add": (lambda r: _matmul(r, [_op("Mul", "h", "k1", "a"), _op("Add", "a", "k2")],
                                         extra={"k1": _scales(r, 5), "k2": _w(r, 5)}), ["Gemm"]),
    "matmul_add_mul": (lambda r: _matmul(r, [_op("Add", "h", "k1", "a"), _op("Mul", "a", "k2")],
                                         extra={"k1": _w(r, 5), "k2": _scales(r, 1, 5)}), ["Gemm"]),
    "matmul_rank3_div_add": (lambda r: _matmul(r, [_op("Div", "h", "k1", "a"), _op("Add", "k2", "a")],
                                               extra={"k1": _scales(r, 5), "k2": _w(r, 5)}, rank=3),
                             ["Reshape", "Gemm", "Reshape"]),
}

KEPT = {  # name -> (model builder, layers: the constant op must stay)
    "conv_output_read_twice": (lambda r: _conv(r, [_op("Mul", "h", "k", "a"), _op("Add", "a", "h")],
                                               extra={"k": _scales(r, 4, 1, 1)}), ["Conv", "Mul", "Add"]),
    "per_position_constant": (lambda r: _conv(r, [_op("Mul", "h", "k")], extra={"k": _scales(r, 1, 1, 6, 6)}),
                              ["Conv", "Mul"]),
    "per_row_constant_on_gemm": (lambda r: _gemm(r, [_op("Add", "h", "k")], extra={"k": _w(r, 2, 1)}),
                                 ["Gemm", "Add"]),
    "zero_divisor": (lambda r: _conv(r, [_op("Div", "h", "k")],
                                     extra={"k": np.array([1.5, 0.0, -2.0, 1.0], np.float32).reshape(4, 1, 1)}),
                     ["Conv", "Div"]),
    "constant_divided_by_tensor": (lambda r: _conv(r, [_op("Div", "k", "h")], extra={"k": np.float32(2.0)}),
                                   ["Conv", "Div"]),
    "after_a_fused_relu": (lambda r: _conv(r, [helper.make_node("Relu", ["h"], ["a"]), _op("Mul", "a", "k")],
                                           extra={"k": np.float32(2.0)}), ["Conv", "Mul"]),
    "matmul_then_a_shift_and_scale_kept_apart_by_a_second_reader": (
        lambda r: _matmul(r, [_op("Add", "h", "k1", "a"), _op("Mul", "a", "k2", "b"), _op("Add", "b", "h")],
                          extra={"k1": _w(r, 5), "k2": _scales(r, 5)}), ["MatMul", "Add", "Mul", "Add"]),
}


def _feeds(rng, shapes):
    return random_feeds(rng, shapes, count=1)[0]


@pytest.mark.parametrize("case", sorted(FOLDS))
def test_constant_affine_folds_into_the_layer(rng, case):
    build, layers = FOLDS[case]
    model, shapes = build(rng)
    oracle = onnxruntime_oracle(model) if layers == ["ConvTranspose"] else None  # onnx.reference: no groups
    compiled = check_float_model(model, _feeds(rng, shapes), rel=1e-5, oracle=oracle)
    assert [n.op_type for n in compiled.graph.nodes] == layers


@pytest.mark.parametrize("case", sorted(KEPT))
def test_what_must_not_fold_is_kept(rng, case):
    build, layers = KEPT[case]
    model, shapes = build(rng)
    if "divi" in case:  # x / 0 is inf or nan, c / x amplifies rounding near 0: compare the layers only
        compiled = compile_model(model, "net")
    else:
        compiled = check_float_model(model, _feeds(rng, shapes), rel=1e-5)
    assert [n.op_type for n in compiled.graph.nodes] == layers


CHAINS = {  # constant chains on a tensor no layer folds them into: (nodes, constants, layers after)
    "mul_mul": ([_op("Mul", "x", "a", "m"), _op("Mul", "b", "m", "y")], ["Mul"]),
    "add_add": ([_op("Add", "x", "a", "m"), _op("Add", "m", "b", "y")], ["Add"]),
    "sub_div_mul": ([_op("Sub", "x", "a", "m"), _op("Div", "m", "b", "n"), _op("Mul", "n", "a", "y")],
                    ["Sub", "Mul"]),
    "mul_add_stays": ([_op("Mul", "x", "a", "m"), _op("Add", "m", "b", "y")], ["Mul", "Add"]),
    "add_mul_stays": ([_op("Add", "x", "a", "m"), _op("Mul", "m", "b", "y")], ["Add", "Mul"]),
    "relu_mul_div": ([helper.make_node("Relu", ["x"], ["r"]), _op("Mul", "r", "a", "m"), _op("Div", "m", "b", "y")],
                     ["Relu", "Mul"]),
}


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_constant_chains_compose(rng, case):
    nodes, layers = CHAINS[case]
    inits = {"a": _w(rng, 3, 1), "b": _scales(rng, 1, 4)}
    model = make_model(nodes, [("x", (2, 3, 4))], [("y", (2, 3, 4))], inits)
    compiled = check_float_model(model, _feeds(rng, {"x": (2, 3, 4)}), rel=1e-5)
    assert [n.op_type for n in compiled.graph.nodes] == layers


def _int8_sqnr(model, calib, tests):
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    signal = noise = 0.0
    for feeds in tests:
        q = quantize_inputs(graph, feeds)
        got = host.run([q[n] for n in graph.inputs])[0]
        np.testing.assert_array_equal(got, run_int8(graph, q)[graph.outputs[0]])
        want = run_float(compiled.float_graph, feeds)[graph.outputs[0]].astype(np.float64)
        signal += float(np.sum(want ** 2))
        noise += float(np.sum((graph.tensors[graph.outputs[0]].quant.dequantize(got) - want) ** 2))
    return len(graph.nodes), 10 * np.log10(signal / noise)


@pytest.mark.parametrize("case", ["conv_chain", "matmul_mul_add"])
def test_folded_int8_is_exact_and_no_worse(rng, monkeypatch, case):
    model, shapes = FOLDS[case][0](rng)
    feeds = random_feeds(rng, shapes, count=12)
    layers, folded = _int8_sqnr(model, feeds[:8], feeds[8:])
    monkeypatch.setattr(simplify, "fold_affine", lambda graph: None)
    unfolded_layers, unfolded = _int8_sqnr(model, feeds[:8], feeds[8:])
    assert layers == 1 and unfolded_layers >= 3
    assert folded >= unfolded, f"{folded:.2f} dB folded, {unfolded:.2f} dB not"
