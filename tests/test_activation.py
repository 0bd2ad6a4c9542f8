"""Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish in float32 and int8 (tables)."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model

# int8 is a table of the exact function of each input level: only the output rounding (half a
# step) and the input's own rounding (half an input step times the function's steepest slope) remain
SLOPE = {"Sigmoid": 0.25, "HardSwish": 1.5, "HardSigmoid": 0.3}

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
]


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
           "HardSwish": "nn_hard_swish_f32"}


@pytest.mark.parametrize("op", sorted(KERNELS))
def test_float_kernel_per_function(rng, op):
    """One kernel per function, so a model links only the math it uses; run in place."""
    from conftest import check_float_model

    x = (4 * rng.standard_normal((3, 11))).astype(np.float32)
    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node(op, ["R"], ["Y"])]
    compiled = check_float_model(make_model(nodes, [("X", x.shape)], [("Y", None)], opset=14), {"X": x})
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
