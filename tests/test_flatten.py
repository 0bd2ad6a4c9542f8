"""Flatten at every axis of [-r, r], negative ones counted from the back."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from conftest import check_float_model, make_model


@pytest.mark.parametrize("axis", [-4, -3, -1, 0, 2, 4])
def test_flatten_axis(rng, axis):
    shape = (2, 3, 4, 5)
    model = make_model([helper.make_node("Flatten", ["X"], ["Y"], axis=axis)], [("X", shape)], [("Y", None)],
                       opset=13)
    compiled = check_float_model(model, {"X": rng.standard_normal(shape).astype(np.float32)})
    cut = axis % len(shape) if axis < 0 else axis
    assert compiled.graph.tensors["Y"].shape == (int(np.prod(shape[:cut])), int(np.prod(shape[cut:])))


def test_flatten_axis_out_of_range():
    model = make_model([helper.make_node("Flatten", ["X"], ["Y"], axis=-5, name="f")], [("X", (2, 3, 4, 5))],
                       [("Y", (1, 120))], opset=13)
    with pytest.raises(CompileError, match="Flatten node 'f': axis -5 out of range"):
        compile_model(model)
