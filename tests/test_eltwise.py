"""Add, Sub, Mul, Div with broadcasting, in float32 and int8."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model

# int8 bound in output steps: both inputs' rounding, rescaled, plus the output's
INT8_STEPS = {"Add": 2.0, "Sub": 2.0, "Mul": 3.0, "Div": 3.0}

SHAPES = [  # (A, B): equal, per-channel, scalar, leading broadcast, both sides broadcast
    ((1, 4, 5, 5), (1, 4, 5, 5)),
    ((1, 4, 5, 5), (4, 1, 1)),
    ((2, 3), ()),
    ((2, 3, 4), (4,)),
    ((1, 3, 1, 5), (1, 1, 4, 1)),
    ((3, 1), (1, 6)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{list(s[0])}x{list(s[1])}")
@pytest.mark.parametrize("op,const", [(op, c) for op in ("Add", "Sub", "Mul") for c in ("none", "A", "B")]
                         + [("Div", "B")])  # Div by an activation: test_div_by_activation_*
def test_binary(rng, mode, shapes, const, op):
    inits = {}
    act_shapes = {"A": shapes[0], "B": shapes[1]}
    if const != "none":
        value = rng.uniform(0.5, 2.0, act_shapes[const]) * rng.choice([-1, 1], act_shapes[const])
        inits[const] = value.astype(np.float32)
        del act_shapes[const]
    model = make_model([helper.make_node(op, ["A", "B"], ["Y"])], list(act_shapes.items()), [("Y", None)], inits)
    check_op(model, act_shapes, mode, rng, INT8_STEPS[op])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_residual_with_relu_fuses(rng, mode, op):
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node(op, ["C", "X"], ["S"]), helper.make_node("Relu", ["S"], ["Y"])]
    model = make_model(nodes, [("X", (1, 3, 5, 5))], [("Y", None)],
                       {"W": (0.3 * rng.standard_normal((3, 3, 3, 3))).astype(np.float32)})
    compiled = check_op(model, {"X": (1, 3, 5, 5)}, mode, rng, 4.0)
    assert [n.op_type for n in compiled.graph.nodes] == ["Conv", op]
    assert compiled.graph.nodes[1].attrs["activation"] == (0.0, np.inf)


def test_div_by_activation_float(rng):
    model = make_model([helper.make_node("Div", ["A", "B"], ["Y"])], [("A", (2, 5)), ("B", (2, 5))], [("Y", None)])
    feeds = {"A": rng.standard_normal((2, 5)).astype(np.float32),
             "B": rng.uniform(0.5, 2, (2, 5)).astype(np.float32)}
    from conftest import check_float_model
    check_float_model(model, feeds)


@pytest.mark.parametrize("shapes", [((2, 5), (2, 5)), ((2, 3, 4), (3, 1))], ids=["same", "broadcast"])
def test_div_by_activation_int8(rng, shapes):
    """The divisor's level picks the multiplier: C == twin, and within the rounding of both
    inputs of the float quotient (the divisor's step, divided by b^2 <= 1/0.25, dominates)."""
    from conftest import check_int8_model

    model = make_model([helper.make_node("Div", ["A", "B"], ["Y"])], [("A", shapes[0]), ("B", shapes[1])],
                       [("Y", None)])
    calib = [{"A": rng.uniform(-3, 3, shapes[0]).astype(np.float32),
              "B": (rng.uniform(0.5, 2, shapes[1]) * rng.choice([-1, 1], shapes[1])).astype(np.float32)}
             for _ in range(6)]
    check_int8_model(model, calib, steps=1.0, in_steps=14.0)


def test_int8_div_by_zero_saturates(rng):
    from codegen.build import HostModel
    from codegen.compiler import compile_model, quantize_inputs
    from codegen.reference import run_int8

    model = make_model([helper.make_node("Div", ["A", "B"], ["Y"])], [("A", (8,)), ("B", (8,))], [("Y", None)])
    calib = [{"A": rng.uniform(-3, 3, 8).astype(np.float32), "B": rng.uniform(-2, 2, 8).astype(np.float32)}
             for _ in range(4)]
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    feeds = {"A": np.array([1, -1, 0, 2, -2, 0.5, 0, 3], np.float32), "B": np.zeros(8, np.float32)}
    q = quantize_inputs(graph, feeds)
    got = HostModel(compiled.emitted.files, compiled.report["api"]).run([q["A"], q["B"]])[0]
    np.testing.assert_array_equal(got, run_int8(graph, q)["Y"])
    dividend = q["A"].astype(int) - graph.tensors["A"].quant.zero_point
    zero = graph.tensors["Y"].quant.zero_point
    np.testing.assert_array_equal(got, np.where(dividend > 0, 127, np.where(dividend < 0, -128, zero)))


def test_add_runs_in_place(rng):
    from codegen.compiler import compile_model

    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node("Add", ["R", "K"], ["S"]),
             helper.make_node("Sigmoid", ["S"], ["Y"])]
    model = make_model(nodes, [("X", (1, 64))], [("Y", None)], {"K": np.ones((1, 64), np.float32)})
    compiled = compile_model(model)
    assert compiled.report["arena_bytes"] == 0  # R, S and Y share the caller's output buffer


