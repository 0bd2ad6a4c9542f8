"""ReduceMean, ReduceMax, ReduceSum over any axes, in float32 and int8."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model

CASES = [  # (shape, axes or None, keepdims)
    ((1, 4, 5, 5), [2, 3], 1),  # global pooling as the dynamo exporter writes it
    ((1, 4, 5, 5), [-2, -1], 0),
    ((2, 3, 4), [0, 2], 0),
    ((2, 3, 4), [1], 1),
    ((2, 3, 4), None, 0),
    ((2, 3, 4), None, 1),
    ((1, 3, 2, 2, 2), [1, 3], 1),
    ((6,), [0], 0),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["attribute", "input"])
@pytest.mark.parametrize("shape,axes,keepdims", CASES)
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
def test_reduce(rng, mode, form, shape, axes, keepdims, op):
    # axes are an attribute before opset 18 (13 for ReduceSum) and an input from then on
    opset = {"attribute": 11 if op == "ReduceSum" else 13, "input": 13 if op == "ReduceSum" else 18}[form]
    inits, inputs, attrs = {}, ["X"], {"keepdims": keepdims}
    if axes is not None:
        if form == "attribute":
            attrs["axes"] = axes
        else:
            inits["axes"] = np.array(axes, np.int64)
            inputs.append("axes")
    model = make_model([helper.make_node(op, inputs, ["Y"], **attrs)], [("X", shape)], [("Y", None)], inits,
                       opset=opset)
    # int8 output: rounding of the rescale (half a step) plus each input's rounding, which a
    # mean averages and a max passes on (half an input step); a sum adds them up
    reduced = range(len(shape)) if axes is None else [a % len(shape) for a in axes]
    count = int(np.prod([shape[i] for i in reduced]))
    in_steps = 0.5 * (count if op == "ReduceSum" else 1)
    check_op(model, {"X": shape}, mode, rng, 0.5, in_steps=in_steps)


@pytest.mark.parametrize("mode", MODES)
def test_noop_with_empty_axes(rng, mode):
    model = make_model([helper.make_node("ReduceSum", ["X", "axes"], ["Y"], noop_with_empty_axes=1)],
                       [("X", (2, 3))], [("Y", None)], {"axes": np.array([], np.int64)}, opset=13)
    check_op(model, {"X": (2, 3)}, mode, rng, 0.5, in_steps=0.5)
