"""Up- and down-sampling: ConvTranspose and Resize/Upsample, float32 and int8, seeded
shapes and attributes, C against the NumPy references and the references against the oracles.

onnx.reference is wrong for grouped ConvTranspose (it slices the weights by output channel
and keeps one output channel per group), so ConvTranspose is checked against onnxruntime
(graph optimizations off) throughout.
"""

import re

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError

from conftest import check_float_model, check_int8_model, make_model, onnxruntime_oracle, random_feeds


def _deconv_case(seed: int):
    r = np.random.default_rng(seed)
    one_d = r.random() < 0.25
    depthwise = r.random() < 0.25
    groups = 1 if r.random() < 0.5 else 2
    cin = 3 if depthwise else groups * int(r.integers(1, 3))
    groups = cin if depthwise else groups
    cout = cin if depthwise else groups * int(r.integers(1, 3))
    rank = 1 if one_d else 2
    spatial = [int(r.integers(2, 6)) for _ in range(rank)]
    kernel = [int(r.integers(1, 5)) for _ in range(rank)]
    attrs = {"strides": [int(r.integers(1, 4)) for _ in range(rank)], "group": groups}
    if r.random() < 0.3:
        attrs["dilations"] = [int(r.integers(1, 3)) for _ in range(rank)]
    mode = r.choice(["pads", "pads", "output_shape", "SAME_UPPER", "SAME_LOWER", "VALID", "none"])
    limit = [max(s, d) for s, d in zip(attrs["strides"], attrs.get("dilations", [1] * rank))]
    if r.random() < 0.5:
        attrs["output_padding"] = [int(r.integers(0, m)) for m in limit]
    if mode == "pads":
        attrs["pads"] = [int(r.integers(0, 2)) for _ in range(2 * rank)]
    elif mode == "output_shape":
        attrs["output_shape"] = [s * st + int(r.integers(-1, 2)) for s, st in zip(spatial, attrs["strides"])]
    elif mode != "none":
        attrs["auto_pad"] = str(mode)
        if mode.startswith("SAME"):  # a window at least a stride wide: no negative total padding
            kernel = [max(k, s) for k, s in zip(kernel, attrs["strides"])]
    batch = 2 if r.random() < 0.2 else 1
    return (batch, cin, *spatial), (cin, cout // groups, *kernel), attrs, bool(r.random() < 0.7), \
        str(r.choice(["none", "relu", "relu6"]))


DECONV_CASES = [pytest.param(*_deconv_case(seed), id=f"case{seed}") for seed in range(16)]


def deconv_model(rng, x_shape, w_shape, attrs, bias, act):
    w = rng.standard_normal(w_shape) * rng.uniform(0.1, 1.0, (1, w_shape[1]) + (1,) * (len(w_shape) - 2))
    inits = {"W": w.astype(np.float32)}
    ins = ["X", "W"]
    if bias:
        inits["B"] = rng.standard_normal(w_shape[1] * attrs["group"]).astype(np.float32)
        ins.append("B")
    nodes = [helper.make_node("ConvTranspose", ins, ["C"], name="deconv", **attrs)]
    out = "C"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["C"], ["Y"]))
        out = "Y"
    elif act == "relu6":
        nodes.append(helper.make_node("Clip", ["C", "lo", "hi"], ["Y"]))
        inits.update(lo=np.array(0, np.float32), hi=np.array(6, np.float32))
        out = "Y"
    return make_model(nodes, [("X", x_shape)], [(out, None)], inits)


@pytest.mark.parametrize("x_shape,w_shape,attrs,bias,act", DECONV_CASES)
def test_conv_transpose(rng, x_shape, w_shape, attrs, bias, act):
    model = deconv_model(rng, x_shape, w_shape, attrs, bias, act)
    oracle = onnxruntime_oracle(model)
    feeds = random_feeds(rng, {"X": x_shape}, count=4)
    compiled = check_float_model(model, feeds[0], oracle=oracle)
    assert [n.op_type for n in compiled.graph.nodes] == ["ConvTranspose"]  # the activation fused
    # int8: input and weight rounding over at most in_channels / groups * taps terms
    check_int8_model(model, feeds, 2.0, oracle=oracle, in_steps=0.5 * np.abs(compiled.graph.const("W")).sum(axis=(0, *range(2, len(w_shape)))).max())


@pytest.mark.parametrize("attrs,message", [
    ({"strides": [3, 3], "auto_pad": "SAME_UPPER"}, "auto_pad SAME_UPPER with a negative total padding (-1)"),
    ({"strides": [2, 2], "output_padding": [2, 0]}, "output_padding 2 must be smaller than the stride"),
    ({"pads": [2, 0, 1, 0]}, "pads [2, 0, 1, 0] leave no output on spatial axis 0"),
])
def test_conv_transpose_refusals(rng, attrs, message):
    model = deconv_model(rng, (1, 2, 1, 3), (2, 2, 2, 2), {"group": 1, **attrs}, True, "none")
    with pytest.raises(CompileError, match=re.escape(message)) as e:
        compile_model(model, "net")
    assert "\n" not in str(e.value) and "ConvTranspose" in str(e.value)
