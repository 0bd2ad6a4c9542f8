"""The memory planner: a pure placement function, its overlap check, aliases and in-place."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.passes.plan_memory import Buffer, check_plan, lower_bound, plan_offsets
from conftest import check_float_model, make_model


@pytest.mark.parametrize("seed", range(20))
def test_random_buffers_never_overlap(seed):
    rng = np.random.default_rng(seed)
    buffers = []
    for _ in range(rng.integers(1, 40)):
        first = int(rng.integers(0, 30))
        buffers.append(Buffer(int(rng.integers(1, 4096)), first, first + int(rng.integers(0, 6))))
    offsets = plan_offsets(buffers)
    check_plan(buffers, offsets)
    arena = max(o + b.size for o, b in zip(offsets, buffers))
    assert arena >= lower_bound(buffers)


def test_check_plan_catches_an_overlap():
    buffers = [Buffer(16, 0, 2), Buffer(16, 1, 3)]
    with pytest.raises(AssertionError):
        check_plan(buffers, [0, 8])
    check_plan(buffers, [0, 16])


def test_chain_reaches_lower_bound():
    # a chain: each tensor lives from its producer to its consumer
    buffers = [Buffer(128, i, i + 1) for i in range(10)]
    offsets = plan_offsets(buffers)
    arena = max(o + b.size for o, b in zip(offsets, buffers))
    assert arena == lower_bound(buffers)


def _fc_chain(reshape_output: bool):
    rng = np.random.default_rng(0)
    inits = {f"W{i}": rng.standard_normal((8, 8)).astype(np.float32) for i in range(3)}
    inits["shape"] = np.array([2, 4], np.int64)
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["a"]),
        helper.make_node("MatMul", ["a", "W1"], ["b"]),
        helper.make_node("MatMul", ["b", "W2"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    return make_model(nodes, [("x", (1, 8))], [("y", (2, 4))], inits)


def test_alias_of_output_costs_nothing():
    compiled = check_float_model(_fc_chain(True), {"x": np.ones((1, 8), np.float32)})
    plan = compiled.plan
    assert plan.locations["c"].region == "output"  # the Reshape's input is placed in the output
    assert plan.arena_bytes == 64  # a and b, 32 bytes each, both live at the middle MatMul
    assert "nn_copy" not in compiled.emitted.files["net.c"].split("_invoke")[-1]


def test_reshape_of_input_to_output_is_a_copy():
    model = make_model([helper.make_node("Flatten", ["x"], ["y"])], [("x", (1, 2, 3))], [("y", (1, 6))])
    compiled = check_float_model(model, {"x": np.arange(6, dtype=np.float32).reshape(1, 2, 3)})
    assert "nn_copy(" in compiled.emitted.files["net.c"]
    assert compiled.plan.arena_bytes == 0


def test_arena_is_planned_for_element_size():
    compiled = compile_model(_fc_chain(False), "m")
    for name, loc in compiled.plan.locations.items():
        if loc.region == "arena":
            assert loc.index % 4 == 0
