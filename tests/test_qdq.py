"""QDQ models in float mode: each QuantizeLinear -> DequantizeLinear pair on an activation is a
FakeQuantize node, whose NumPy reference equals onnx.reference and whose C equals the NumPy
reference bit for bit; a model that onnxruntime's quantize_static made (and dropped its Relus
from) keeps its meaning in float mode; int8 mode still reads the pairs as scales."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from codegen.build import HostModel
from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.frontend import import_model, qdq
from codegen.reference import run_float
from codegen.samples import load_samples
from codegen.verify import _sqnr_db, onnx_reference, verify

FIXTURES = Path(__file__).resolve().parent / "fixtures"

ZERO_POINTS = {"uint8": (np.uint8, 0, 255), "int8": (np.int8, -128, 127),
               "uint16": (np.uint16, 0, 65535), "int16": (np.int16, -32768, 32767)}


def qdq_model(shape, scale, zero_point, axis=None, relu_before=False):
    """x -> [Relu] -> QuantizeLinear -> DequantizeLinear -> y, opset 21."""
    attrs = {} if axis is None else {"axis": axis}
    first = "x"
    nodes = []
    if relu_before:
        nodes.append(helper.make_node("Relu", ["x"], ["r"]))
        first = "r"
    nodes += [helper.make_node("QuantizeLinear", [first, "s", "z"], ["q"], **attrs),
              helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs)]
    graph = helper.make_graph(nodes, "fq", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, shape)],
                              [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
                               numpy_helper.from_array(zero_point, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def hard_inputs(rng, shape, scale, qmin, qmax, zero_point):
    """Exact ties (k + 1/2 steps: round half to even decides), values far outside the range,
    +-Inf, zeros and random values."""
    x = rng.standard_normal(shape).astype(np.float32) * np.float32(np.max(scale) * (qmax - qmin) / 4)
    flat = x.reshape(-1)
    s = float(np.reshape(scale, -1)[0])
    z = int(np.reshape(zero_point, -1)[0])
    picks = rng.choice(flat.size, size=min(flat.size, 24), replace=False)
    ties = (rng.integers(qmin - z - 3, qmax - z + 3, size=picks.size) + 0.5) * s
    flat[picks] = ties.astype(np.float32)
    flat[:4] = [np.inf, -np.inf, 0.0, -0.0]
    flat[4:6] = [3e38, -3e38]
    return x


@pytest.mark.parametrize("dtype", list(ZERO_POINTS))
@pytest.mark.parametrize("axis", [None, 1, -1])
def test_fake_quantize_equals_onnx_reference_and_c(dtype, axis, rng):
    """NumPy reference == onnx.reference exactly (finite inputs: onnx.reference casts an
    infinite quotient to int32 first, which the spec does not define) and C == NumPy bit for bit
    on every input, including ties, saturation and +-Inf."""
    npdtype, qmin, qmax = ZERO_POINTS[dtype]
    shape = [2, 3, 4, 5]
    channels = 1 if axis is None else shape[axis]
    # power-of-two scales make k + 1/2 steps exact float32 values: real ties
    scale = (2.0 ** rng.integers(-6, 0, size=channels)).astype(np.float32)
    zero_point = rng.integers(qmin, qmax + 1, size=channels).astype(npdtype)
    if axis is None:
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
    model = qdq_model(shape, scale, zero_point, axis)
    compiled = compile_model(model, "net")
    assert [n.op_type for n in compiled.graph.nodes] == ["FakeQuantize"]
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for _ in range(3):
        x = hard_inputs(rng, shape, scale, qmin, qmax, zero_point)
        ours = run_float(compiled.graph, {"x": x})["y"]
        np.testing.assert_array_equal(host.run([x])[0], ours)
        finite = np.where(np.abs(x) < 1e30, x, np.float32(0))
        expected = onnx_reference(model).run(None, {"x": finite})[0]
        np.testing.assert_array_equal(run_float(compiled.graph, {"x": finite})["y"], expected)
    c = 0 if axis is None else np.unravel_index(1, shape)[axis]  # the channel of element 1 (-Inf)
    lo = (qmin - zero_point.astype(np.float64).reshape(-1)[c]) * float(scale.reshape(-1)[c])
    assert ours.reshape(-1)[1] == np.float32(lo)  # -Inf saturates at the bottom of the range


def test_fake_quantize_keeps_nan_in_c():
    model = qdq_model([1, 4], np.float32(0.5), np.uint8(10))
    compiled = compile_model(model, "net")
    x = np.array([[np.nan, 1.0, -np.nan, 2.25]], np.float32)
    c = HostModel(compiled.emitted.files, compiled.report["api"]).run([x])[0]
    np.testing.assert_array_equal(c, run_float(compiled.graph, {"x": x})["y"])
    assert np.isnan(c[0, [0, 2]]).all() and c[0, 1] == 1.0 and c[0, 3] == 2.0  # 4.5 steps -> 4 (half to even)


def test_fixture_float_mode_equals_onnx_reference():
    """The QDQ fixture in float mode: every pair is a FakeQuantize node and the C equals
    onnx.reference's run of the QDQ model (SQNR > 40 dB; here exactly)."""
    compiled = compile_model(FIXTURES / "qdq_convnet.onnx")
    ops = [n.op_type for n in compiled.graph.nodes]
    assert ops.count("FakeQuantize") == 7 and ops.count("Conv") == 3
    samples, _ = load_samples(FIXTURES / "qdq_convnet.npz", compiled.graph)
    result = verify(compiled, samples)
    assert result["passed"] and result["bit_exact"] and result["reference_agrees"]
    assert result["sqnr_db"] > 40


