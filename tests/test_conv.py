"""Conv in float32 and int8: seeded random shapes and attributes, C against the references."""

import numpy as np
import pytest
from onnx import helper

from codegen.passes import plan_memory
from conftest import MODES, check_int8_model, check_op, make_model

# int8 bound, in output steps: input and weight rounding accumulate over the window
INT8_STEPS = 4.0


def _random_case(seed: int):
    r = np.random.default_rng(seed)
    one_d = r.random() < 0.25
    groups = int(r.choice([1, 1, 2, 4]))
    depthwise = r.random() < 0.3
    cin = 4 if depthwise else groups * int(r.integers(1, 4))
    groups = cin if depthwise else groups
    cout = cin if depthwise else groups * int(r.integers(1, 4))
    spatial = [int(r.integers(5, 10))] if one_d else [int(r.integers(4, 10)), int(r.integers(4, 10))]
    kernel = [int(r.integers(1, 4)) for _ in spatial]
    attrs = {"strides": [int(r.integers(1, 3)) for _ in spatial], "group": groups}
    if r.random() < 0.3:
        attrs["dilations"] = [int(r.integers(1, 3)) for _ in spatial]
    pad_mode = r.choice(["pads", "pads", "SAME_UPPER", "SAME_LOWER", "VALID", "none"])
    if pad_mode == "pads":
        attrs["pads"] = [int(r.integers(0, 3)) for _ in range(2 * len(spatial))]
    elif pad_mode != "none":
        attrs["auto_pad"] = str(pad_mode)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, attrs.get("dilations", [1] * len(spatial)))]
    spatial = [max(s, e) for s, e in zip(spatial, extent)]
    batch = 2 if r.random() < 0.15 else 1
    return (batch, cin, *spatial), (cout, cin // groups, *kernel), attrs, bool(r.random() < 0.8), \
        str(r.choice(["none", "relu", "relu6"]))


CASES = [pytest.param(*_random_case(seed), id=f"case{seed}") for seed in range(40)]


def conv_model(rng, x_shape, w_shape, attrs, bias, act):
    # per-channel weight magnitudes differ, so per-channel scales matter
    w = (rng.standard_normal(w_shape) * rng.uniform(0.05, 1.0, (w_shape[0],) + (1,) * (len(w_shape) - 1)))
    inits = {"W": w.astype(np.float32)}
    ins = ["X", "W"]
    if bias:
        inits["B"] = rng.standard_normal(w_shape[0]).astype(np.float32)
        ins.append("B")
    nodes = [helper.make_node("Conv", ins, ["C"], name="conv", **attrs)]
    out = "C"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["C"], ["Y"]))
        out = "Y"
    elif act == "relu6":
        nodes.append(helper.make_node("Clip", ["C", "lo", "hi"], ["Y"]))
        inits.update(lo=np.array(0, np.float32), hi=np.array(6, np.float32))
        out = "Y"
    return make_model(nodes, [("X", x_shape)], [(out, None)], inits)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("x_shape,w_shape,attrs,bias,act", CASES)
def test_conv(rng, mode, x_shape, w_shape, attrs, bias, act):
    model = conv_model(rng, x_shape, w_shape, attrs, bias, act)
    compiled = check_op(model, {"X": x_shape}, mode, rng, INT8_STEPS)
    assert [n.op_type for n in compiled.graph.nodes] == ["Conv"]  # the activation is fused


def test_conv_batchnorm_relu_folds(rng):
    inits = {"W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "s": rng.uniform(0.5, 2, 4).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32),
             "m": rng.standard_normal(4).astype(np.float32), "v": rng.uniform(0.5, 2, 4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["C", "s", "b", "m", "v"], ["B"]),
             helper.make_node("Relu", ["B"], ["Y"])]
    model = make_model(nodes, [("X", (1, 3, 6, 6))], [("Y", None)], inits)
    for mode in MODES:
        compiled = check_op(model, {"X": (1, 3, 6, 6)}, mode, rng, INT8_STEPS)
        assert [n.op_type for n in compiled.graph.nodes] == ["Conv"]


def test_conv_with_runtime_weights_is_rejected():
    from codegen.compiler import compile_model
    from codegen.errors import CompileError

    model = make_model([helper.make_node("Conv", ["X", "W"], ["Y"], name="dyn")],
                       [("X", (1, 2, 4, 4)), ("W", (3, 2, 1, 1))], [("Y", (1, 3, 4, 4))])
    with pytest.raises(CompileError, match="Conv node 'dyn': weights W must be a constant"):
        compile_model(model)


