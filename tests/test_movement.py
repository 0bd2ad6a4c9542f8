"""Transpose, Concat and Pad (constant) in float32 and int8: bytes move, values do not change."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.ops.movement import coalesce_transpose
from conftest import MODES, check_float_model, check_op, make_model, onnxruntime_oracle

# int8 movement keeps the input's scale: the only error is the input's own rounding
TRANSPOSES = [((2, 3), None), ((2, 3), [1, 0]), ((1, 2, 3, 4), [0, 2, 3, 1]), ((1, 2, 3, 4), [0, 3, 1, 2]),
              ((2, 3, 4), [2, 0, 1]), ((2, 3, 4, 5, 2), [4, 0, 3, 1, 2]), ((1, 2, 1, 3, 1, 2), [5, 4, 3, 2, 1, 0]),
              ((2, 3, 4), None), ((2, 3, 4), [1, 0, 2]),  # keeps the last axis: memcpy runs
              ((2, 3, 4), [0, 1, 2]),  # identity
              ((2, 3, 4, 5), [2, 3, 0, 1]),  # two merged groups swapped
              ((1, 3, 4, 5), [0, 1, 3, 2]), ((2, 3, 4, 5), [3, 2, 1, 0]), ((2, 3, 2, 3, 2), [0, 2, 1, 4, 3]),
              ((2, 1, 3, 1, 2, 2, 2), [6, 5, 4, 3, 2, 1, 0])]  # rank 7, 5 dimensions once size 1s go


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,perm", TRANSPOSES)
def test_transpose(rng, mode, shape, perm):
    attrs = {} if perm is None else {"perm": perm}
    model = make_model([helper.make_node("Transpose", ["X"], ["Y"], **attrs)], [("X", shape)], [("Y", None)])
    check_op(model, {"X": shape}, mode, rng, 0.0, in_steps=0.5)


def test_transpose_coalescing():
    assert coalesce_transpose((1, 16, 7, 7), [0, 2, 3, 1]) == ([16, 49], [1, 0])
    assert coalesce_transpose((2, 3, 4), [1, 0, 2]) == ([2, 3, 4], [1, 0, 2])
    assert coalesce_transpose((2, 3, 4), [0, 1, 2]) == ([24], [0])
    assert coalesce_transpose((1, 1), [1, 0]) == ([], [])


CONCATS = [  # (input shapes, axis, index of a constant input or None)
    ([(1, 2, 3), (1, 4, 3)], 1, None),
    ([(2, 3), (2, 2), (2, 1)], -1, None),
    ([(2, 3), (1, 3)], 0, None),
    ([(1, 2, 2, 2), (1, 3, 2, 2)], 1, 1),
    ([(1, 2, 2, 2), (1, 2, 2, 2)], 3, 0),
    ([(2, 3), (2, 3), (2, 3)], 1, 2),
    ([(2, 3, 2, 2), (1, 3, 2, 2)], 0, None),  # every axis of a rank-4 tensor
    ([(2, 3, 2, 2), (2, 1, 2, 2), (2, 2, 2, 2)], 1, None),
    ([(2, 3, 2, 2), (2, 3, 3, 2)], 2, 0),
    ([(2, 3, 2, 2), (2, 3, 2, 1)], 3, None),
    ([(2, 3, 2, 2), (2, 3, 2, 3)], -1, 1),
    ([(2, 3, 2, 2), (4, 3, 2, 2)], -4, None),
    ([(3,), (5,), (1,)], 0, 1),
    ([(1, 2, 3), (1, 2, 3), (1, 2, 3), (1, 2, 3)], -2, 3),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes,axis,const", CONCATS)
def test_concat(rng, mode, shapes, axis, const):
    names = [f"X{i}" for i in range(len(shapes))]
    inits = {} if const is None else {names[const]: rng.uniform(-1, 1, shapes[const]).astype(np.float32)}
    acts = {n: s for n, s in zip(names, shapes) if n not in inits}
    model = make_model([helper.make_node("Concat", names, ["Y"], axis=axis)], list(acts.items()), [("Y", None)], inits)
    # inputs with other scales are rescaled to the output's: half an output step more
    check_op(model, acts, mode, rng, 0.5, in_steps=0.5)


def test_concat_of_equal_scales_is_a_copy(rng):
    from codegen.compiler import compile_model

    model = make_model([helper.make_node("Relu", ["X"], ["A"]), helper.make_node("Relu", ["X"], ["B"]),
                        helper.make_node("Concat", ["A", "B"], ["Y"], axis=1)], [("X", (1, 4))], [("Y", None)])
    calib = [{"X": rng.standard_normal((1, 4)).astype(np.float32)} for _ in range(4)]
    compiled = compile_model(model, mode="int8", calib=calib)
    assert compiled.report["layers"][-1]["kernels"] == ["nn_concat_part"]


PADS = [  # (shape, pads, value, opset, axes)
    ((1, 2, 3, 3), [0, 0, 1, 2, 0, 0, 2, 1], 0.0, 13, None),
    ((1, 2, 3, 3), [0, 0, 1, 1, 0, 0, 1, 1], 0.1, 13, None),
    ((2, 5), [1, 0, 0, 3], -0.1, 11, None),
    ((1, 2, 3, 3), [1, 2, 0, 1], 0.0, 18, [1, 3]),
    ((1, 2, 3, 3), [1, 1], 0.25, 18, [-1]),
    ((3, 3), [0, 1, 1, 0], 1.0, 2, None),
    ((4,), [2, 3], 0.0, 13, None),
    ((1, 3, 4, 4), [0, 0, 1, 1, 0, 0, 1, 1], -1.0, 11, None),  # value bytes differ: no memset
    ((2, 3, 4), [1, 0, 2, 0, 2, 1], 0.5, 18, None),
    ((2, 3, 4), [0, 3], 0.0, 18, [1]),
    ((2, 3, 4), [2, 1, 0, 3], -0.5, 18, [-1, 0]),
    ((2, 3, 4, 2, 3), [0, 1, 0, 0, 1, 0, 1, 0, 1, 0], 0.0, 13, None),
    ((3, 4), [1, 0, 0, 0], 0.75, 2, None),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pads,value,opset,axes", PADS)
def test_pad(rng, mode, shape, pads, value, opset, axes):
    if opset < 11:
        node = helper.make_node("Pad", ["X"], ["Y"], pads=pads, value=value)
        inits = {}
    else:
        inits = {"pads": np.array(pads, np.int64), "value": np.array(value, np.float32)}
        inputs = ["X", "pads", "value"]
        if axes is not None:
            inits["axes"] = np.array(axes, np.int64)
            inputs.append("axes")
        node = helper.make_node("Pad", inputs, ["Y"])
    model = make_model([node], [("X", shape)], [("Y", None)], inits, opset=opset)
    # the pad value is rounded to the input's scale like every input value (inputs are centred
    # on 0 so that the pad value lies inside their range)
    check_op(model, {"X": shape}, mode, rng, 0.0, in_steps=0.5, offset=False)


CROPS = [  # (shape, pads, value, opset, axes): negative pads crop (onnx.reference cannot; onnxruntime can)
    ((1, 2, 5, 5), [0, 0, -1, -2, 0, 0, -1, 0], 0.0, 13, None),
    ((1, 2, 5, 5), [0, 0, -1, 2, 0, 0, 1, -2], 0.5, 13, None),
    ((3, 4), [-1, 0], 0.0, 18, [1]),
    ((4, 6), [-1, -1, -2, 2], -0.25, 18, [-2, -1]),
    ((5,), [-5, 2], 1.0, 11, None),  # cropped to nothing and padded again
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pads,value,opset,axes", CROPS)
def test_pad_negative_crops(rng, mode, shape, pads, value, opset, axes):
    inits = {"pads": np.array(pads, np.int64), "value": np.array(value, np.float32)}
    inputs = ["X", "pads", "value"]
    if axes is not None:
        inits["axes"] = np.array(axes, np.int64)
        inputs.append("axes")
    model = make_model([helper.make_node("Pad", inputs, ["Y"])], [("X", shape)], [("Y", None)], inits, opset=opset)
    check_op(model, {"X": shape}, mode, rng, 0.0, in_steps=0.5, offset=False, oracle=onnxruntime_oracle(model))


def test_pad_cropping_too_much_is_rejected():
    model = make_model([helper.make_node("Pad", ["X", "pads"], ["Y"], name="p")], [("X", (1, 4))],
                       [("Y", (1, 1))], {"pads": np.array([0, -2, 0, -3], np.int64)})
    with pytest.raises(CompileError, match="Pad node 'p': pads .* crop more than shape"):
        compile_model(model)


def test_concat_of_constants_only(rng):
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 2)).astype(np.float32)
    model = make_model([helper.make_node("Concat", ["A", "B"], ["C"], axis=1), helper.make_node("Add", ["X", "C"], ["Y"])],
                       [("X", (2, 5))], [("Y", None)], {"A": a, "B": b})
    check_float_model(model, {"X": rng.standard_normal((2, 5)).astype(np.float32)})


def test_transpose_then_concat_then_pad(rng):
    nodes = [helper.make_node("Transpose", ["X"], ["T"], perm=[0, 2, 3, 1]),
             helper.make_node("Concat", ["T", "T"], ["C"], axis=-1),
             helper.make_node("Pad", ["C", "pads"], ["Y"])]
    model = make_model(nodes, [("X", (1, 3, 4, 4))], [("Y", None)], {"pads": np.array([0, 1, 1, 0, 0, 1, 0, 2])})
    check_float_model(model, {"X": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)})


def test_non_constant_pads_are_rejected():
    model = make_model([helper.make_node("Pad", ["X", "pads"], ["Y"], name="p")], [("X", (1, 4)), ("pads", (4,))],
                       [("Y", (1, 6))])
    with pytest.raises(CompileError):
        compile_model(model)


def test_int8_pad_value_outside_the_range_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("Pad", ["X", "pads", "v"], ["Y"], name="p")], [("X", (1, 4))],
                       [("Y", None)], {"pads": np.array([0, 1, 0, 1], np.int64), "v": np.array(9.0, np.float32)})
    calib = [{"X": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4)}]
    with pytest.raises(CompileError, match="Pad node 'p': pad value 9 lies outside the input's int8 range"):
        compile_model(model, mode="int8", calib=calib)


def test_reflect_pad_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("Pad", ["X", "pads"], ["Y"], mode="reflect", name="p")], [("X", (1, 4))],
                       [("Y", None)], {"pads": np.array([0, 1, 0, 1], np.int64)})
    with pytest.raises(CompileError, match="Pad node 'p': mode 'reflect' is not supported"):
        compile_model(model)
