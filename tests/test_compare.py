"""Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not, And, Or, Xor, Where, ArgMax and ArgMin
in float32 and int8, with float, int and bool operands, and a masking model end to end."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.reference import run_float, run_int8
from codegen.samples import random_samples
from codegen.verify import verify
from conftest import assert_same_on_cortex_m, make_model, random_feeds

BOOL, INT64 = onnx.TensorProto.BOOL, onnx.TensorProto.INT64
COMPARISONS = ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]


def run_c(compiled, feeds_list):
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    return [host.run([f[n] for n in compiled.graph.inputs]) for f in feeds_list]


def check_float(model, feeds_list):
    """C == NumPy reference == onnx.reference, exactly (every output here is bool or integer,
    or a float moved unchanged)."""
    compiled = compile_model(model, "net")
    oracle = ReferenceEvaluator(model)
    for feeds, got in zip(feeds_list, run_c(compiled, feeds_list)):
        ref = run_float(compiled.graph, feeds)
        want = oracle.run(None, feeds)
        for g, name, w in zip(got, compiled.graph.outputs, want):
            np.testing.assert_array_equal(g, ref[name])
            np.testing.assert_array_equal(g, np.asarray(w).astype(g.dtype).reshape(g.shape))
    return compiled


def check_int8(model, feeds_list):
    """C == int8 NumPy twin, every byte."""
    compiled = compile_model(model, "net", mode="int8", calib=feeds_list)
    q = [quantize_inputs(compiled.graph, f) for f in feeds_list]
    for f, got in zip(q, run_c(compiled, q)):
        ref = run_int8(compiled.graph, f)
        for g, name in zip(got, compiled.graph.outputs):
            np.testing.assert_array_equal(g, ref[name])
    return compiled


@pytest.mark.parametrize("op", COMPARISONS)
def test_float_comparisons_broadcast(rng, op):
    model = make_model([helper.make_node(op, ["A", "B"], ["Y"]), helper.make_node(op, ["A", "K"], ["Z"])],
                       [("A", (2, 3, 4)), ("B", (3, 1))], [("Y", None, BOOL), ("Z", None, BOOL)],
                       {"K": np.array([0.5, -1.0, 0.0, 2.0], np.float32)})
    feeds = random_feeds(rng, {"A": (2, 3, 4), "B": (3, 1)}, count=3)
    for f in feeds:  # ties, and NaN, which is unordered
        f["A"][0, :, 0] = f["B"][:, 0]
        f["A"][1, 0, :] = [0.5, -1.0, 0.0, 2.0]
        f["A"][1, 2, 3] = np.nan
    check_float(model, feeds)


@pytest.mark.parametrize("op", COMPARISONS)
def test_int8_comparisons_agree_with_float_away_from_ties(rng, op):
    model = make_model([helper.make_node(op, ["A", "B"], ["Y"]), helper.make_node(op, ["A", "K"], ["Z"])],
                       [("A", (2, 3, 8)), ("B", (3, 8))], [("Y", None, BOOL), ("Z", None, BOOL)],
                       {"K": np.linspace(-2, 2, 8).astype(np.float32)})
    feeds = random_feeds(rng, {"A": (2, 3, 8), "B": (3, 8)}, count=6)
    compiled = check_int8(model, feeds)
    graph, fgraph = compiled.graph, compiled.float_graph
    step = 2 * max(graph.tensors["A"].quant.scale, graph.tensors["B"].quant.scale, 4 / 255)
    for f in feeds:
        got = run_int8(graph, quantize_inputs(graph, f))
        want = run_float(fgraph, f)
        for name, other in (("Y", f["B"]), ("Z", np.linspace(-2, 2, 8))):
            clear = np.abs(f["A"] - other) > step
            np.testing.assert_array_equal(got[name][clear], want[name][clear])


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_logic_on_bool_inputs(rng, mode):
    nodes = [helper.make_node("Not", ["P"], ["N"]), helper.make_node("And", ["N", "Q"], ["A"]),
             helper.make_node("Or", ["A", "Q"], ["O"]), helper.make_node("Xor", ["O", "P"], ["X"]),
             helper.make_node("Equal", ["X", "Q"], ["E"]), helper.make_node("Less", ["P", "Q"], ["L"])]
    model = make_model(nodes, [("P", (2, 5), BOOL), ("Q", (5,), BOOL)], [("X", None, BOOL), ("E", None, BOOL), ("L", None, BOOL)],
                       opset=13)
    feeds = [{"P": rng.integers(0, 2, (2, 5)).astype(bool), "Q": rng.integers(0, 2, (5,)).astype(bool)}
             for _ in range(4)]
    compiled = check_float(model, feeds) if mode == "float32" else check_int8(model, feeds)
    assert all(graph_t.dtype == "uint8" for graph_t in compiled.graph.tensors.values() if not graph_t.is_const)


def where_model():
    nodes = [helper.make_node("Greater", ["A", "zero"], ["C"]),
             helper.make_node("Where", ["C", "A", "B"], ["Y"]),  # X and Y with their own scales
             helper.make_node("Where", ["C", "B", "neg"], ["Z"])]  # a constant branch
    return make_model(nodes, [("A", (2, 3, 4)), ("B", (3, 4))], [("Y", None), ("Z", None)],
                      {"zero": np.float32(0.0), "neg": np.float32(-3.0)}, opset=13)


def test_where_float_and_int8(rng):
    feeds = random_feeds(rng, {"A": (2, 3, 4), "B": (3, 4)}, count=6)
    check_float(where_model(), feeds)
    compiled = check_int8(where_model(), feeds)
    graph = compiled.graph
    for f in feeds:  # each element is X's or Y's value within half a step of the output scale
        got = run_int8(graph, quantize_inputs(graph, f))
        want = run_float(compiled.float_graph, f)
        for name in ("Y", "Z"):
            qp = graph.tensors[name].quant
            assert np.max(np.abs(qp.dequantize(got[name]) - want[name])) <= qp.scale * 0.5 + \
                max(graph.tensors[n].quant.scale for n in ("A", "B")) * 0.5 + 1e-6


def test_where_on_integers(rng):
    nodes = [helper.make_node("Less", ["ids", "limit"], ["C"]),
             helper.make_node("Where", ["C", "ids", "pad"], ["Y"])]
    model = make_model(nodes, [("ids", (3, 7), INT64)], [("Y", None, INT64)],
                       {"limit": np.array(10, np.int64), "pad": np.array([-1], np.int64)}, opset=13)
    feeds = [{"ids": rng.integers(0, 20, (3, 7)).astype(np.int64)} for _ in range(3)]
    check_float(model, feeds)
    check_int8(model, feeds)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("attrs", [{}, {"axis": 1, "keepdims": 0}, {"axis": -1, "select_last_index": 1},
                                   {"axis": 2, "keepdims": 0, "select_last_index": 1}],
                         ids=["default", "axis1", "last", "axis2-last"])
def test_argmax(rng, op, attrs):
    model = make_model([helper.make_node(op, ["X"], ["Y"], **attrs)], [("X", (2, 5, 6))], [("Y", None, INT64)])
    feeds = [{"X": rng.integers(-3, 4, (2, 5, 6)).astype(np.float32)} for _ in range(4)]  # many ties
    check_float(model, feeds)
    compiled = check_int8(model, feeds)
    assert compiled.graph.tensors["Y"].dtype == "int32"


def test_argmax_of_int_input(rng):
    model = make_model([helper.make_node("ArgMax", ["ids"], ["Y"], axis=1)], [("ids", (3, 9), INT64)], [("Y", None, INT64)])
    check_float(model, [{"ids": rng.integers(-50, 50, (3, 9)).astype(np.int64)} for _ in range(3)])


def masking_model(rng):
    """Scores of the non-padding tokens: padding ids (0) masked to -30 before a softmax; the argmax
    of the masked scores as a second output."""
    nodes = [helper.make_node("Equal", ["ids", "pad"], ["is_pad"]),
             helper.make_node("Not", ["is_pad"], ["keep"]),
             helper.make_node("Cast", ["ids"], ["idf"], to=onnx.TensorProto.FLOAT),
             helper.make_node("Mul", ["idf", "w"], ["s"]),
             helper.make_node("Where", ["keep", "s", "low"], ["masked"]),
             helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
             helper.make_node("ArgMax", ["masked"], ["best"], axis=-1, keepdims=0)]
    return make_model(nodes, [("ids", (2, 8), INT64)], [("p", None), ("best", None, INT64)],
                      {"pad": np.array(0, np.int64), "w": (rng.standard_normal(8) * 0.3).astype(np.float32),
                       "low": np.float32(-30.0)}, opset=13)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_masking_model_verifies(rng, mode):
    model = masking_model(rng)
    calib = [{"ids": rng.integers(0, 6, (2, 8)).astype(np.int64)} for _ in range(16)]
    compiled = compile_model(model, "net", mode=mode, calib=calib if mode == "int8" else None)
    samples = random_samples(compiled.graph, 8)
    assert any((s["ids"] == 0).any() for s in samples)
    result = verify(compiled, samples)
    assert result["bit_exact"] and result["passed"], result


def test_compare_refusals():
    model = make_model([helper.make_node("And", ["A", "B"], ["Y"], name="and")], [("A", (3,)), ("B", (3,))],
                       [("Y", (3,), BOOL)], opset=13)
    with pytest.raises(CompileError, match="And node 'and': the operands must be bool"):
        compile_model(model, "net")
    model = make_model([helper.make_node("Where", ["A", "A", "B"], ["Y"], name="w")], [("A", (3,)), ("B", (3,))],
                       [("Y", (3,))], opset=13)
    with pytest.raises(CompileError, match="Where node 'w': the condition must be bool"):
        compile_model(model, "net")


def test_int8_compare_where_argmax_on_cortex_m(rng):
    nodes = [helper.make_node("Greater", ["A", "B"], ["C"]), helper.make_node("Not", ["C"], ["N"]),
             helper.make_node("Where", ["N", "A", "B"], ["W"]),
             helper.make_node("ArgMax", ["W"], ["Y"], axis=1, select_last_index=1)]
    model = make_model(nodes, [("A", (2, 6, 5)), ("B", (6, 1))], [("W", None), ("Y", None, INT64)], opset=13)
    feeds = random_feeds(rng, {"A": (2, 6, 5), "B": (6, 1)}, count=4)
    compiled = check_int8(model, feeds)
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    assert_same_on_cortex_m(compiled, q, run_c(compiled, q))
