"""Cross-layer equalization (codegen/passes/equalize.py): the float function stays, the per-channel
weight ranges of each pair become equal, a badly scaled depthwise layer gains int8 SQNR, and
what is not positively homogeneous is left alone."""

import copy

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.frontend import import_model
from codegen.passes import calibrate, equalize
from codegen.reference import run_float, run_int8
from codegen.verify import within_tolerance
from conftest import make_model, random_feeds


def _w(rng, *shape, spread=1.0):
    """Weights whose output channels differ in size by up to `spread` times."""
    w = rng.standard_normal(shape)
    return (w * np.exp(rng.uniform(0, np.log(spread), (shape[0],) + (1,) * (len(shape) - 1)))).astype(np.float32)


def _chain(rng):
    """Conv -> Relu -> depthwise Conv -> Relu -> pointwise Conv -> MaxPool -> Flatten -> Gemm -> Relu -> Gemm:
    four pairs (conv/depthwise, depthwise/pointwise, pointwise/Gemm through the pool and the Flatten,
    Gemm/Gemm)."""
    inits = {"W1": _w(rng, 6, 2, 3, 3, spread=20), "B1": _w(rng, 6), "W2": _w(rng, 6, 1, 3, 3, spread=20),
             "B2": _w(rng, 6), "W3": _w(rng, 4, 6, 1, 1, spread=20), "B3": _w(rng, 4),
             "W4": _w(rng, 7, 16, spread=20), "C4": _w(rng, 7), "W5": _w(rng, 7, 3), "C5": _w(rng, 3)}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["a"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "W2", "B2"], ["b"], pads=[1, 1, 1, 1], group=6, name="dw"),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "W3", "B3"], ["c"], name="pw"),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "W4", "C4"], ["g"], transB=1, alpha=0.5, name="fc1"),
             helper.make_node("Relu", ["g"], ["gr"]),
             helper.make_node("Gemm", ["gr", "W5", "C5"], ["y"], name="fc2")]
    return make_model(nodes, [("x", (1, 2, 4, 4))], [("y", (1, 3))], inits)


def _graph(model):
    return import_model(model, label="case", name="case")


def test_the_float_function_stays(rng):
    model = _chain(rng)
    graph = _graph(model)
    before = copy.deepcopy(graph)
    report = equalize.run(graph)
    assert [(p["first"], p["second"]) for p in report["pairs"]] == [("conv1", "dw"), ("dw", "pw"), ("pw", "fc1"),
                                                                    ("fc1", "fc2")]
    oracle = ReferenceEvaluator(model)
    for feeds in random_feeds(rng, {"x": (1, 2, 4, 4)}, count=4):
        want = np.asarray(oracle.run(None, feeds)[0])
        assert within_tolerance(run_float(before, feeds)["y"], want, 1e-5)
        assert within_tolerance(run_float(graph, feeds)["y"], want, 1e-5)


def test_per_channel_ranges_become_equal(rng):
    graph = _graph(_chain(rng))
    spreads = equalize.run(graph)["pairs"]
    pairs = equalize.find_pairs(graph)
    assert len(pairs) == 4
    for p, spread in zip(pairs, spreads):
        r1, r2 = p.first.out_ranges(), p.second.in_ranges(p.block)
        np.testing.assert_allclose(r1 / r2, 1.0, rtol=1e-6, atol=0)
        assert spread["first_spread"][1] == pytest.approx(spread["second_spread"][1], rel=1e-6)
    # the spread of the first layer's ranges (made 20x) shrinks
    assert spreads[0]["first_spread"][1] < spreads[0]["first_spread"][0] / 2


def test_equalizing_scales_formula():
    r1, r2 = np.array([8.0, 1.0, 0.0, 1e9, 2.0]), np.array([2.0, 4.0, 3.0, 1e-9, 0.0])
    s = equalize.equalizing_scales(r1, r2)
    np.testing.assert_allclose(s, [2.0, 0.5, 1.0, 1000.0, 1.0])
    np.testing.assert_allclose((r1 / s)[:2], (r2 * s)[:2])


def _one_pair(rng, middle, first_attrs=None):
    inits = {"W1": _w(rng, 4, 3, 1, 1, spread=30), "W2": _w(rng, 5, 4, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], name="first", **(first_attrs or {}))] + middle + \
        [helper.make_node("Conv", ["m", "W2"], ["y"], name="second")]
    return make_model(nodes, [("x", (1, 3, 3, 3))], [("y", (1, 5, 3, 3))],
                      {**inits, "lo": np.float32(0.0), "hi": np.float32(6.0)})


