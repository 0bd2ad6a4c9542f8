"""Sum, Mean, Max, Min (variadic, broadcasting), PRelu, Pow and CastLike in float32 and int8,
and the GELU patterns fused into one Gelu node."""

import numpy as np
import pytest
from onnx import helper

from codegen.build import HostModel
from codegen.reference import run_float, run_int8
from conftest import MODES, check_op, make_model, onnxruntime_oracle

# int8 bound in output steps: every input's rounding, rescaled, plus the output's own
VARIADIC_CASES = [  # (op, input shapes, index of a constant input or None)
    ("Sum", [(2, 3, 4), (2, 3, 4)], None),
    ("Sum", [(1, 4, 3, 3), (4, 1, 1), (1, 4, 3, 3)], 1),
    ("Sum", [(3, 1), (1, 5), (5,), (3, 5)], None),
    ("Mean", [(2, 6), (2, 6)], None),
    ("Mean", [(2, 1, 4), (3, 1), (2, 3, 4)], 0),
    ("Max", [(2, 3, 4), (4,)], None),
    ("Max", [(1, 3, 1, 5), (1, 1, 4, 1), (3, 4, 5)], 2),
    ("Min", [(3, 5), (3, 5), (1, 5), (3, 1)], None),
    ("Min", [(2, 4)], None),
    ("Sum", [(2, 4)], None),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,shapes,const", VARIADIC_CASES,
                         ids=[f"{op}-{len(s)}-{c}" for op, s, c in VARIADIC_CASES])
def test_variadic(rng, mode, op, shapes, const):
    names = [f"X{k}" for k in range(len(shapes))]
    inits = {}
    if const is not None:
        inits[names[const]] = (rng.standard_normal(shapes[const]) * 1.5).astype(np.float32)
    acts = {n: s for n, s in zip(names, shapes) if n not in inits}
    model = make_model([helper.make_node(op, names, ["Y"])], list(acts.items()), [("Y", None)], inits, opset=13)
    # onnx.reference's Mean adds in place into input 0, which fails when input 0 broadcasts
    oracle = onnxruntime_oracle(model) if op == "Mean" else None
    compiled = check_op(model, acts, mode, rng, 0.5 + 0.5 * len(shapes), oracle=oracle)
    if mode == "float32":  # the chain of binary kernels is the reference's order of operations: exact
        feeds = {n: rng.standard_normal(shape).astype(np.float32) for n, shape in acts.items()}
        got = HostModel(compiled.emitted.files, compiled.report["api"]).run([feeds[n] for n in compiled.graph.inputs])
        np.testing.assert_array_equal(got[0], run_float(compiled.graph, feeds)["Y"])
    kernels = {k for layer in compiled.report["layers"] for k in layer["kernels"]}
    if mode == "int8" and op in ("Sum", "Mean") and len(shapes) > 2:
        assert kernels == {"nn_sum_acc_s8", "nn_sum_out_s8"}
    if mode == "int8" and op in ("Sum", "Mean") and len(shapes) == 2:
        assert kernels == {"nn_add_s8"}


@pytest.mark.parametrize("mode", MODES)
def test_sum_residual_join_fuses_relu(rng, mode):
    """ResNet-50 at opset 9 joins its residual branches with Sum and a Relu: the Relu becomes the clamp."""
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node("Sum", ["C", "X"], ["S"]), helper.make_node("Relu", ["S"], ["Y"])]
    model = make_model(nodes, [("X", (1, 3, 5, 5))], [("Y", None)],
                       {"W": (0.3 * rng.standard_normal((3, 3, 3, 3))).astype(np.float32)}, opset=9)
    compiled = check_op(model, {"X": (1, 3, 5, 5)}, mode, rng, 4.0)
    assert [n.op_type for n in compiled.graph.nodes] == ["Conv", "Sum"]
    assert compiled.graph.nodes[1].attrs["activation"] == (0.0, np.inf)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["Sum", "Max"])
def test_repeated_input_and_in_place(rng, mode, op):
    """One tensor read three times, and a Relu output that the node overwrites in place."""
    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node(op, ["R", "Z", "R", "R"], ["Y"])]
    model = make_model(nodes, [("X", (2, 8)), ("Z", (2, 8))], [("Y", None)], opset=13)
    check_op(model, {"X": (2, 8), "Z": (2, 8)}, mode, rng, 2.5)


