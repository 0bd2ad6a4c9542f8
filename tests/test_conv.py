"""Conv in float32 and int8: seeded random shapes and attributes, C against the references."""

import numpy as np
import pytest
from onnx import helper

from conftest import MODES, check_op, make_model

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