@pytest.mark.parametrize("middle, pairs", [
    ([helper.make_node("Relu", ["a"], ["m"])], 1),
    ([helper.make_node("LeakyRelu", ["a"], ["m"], alpha=0.1)], 1),
    ([helper.make_node("Identity", ["a"], ["m"])], 1),
    ([helper.make_node("Clip", ["a", "lo", "hi"], ["m"])], 0),
    ([helper.make_node("Sigmoid", ["a"], ["m"])], 0),
    ([helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Tanh", ["r"], ["m"])], 0),
    ([helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "r"], ["m"])], 0),  # read twice
], ids=["relu", "leaky_relu", "none", "relu6", "sigmoid", "tanh", "read_twice"])
def test_only_positively_homogeneous_activations_pair(rng, middle, pairs):
    model = _one_pair(rng, middle)
    graph = _graph(model)
    before = copy.deepcopy(graph)
    report = equalize.run(graph)
    assert len(report["pairs"]) == pairs
    if not pairs:  # untouched: the same weights, byte for byte
        for name, t in before.tensors.items():
            if t.data is not None:
                np.testing.assert_array_equal(graph.tensors[name].data, t.data)
    feeds = random_feeds(rng, {"x": (1, 3, 3, 3)}, count=1)[0]
    assert within_tolerance(run_float(graph, feeds)["y"], np.asarray(ReferenceEvaluator(model).run(None, feeds)[0]),
                            1e-5)


def _badly_scaled(rng):
    """pointwise -> Relu -> depthwise -> Relu -> pointwise, where three depthwise channels (weights and
    bias) are 50 times larger and the last layer's inputs from them 50 times smaller: the same
    function, but one int8 step for the depthwise output spans 50 times the other channels."""
    w_dw, b_dw, w_pw = _w(rng, 8, 1, 3, 3), _w(rng, 8) * 0.1, _w(rng, 6, 8, 1, 1)
    big = np.array([1, 4, 6])
    w_dw[big] *= 50
    b_dw[big] *= 50
    w_pw[:, big] /= 50
    inits = {"W0": _w(rng, 8, 3, 1, 1), "B0": _w(rng, 8) * 0.1, "W1": w_dw, "B1": b_dw, "W2": w_pw, "B2": _w(rng, 6)}
    nodes = [helper.make_node("Conv", ["x", "W0", "B0"], ["a"], name="expand"),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "W1", "B1"], ["b"], pads=[1, 1, 1, 1], group=8, name="dw"),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "W2", "B2"], ["y"], name="project")]
    return make_model(nodes, [("x", (1, 3, 6, 6))], [("y", (1, 6, 6, 6))], inits)


def _sqnr(compiled, tests):
    graph = compiled.graph
    signal = noise = 0.0
    for feeds in tests:
        got = run_int8(graph, quantize_inputs(graph, feeds))["y"]
        want = run_float(compiled.float_graph, feeds)["y"].astype(np.float64)
        signal += float(np.sum(want ** 2))
        noise += float(np.sum((graph.tensors["y"].quant.dequantize(got) - want) ** 2))
    return 10 * np.log10(signal / noise)


def test_a_badly_scaled_depthwise_layer_gains_int8_sqnr(rng):
    model = _badly_scaled(rng)
    feeds = random_feeds(rng, {"x": (1, 3, 6, 6)}, count=24)
    calib, tests = feeds[:16], feeds[16:]
    plain = compile_model(model, "net", mode="int8", calib=calib, equalize=False)
    equalized = compile_model(model, "net", mode="int8", calib=calib)
    report = equalized.report["equalization"]
    assert [(p["first"], p["second"]) for p in report["pairs"]] == [("expand", "dw"), ("dw", "project")]
    assert "equalization" not in plain.report
    assert report["sqnr_db"] > report["sqnr_db_none"]
    assert _sqnr(equalized, tests) > _sqnr(plain, tests) + 6.0
    host = HostModel(equalized.emitted.files, equalized.report["api"])
    for f in tests[:2]:
        q = quantize_inputs(equalized.graph, f)
        np.testing.assert_array_equal(host.run([q["x"]])[0], run_int8(equalized.graph, q)["y"])


def test_the_check_keeps_no_scaling_that_lowers_the_sqnr(rng):
    """With samples, each pair's strength is the best of none, half and all on the check: the
    check's SQNR is never below none's, and equal to what a fresh int8 build of the result gives."""
    model = _chain(rng)
    graph = _graph(model)
    samples = random_feeds(rng, {"x": (1, 2, 4, 4)}, count=10)
    report = equalize.run(graph, samples)
    assert report["sqnr_db"] >= report["sqnr_db_none"]
    assert all(p["strength"] in equalize.STRENGTHS for p in report["pairs"])
    expected = [run_float(graph, f) for f in samples]
    ranges = calibrate.run(graph, samples, progress=False)  # the check derived its ranges, to float rounding
    assert equalize.int8_sqnr(copy.deepcopy(graph), ranges, samples, expected) == pytest.approx(report["sqnr_db"],
                                                                                                abs=0.02)