PRELU_CASES = [  # (input shape, slope shape): per channel as torch writes it, scalar, trailing, full
    ((1, 4, 5, 5), (4, 1, 1)),
    ((2, 6), (1,)),
    ((2, 3, 7), (7,)),
    ((1, 3, 2, 4), (1, 3, 2, 4)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", PRELU_CASES, ids=lambda s: f"{list(s[0])}x{list(s[1])}")
def test_prelu(rng, mode, shapes):
    x_shape, s_shape = shapes
    # slopes of different magnitudes and signs, one of them zero where there are several
    slope = (rng.choice([0.01, 0.05, 0.25, 1.5], s_shape) * rng.choice([-1, 1], s_shape)).astype(np.float32)
    if slope.size > 1:
        slope.reshape(-1)[0] = 0.0
    model = make_model([helper.make_node("PRelu", ["X", "S"], ["Y"])], [("X", x_shape)], [("Y", None)], {"S": slope},
                       opset=16)
    compiled = check_op(model, {"X": x_shape}, mode, rng, 0.5, in_steps=0.5 * max(1.0, float(np.abs(slope).max())))
    if mode == "int8":
        q = compiled.graph.nodes[0].attrs["q"]
        assert set(np.abs(q["slope"].reshape(-1)[slope.reshape(-1) != 0]).tolist()) == {127}  # a scale per element


def test_prelu_int8_slopes_are_exact_per_element(rng):
    """Each slope's multiplier carries its magnitude: a slope 0.01 beside 0.3 is as exact as 0.3 itself."""
    from conftest import check_int8_model

    slope = np.array([0.01, 0.3, -0.02], np.float32).reshape(3, 1)
    model = make_model([helper.make_node("PRelu", ["X", "S"], ["Y"])], [("X", (1, 3, 40))], [("Y", None)],
                       {"S": slope})
    x = np.tile(np.linspace(-100, 1, 40, dtype=np.float32), (1, 3, 1))
    compiled = check_int8_model(model, [{"X": x}], 0.5, in_steps=0.5)
    q = compiled.graph.nodes[0].attrs["q"]
    x_scale = compiled.graph.tensors["X"].quant.scale
    y_scale = compiled.graph.tensors["Y"].quant.scale
    real = q["neg_multiplier"].astype(np.float64) * 2.0 ** (q["neg_shift"].astype(np.float64) - 31) * q["slope"]
    np.testing.assert_allclose(real * y_scale / x_scale, slope, rtol=1e-6)


def test_prelu_runtime_slope_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("PRelu", ["X", "S"], ["Y"], name="p")], [("X", (1, 3, 4)), ("S", (3, 1))],
                       [("Y", (1, 3, 4))])
    with pytest.raises(CompileError, match="PRelu node 'p': the slope must be a constant"):
        compile_model(model)


POW_FLOAT = [2.0, 0.5, 1.0, -1.0, 3.0, 1.7, -2.5, 0.0]  # the special cases and powf
POW_INT8 = [(2.0, (-3.0, 3.0)), (0.5, (0.25, 4.0)), (-1.0, (0.5, 3.0)), (1.7, (0.0, 3.0))]


def test_pow_float(rng):
    """Every special case and powf in one model: positive bases to every exponent, negative bases
    to the integer ones."""
    from conftest import check_float_model

    shape = (2, 3, 7)
    nodes, inits, outputs = [], {}, []
    for k, e in enumerate(POW_FLOAT):
        base = "P" if e != int(e) else ("P", "M")[k % 2]
        inits[f"E{k}"] = np.array(e, np.float32) if k % 2 else np.array([e], np.float32)
        nodes.append(helper.make_node("Pow", [base, f"E{k}"], [f"Y{k}"]))
        outputs.append((f"Y{k}", None))
    model = make_model(nodes, [("P", shape), ("M", shape)], outputs, inits, opset=15)
    feeds = {"P": rng.uniform(0.5, 3.0, shape).astype(np.float32),
             "M": rng.uniform(-3.0, -0.5, shape).astype(np.float32)}
    compiled = check_float_model(model, feeds, rel=1e-6)
    assert {k for layer in compiled.report["layers"] for k in layer["kernels"]} == {"nn_pow_f32"}
    got = HostModel(compiled.emitted.files, compiled.report["api"]).run([feeds["P"], feeds["M"]])
    ref = run_float(compiled.graph, feeds)
    for k, e in enumerate(POW_FLOAT):  # the special cases are the reference's operations exactly
        if e in (2.0, 0.5, 1.0, -1.0, 3.0, 0.0):
            np.testing.assert_array_equal(got[k], ref[f"Y{k}"])


