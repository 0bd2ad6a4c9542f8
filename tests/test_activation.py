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
