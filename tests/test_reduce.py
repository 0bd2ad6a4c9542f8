"""ReduceMean, ReduceMax, ReduceSum, ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp
and ReduceProd over any axes, in float32 and int8 (ReduceProd: float32 only)."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.ops.reduce import coalesce
from conftest import MODES, check_float_model, check_op, make_model, random_feeds

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


# ---- ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp, ReduceProd -------------

NEW_OPS = ["ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceProd"]
NEW_CASES = [  # (shape, axes or None, keepdims, axes form)
    ((1, 4, 5, 5), [2, 3], 1, "attribute"),
    ((2, 3, 4), [0, 2], 0, "input"),
    ((2, 3, 4), [1], 1, "attribute"),  # a middle axis: strided
    ((2, 3, 4), None, 0, "input"),  # everything
    ((1, 16), [-1], 1, "input"),  # an L2-normalised embedding's norm
]


def _new_model(op, shape, axes, keepdims, form, noop=None):
    opset = 13 if form == "attribute" else 18
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


@pytest.mark.parametrize("shape,axes,keepdims,form", NEW_CASES)
@pytest.mark.parametrize("op", NEW_OPS)
def test_new_reduce_float(rng, op, shape, axes, keepdims, form):
    model = _new_model(op, shape, axes, keepdims, form)
    x = rng.standard_normal(shape).astype(np.float32)
    if op == "ReduceProd":
        x = np.sign(x) * rng.uniform(0.7, 1.4, shape).astype(np.float32)  # products of many values stay finite
    compiled = check_float_model(model, {"X": x})
    kernel = "nn_reduce_" + op[len("Reduce"):].lower() + "_f32"
    assert compiled.report["layers"][0]["kernels"] == [kernel]


@pytest.mark.parametrize("shape,axes,keepdims,form", NEW_CASES)
@pytest.mark.parametrize("op", [op for op in NEW_OPS if op != "ReduceProd"])
def test_new_reduce_int8(rng, op, shape, axes, keepdims, form):
    from test_norm import check_int8_sqnr

    model = _new_model(op, shape, axes, keepdims, form)
    compiled, _ = check_int8_sqnr(model, random_feeds(rng, {"X": shape}))
    kernel = "nn_reduce_logsumexp_s8" if op == "ReduceLogSumExp" else "nn_reduce_s8"
    assert compiled.report["layers"][0]["kernels"] == [kernel]


@pytest.mark.parametrize("op", NEW_OPS)
def test_new_reduce_noop_with_empty_axes(rng, op):
    """Empty axes with noop_with_empty_axes: each element alone (|x| for L1 and L2, x^2 for the sum of squares)."""
    model = _new_model(op, (2, 3), [], 1, "input", noop=1)
    check_float_model(model, {"X": rng.standard_normal((2, 3)).astype(np.float32)})


def test_reduce_prod_has_no_int8_rule(rng):
    model = _new_model("ReduceProd", (2, 3), [1], 1, "attribute")
    with pytest.raises(CompileError, match="ReduceProd has no int8 rule"):
        compile_model(model, mode="int8", calib=random_feeds(rng, {"X": (2, 3)}))


def test_int8_sum_of_squares_refuses_what_could_overflow(rng):
    shape = (1, 40000)
    model = _new_model("ReduceSumSquare", shape, [1], 1, "attribute")
    with pytest.raises(CompileError, match="sum of squares of 40000 elements could overflow"):
        compile_model(model, mode="int8", calib=random_feeds(rng, {"X": shape}, count=1))


def test_int8_l2_at_the_extremes(rng):
    """All inputs at the int8 limits: the largest sum of squares the compiler allows, and all zeros."""
    from conftest import check_int8_model

    shape = (3, 8192)
    model = _new_model("ReduceL2", shape, [1], 1, "attribute")
    x = np.where(rng.random(shape) < 0.5, -3.0, 3.0).astype(np.float32)
    x[1] = 0.0
    x[2, :] = -3.0
    check_int8_model(model, [{"X": x}], 0.5 + 1e-3, in_steps=0.5 * np.sqrt(shape[1]))  # |L2(a) - L2(b)| <= L2(a - b)