@pytest.mark.parametrize("exponent,domain", POW_INT8, ids=[str(e) for e, _ in POW_INT8])
def test_pow_int8(rng, exponent, domain):
    from conftest import check_int8_model

    shape = (2, 3, 7)
    model = make_model([helper.make_node("Pow", ["X", "E"], ["Y"])], [("X", shape)], [("Y", None)],
                       {"E": np.array(exponent, np.float32)}, opset=15)
    feeds = [{"X": rng.uniform(*domain, shape).astype(np.float32)} for _ in range(4)]
    grid = np.linspace(*domain, 1001)
    grid = grid[grid != 0]
    slope = float(np.max(np.abs(exponent * np.power(np.abs(grid), exponent - 1))))  # the steepest |f'|
    compiled = check_int8_model(model, feeds, 0.5, in_steps=0.5 * slope)
    assert compiled.report["layers"][0]["kernels"] == ["nn_lut_s8"]


def test_pow_integer_exponent_tensor(rng):
    """Pow-12 and later take an int64 exponent."""
    from conftest import check_float_model

    model = make_model([helper.make_node("Pow", ["X", "E"], ["Y"])], [("X", (3, 5))], [("Y", None)],
                       {"E": np.array(2, np.int64)}, opset=15)
    check_float_model(model, {"X": rng.standard_normal((3, 5)).astype(np.float32)})


@pytest.mark.parametrize("exponent,why", [(np.array([2.0, 3.0], np.float32), "the exponent must be a scalar"),
                                          (None, "the exponent must be a constant")])
def test_pow_unsupported_exponent(exponent, why):
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    inputs = [("X", (2, 2))] + ([("E", (2,))] if exponent is None else [])
    inits = {} if exponent is None else {"E": exponent}
    model = make_model([helper.make_node("Pow", ["X", "E"], ["Y"], name="p")], inputs, [("Y", (2, 2))], inits)
    with pytest.raises(CompileError, match=f"Pow node 'p': {why}") as info:
        compile_model(model)
    assert "\n" not in str(info.value)


def test_pow_int8_fractional_power_of_negative_levels_is_refused():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("Pow", ["X", "E"], ["Y"], name="p")], [("X", (1, 8))], [("Y", None)],
                       {"E": np.array(0.5, np.float32)})
    x = np.linspace(-1, 2, 8, dtype=np.float32).reshape(1, 8)
    with pytest.raises(CompileError, match="Pow node 'p'"):
        compile_model(model, "net", mode="int8", calib=[{"X": np.abs(x)}, {"X": x}])


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_int8_kernels_on_cortex_m(target):
    """Every new int8 kernel (Max, Min, the two Sum rules, PRelu, Pow's table), and the int32 Max
    and Min of token ids, in one firmware: the emulated core gives the host's bytes."""
    import onnx

    from codegen import cross
    from codegen.build import HostModel
    from codegen.compiler import compile_model, quantize_inputs
    from conftest import random_feeds
    from test_targets import need

    need(target)
    rng = np.random.default_rng(13)
    N = helper.make_node
    nodes = [N("PRelu", ["X", "S"], ["P"]), N("Max", ["P", "Z", "K"], ["M"]), N("Min", ["M", "X"], ["L"]),
             N("Sum", ["L", "Z", "P"], ["T"]), N("Mean", ["T", "X"], ["A"]), N("Pow", ["A", "E"], ["Q"]),
             N("Sum", ["Q", "K"], ["Y"]), N("Min", ["ids", "top"], ["low"]), N("Max", ["low", "zero"], ["clamped"])]
    inits = {"S": np.array([0.02, -0.3, 0.5, 0.0], np.float32).reshape(4, 1, 1),
             "K": rng.standard_normal(5).astype(np.float32), "E": np.array(2.0, np.float32),
             "top": np.array(9, np.int64), "zero": np.array([0], np.int64)}
    shapes = {"X": (1, 4, 3, 5), "Z": (1, 4, 3, 5)}
    model = make_model(nodes, list(shapes.items()) + [("ids", (2, 5), onnx.TensorProto.INT64)],
                       [("Y", None), ("clamped", (2, 5), onnx.TensorProto.INT64)], inits, opset=13)
    feeds = [dict(f, ids=rng.integers(-20, 30, (2, 5)).astype(np.int32)) for f in random_feeds(rng, shapes, count=4)]
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    kernels = {k for layer in compiled.report["layers"] for k in layer["kernels"]}
    assert kernels == {"nn_prelu_s8", "nn_max_s8", "nn_min_s8", "nn_sum_acc_s8", "nn_sum_out_s8", "nn_add_s8",
                       "nn_lut_s8", "nn_min_s32", "nn_max_s32"}
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    want = [host.run([s[n] for n in compiled.graph.inputs]) for s in q]
    np.testing.assert_array_equal(want[0][0], run_int8(compiled.graph, q[0])["Y"])
    np.testing.assert_array_equal(want[0][1], np.clip(feeds[0]["ids"], 0, 9))
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for g, h in zip(got, want):
        for a, b in zip(g, h):
            np.testing.assert_array_equal(a, b)


