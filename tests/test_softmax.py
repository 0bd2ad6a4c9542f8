"""Softmax in float32 and int8, with the opset 11 (flatten at axis) and opset 13 (one axis) rules."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model


def spec_softmax(x: np.ndarray, axis: int, opset: int) -> np.ndarray:
    """The ONNX rule: before opset 13, flatten to 2-D at `axis` and normalize each row."""
    axis = axis % x.ndim
    view = x.reshape(int(np.prod(x.shape[:axis])), -1) if opset < 13 else x
    e = np.exp(view - view.max(axis=-1 if opset < 13 else axis, keepdims=True))
    return (e / e.sum(axis=-1 if opset < 13 else axis, keepdims=True)).reshape(x.shape)


class SpecOracle:
    def __init__(self, axis, opset):
        self.axis, self.opset = axis, opset

    def run(self, _, feeds):
        return [spec_softmax(feeds["X"].astype(np.float64), self.axis, self.opset).astype(np.float32)]


CASES = [((1, 10), -1), ((1, 10), 1), ((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), -1), ((1, 4, 3, 3), 1),
         ((1, 4, 3, 3), 2), ((3, 5), 0)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape,axis", CASES)
def test_softmax(rng, mode, opset, shape, axis):
    model = make_model([helper.make_node("Softmax", ["X"], ["Y"], axis=axis)], [("X", shape)], [("Y", None)],
                       opset=opset)
    # onnx.reference applies the opset-13 rule at every opset: below 13 the spec is the oracle
    oracle = SpecOracle(axis, opset) if opset < 13 else None
    # int8 output steps are 1/256; the input's rounding moves a probability p by at most
    # p (1 - p) * input step <= input step / 4 (per element, twice for the sum)
    check_op(model, {"X": shape}, mode, rng, 0.5, oracle=oracle, in_steps=0.5)


def test_opset_rules_differ(rng):
    x = rng.standard_normal((2, 3, 4))
    assert not np.allclose(spec_softmax(x, 1, 11), spec_softmax(x, 1, 13))


@pytest.mark.parametrize("opset,shape", [(11, (2, 3, 4, 5)), (13, (2, 3, 4, 5)), (11, (1, 6)), (13, (1, 6)),
                                         (13, (7,)), (11, (3, 1, 4))])
def test_default_axis_large_values(rng, opset, shape):
    """No `axis` attribute (1 before opset 13, -1 from 13) and values far from 0 (max subtracted)."""
    from conftest import check_float_model

    model = make_model([helper.make_node("Softmax", ["X"], ["Y"])], [("X", shape)], [("Y", None)], opset=opset)
    x = (rng.standard_normal(shape) * 30 + 500).astype(np.float32)
    oracle = SpecOracle(1 if opset < 13 else -1, opset) if opset < 13 else None
    compiled = check_float_model(model, {"X": x}, oracle=oracle)
    assert compiled.report["layers"][0]["kernels"] == ["nn_softmax_f32"]


def test_softmax_runs_in_place(rng):
    from codegen.compiler import compile_model

    nodes = [helper.make_node("Relu", ["X"], ["R"]), helper.make_node("Softmax", ["R"], ["Y"], axis=1)]
    compiled = compile_model(make_model(nodes, [("X", (2, 10))], [("Y", None)], opset=13))
    assert compiled.report["arena_bytes"] == 0
