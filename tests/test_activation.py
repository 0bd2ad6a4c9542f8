"""Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, Selu, Exp, Log, Sqrt,
Reciprocal, Abs, Neg, Erf, Softplus, Gelu and Mish in float32 and int8 (tables)."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model

# int8 is a table of the exact function of each input level: only the output rounding (half a
# step) and the input's own rounding (half an input step times the function's steepest slope) remain
SLOPE = {"Sigmoid": 0.25, "HardSwish": 1.5, "HardSigmoid": 0.3, "Elu": 2.0, "Selu": 1.76, "Erf": 1.13,
         "Gelu": 1.13, "Mish": 1.09}

CASES = [
    ("Relu", {}, {}, 13),
    ("LeakyRelu", {}, {}, 13),
    ("LeakyRelu", {"alpha": 0.2}, {}, 13),
    ("Sigmoid", {}, {}, 13),
    ("Tanh", {}, {}, 13),
    ("HardSigmoid", {}, {}, 13),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {}, 13),
    ("HardSwish", {}, {}, 14),
    ("Clip", {"min": -1.0, "max": 1.5}, {}, 6),
    ("Clip", {}, {"min": -0.5, "max": 2.0}, 13),
    ("Clip", {}, {"min": 0.0}, 13),
    ("Clip", {}, {"max": 1.0}, 13),
    ("Clip", {}, {}, 13),
    ("Elu", {}, {}, 6),
    ("Elu", {"alpha": 2.0}, {}, 6),
    ("Selu", {}, {}, 6),
    ("Selu", {"alpha": 1.5, "gamma": 1.1}, {}, 6),
    ("Abs", {}, {}, 13),
    ("Neg", {}, {}, 13),
    ("Erf", {}, {}, 13),
    ("Softplus", {}, {}, 1),
    ("Gelu", {}, {}, 20),
    ("Gelu", {"approximate": "tanh"}, {}, 20),
    ("Mish", {}, {}, 18),
]  # onnx.reference runs Gelu and Mish as the functions their specs define, so it is the oracle for all


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(1, 17), (2, 3, 4, 5)], ids=["rank2", "rank4"])
@pytest.mark.parametrize("op,attrs,bounds,opset", CASES, ids=lambda c: str(c) if not isinstance(c, dict) else
                         "-".join(f"{k}{v}" for k, v in c.items()) or "default")
def test_activation(rng, mode, shape, op, attrs, bounds, opset):
    inputs = ["X"]
    inits = {}
    if op == "Clip" and opset >= 11:
        for key in ("min", "max"):
            if key in bounds:
                inits[key] = np.array(bounds[key], np.float32)
                inputs.append(key)
            else:
                inputs.append("")
        while inputs[-1] == "":
            inputs.pop()
    model = make_model([helper.make_node(op, inputs, ["Y"], **attrs)], [("X", shape)], [("Y", None)], inits,
                       opset=opset)
    check_op(model, {"X": shape}, mode, rng, 0.5, in_steps=0.5 * SLOPE.get(op, 1.0))


# functions whose slope is unbounded, on an input range inside their domain: (low, high, steepest slope there)
DOMAINS = {"Exp": (-3.0, 2.0, 7.39), "Log": (0.5, 4.0, 2.0), "Sqrt": (0.25, 4.0, 1.0), "Reciprocal": (0.5, 3.0, 4.0)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", sorted(DOMAINS))
def test_function_on_its_domain(rng, mode, op):
    from conftest import check_float_model, check_int8_model

    lo, hi, slope = DOMAINS[op]
    shape = (2, 3, 11)
    model = make_model([helper.make_node(op, ["X"], ["Y"])], [("X", shape)], [("Y", None)], opset=13)
    feeds = [{"X": rng.uniform(lo, hi, shape).astype(np.float32)} for _ in range(6)]
    if mode == "float32":
        check_float_model(model, feeds[0])
    else:
        check_int8_model(model, feeds, 0.5, in_steps=0.5 * slope)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal", "Exp"])
def test_outside_the_domain_in_float(op):
    """NaN and Inf where ONNX and NumPy give them: Log and Sqrt below 0, Log and Reciprocal at 0, Exp overflow."""
    from codegen.build import HostModel
    from codegen.compiler import compile_model

    x = np.array([[-2.0, -0.0, 0.0, 1e-3, 1.0, 100.0, 200.0]], np.float32)
    model = make_model([helper.make_node(op, ["X"], ["Y"])], [("X", x.shape)], [("Y", None)], opset=13)
    compiled = compile_model(model, "net")
    c = HostModel(compiled.emitted.files, compiled.report["api"]).run([x])[0]
    with np.errstate(all="ignore"):
        expected = {"Log": np.log, "Sqrt": np.sqrt, "Reciprocal": lambda v: np.float32(1) / v, "Exp": np.exp}[op](x)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(c[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)])
    np.testing.assert_allclose(c[finite], expected[finite], rtol=1e-6)


@pytest.mark.parametrize("op,low,high", [("Log", -1.0, 3.0), ("Sqrt", -1.0, 3.0), ("Reciprocal", -1.0, 1.0),
                                         ("Exp", 50.0, 100.0)])
def test_int8_outside_the_domain_is_a_clean_error(op, low, high):
    """Calibration data outside the domain (or overflowing) leaves no table to build: a one-line error."""
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    x = np.linspace(low, high, 33, dtype=np.float32).reshape(1, 33)
    model = make_model([helper.make_node(op, ["X"], ["Y"], name="f")], [("X", x.shape)], [("Y", None)], opset=13)
    with pytest.raises(CompileError, match="tensor 'Y' reaches NaN or Inf"):
        compile_model(model, "net", mode="int8", calib=[{"X": x}])


def test_int8_log_at_zero_saturates(rng):
    """The input's range always holds 0: Log's table entry there is -Inf, the lowest int8 level."""
    from conftest import check_int8_model

    model = make_model([helper.make_node("Log", ["X"], ["Y"])], [("X", (1, 40))], [("Y", None)], opset=13)
    feeds = [{"X": rng.uniform(0.5, 4.0, (1, 40)).astype(np.float32)} for _ in range(4)]
    compiled = check_int8_model(model, feeds, 0.5, in_steps=0.5 * 2.0)
    node = [n for n in compiled.graph.nodes if n.op_type == "Log"][0]
    zero = compiled.graph.tensors["X"].quant.zero_point
    assert node.attrs["q"]["table"][zero + 128] == -128


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
def test_saturating_functions_at_large_inputs(op):
    from conftest import check_float_model

    x = np.array([[-200.0, -90.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 90.0, 200.0]], np.float32)
    model = make_model([helper.make_node(op, ["X"], ["Y"])], [("X", x.shape)], [("Y", None)])
    check_float_model(model, {"X": x})


def test_clip_with_runtime_bound_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("Clip", ["X", "lo"], ["Y"], name="c")], [("X", (1, 4)), ("lo", ())],
                       [("Y", (1, 4))])
    with pytest.raises(CompileError, match="Clip node 'c': min must be a constant"):
        compile_model(model)


KERNELS = {"Relu": "nn_clamp_f32", "Clip": "nn_clamp_f32", "LeakyRelu": "nn_leaky_relu_f32",
           "Sigmoid": "nn_sigmoid_f32", "Tanh": "nn_tanh_f32", "HardSigmoid": "nn_hard_sigmoid_f32",
           "HardSwish": "nn_hard_swish_f32", "Elu": "nn_elu_f32", "Selu": "nn_selu_f32", "Exp": "nn_exp_f32",
           "Log": "nn_log_f32", "Sqrt": "nn_sqrt_f32", "Reciprocal": "nn_reciprocal_f32", "Abs": "nn_abs_f32",
           "Neg": "nn_neg_f32", "Erf": "nn_erf_f32", "Softplus": "nn_softplus_f32", "Gelu": "nn_gelu_f32",
           "Mish": "nn_mish_f32"}


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_float_kernel_per_function(rng, op):
    """One kernel per function, so a model links only the math it uses; run in place."""
    from conftest import check_float_model

    x = (4 * rng.standard_normal((3, 11))).astype(np.float32)
    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node(op, ["R"], ["Y"])]
    compiled = check_float_model(make_model(nodes, [("X", x.shape)], [("Y", None)], opset=20), {"X": x})
    assert compiled.report["layers"][-1]["kernels"] == [KERNELS[op]]
    assert compiled.report["arena_bytes"] == 0  # R and Y share the caller's output buffer
    assert compiled.report["runtime_sources"] == sorted({"nn_clamp_f32.c", f"{KERNELS[op]}.c"})


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.1), (-0.25, 0.6), (1.0, 0.0)])
def test_hard_sigmoid_coefficients(rng, alpha, beta):
    from conftest import check_float_model

    x = (3 * rng.standard_normal((2, 9))).astype(np.float32)
    model = make_model([helper.make_node("HardSigmoid", ["X"], ["Y"], alpha=alpha, beta=beta)], [("X", x.shape)],
                       [("Y", None)])
    check_float_model(model, {"X": x})


@pytest.mark.parametrize("lo,hi", [(0.5, -0.5), (-1.0, 6.0)])
def test_clip_bounds_at_opset_11(rng, lo, hi):
    """Inputs since opset 11; min > max sets every value to max (the spec)."""
    from conftest import check_float_model

    x = (3 * rng.standard_normal((2, 7))).astype(np.float32)
    model = make_model([helper.make_node("Clip", ["X", "lo", "hi"], ["Y"])], [("X", x.shape)], [("Y", None)],
                       {"lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)}, opset=11)
    check_float_model(model, {"X": x})


def test_int8_table_outside_the_domain_is_a_clean_error():
    """A QDQ model's own input scale can give Log input levels below 0 that no calibration saw:
    the table would hold NaN there, so the model is refused in one line."""
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    N = helper.make_node
    inits = {"s": np.array(0.05, np.float32), "z": np.array(0, np.int8)}
    nodes = [N("QuantizeLinear", ["X", "s", "z"], ["q"]), N("DequantizeLinear", ["q", "s", "z"], ["d"]),
             N("Log", ["d"], ["l"], name="log"), N("QuantizeLinear", ["l", "s", "z"], ["q2"]),
             N("DequantizeLinear", ["q2", "s", "z"], ["Y"])]
    model = make_model(nodes, [("X", (1, 8))], [("Y", None)], inits, opset=13)
    with pytest.raises(CompileError, match=r"Log node 'log': its int8 table is undefined: the input level -6\.4 "
                                           r"is outside the function's domain") as info:
        compile_model(model, "net", mode="int8")
    assert "\n" not in str(info.value)
