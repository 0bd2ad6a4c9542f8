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


# Hand-picked cases on top of the random ones: each attribute alone and the ceil_mode /
# count_include_pad corners. (op, x shape, attrs)
EXPLICIT = [
    # MaxPool 2-D
    pytest.param("MaxPool", (1, 2, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}, id="max-2x2-s2"),
    pytest.param("MaxPool", (1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2]}, id="max-floor"),
    pytest.param("MaxPool", (1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
                 id="max-ceil"),
    pytest.param("MaxPool", (1, 1, 6, 6), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1],
                                           "ceil_mode": 1}, id="max-ceil-drops-window-in-end-pad"),
    pytest.param("MaxPool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "pads": [1, 2, 2, 0]}, id="max-asym-pads"),
    pytest.param("MaxPool", (1, 2, 9, 9), {"kernel_shape": [2, 2], "dilations": [2, 2]}, id="max-dilated"),
    pytest.param("MaxPool", (1, 2, 9, 8), {"kernel_shape": [3, 2], "dilations": [2, 3], "strides": [2, 1],
                                           "pads": [1, 1, 1, 1], "ceil_mode": 1}, id="max-dilated-ceil-pads"),
    pytest.param("MaxPool", (1, 2, 7, 9), {"kernel_shape": [2, 3], "strides": [1, 2]}, id="max-rect"),
    pytest.param("MaxPool", (1, 1, 9, 9), {"kernel_shape": [2, 2], "strides": [3, 3]}, id="max-stride-gt-kernel"),
    pytest.param("MaxPool", (1, 3, 6, 6), {"kernel_shape": [6, 6]}, id="max-whole-input"),
    pytest.param("MaxPool", (2, 3, 6, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
                 id="max-batch2"),
    pytest.param("MaxPool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"},
                 id="max-valid"),
    pytest.param("MaxPool", (1, 2, 6, 7), {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
                 id="max-same-upper"),
    pytest.param("MaxPool", (1, 2, 6, 7), {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}, id="max-same-lower"),
    # AveragePool 2-D
    pytest.param("AveragePool", (1, 2, 7, 6), {"kernel_shape": [3, 3], "pads": [1, 0, 0, 2],
                                               "count_include_pad": 0}, id="avg-asym-pads-exclude"),
    pytest.param("AveragePool", (1, 2, 7, 6), {"kernel_shape": [3, 3], "pads": [1, 0, 0, 2],
                                               "count_include_pad": 1}, id="avg-asym-pads-include"),
    pytest.param("AveragePool", (1, 1, 6, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                               "count_include_pad": 1}, id="avg-ceil-past-input-include"),
    pytest.param("AveragePool", (1, 1, 6, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                               "count_include_pad": 0}, id="avg-ceil-past-input-exclude"),
    pytest.param("AveragePool", (1, 1, 6, 6), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1],
                                               "ceil_mode": 1, "count_include_pad": 1},
                 id="avg-ceil-drops-window-in-end-pad"),
    pytest.param("AveragePool", (1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 1, 1, 1],
                                               "ceil_mode": 1, "count_include_pad": 1}, id="avg-ceil-pads-include"),
    pytest.param("AveragePool", (1, 2, 9, 9), {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1],
                                               "count_include_pad": 1}, id="avg-dilated-include"),
    pytest.param("AveragePool", (1, 2, 9, 9), {"kernel_shape": [3, 2], "dilations": [2, 2], "ceil_mode": 1,
                                               "strides": [2, 2]}, id="avg-dilated-ceil"),
    pytest.param("AveragePool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"},
                 id="avg-valid"),
    pytest.param("AveragePool", (1, 2, 5, 6), {"kernel_shape": [3, 3], "strides": [2, 2],
                                               "auto_pad": "SAME_UPPER"}, id="avg-same-upper"),
    pytest.param("AveragePool", (1, 2, 5, 6), {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER",
                                               "count_include_pad": 1}, id="avg-same-lower-include"),
    pytest.param("AveragePool", (2, 3, 5, 5), {"kernel_shape": [2, 2]}, id="avg-batch2"),
    # 1-D
    pytest.param("MaxPool", (1, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 0], "ceil_mode": 1},
                 id="max-1d-ceil"),
    pytest.param("MaxPool", (1, 2, 12), {"kernel_shape": [3], "dilations": [3]}, id="max-1d-dilated"),
    pytest.param("MaxPool", (1, 2, 10), {"kernel_shape": [4], "strides": [3], "auto_pad": "SAME_UPPER"},
                 id="max-1d-same-upper"),
    pytest.param("AveragePool", (1, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [2, 1],
                                             "count_include_pad": 1, "ceil_mode": 1}, id="avg-1d-ceil-include"),
    pytest.param("AveragePool", (1, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [2, 1],
                                             "count_include_pad": 0}, id="avg-1d-exclude"),
    pytest.param("AveragePool", (1, 2, 9), {"kernel_shape": [2], "auto_pad": "SAME_LOWER"}, id="avg-1d-same-lower"),
    # global
    pytest.param("GlobalMaxPool", (2, 3, 5, 4), {}, id="global-max-batch2"),
    pytest.param("GlobalAveragePool", (1, 8, 1, 1), {}, id="global-avg-1x1"),
    pytest.param("GlobalAveragePool", (1, 2, 1, 7), {}, id="global-avg-row"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op,x_shape,attrs", EXPLICIT)
def test_pool_explicit(rng, mode, op, x_shape, attrs):
    model = make_model([helper.make_node(op, ["X"], ["Y"], **attrs)], [("X", x_shape)], [("Y", None)], opset=19)
    oracle = onnxruntime_oracle(model) if attrs.get("auto_pad", "").startswith("SAME") else None
    compiled = check_op(model, {"X": x_shape}, mode, rng, INT8_STEPS, oracle=oracle)
    kind = "maxpool" if "Max" in op else "avgpool"
    assert compiled.report["layers"][0]["kernels"] == [f"nn_{kind}_{'f32' if mode == 'float32' else 's8'}"]
    out_shape = compiled.graph.tensors[compiled.graph.outputs[0]].shape
    if op.startswith("Global"):
        assert out_shape == x_shape[:2] + (1,) * (len(x_shape) - 2)


def test_ceil_mode_output_sizes():
    """ONNX rule: ceil((in + pads - extent) / stride) + 1, minus a last window starting past the input."""
    from codegen.ops.conv import window_geometry

    assert window_geometry({"strides": [2]}, (8,), (3,), ceil_mode=True)["out"] == [4]
    assert window_geometry({"strides": [2]}, (8,), (3,))["out"] == [3]
    assert window_geometry({"strides": [2], "pads": [0, 1]}, (6,), (2,), ceil_mode=True)["out"] == [3]
    assert window_geometry({"strides": [3], "pads": [1, 1]}, (8,), (3,), ceil_mode=True)["out"] == [3]


def test_maxpool_window_in_padding_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("MaxPool", ["X"], ["Y"], kernel_shape=[2, 2], pads=[2, 2, 0, 0],
                                         name="mp")], [("X", (1, 1, 3, 3))], [("Y", (1, 1, 4, 4))])
    with pytest.raises(CompileError, match="MaxPool node 'mp': a window lies entirely in the padding"):
        compile_model(model)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pool", ["MaxPool", "GlobalAveragePool"])