# float32 only: a constant on the left of Sub and Div (int8 rejects Div by an activation),
# ranks up to NN_MAX_DIMS, and both operands broadcasting
LEFT_SHAPES = [((1, 4, 5, 5), (4, 1, 1)), ((2, 3), ()), ((3, 1), (1, 6)), ((4,), (2, 3, 4))]


@pytest.mark.parametrize("op", ["Sub", "Div"])
@pytest.mark.parametrize("shapes", LEFT_SHAPES, ids=lambda s: f"{list(s[0])}x{list(s[1])}")
def test_constant_on_the_left_float(rng, op, shapes):
    from conftest import check_float_model

    k_shape, x_shape = shapes[1], shapes[0]  # the constant is input 0
    k = (rng.uniform(0.5, 2.0, k_shape) * rng.choice([-1, 1], k_shape)).astype(np.float32)
    x = rng.uniform(0.5, 2.0, x_shape) * rng.choice([-1, 1], x_shape)  # no zeros to divide by
    model = make_model([helper.make_node(op, ["K", "X"], ["Y"])], [("X", x_shape)], [("Y", None)], {"K": k})
    compiled = check_float_model(model, {"X": x.astype(np.float32)})
    assert compiled.report["layers"][0]["kernels"] == [f"nn_{op.lower()}_f32"]


HIGH_RANK = [((2, 1, 3, 1, 2, 3), (1, 2, 1, 4, 1, 3)), ((2, 3, 1, 2, 2), (3, 2, 1)), ((1, 2, 1, 3, 1, 4), (4,))]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", HIGH_RANK, ids=lambda s: f"{list(s[0])}x{list(s[1])}")
def test_high_rank_two_activations_float(rng, op, shapes):
    from conftest import check_float_model

    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = (rng.uniform(0.5, 2.0, shapes[1]) * rng.choice([-1, 1], shapes[1])).astype(np.float32)
    model = make_model([helper.make_node(op, ["A", "B"], ["Y"])], [("A", shapes[0]), ("B", shapes[1])],
                       [("Y", None)])
    check_float_model(model, {"A": a, "B": b})


@pytest.mark.parametrize("op", ["Add", "Mul", "Div"])
def test_clip_fuses_into_binary_float(rng, op):
    from conftest import check_float_model

    nodes = [helper.make_node(op, ["A", "K"], ["S"]), helper.make_node("Clip", ["S", "lo", "hi"], ["Y"])]
    inits = {"K": rng.uniform(0.5, 2.0, (3, 1)).astype(np.float32), "lo": np.array(-0.5, np.float32),
             "hi": np.array(0.75, np.float32)}
    model = make_model(nodes, [("A", (2, 3, 4))], [("Y", None)], inits, opset=13)
    compiled = check_float_model(model, {"A": rng.standard_normal((2, 3, 4)).astype(np.float32)})
    assert [n.op_type for n in compiled.graph.nodes] == [op]
    assert compiled.graph.nodes[0].attrs["activation"] == (-0.5, 0.75)


def test_rank_above_max_dims_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    shape = (1, 2, 1, 2, 1, 2, 2)
    model = make_model([helper.make_node("Add", ["A", "B"], ["Y"], name="a")], [("A", shape), ("B", shape)],
                       [("Y", shape)])
    with pytest.raises(CompileError, match="Add node 'a': rank 7 is above 6"):
        compile_model(model)
