"""Sum, Mean, Max, Min (variadic, broadcasting), PRelu, Pow and CastLike in float32 and int8,
and the GELU patterns fused into one Gelu node."""

import numpy as np
import pytest
from onnx import helper

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
@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_repeated_input_and_in_place(rng, mode, op):
    """One tensor read three times, and a Relu output that the node overwrites in place."""
    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node(op, ["R", "Z", "R", "R"], ["Y"])]
    model = make_model(nodes, [("X", (2, 8)), ("Z", (2, 8))], [("Y", None)], opset=13)
    check_op(model, {"X": (2, 8), "Z": (2, 8)}, mode, rng, 2.5)