def test_float_kernels_on_cortex_m4():
    """The float kernels (Max, Min, PRelu, Pow through newlib's powf and sqrtf, Mean's division)
    link and agree on the emulated core."""
    from codegen.compiler import compile_model
    from codegen.verify import verify
    from conftest import random_feeds
    from test_targets import need

    need("cortex-m4")
    N = helper.make_node
    nodes = [N("PRelu", ["X", "S"], ["P"]), N("Max", ["P", "Z"], ["M"]), N("Min", ["M", "X", "Z"], ["L"]),
             N("Abs", ["L"], ["B"]), N("Pow", ["B", "E"], ["Q"]), N("Pow", ["Q", "H"], ["R"]),
             N("Mean", ["R", "Z", "X"], ["Y"])]
    inits = {"S": np.array([0.1, -0.3, 0.5], np.float32).reshape(3, 1), "E": np.array(1.7, np.float32),
             "H": np.array(0.5, np.float32)}
    shapes = {"X": (2, 3, 4), "Z": (2, 3, 4)}
    compiled = compile_model(make_model(nodes, list(shapes.items()), [("Y", None)], inits, opset=13), "net")
    feeds = random_feeds(np.random.default_rng(5), shapes, count=3)
    result = verify(compiled, feeds, target="cortex-m4")
    assert result["target_equal"] and result["bit_exact"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", ["constant", "input"])
def test_castlike_to_float32_is_free(rng, mode, target):
    """CastLike to float32 keeps the bytes: no kernel, no arena, int8 keeps the input's parameters."""
    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node("CastLike", ["R", "T"], ["C"]),
             helper.make_node("Sigmoid", ["C"], ["Y"])]
    inits = {"T": np.zeros(1, np.float32)} if target == "constant" else {}
    inputs = [("X", (2, 7))] + ([("T", (1,))] if target == "input" else [])
    model = make_model(nodes, inputs, [("Y", None)], inits, opset=15)
    compiled = check_op(model, dict(inputs), mode, rng, 0.5, in_steps=0.125)
    layer = [entry for entry in compiled.report["layers"] if entry["op"] == "CastLike"][0]
    assert layer["kernels"] == []
    if mode == "int8":
        assert compiled.graph.tensors["C"].quant == compiled.graph.tensors["R"].quant


def test_castlike_to_another_type_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("CastLike", ["X", "T"], ["Y"], name="c")], [("X", (2, 3))], [("Y", (2, 3))],
                       {"T": np.zeros(1, np.float16)}, opset=15)
    with pytest.raises(CompileError, match="CastLike node 'c': a cast to float16 is not supported") as info:
        compile_model(model)
    assert "\n" not in str(info.value)