def test_conv_batchnorm_relu_pool_chain(rng, mode, pool):
    """Conv -> BatchNormalization -> Relu -> pool: BN folds into the Conv, Relu fuses into it."""
    inits = {"W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "s": rng.uniform(0.5, 2, 4).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32),
             "m": rng.standard_normal(4).astype(np.float32), "v": rng.uniform(0.5, 2, 4).astype(np.float32)}
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]} if pool == "MaxPool" else {}
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["C", "s", "b", "m", "v"], ["B"]),
             helper.make_node("Relu", ["B"], ["R"]),
             helper.make_node(pool, ["R"], ["Y"], **attrs)]
    model = make_model(nodes, [("X", (1, 3, 8, 8))], [("Y", None)], inits)
    compiled = check_op(model, {"X": (1, 3, 8, 8)}, mode, rng, 4.0)
    assert [n.op_type for n in compiled.graph.nodes] == ["Conv", pool]


def test_same_padding_with_stride_beyond_the_window_is_rejected():
    """SAME's total padding is negative when the stride exceeds the window: onnx.reference crops
    the input and onnxruntime refuses the model, so the compiler refuses it too."""
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("MaxPool", ["X"], ["Y"], kernel_shape=[1, 1], strides=[1, 3],
                                         auto_pad="SAME_UPPER", name="mp")], [("X", (1, 1, 1, 5))], [("Y", None)])
    with pytest.raises(CompileError, match="MaxPool node 'mp': auto_pad SAME with a stride larger than the window"):
        compile_model(model)