@pytest.mark.parametrize("calibration", ["minmax", "mse"])
def test_the_judge_keeps_the_choice_only_when_the_pipeline_gains(rng, calibration):
    """With the pipeline's calibration and bias correction as the judge, the scalings stay only
    when that int8 build of them beats the one without; the float graph is then what it rated."""
    model = _badly_scaled(rng)
    graph = _graph(model)
    samples = random_feeds(rng, {"x": (1, 3, 6, 6)}, count=10)
    judge = {"calibration": calibration, "percentile": 99.99, "reconstruct": "bias"}
    report = equalize.run(graph, samples, judge=judge)
    judged = report["judged"]
    kept = any(p["strength"] for p in report["pairs"])
    assert kept == (judged["sqnr_db"] > judged["sqnr_db_none"])
    expected = [run_float(graph, f) for f in samples]
    rated = equalize.pipeline_sqnr(copy.deepcopy(graph), samples, expected, **judge)
    assert round(rated, 2) == (judged["sqnr_db"] if kept else judged["sqnr_db_none"])


def test_a_conv_into_a_gemm_through_a_reshape_pairs_by_blocks(rng):
    inits = {"W1": _w(rng, 3, 2, 3, 3, spread=30), "B1": _w(rng, 3), "W2": _w(rng, 3 * 4 * 4, 5),
             "C2": _w(rng, 5), "shape": np.array([1, 48], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["a"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "W2", "C2"], ["y"], name="fc")]
    model = make_model(nodes, [("x", (1, 2, 4, 4))], [("y", (1, 5))], inits)
    graph = _graph(model)
    equalize.run(graph)
    (pair,) = equalize.find_pairs(graph)
    assert pair.block == 16
    np.testing.assert_allclose(pair.first.out_ranges() / pair.second.in_ranges(16), 1.0, rtol=1e-6)
    feeds = random_feeds(rng, {"x": (1, 2, 4, 4)}, count=1)[0]
    assert within_tolerance(run_float(graph, feeds)["y"], np.asarray(ReferenceEvaluator(model).run(None, feeds)[0]),
                            1e-5)


def test_the_teacher_before_pruning_gets_the_same_scalings(rng):
    """The float model before pruning (reconstruct's teacher) is scaled like the pruned graph: its
    function stays, and its weights equal the pruned graph's wherever pruning kept one."""
    model = _chain(rng)
    teacher = _graph(model)
    graph = copy.deepcopy(teacher)
    w = graph.tensors["W3"].data.copy()
    w[:, ::2] = 0  # a pruning of half the pointwise layer's inputs
    graph.tensors["W3"].data = w
    equalize.run(graph, teachers=(teacher,))
    feeds = random_feeds(rng, {"x": (1, 2, 4, 4)}, count=1)[0]
    assert within_tolerance(run_float(teacher, feeds)["y"],
                            np.asarray(ReferenceEvaluator(model).run(None, feeds)[0]), 1e-5)
    for node, twin in zip(graph.nodes, teacher.nodes):
        if node.op_type in ("Conv", "Gemm"):
            a, b = graph.const(node.inputs[1]), teacher.const(twin.inputs[1])
            kept = a != 0
            np.testing.assert_allclose(a[kept], b[kept], rtol=1e-6)


def test_no_equalize_from_the_command_line():
    from codegen.cli import _parser, options_from_args

    args = ["compile", "m.onnx", "-o", "out"]
    assert options_from_args(_parser().parse_args(args)).equalize
    assert not options_from_args(_parser().parse_args(args + ["--no-equalize"])).equalize


def test_a_layer_can_be_left_out_per_layer(rng):
    """per_layer {"dw": {"equalize": False}}: the pairs with the depthwise layer stay as they are,
    the build is otherwise the default one."""
    model = _badly_scaled(rng)
    calib = random_feeds(rng, {"x": (1, 3, 6, 6)}, count=8)
    compiled = compile_model(model, "net", mode="int8", calib=calib, per_layer={"dw": {"equalize": False}})
    assert compiled.report["equalization"]["pairs"] == []
    graph = _graph(model)
    assert equalize.run(graph, off=frozenset({"project"}))["pairs"][0]["second"] == "dw"