GELU_FIXTURES = ["gelu_classic13", "gelu_classic17", "gelu_dynamo18"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", GELU_FIXTURES)
def test_gelu_fused_in_torch_exports(mode, name):
    """nn.GELU() and F.gelu in both forms, from the classic and dynamo exporters: each becomes one
    Gelu node; float within tolerance of onnx.reference on the unfused model, int8 bit-exact."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from codegen.build import HostModel
    from codegen.compiler import compile_model, quantize_inputs
    from conftest import FIXTURES, check_float_model

    model = onnx.load(str(FIXTURES / f"{name}.onnx"))
    xs = np.load(FIXTURES / f"{name}.npz")["x"]
    if mode == "float32":
        compiled = check_float_model(model, {"x": xs[0]})
    else:
        compiled = compile_model(model, "net", mode="int8", calib=[{"x": x} for x in xs])
        host = HostModel(compiled.emitted.files, compiled.report["api"])
        y = compiled.graph.tensors[compiled.graph.outputs[0]].quant
        signal = noise = 0.0
        for x in xs:
            q = quantize_inputs(compiled.graph, {"x": x})
            c = host.run([q["x"]])[0]
            np.testing.assert_array_equal(c, run_int8(compiled.graph, q)["y"])
            want = ReferenceEvaluator(model).run(None, {"x": x})[0].astype(np.float64)
            signal += float(np.sum(want ** 2))
            noise += float(np.sum((y.dequantize(c) - want) ** 2))
        assert 10 * np.log10(signal / noise) > 30.0  # 36.9 dB measured: four GELU tables between three Gemms
    ops = [n.op_type for n in compiled.graph.nodes]
    assert ops == ["Gemm", "Gelu", "Gemm", "Gelu", "Gemm", "Gelu", "Gelu"]
    assert [n.attrs["approximate"] for n in compiled.graph.nodes if n.op_type == "Gelu"] == \
        ["none", "tanh", "tanh", "none"]


def _gelu_erf_nodes(variant: str, half: float = 0.5, inner: float = 0.70710677):
    """GELU's erf form spelled in several ways around input X, output Y."""
    N = helper.make_node
    scale = N("Div", ["X", "r2"], ["u"]) if variant == "div" else N("Mul", ["c", "X"], ["u"])
    rest = [N("Erf", ["u"], ["e"]), N("Add", ["one", "e"], ["t"])]
    if variant == "half-first":
        rest += [N("Mul", ["X", "half"], ["h"]), N("Mul", ["h", "t"], ["Y"])]
    else:
        rest += [N("Mul", ["half", "t"], ["h"]), N("Mul", ["X", "h"], ["Y"])]
    inits = {"r2": np.array([1.4142135], np.float32), "c": np.array(inner, np.float32),
             "one": np.array([1.0], np.float32), "half": np.array(half, np.float32)}
    used = {i for n in [scale] + rest for i in n.input}
    return [scale] + rest, {k: v for k, v in inits.items() if k in used}


def _gelu_function_nodes():
    """GELU as ONNX's own expansion of its Gelu function writes it: constants cast like x, Sqrt, Sum."""
    N = helper.make_node
    nodes = [N("CastLike", ["half0", "X"], ["half"]), N("CastLike", ["one0", "X"], ["one"]),
             N("CastLike", ["two0", "X"], ["two"]), N("Sqrt", ["two"], ["r2"]), N("Div", ["X", "r2"], ["u"]),
             N("Erf", ["u"], ["e"]), N("Sum", ["e", "one"], ["t"]), N("Mul", ["X", "half"], ["h"]),
             N("Mul", ["h", "t"], ["Y"])]
    return nodes, {"half0": np.array(0.5, np.float32), "one0": np.array(1.0, np.float32),
                   "two0": np.array(2.0, np.float32)}


def _gelu_tanh_nodes(cube: str):
    N = helper.make_node
    if cube == "pow":
        nodes = [N("Pow", ["X", "three"], ["x3"])]
    elif cube == "pow2":
        nodes = [N("Pow", ["X", "two"], ["x2"]), N("Mul", ["X", "x2"], ["x3"])]
    else:
        nodes = [N("Mul", ["X", "X"], ["x2"]), N("Mul", ["x2", "X"], ["x3"])]
    nodes += [N("Mul", ["x3", "k"], ["kx3"]), N("Add", ["kx3", "X"], ["w"]), N("Mul", ["w", "s"], ["v"]),
              N("Tanh", ["v"], ["th"]), N("Add", ["th", "one"], ["t"]), N("Mul", ["X", "half"], ["h"]),
              N("Mul", ["t", "h"], ["Y"])]
    inits = {"three": np.array(3.0, np.float32), "two": np.array(2.0, np.float32),
             "k": np.array([0.044715], np.float32),
             "s": np.array(0.7978846, np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    used = {i for n in nodes for i in n.input}
    return nodes, {k: v for k, v in inits.items() if k in used}


GELU_FORMS = ["erf-div", "erf-mul", "erf-half-first", "erf-function", "tanh-pow", "tanh-pow2", "tanh-mul"]


@pytest.mark.parametrize("mode,form", [("float32", f) for f in GELU_FORMS]
                         + [("int8", "erf-mul"), ("int8", "tanh-pow")])
def test_gelu_patterns_fuse(rng, mode, form):
    kind, variant = form.split("-", 1)
    if variant == "function":
        nodes, inits = _gelu_function_nodes()
    else:
        nodes, inits = _gelu_erf_nodes(variant) if kind == "erf" else _gelu_tanh_nodes(variant)
    model = make_model(nodes, [("X", (2, 3, 5))], [("Y", None)], inits, opset=15)
    compiled = check_op(model, {"X": (2, 3, 5)}, mode, rng, 0.5, in_steps=0.5 * 1.13)
    assert [n.op_type for n in compiled.graph.nodes] == ["Gelu"]
    assert compiled.graph.nodes[0].attrs["approximate"] == ("none" if kind == "erf" else "tanh")


@pytest.mark.parametrize("miss", ["half-0.6", "inner-0.6", "shared"])
def test_gelu_near_misses_are_not_fused(rng, miss):
    """A constant off by more than float32 rounding, or an intermediate another node reads, stays as written."""
    from conftest import check_float_model

    nodes, inits = _gelu_erf_nodes("mul", half=0.6 if miss == "half-0.6" else 0.5,
                                   inner=0.6 if miss == "inner-0.6" else 0.70710677)
    outputs = [("Y", None)]
    if miss == "shared":
        nodes.append(helper.make_node("Neg", ["e"], ["Z"]))
        outputs.append(("Z", None))
    model = make_model(nodes, [("X", (2, 5))], outputs, inits, opset=13)
    compiled = check_float_model(model, {"X": rng.standard_normal((2, 5)).astype(np.float32)})
    assert "Gelu" not in [n.op_type for n in compiled.graph.nodes]
    assert "Erf" in [n.op_type for n in compiled.graph.nodes]


@pytest.mark.parametrize("mode", MODES)
def test_castlike_of_a_constant_folds(rng, mode):
    """The expanded PRelu and Gelu functions cast constants like x: folded at import."""
    nodes = [helper.make_node("CastLike", ["K", "X"], ["C"]), helper.make_node("Mul", ["X", "C"], ["Y"])]
    model = make_model(nodes, [("X", (2, 5))], [("Y", None)], {"K": np.full((2, 5), 1.5, np.float32)}, opset=15)
    compiled = check_op(model, {"X": (2, 5)}, mode, rng, 3.0)
    assert [n.op_type for n in compiled.graph.nodes] == ["Mul"]


def test_max_min_propagate_nan(rng):
    """A NaN in either operand gives NaN, as NumPy's maximum and minimum (contiguous and broadcast loops)."""
    from conftest import check_float_model

    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((1, 5)).astype(np.float32)
    a[0, 1] = a[2, 3] = b[0, 4] = np.nan
    N = helper.make_node
    nodes = [N("Max", ["A", "B"], ["Y"]), N("Min", ["B", "A"], ["Z"]), N("Max", ["A", "A2"], ["W"])]
    model = make_model(nodes, [("A", (3, 5)), ("B", (1, 5)), ("A2", (3, 5))], [("Y", None), ("Z", None), ("W", None)])
    a2 = np.flipud(a).copy()
    compiled = check_float_model(model, {"A": a, "B": b, "A2": a2})
    from codegen.build import HostModel
    y, z, w = HostModel(compiled.emitted.files, compiled.report["api"]).run([a, b, a2])
    assert np.isnan(y).sum() == np.isnan(np.maximum(a, b)).sum() > 0
    assert np.isnan(w).sum() == np.isnan(np.maximum(a, a2)).sum() > 0


@pytest.mark.parametrize("mode", MODES)
def test_generated_code_compiles_clean(mode, tmp_path):
    """The folders of every new kernel compile under the strict warning set of test_warnings."""
    import shutil

    from codegen.compiler import compile_model
    from conftest import random_feeds
    from test_warnings import WARNINGS, run

    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    N = helper.make_node
    nodes = [N("PRelu", ["X", "S"], ["P"]), N("Max", ["P", "Z", "K"], ["M"]), N("Min", ["M", "X"], ["L"]),
             N("Sum", ["L", "Z", "P"], ["T"]), N("Mean", ["T", "X"], ["A"]), N("Pow", ["A", "E"], ["Q"]),
             N("CastLike", ["Q", "K"], ["C"]), N("Sum", ["C", "K"], ["Y"])]
    inits = {"S": np.array([0.02, -0.3], np.float32).reshape(2, 1), "K": np.ones(3, np.float32),
             "E": np.array(1.5, np.float32)}
    shapes = {"X": (2, 3), "Z": (2, 3)}
    model = make_model(nodes, list(shapes.items()), [("Y", None)], inits, opset=15)
    feeds = [{n: np.abs(v) for n, v in f.items()} for f in random_feeds(np.random.default_rng(2), shapes, count=3)]
    compiled = compile_model(model, "net", mode=mode, calib=feeds if mode == "int8" else None)
    for file, text in compiled.emitted.files.items():
        (tmp_path / file).write_text(text)
    run("gcc", ["-c", *WARNINGS, "-Wcast-align=strict", "-O2"], sorted(tmp_path.glob("*.c")), tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_int32_max_min_clamp_token_ids(rng, mode):
    """Max and Min of int64 tensors (carried as int32): clamping ids into a table's range, and three
    broadcast inputs; exact against onnx.reference in both modes, next to a float path."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from codegen.compiler import compile_model, quantize_inputs

    INT64 = onnx.TensorProto.INT64
    N = helper.make_node
    nodes = [N("Min", ["ids", "top"], ["low"]), N("Max", ["low", "zero"], ["clamped"]),
             N("Max", ["ids", "other", "row"], ["widest"]), N("Min", ["ids"], ["same"]),
             N("Max", ["x", "k"], ["y"])]
    inits = {"top": np.array(9, np.int64), "zero": np.array([0], np.int64),
             "row": np.array([[3, -4, 7, 0, 2]], np.int64), "k": np.array(0.25, np.float32)}
    model = make_model(nodes, [("ids", (2, 5), INT64), ("other", (1, 5), INT64), ("x", (2, 5))],
                       [("clamped", (2, 5), INT64), ("widest", (2, 5), INT64), ("same", (2, 5), INT64),
                        ("y", (2, 5))], inits, opset=13)
    samples = [{"ids": rng.integers(-20, 30, (2, 5)).astype(np.int64), "other": rng.integers(-5, 5, (1, 5)),
                "x": rng.standard_normal((2, 5)).astype(np.float32)} for _ in range(3)]
    calib = [{k: (v.astype(np.int32) if v.dtype.kind == "i" else v) for k, v in s.items()} for s in samples]
    compiled = compile_model(model, "net", mode=mode, calib=calib if mode == "int8" else None)
    kernels = {k for layer in compiled.report["layers"] for k in layer["kernels"]}
    assert {"nn_max_s32", "nn_min_s32"} <= kernels
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    evaluator = ReferenceEvaluator(model)
    for sample, feeds in zip(samples, calib):
        if mode == "int8":
            feeds = quantize_inputs(compiled.graph, feeds)
        got = host.run([feeds[n] for n in compiled.graph.inputs])
        want = evaluator.run(None, {k: v.astype(np.int64) if v.dtype.kind == "i" else v for k, v in sample.items()})
        for g, w in zip(got[:3], want[:3]):
            assert g.dtype == np.int32
            np.testing.assert_array_equal(g, w)


def test_int32_sum_is_rejected():
    import onnx

    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    INT64 = onnx.TensorProto.INT64
    model = make_model([helper.make_node("Sum", ["a", "b"], ["y"], name="s")], [("a", (3,), INT64), ("b", (3,), INT64)],
                       [("y", (3,), INT64)])
    with pytest.raises(CompileError, match="Sum node 's': Sum of int32 tensors is not supported"):
        compile_model(model)
