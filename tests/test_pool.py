"""MaxPool, AveragePool and the global pools in float32 and int8."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_float_model, check_op, make_model, onnxruntime_oracle, random_feeds

# int8 keeps the input's scale: max is exact, the average is off by its rounding (half a step)
# plus the input's own rounding
INT8_STEPS = 1.0


def _random_case(seed: int):
    r = np.random.default_rng(seed)
    op = str(r.choice(["MaxPool", "AveragePool"]))
    one_d = r.random() < 0.25
    spatial = [int(r.integers(5, 12))] if one_d else [int(r.integers(5, 12)), int(r.integers(5, 12))]
    kernel = [int(r.integers(1, 4)) for _ in spatial]
    attrs = {"kernel_shape": kernel, "strides": [int(r.integers(1, 3)) for _ in spatial]}
    if r.random() < 0.5:
        attrs["ceil_mode"] = 1
    if op == "AveragePool":
        attrs["count_include_pad"] = int(r.integers(0, 2))
    elif r.random() < 0.3:
        attrs["dilations"] = [int(r.integers(1, 3)) for _ in spatial]
    mode = r.choice(["pads", "pads", "SAME_UPPER", "SAME_LOWER", "none"])
    if mode == "pads":
        attrs["pads"] = [int(r.integers(0, k)) for k in kernel * 2]
    elif mode != "none":
        attrs["auto_pad"] = str(mode)
        attrs.pop("ceil_mode", None)
        # a stride above the kernel makes SAME's total padding negative, which the oracle refuses
        attrs["strides"] = [min(s, k) for s, k in zip(attrs["strides"], kernel)]
    return op, (1, int(r.integers(1, 4)), *spatial), attrs


CASES = [pytest.param(*_random_case(seed), id=f"case{seed}") for seed in range(32)]
CASES += [
    pytest.param("AveragePool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                               "pads": [1, 1, 1, 1], "count_include_pad": 1}, id="ceil-include-pad"),
    pytest.param("AveragePool", (1, 2, 7, 7), {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
                 id="ceil-odd"),
    pytest.param("GlobalAveragePool", (2, 3, 5, 4), {}, id="global-avg-2d"),
    pytest.param("GlobalMaxPool", (1, 3, 4, 6), {}, id="global-max-2d"),
    pytest.param("GlobalAveragePool", (1, 4, 9), {}, id="global-avg-1d"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,x_shape,attrs", CASES)
def test_pool(rng, mode, op, x_shape, attrs):
    model = make_model([helper.make_node(op, ["X"], ["Y"], **attrs)], [("X", x_shape)], [("Y", None)], opset=19)
    # onnx.reference (1.23) places SAME_LOWER pooling windows wrongly; onnxruntime follows the spec
    oracle = onnxruntime_oracle(model) if attrs.get("auto_pad", "").startswith("SAME") else None
    check_op(model, {"X": x_shape}, mode, rng, INT8_STEPS, oracle=oracle)


def test_global_max_pool_1d_follows_the_spec(rng):
    """onnx.reference (1.23) reduces 1-D GlobalMaxPool over the wrong axes; check the spec directly."""
    from codegen.build import HostModel
    from codegen.compiler import compile_model

    model = make_model([helper.make_node("GlobalMaxPool", ["X"], ["Y"])], [("X", (1, 3, 7))], [("Y", (1, 3, 1))])
    compiled = compile_model(model, "net")
    feeds = random_feeds(rng, {"X": (1, 3, 7)}, count=1)[0]
    out = HostModel(compiled.emitted.files, compiled.report["api"]).run([feeds["X"]])[0]
    np.testing.assert_array_equal(out, feeds["X"].max(axis=2, keepdims=True))


def test_maxpool_indices_output_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("MaxPool", ["X"], ["Y", "I"], kernel_shape=[2, 2], name="mp")],
                       [("X", (1, 1, 4, 4))], [("Y", (1, 1, 3, 3)), ("I", (1, 1, 3, 3))])
    with pytest.raises(CompileError, match="MaxPool node 'mp': the Indices output is not supported"):
        compile_model(model)


def test_window_in_padding_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("AveragePool", ["X"], ["Y"], kernel_shape=[2, 2], pads=[2, 2, 2, 2],
                                         name="ap")], [("X", (1, 1, 3, 3))], [("Y", (1, 1, 6, 6))])
    with pytest.raises(CompileError, match="entirely in the padding"):
        compile_model(model)


def test_float_pool_is_exact_for_max(rng):
    model = make_model([helper.make_node("MaxPool", ["X"], ["Y"], kernel_shape=[3, 3], strides=[2, 2])],
                       [("X", (1, 2, 9, 9))], [("Y", None)])
    check_float_model(model, random_feeds(rng, {"X": (1, 2, 9, 9)}, 1)[0], rel=0.0)