# Hand-picked float cases on top of the random ones: every attribute on its own and in the
# combinations the random draw may miss. (x shape, w shape, attrs, bias)
EXPLICIT = [
    # 1-D
    pytest.param((1, 3, 10), (4, 3, 3), {}, True, id="1d-basic"),
    pytest.param((1, 2, 11), (3, 2, 3), {"strides": [2], "pads": [1, 2]}, False, id="1d-stride-asym-pads"),
    pytest.param((1, 4, 9), (4, 1, 3), {"group": 4, "pads": [1, 1]}, True, id="1d-depthwise"),
    pytest.param((1, 2, 8), (2, 2, 3), {"auto_pad": "SAME_UPPER", "strides": [2]}, True, id="1d-same-upper"),
    pytest.param((1, 2, 8), (2, 2, 4), {"auto_pad": "SAME_LOWER"}, False, id="1d-same-lower"),
    pytest.param((1, 2, 8), (2, 2, 3), {"auto_pad": "VALID", "dilations": [2]}, True, id="1d-valid-dilated"),
    pytest.param((2, 3, 12), (6, 1, 3), {"group": 3, "dilations": [3], "strides": [2]}, True,
                 id="1d-batch2-multiplier2"),
    pytest.param((1, 1, 16), (1, 1, 5), {"pads": [4, 0]}, False, id="1d-causal"),
    # 2-D padding
    pytest.param((1, 3, 6, 6), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True, id="2d-pad1"),
    pytest.param((1, 2, 7, 8), (3, 2, 3, 3), {"strides": [2, 2], "pads": [0, 1, 2, 0]}, True,
                 id="2d-stride2-asym-pads"),
    pytest.param((1, 2, 6, 5), (2, 2, 2, 3), {"pads": [2, 0, 0, 2]}, False, id="2d-asym-pads-2"),
    pytest.param((1, 2, 8, 8), (3, 2, 4, 4), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, True,
                 id="2d-same-upper-s2"),
    pytest.param((1, 2, 8, 8), (3, 2, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, True,
                 id="2d-same-lower-s2"),
    pytest.param((1, 2, 5, 7), (2, 2, 2, 2), {"auto_pad": "SAME_UPPER"}, False, id="2d-same-upper-even-kernel"),
    pytest.param((1, 2, 5, 7), (2, 2, 2, 2), {"auto_pad": "SAME_LOWER"}, False, id="2d-same-lower-even-kernel"),
    pytest.param((1, 2, 9, 7), (3, 2, 3, 2), {"auto_pad": "VALID", "strides": [2, 3]}, True, id="2d-valid"),
    pytest.param((1, 2, 6, 6), (2, 2, 3, 3), {"auto_pad": "NOTSET", "pads": [1, 0, 1, 0]}, True, id="2d-notset"),
    pytest.param((1, 1, 3, 3), (2, 1, 5, 5), {"pads": [2, 2, 2, 2]}, True, id="2d-kernel-wider-than-input"),
    # 2-D dilation, stride, shapes
    pytest.param((1, 2, 9, 9), (2, 2, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, True, id="2d-dilated"),
    pytest.param((1, 2, 8, 10), (3, 2, 2, 3), {"dilations": [1, 3], "strides": [2, 1]}, False,
                 id="2d-dilated-strided"),
    pytest.param((1, 4, 5, 5), (6, 4, 1, 1), {}, True, id="2d-pointwise"),
    pytest.param((1, 3, 4, 9), (2, 3, 1, 5), {"pads": [0, 2, 0, 2]}, True, id="2d-1xk"),
    pytest.param((1, 2, 6, 6), (2, 2, 3, 3), {"kernel_shape": [3, 3], "strides": [3, 3]}, True,
                 id="2d-kernel-shape-attr"),
    pytest.param((1, 1, 5, 5), (1, 1, 3, 3), {}, True, id="2d-single-channel"),
    # groups and depthwise
    pytest.param((1, 4, 6, 6), (4, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, True, id="2d-group2"),
    pytest.param((1, 8, 5, 5), (8, 2, 3, 3), {"group": 4, "strides": [2, 2]}, False, id="2d-group4"),
    pytest.param((1, 6, 6, 6), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}, True, id="2d-depthwise"),
    pytest.param((1, 4, 7, 7), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "auto_pad": "SAME_UPPER"}, False,
                 id="2d-depthwise-s2-same"),
    pytest.param((1, 3, 8, 8), (3, 1, 3, 3), {"group": 3, "dilations": [2, 2], "pads": [2, 1, 0, 2]}, True,
                 id="2d-depthwise-dilated-asym"),
    pytest.param((1, 3, 6, 6), (6, 1, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]}, True, id="2d-depthwise-mult2"),
    pytest.param((1, 4, 6, 5), (4, 1, 5, 5), {"group": 4, "auto_pad": "SAME_LOWER"}, True,
                 id="2d-depthwise-5x5-same-lower"),
    # batch 2
    pytest.param((2, 3, 5, 5), (4, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, True, id="2d-batch2"),
    pytest.param((2, 4, 6, 6), (4, 2, 3, 3), {"group": 2}, False, id="2d-batch2-grouped"),
    pytest.param((2, 5, 4, 4), (5, 1, 3, 3), {"group": 5, "pads": [1, 1, 1, 1]}, True, id="2d-batch2-depthwise"),
]


@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("x_shape,w_shape,attrs,bias", EXPLICIT)
def test_conv_explicit(rng, x_shape, w_shape, attrs, bias, act):
    model = conv_model(rng, x_shape, w_shape, attrs, bias, act)
    compiled = check_op(model, {"X": x_shape}, "float32", rng)
    assert [n.op_type for n in compiled.graph.nodes] == ["Conv"]  # the activation is fused
    groups = attrs.get("group", 1)
    depthwise = groups == x_shape[1] == w_shape[0]
    assert compiled.report["layers"][0]["kernels"] == ["nn_conv_dw_f32" if depthwise else "nn_conv_f32"]


def test_conv_macs(rng):
    from codegen.compiler import compile_model

    model = conv_model(rng, (2, 4, 8, 8), (6, 2, 3, 3), {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]},
                       True, "none")
    compiled = compile_model(model, "net")
    node = compiled.graph.nodes[0]
    from codegen.ops.base import get_op

    assert get_op("Conv").macs(node, compiled.graph) == 2 * 6 * 4 * 4 * 2 * 3 * 3


