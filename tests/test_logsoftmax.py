"""LogSoftmax in float32 and int8, with the opset 11 (flatten at axis) and opset 13 (one axis) rules,
and the fixed-point log2 of its int8 rule against its C twin."""

import numpy as np
import pytest
from cffi import FFI
from onnx import helper

from codegen import fixedpoint as fp
from codegen.build import compile_shared
from codegen.paths import RUNTIME_DIR
from conftest import check_float_model, check_int8_model, make_model


def spec_logsoftmax(x: np.ndarray, axis: int, opset: int) -> np.ndarray:
    """The ONNX rule: before opset 13, flatten to 2-D at `axis` and normalize each row."""
    axis = axis % x.ndim
    view = x.reshape(int(np.prod(x.shape[:axis])), -1) if opset < 13 else x
    along = -1 if opset < 13 else axis
    shifted = view - view.max(axis=along, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=along, keepdims=True))).reshape(x.shape)


class SpecOracle:
    """onnx.reference (onnx 1.23) applies the opset-13 rule at every opset: below 13 the spec is the oracle."""

    def __init__(self, axis, opset):
        self.axis, self.opset = axis, opset

    def run(self, _, feeds):
        return [spec_logsoftmax(feeds["X"].astype(np.float64), self.axis, self.opset).astype(np.float32)]


CASES = [((1, 10), -1, 13), ((2, 3, 4), 1, 13), ((2, 3, 4), 0, 13), ((1, 4, 3, 3), 1, 13), ((3, 50), -1, 13),
         ((2, 3, 4), 1, 11), ((1, 4, 3, 3), 2, 11), ((2, 5), None, 11), ((2, 5, 3), None, 13)]


def _model(shape, axis, opset):
    attrs = {} if axis is None else {"axis": axis}
    model = make_model([helper.make_node("LogSoftmax", ["X"], ["Y"], **attrs)], [("X", shape)], [("Y", None)],
                       opset=opset)
    default = 1 if opset < 13 else -1
    return model, SpecOracle(default if axis is None else axis, opset) if opset < 13 else None


@pytest.mark.parametrize("shape,axis,opset", CASES)
def test_logsoftmax_float(rng, shape, axis, opset):
    model, oracle = _model(shape, axis, opset)
    x = (rng.standard_normal(shape) * 20 + 300).astype(np.float32)  # far from 0: the max is subtracted
    compiled = check_float_model(model, {"X": x}, oracle=oracle)
    assert compiled.report["layers"][0]["kernels"] == ["nn_logsoftmax_f32"]


@pytest.mark.parametrize("shape,axis,opset", CASES)
def test_logsoftmax_int8(rng, shape, axis, opset):
    model, oracle = _model(shape, axis, opset)
    spread, centre = rng.uniform(0.5, 1.2), rng.uniform(-2, 2)
    feeds = [{"X": (rng.standard_normal(shape) * spread + centre).astype(np.float32)} for _ in range(6)]
    # output steps are 1/16; half of one for the rounding, and the input's rounding moves
    # x_k - logsumexp by at most one input step (half a step on x_k, half through the sum)
    compiled = check_int8_model(model, feeds, 0.5 + 0.01, oracle=oracle, in_steps=1.0)
    assert compiled.report["layers"][0]["kernels"] == ["nn_logsoftmax_s8"]
    q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    assert (q.scale, q.zero_point) == (1 / 16, 127)


def test_logsoftmax_int8_saturates_far_below_the_max(rng):
    """A value 16 or more below the group's log-sum-exp is -128 (-15.94), not a wrapped integer."""
    shape = (2, 6)
    model, _ = _model(shape, -1, 13)
    x = np.array([[10, -10, 0, 9, -9.5, 1], [0, 0, 0, 0, 0, -20]], np.float32)
    compiled = check_int8_model(model, [{"X": x}], 300.0)
    from codegen.build import HostModel
    from codegen.compiler import quantize_inputs

    host = HostModel(compiled.emitted.files, compiled.report["api"])
    y = host.run([quantize_inputs(compiled.graph, {"X": x})["X"]])[0]
    assert y[0, 1] == -128 and y[0, 4] == -128 and y[1, 5] == -128
    assert y[0, 0] == 127 - round(16 * np.log1p(np.exp(-1.0)))  # 10 - logsumexp(10, 9, ...)


TWIN_C = r"""
#include "nn_softmax.h"
void twin_log2(const int32_t *x, int32_t *y, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) y[i] = nn_log2_q16(x[i]); }
"""


def test_log2_twins_and_precision(rng):
    ffi = FFI()
    ffi.cdef("void twin_log2(const int32_t *, int32_t *, int32_t);")
    lib = ffi.dlopen(str(compile_shared({"twin.c": TWIN_C,
                                          "nn_softmax.h": (RUNTIME_DIR / "include" / "nn_softmax.h").read_text()})))
    x = np.concatenate([np.arange(1, 70000), 2 ** np.arange(31) - 1, 2 ** np.arange(31), 2 ** np.arange(31) + 1,
                        rng.integers(1, 2**31, 200_000)]).astype(np.int64)
    x = x[(x >= 1) & (x < 2**31)].astype(np.int32)
    y_c = np.empty_like(x)
    lib.twin_log2(ffi.cast("int32_t *", ffi.from_buffer(x)), ffi.cast("int32_t *", ffi.from_buffer(y_c)), x.size)
    y = fp.log2_q16(x)
    np.testing.assert_array_equal(y_c, y)
    err = np.log2(x.astype(np.float64)) * 65536 - y
    assert err.min() >= -1e-6 and err.max() < 2  # truncated: at most two Q16 units low
