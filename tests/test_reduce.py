"""ReduceMean, ReduceMax, ReduceSum over any axes, in float32 and int8."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.ops.reduce import coalesce
from conftest import MODES, check_float_model, check_op, make_model

CASES = [  # (shape, axes or None, keepdims)
    ((1, 4, 5, 5), [2, 3], 1),  # global pooling as the dynamo exporter writes it
    ((1, 4, 5, 5), [-2, -1], 0),
    ((2, 3, 4), [0, 2], 0),  # not contiguous
    ((2, 3, 4), [1], 1),  # a middle axis: strided reduction
    ((2, 3, 4), None, 0),  # reduce all
    ((2, 3, 4), None, 1),
    ((1, 3, 2, 2, 2), [1, 3], 1),
    ((6,), [0], 0),
    ((2, 3, 4, 5), [0, 3], 0),
    ((2, 3, 4, 5), [-3, -1], 1),
    ((2, 1, 4), [1], 0),  # a size-1 axis only: a copy
    ((1, 8, 3, 3), [1], 1),  # over channels
    ((2, 3, 2, 2, 3, 2), [1, 2, 4], 0),  # rank 6
    ((3, 4), [-2], 1),
]


def _reduce_model(op, shape, axes, keepdims, form, noop=None):
    # axes are an attribute before opset 18 (13 for ReduceSum) and an input from then on
    opset = {"attribute": 11 if op == "ReduceSum" else 13, "input": 13 if op == "ReduceSum" else 18}[form]
    inits, inputs, attrs = {}, ["X"], {"keepdims": keepdims}
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    if axes is not None:
        if form == "attribute":
            attrs["axes"] = axes
        else:
            inits["axes"] = np.array(axes, np.int64)
            inputs.append("axes")
    return make_model([helper.make_node(op, inputs, ["Y"], **attrs)], [("X", shape)], [("Y", None)], inits,
                      opset=opset)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["attribute", "input"])
@pytest.mark.parametrize("shape,axes,keepdims", CASES)
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
def test_reduce(rng, mode, form, shape, axes, keepdims, op):
    model = _reduce_model(op, shape, axes, keepdims, form)
    # int8 output: rounding of the rescale (half a step) plus each input's rounding, which a
    # mean averages and a max passes on (half an input step); a sum adds them up
    reduced = range(len(shape)) if axes is None else [a % len(shape) for a in axes]
    count = int(np.prod([shape[i] for i in reduced]))
    in_steps = 0.5 * (count if op == "ReduceSum" else 1)
    compiled = check_op(model, {"X": shape}, mode, rng, 0.5, in_steps=in_steps)
    name = {"ReduceMean": "nn_reduce_mean_f32", "ReduceMax": "nn_reduce_max_f32", "ReduceSum": "nn_reduce_sum_f32"}
    assert compiled.report["layers"][0]["kernels"] == [name[op] if mode == "float32" else "nn_reduce_s8"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
def test_noop_with_empty_axes(rng, mode, op):
    model = _reduce_model(op, (2, 3), [], 1, "input", noop=1)
    check_op(model, {"X": (2, 3)}, mode, rng, 0.5, in_steps=0.5)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
@pytest.mark.parametrize("axes,noop,keepdims", [
    ([], 0, 1),  # empty axes input without noop: reduce all
    (None, 0, 0),  # no axes input: reduce all
    (None, 1, 1),  # no axes input with noop: identity
])
def test_empty_axes_input(rng, op, axes, noop, keepdims):
    model = _reduce_model(op, (2, 3, 4), axes, keepdims, "input", noop=noop)
    check_float_model(model, {"X": rng.standard_normal((2, 3, 4)).astype(np.float32)})


def test_global_average_pool_is_one_contiguous_run():
    kept, reduced = coalesce((1, 16, 7, 7), [2, 3])
    assert kept == [(16, 49)] and reduced == [(49, 1)]
    kept, reduced = coalesce((2, 3, 4, 5), [1, 3])  # no neighbours to merge
    assert kept == [(2, 60), (4, 5)] and reduced == [(3, 20), (5, 1)]
    kept, reduced = coalesce((2, 3, 4), [0, 1, 2])
    assert kept == [] and reduced == [(24, 1)]


def test_non_constant_axes_are_rejected():
    model = make_model([helper.make_node("ReduceMean", ["X", "A"], ["Y"], name="r")], [("X", (2, 3)), ("A", (1,))],
                       [("Y", (2, 1))])
    with pytest.raises(CompileError, match="ReduceMean node 'r'"):
        compile_model(model)


def test_repeated_axes_are_rejected():
    model = make_model([helper.make_node("ReduceSum", ["X"], ["Y"], axes=[1, -1], name="r")], [("X", (2, 3))],
                       [("Y", (2, 1))], opset=11)
    with pytest.raises(CompileError, match="ReduceSum node 'r': repeated axes"):
        compile_model(model)