def conv_chain_model(rng, x_shape):
    """3x3 conv (K = 27: a tail of 3 after groups of four), Relu, depthwise 3x3, 1x1 with as
    many outputs as inputs, 1x1 to an odd channel count: the int8 depthwise and first 1x1 run
    in place in the arena."""
    c = x_shape[1]
    w = lambda *s: (rng.standard_normal(s) * rng.uniform(0.2, 1.0, (s[0],) + (1,) * (len(s) - 1))).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Conv", ["X", "W1", "B1"], ["A"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["A"], ["R"]),
             helper.make_node("Conv", ["R", "W2", "B2"], ["D"], group=6, pads=[1, 1, 1, 1], name="dw"),
             helper.make_node("Conv", ["D", "W3"], ["P"], name="pw"),
             helper.make_node("Conv", ["P", "W4", "B4"], ["Y"], name="out")]
    inits = {"W1": w(6, c, 3, 3), "B1": w(6), "W2": w(6, 1, 3, 3), "B2": w(6), "W3": w(6, 6, 1, 1), "W4": w(5, 6, 1, 1),
             "B4": w(5)}
    return make_model(nodes, [("X", x_shape)], [("Y", None)], inits)


@pytest.mark.parametrize("x_shape", [(1, 3, 7, 5), (2, 2, 4, 4), (1, 1, 1, 3)])
def test_int8_depthwise_and_pointwise_run_in_place(rng, x_shape):
    model = conv_chain_model(rng, x_shape)
    calib = [{"X": rng.standard_normal(x_shape).astype(np.float32)} for _ in range(6)]
    compiled = check_int8_model(model, calib, steps=12.0)
    loc = compiled.plan.locations
    assert loc["R"] == loc["D"] == loc["P"] and loc["R"].region == "arena"  # depthwise and 1x1 in place
    # a plane for the depthwise, a column for the 1x1 in place; the other convs read directly
    assert set(compiled.plan.scratch) == {1, 2}
    assert compiled.plan.arena_bytes <= compiled.plan.arena_lower_bound + 8
    dsp = plan_memory.run(compiled.graph, ("dsp",))  # the DSP conv kernel takes two columns
    assert set(dsp.scratch) == {0, 1, 2, 3} and dsp.arena_bytes > compiled.plan.arena_bytes


def test_int8_depthwise_with_windows_wholly_in_left_padding(rng):
    """in_w 1, stride 5, pad_left 2: no input column is copied into the padded plane."""
    x_shape = (1, 2, 3, 1)
    nodes = [helper.make_node("Conv", ["X", "W"], ["Y"], group=2, strides=[1, 5], pads=[1, 2, 1, 2])]
    model = make_model(nodes, [("X", x_shape)], [("Y", None)], {"W": rng.standard_normal((2, 1, 3, 3)).astype(np.float32)})
    calib = [{"X": rng.standard_normal(x_shape).astype(np.float32)} for _ in range(4)]
    check_int8_model(model, calib, steps=4.0)