def _convnet(rng) -> onnx.ModelProto:
    """A float Conv-Relu-Conv-Relu-Gemm model, seeded weights."""
    def init(name, shape, spread):
        return numpy_helper.from_array((rng.standard_normal(shape) * spread).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Flatten", ["r2"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    inits = [init("w1", (4, 1, 3, 3), 0.5), init("b1", (4,), 0.1), init("w2", (4, 4, 3, 3), 0.3),
             init("b2", (4,), 0.1), init("w3", (10, 256), 0.1), init("b3", (10,), 0.1)]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])
    graph = helper.make_graph(nodes, "convnet", [x],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_quantize_static_model_keeps_its_clamps_in_float_mode(tmp_path):
    """onnxruntime's quantize_static drops both Relus (the uint8 zero point clamps instead).
    Float mode gives SQNR > 40 dB against onnx.reference; reading the pairs as Identity (what
    float mode did before FakeQuantize) gives below 10 dB on the same samples."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(12)
    onnx.save(_convnet(rng), tmp_path / "float.onnx")
    calib = [{"x": rng.standard_normal((1, 1, 8, 8)).astype(np.float32)} for _ in range(16)]
    tests = [{"x": rng.standard_normal((1, 1, 8, 8)).astype(np.float32)} for _ in range(16)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter(calib)

        def get_next(self):
            return next(self.samples, None)

    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    model = onnx.load(tmp_path / "qdq.onnx")
    assert "Relu" not in [n.op_type for n in model.graph.node]

    compiled = compile_model(model, "qdq")
    result = verify(compiled, tests)
    assert result["passed"] and result["reference_agrees"]
    assert result["sqnr_db"] > 40

    identity = import_model(model)
    qdq.for_int8(identity, "qdq")  # the pairs as Identity, kept in float
    reference = onnx_reference(model)
    expected = np.concatenate([np.asarray(reference.run(None, t)[0]).reshape(-1) for t in tests])
    old = np.concatenate([run_float(identity, t)[identity.outputs[0]].reshape(-1) for t in tests])
    assert _sqnr_db(expected, old - expected) < 10

    int8 = compile_model(model, "qdq", mode="int8")  # int8 still takes the pairs' scales
    assert int8.report["options"]["quantization"] == "qdq"
    assert verify(int8, tests)["bit_exact"]


def test_relu_before_a_pair_fuses_in_int8():
    model = qdq_model([1, 8], np.float32(0.05), np.uint8(0), relu_before=True)
    assert [n.op_type for n in compile_model(model, "net").graph.nodes] == ["Relu", "FakeQuantize"]
    rng = np.random.default_rng(3)
    calib = [{"x": rng.standard_normal((1, 8)).astype(np.float32)} for _ in range(4)]
    int8 = compile_model(model, "net", mode="int8", calib=calib)
    assert [n.op_type for n in int8.graph.nodes] == ["Relu"]


@pytest.mark.parametrize("axis,dtype,why", [(1, "uint8", "per-channel"), (None, "int16", "int16")])
def test_pairs_without_int8_form_are_clean_errors_in_int8(axis, dtype, why):
    npdtype = ZERO_POINTS[dtype][0]
    size = 4 if axis is not None else 1
    scale = np.full(size, 0.1, np.float32) if axis is not None else np.float32(0.1)
    zero_point = np.zeros(size, npdtype) if axis is not None else npdtype(0)
    model = qdq_model([1, 4, 2], scale, zero_point, axis)
    compile_model(model, "net")  # float mode computes it
    with pytest.raises(CompileError, match=f"{why} quantization of an activation has no int8 form"):
        compile_model(model, "net", mode="int8", calib=[{"x": np.ones((1, 4, 2), np.float32)}])


def test_mismatched_pair_is_rejected():
    model = qdq_model([1, 4], np.float32(0.1), np.uint8(3))
    model.graph.initializer.append(numpy_helper.from_array(np.float32(0.2), "s2"))
    model.graph.node[1].input[1] = "s2"
    with pytest.raises(CompileError, match="differ from its QuantizeLinear's"):
        compile_model(model, "net")


def test_quantized_output_is_a_clean_error():
    graph = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], "q",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("q", onnx.TensorProto.UINT8, [1, 8])],
                              [numpy_helper.from_array(np.float32(0.1), "s"),
                               numpy_helper.from_array(np.uint8(0), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    with pytest.raises(CompileError, match="the output is a QuantizeLinear's uint8; outputs are float32"):
        compile_model(model, "net")


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.graph.node[0].attribute.append(helper.make_attribute("block_size", 2)), "block_size"),
    (lambda m: m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.float32(-1.0), "s")),
     "scale must be finite and > 0"),
    (lambda m: m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.full(3, 0.1, np.float32), "s")),
     "3 scales but 1 zero points"),
])
def test_malformed_pairs_are_clean_errors(edit, message):
    model = qdq_model([1, 4], np.float32(0.1), np.uint8(3))
    edit(model)
    with pytest.raises(CompileError, match=message):
        compile_model(model, "net")


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_fake_quantize_bits_on_target(target):
    """The float kernel (rintf, one division) gives the host's bits on the emulated cores, with
    the FPU (M4) and in software float (M0+): ties and saturation included (the test harness
    writes inputs as C literals, which cannot spell +-Inf: +-3e38 stand in)."""
    from codegen import cross
    from test_targets import need

    need(target)
    rng = np.random.default_rng(21)
    shape = [1, 3, 4, 4]
    scale = np.array([0.25, 0.125, 0.5], np.float32)
    zero_point = np.array([0, 100, 255], np.uint8)
    compiled = compile_model(qdq_model(shape, scale, zero_point, axis=1), "net", target=target)
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    feeds = [{"x": np.clip(hard_inputs(rng, shape, scale, 0, 255, zero_point), -3e38, 3e38)} for _ in range(4)]
    on_target = cross.run_samples(compiled.emitted.files, compiled.report["api"], feeds, target)
    for f, got in zip(feeds, on_target):
        np.testing.assert_array_equal(got[0], host.run([f["x"]])[0])
        np.testing.assert_array_equal(got[0], run_float(compiled.graph, f)["y"])


def _average_model(scale: float, zero_point: int) -> onnx.ModelProto:
    """x -> Q/DQ -> GlobalAveragePool -> Q/DQ -> y: the average of 64 quantized values lands on
    a rounding tie of the second pair whenever their sum is 32 mod 64."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("GlobalAveragePool", ["d"], ["p"]),
             helper.make_node("QuantizeLinear", ["p", "s", "z"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"])]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16, 8, 8])
    graph = helper.make_graph(nodes, "average", [x],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16, 1, 1])],
                              [numpy_helper.from_array(np.float32(scale), "s"),
                               numpy_helper.from_array(np.uint8(zero_point), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


def test_rounding_ties_after_an_average():
    """Ties are common after averaging quantized values, and which way one rounds depends on
    the order of the float sum: the NumPy average sums in the kernel's order, so the C equals
    it bit for bit; onnx.reference (np.average) breaks some ties the other way, which verify
    counts in `reference_ties` and takes from onnx.reference, so the check stays strict."""
    from codegen.ops.quantize import near_tie

    model = _average_model(0.0173, 7)
    compiled = compile_model(model, "average")
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    rng = np.random.default_rng(5)
    samples = [{"x": ((rng.integers(0, 120, (1, 16, 8, 8)) - 7) * np.float32(0.0173)).astype(np.float32)}
               for _ in range(20)]
    ties = 0
    for feeds in samples:
        values = run_float(compiled.graph, feeds, keep_all=True)
        np.testing.assert_array_equal(host.run([feeds["x"]])[0], values["y"])
        last = compiled.graph.nodes[-1]
        ties += int(np.count_nonzero(near_tie(last, compiled.graph, values[last.inputs[0]], 1e-3)))
    assert ties > 0
    reference = onnx_reference(model)
    differ = sum(not np.array_equal(np.asarray(reference.run(None, f)[0]), run_float(compiled.graph, f)["y"])
                 for f in samples)
    result = verify(compiled, samples)
    assert differ > 0 and result["reference_ties"] >= differ
    assert result["passed"] and result["bit_exact"] and result["reference_max_rel_diff"] == 0.0


def _summing_models(rng):
    """Float Conv (grouped, dilated, strided, padded, depthwise, 1-D), Gemm and MatMul cases."""
    from conftest import make_model

    w = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    conv = lambda name, x, wshape, **a: (name, make_model(  # noqa: E731
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], **a)], [("x", x)], [("y", None)],
        {"w": w(*wshape), "b": w(wshape[0])}), x)
    yield conv("grouped", [1, 4, 7, 6], (6, 2, 3, 3), group=2, pads=[1, 2, 1, 0], strides=[2, 1], dilations=[1, 2])
    yield conv("depthwise", [1, 5, 6, 6], (5, 1, 3, 3), group=5, pads=[1, 1, 1, 1])
    yield conv("1-d", [1, 3, 11], (4, 3, 5), pads=[2, 2])
    gemm = make_model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.7, beta=1.3)],
                      [("x", [3, 9])], [("y", None)], {"w": w(5, 9), "c": w(5)})
    yield "gemm", gemm, [3, 9]
    matmul = make_model([helper.make_node("MatMul", ["w", "x"], ["y"])], [("x", [6, 4])], [("y", None)], {"w": w(3, 6)})
    yield "matmul-constant-first", matmul, [6, 4]


def test_kernel_order_reference_gives_the_c_bits():
    """The summing families' kernel-order references equal their float C bit for bit (the host
    build contracts no multiply-add), and their ordinary references within the float tolerance."""
    from codegen.verify import within_tolerance

    rng = np.random.default_rng(8)
    for name, model, shape in _summing_models(rng):
        compiled = compile_model(model, "net")
        host = HostModel(compiled.emitted.files, compiled.report["api"])
        for _ in range(3):
            feeds = {"x": (rng.standard_normal(shape) * 2).astype(np.float32)}
            ordered = run_float(compiled.graph, feeds, kernel_order=True)["y"]
            np.testing.assert_array_equal(host.run([feeds["x"]])[0], ordered, err_msg=name)
            assert within_tolerance(ordered, run_float(compiled.graph, feeds)["y"]), name
