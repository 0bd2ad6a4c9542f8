"""Up- and down-sampling: ConvTranspose and Resize/Upsample, float32 and int8, seeded
shapes and attributes, C against the NumPy references and the references against the oracles.

onnx.reference is wrong for grouped ConvTranspose (it slices the weights by output channel
and keeps one output channel per group) and for output_shape without pads, so ConvTranspose is
checked against onnxruntime (graph optimizations off), and so is the corrected onnx.reference
that verify runs (codegen/reference_corrections.py).
"""

import re

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.reference import run_int8
from codegen.verify import onnx_reference, verify, within_tolerance

from conftest import FIXTURES, check_fixture, check_float_model, check_int8_model, make_model, onnxruntime_oracle, random_feeds
from test_targets import need


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


def deconv_model(rng, cases):
    """One ConvTranspose per case (x shape, w shape, attributes, bias, activation), each on its
    own input X<i> giving Y<i>."""
    nodes, inits, inputs, outputs = [], {}, [], []
    for i, (x_shape, w_shape, attrs, bias, act) in enumerate(cases):
        w = rng.standard_normal(w_shape) * rng.uniform(0.1, 1.0, (1, w_shape[1]) + (1,) * (len(w_shape) - 2))
        inits[f"W{i}"] = w.astype(np.float32)
        ins = [f"X{i}", f"W{i}"]
        if bias:
            inits[f"B{i}"] = rng.standard_normal(w_shape[1] * attrs["group"]).astype(np.float32)
            ins.append(f"B{i}")
        out = f"Y{i}" if act == "none" else f"C{i}"
        nodes.append(helper.make_node("ConvTranspose", ins, [out], name=f"deconv{i}", **attrs))
        if act == "relu":
            nodes.append(helper.make_node("Relu", [out], [f"Y{i}"]))
        elif act == "relu6":
            nodes.append(helper.make_node("Clip", [out, "lo", "hi"], [f"Y{i}"]))
            inits.update(lo=np.array(0, np.float32), hi=np.array(6, np.float32))
        inputs.append((f"X{i}", x_shape))
        outputs.append((f"Y{i}", None))
    return make_model(nodes, inputs, outputs, inits)


# 16 seeded cases, four to a model
DECONV_GROUPS = {f"cases{g * 4}-{g * 4 + 3}": [_deconv_case(seed) for seed in range(g * 4, g * 4 + 4)]
                 for g in range(4)}


@pytest.mark.parametrize("group", sorted(DECONV_GROUPS))
def test_conv_transpose(rng, group):
    cases = DECONV_GROUPS[group]
    model = deconv_model(rng, cases)
    oracle = onnxruntime_oracle(model)
    feeds = random_feeds(rng, {f"X{i}": c[0] for i, c in enumerate(cases)}, count=4)
    compiled = check_float_model(model, feeds[0], oracle=oracle)
    assert [n.op_type for n in compiled.graph.nodes] == ["ConvTranspose"] * len(cases)  # activations fused
    # the corrected onnx.reference that verify runs agrees with onnxruntime
    for corrected, want in zip(onnx_reference(model).run(None, feeds[0]), oracle.run(None, feeds[0])):
        np.testing.assert_allclose(corrected, want, rtol=1e-4, atol=1e-5)
    # int8: input and weight rounding over at most in_channels / groups * taps terms
    in_steps = max(np.abs(compiled.graph.const(f"W{i}")).sum(axis=(0, *range(2, len(c[1])))).max()
                   for i, c in enumerate(cases))
    check_int8_model(model, feeds, 2.0, oracle=oracle, in_steps=0.5 * in_steps)


@pytest.mark.parametrize("attrs,message", [
    ({"strides": [3, 3], "auto_pad": "SAME_UPPER"}, "auto_pad SAME_UPPER with a negative total padding (-1)"),
    ({"strides": [2, 2], "output_padding": [2, 0]}, "output_padding 2 must be smaller than the stride"),
    ({"pads": [2, 0, 1, 0]}, "pads [2, 0, 1, 0] leave no output on spatial axis 0"),
])
def test_conv_transpose_refusals(rng, attrs, message):
    model = deconv_model(rng, [((1, 2, 1, 3), (2, 2, 2, 2), {"group": 1, **attrs}, True, "none")])
    with pytest.raises(CompileError, match=re.escape(message)) as e:
        compile_model(model, "net")
    assert "\n" not in str(e.value) and "ConvTranspose" in str(e.value)


def resize_model(op, opset, cases):
    """One Resize (roi empty) or Upsample per case, each on its own input X<i> giving Y<i>,
    with constant scales or sizes; Upsample-7 takes its scales as an attribute.
    cases: list of (shape, attributes, scales, sizes)."""
    nodes, inits, inputs, outputs = [], {}, [], []
    for i, (shape, attrs, scales, sizes) in enumerate(cases):
        x, y, s, z = f"X{i}", f"Y{i}", f"s{i}", f"z{i}"
        ins = [x]
        if op == "Upsample" and opset < 9:
            attrs = {**attrs, "scales": [float(v) for v in scales]}
        elif op == "Upsample" or opset < 11:
            inits[s] = np.array(scales, np.float32)
            ins.append(s)
        else:  # opset 11 requires roi and scales (empty when unused)
            if opset == 11:
                inits.update({f"r{i}": np.zeros(0, np.float32),
                              s: np.array(scales if scales is not None else [], np.float32)})
            elif scales is not None:
                inits[s] = np.array(scales, np.float32)
            ins += [f"r{i}" if opset == 11 else "", s if s in inits else ""]
            if sizes is not None:
                inits[z] = np.array(sizes, np.int64)
                ins.append(z)
        nodes.append(helper.make_node(op, ins, [y], **attrs))
        inputs.append((x, shape))
        outputs.append((y, None))
    return make_model(nodes, inputs, outputs, inits, opset=opset)


def _n(coord, nearest):
    return {"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nearest}


def _l(coord):
    return {"mode": "linear", "coordinate_transformation_mode": coord}


# (op, opset, input shape, attributes, scales, sizes, oracle): "ref" is onnx.reference, "ort" onnxruntime
# where onnx.reference is wrong: it has no tf_half_pixel_for_nn, no Resize-10, Upsample only
# for integer nearest scales, and no negative axes. (onnxruntime, for its part, takes the
# rounded output length in align_corners and pytorch_half_pixel, against the spec.)
RESIZE_CASES = {
    "nearest-half_pixel-prefer_floor": ("Resize", 13, (1, 2, 3, 4), _n("half_pixel", "round_prefer_floor"),
                                        [1, 1, 2, 2], None, "ref"),
    "nearest-half_pixel-prefer_ceil-sizes": ("Resize", 11, (1, 3, 4, 3), _n("half_pixel", "round_prefer_ceil"),
                                             None, [1, 3, 7, 5], "ref"),
    "nearest-asymmetric-floor": ("Resize", 13, (2, 2, 3, 3), _n("asymmetric", "floor"), [1, 1, 2, 3], None, "ref"),
    "nearest-asymmetric-ceil-down-1d": ("Resize", 19, (1, 2, 9), _n("asymmetric", "ceil"), [1, 1, 0.5], None, "ref"),
    "nearest-align_corners-sizes": ("Resize", 18, (1, 2, 3, 4), _n("align_corners", "round_prefer_floor"),
                                    None, [1, 2, 5, 7], "ref"),
    "nearest-pytorch_half_pixel-prefer_ceil": ("Resize", 13, (1, 2, 5, 4), _n("pytorch_half_pixel",
                                               "round_prefer_ceil"), None, [1, 2, 3, 9], "ref"),
    "nearest-pytorch_half_pixel-scales": ("Resize", 13, (1, 2, 4, 3), _n("pytorch_half_pixel", "floor"),
                                          [1, 1, 1.7, 0.34], None, "ref"),
    "nearest-tf_half_pixel_for_nn": ("Resize", 13, (1, 2, 4, 4), _n("tf_half_pixel_for_nn", "round_prefer_floor"),
                                     [1, 1, 1.5, 2], None, "ort"),
    "nearest-half_pixel_symmetric": ("Resize", 19, (1, 2, 5, 3), _n("half_pixel_symmetric", "floor"),
                                     [1, 1, 1.5, 2.5], None, "ref"),
    "nearest-axes": ("Resize", 18, (1, 2, 4, 6), {**_n("half_pixel", "round_prefer_floor"), "axes": [3, 2]},
                     [0.5, 2], None, "ref"),
    "nearest-negative-axes": ("Resize", 18, (1, 2, 4, 6), {**_n("half_pixel", "ceil"),
                              "axes": [-1, -2]}, None, [3, 7], "ort"),
    "nearest-rank1": ("Resize", 13, (5,), _n("asymmetric", "round_prefer_ceil"), None, [12], "ref"),
    "nearest-channels": ("Resize", 13, (1, 2, 3, 3), _n("asymmetric", "floor"), [1, 2, 1, 2], None, "ref"),
    "linear-half_pixel": ("Resize", 13, (1, 2, 3, 4), _l("half_pixel"), [1, 1, 2, 2], None, "ref"),
    "linear-pytorch_half_pixel-sizes": ("Resize", 13, (1, 3, 4, 5), _l("pytorch_half_pixel"), None, [1, 3, 7, 3],
                                        "ref"),
    "linear-align_corners-sizes": ("Resize", 11, (2, 2, 3, 3), _l("align_corners"), None, [2, 2, 8, 5], "ref"),
    "linear-align_corners-scales": ("Resize", 18, (1, 2, 3, 5), _l("align_corners"), [1, 1, 1.7, 2.5], None, "ref"),
    "linear-asymmetric": ("Resize", 19, (1, 2, 3, 4), _l("asymmetric"), [1, 1, 1.5, 0.5], None, "ref"),
    "linear-1d": ("Resize", 13, (1, 3, 6), _l("half_pixel"), [1, 1, 2.5], None, "ref"),
    "linear-axes-1d": ("Resize", 18, (2, 5), {**_l("pytorch_half_pixel"), "axes": [1]}, None, [8], "ref"),
    "resize10-nearest-down": ("Resize", 10, (1, 2, 4, 5), {"mode": "nearest"}, [1, 1, 0.75, 0.6], None, "ort"),
    "resize10-nearest-up": ("Resize", 10, (1, 2, 3, 5), {"mode": "nearest"}, [1, 1, 1.7, 2], None, "ort"),
    "resize10-linear": ("Resize", 10, (1, 2, 3, 5), {"mode": "linear"}, [1, 1, 2, 0.6], None, "ort"),
    "upsample9-nearest": ("Upsample", 9, (1, 2, 3, 3), {"mode": "nearest"}, [1, 1, 2, 3], None, "ref"),
    "upsample9-linear": ("Upsample", 9, (1, 2, 3, 4), {"mode": "linear"}, [1, 1, 2, 1.5], None, "ort"),
    "upsample7-nearest": ("Upsample", 7, (1, 2, 3, 2), {"mode": "nearest"}, [1, 1, 2.5, 2], None, "ort"),
}


def _resize_groups() -> dict:
    """The cases that share an operator, an opset and an oracle run as one model."""
    groups: dict = {}
    for name in sorted(RESIZE_CASES):
        op, opset, shape, attrs, scales, sizes, oracle = RESIZE_CASES[name]
        groups.setdefault(f"{op}{opset}-{oracle}", (op, opset, oracle, []))[3].append((shape, attrs, scales, sizes))
    return groups


RESIZE_GROUPS = _resize_groups()


@pytest.mark.parametrize("group", sorted(RESIZE_GROUPS))
def test_resize(rng, group):
    op, opset, oracle, cases = RESIZE_GROUPS[group]
    model = resize_model(op, opset, cases)
    oracle = onnxruntime_oracle(model) if oracle == "ort" else None
    feeds = random_feeds(rng, {f"X{i}": c[0] for i, c in enumerate(cases)}, count=4)
    check_float_model(model, feeds[0], oracle=oracle)
    # int8 keeps the input's scale and zero point: nearest copies (the input's own rounding),
    # linear adds its output rounding and the Q11 weights' (at most a quarter step)
    linear = any(c[1]["mode"] == "linear" for c in cases)
    compiled = check_int8_model(model, feeds, 0.75 if linear else 0.0, oracle=oracle, in_steps=0.5)
    graph = compiled.graph
    for i, (_, attrs, _, _) in enumerate(cases):
        assert graph.tensors[f"Y{i}"].quant == graph.tensors[f"X{i}"].quant
        kernel = "nn_resize_linear_s8" if attrs["mode"] == "linear" else "nn_resize_nearest"
        assert compiled.report["layers"][i]["kernels"] == [kernel]


@pytest.mark.parametrize("attrs,scales,sizes,message", [
    ({"mode": "cubic"}, [1, 1, 2, 2], None, "mode 'cubic' is not supported"),
    ({"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.5], None, "antialias is not supported"),
    ({"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize"}, [1, 1, 2, 2], None,
     "'tf_crop_and_resize' is not supported"),
    ({"mode": "nearest", "exclude_outside": 1}, [1, 1, 2, 2], None, "exclude_outside is not supported"),
    ({"mode": "nearest", "keep_aspect_ratio_policy": "not_larger"}, None, [1, 2, 6, 6],
     "keep_aspect_ratio_policy 'not_larger' is not supported"),
    ({"mode": "linear"}, [1, 2, 2, 2], None, "linear resize of an axis other than the last two"),
    ({"mode": "nearest"}, [1, 1, 0.2, 1], None, "output length 0 on axis 2"),
])
def test_resize_refusals(attrs, scales, sizes, message):
    model = resize_model("Resize", 19, [((1, 2, 4, 4), attrs, scales, sizes)])
    with pytest.raises(CompileError, match=re.escape(message)) as e:
        compile_model(model, "net")
    assert "\n" not in str(e.value) and "Resize" in str(e.value)


def test_resize_runtime_scales_refused():
    model = make_model([helper.make_node("Resize", ["X", "", "S"], ["Y"], mode="nearest")],
                       [("X", (1, 2, 4, 4)), ("S", (4,))], [("Y", (1, 2, 8, 8))])
    with pytest.raises(CompileError, match="scales must be a constant"):
        compile_model(model, "net")


def test_resize10_enlarging_and_shrinking_refused():
    model = resize_model("Resize", 10, [((1, 2, 4, 5), {"mode": "nearest"}, [1, 1, 1.5, 0.6], None)])
    with pytest.raises(CompileError, match="Resize node 'Y0' of opset 10 enlarges and shrinks at once"):
        compile_model(model, "net")


def sampling_chain(rng, head: bool = False):
    """Every int8 kernel of the family in one model: a grouped, dilated ConvTranspose with a
    fused Relu, a depthwise one, nearest and bilinear Resize (with `head`, then a 1x1 Conv, which
    the sanitizer runs' sparse and DSP modes need)."""
    w = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    nodes = [
        helper.make_node("ConvTranspose", ["X", "W1", "B1"], ["a"], group=2, strides=[2, 2], dilations=[1, 2],
                         pads=[1, 0, 0, 1], output_padding=[1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("ConvTranspose", ["r", "W2"], ["d"], group=6, strides=[1, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["d", "", "s1"], ["n"], mode="nearest", coordinate_transformation_mode="asymmetric",
                         nearest_mode="floor"),
        helper.make_node("Resize", ["n", "", "", "z"], ["Y"], mode="linear",
                         coordinate_transformation_mode="pytorch_half_pixel"),
    ]
    inits = {"W1": w(4, 3, 3, 2), "B1": w(6), "W2": w(6, 1, 3, 3), "s1": np.array([1, 1, 2, 1], np.float32),
             "z": np.array([1, 6, 11, 13], np.int64)}
    if head:
        nodes[-1].output[0] = "u"
        nodes.append(helper.make_node("Conv", ["u", "W3"], ["Y"]))
        inits["W3"] = w(8, 6, 1, 1)
    return make_model(nodes, [("X", (1, 4, 3, 4))], [("Y", None)], inits, opset=13)


def sampling_model():
    """The chain and its calibration samples, for the sanitizer runs (test_sanitizers.py)."""
    rng = np.random.default_rng(19)
    return sampling_chain(rng, head=True), random_feeds(rng, {"X": (1, 4, 3, 4)}, count=8)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_int8_kernels_on_cortex_m(target):
    """The int8 ConvTranspose and Resize kernels give the host's bytes on the emulated cores
    (one firmware per core runs every sample)."""
    need(target)
    rng = np.random.default_rng(13)
    model = sampling_chain(rng)
    feeds = random_feeds(rng, {"X": (1, 4, 3, 4)}, count=4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    kernels = [k for layer in compiled.report["layers"] for k in layer["kernels"]]
    assert kernels == ["nn_conv_transpose_s8", "nn_conv_transpose_s8", "nn_resize_nearest", "nn_resize_linear_s8"]
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    for got, s in zip(cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target), q):
        want = host.run([s[n] for n in compiled.graph.inputs])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[0], run_int8(compiled.graph, s)["Y"])


def test_float_kernels_on_cortex_m4():
    need("cortex-m4")
    rng = np.random.default_rng(17)
    compiled = compile_model(sampling_chain(rng), "net")
    feeds = random_feeds(rng, {"X": (1, 4, 3, 4)}, count=2)
    assert verify(compiled, feeds, target="cortex-m4")["target_equal"]


FIXTURE_NAMES = ["torch_conv_autoencoder", "torch_dynamo_conv_autoencoder", "torch_unet", "torch_dynamo_unet"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_end_to_end(name):
    """The torch fixtures (tests/fixtures/make_sampling.py): float32 within 1e-4 relative of
    onnxruntime on every sample; int8 bit-exact with its reference, SQNR against float printed."""
    compiled, result = check_fixture(FIXTURES / f"{name}.onnx", FIXTURES / f"{name}.npz")
    ops = {n.op_type for n in compiled.graph.nodes}
    assert ({"ConvTranspose"} if "autoencoder" in name else {"Resize"}) <= ops
    print(f"{name}: int8 SQNR {result['sqnr_db']:.1f} dB over {result['samples']} samples")
    assert result["bit_exact"] and result["sqnr_db"] > 30


def test_batchnorm_folds_into_conv_transpose(rng):
    """A BatchNormalization after a grouped ConvTranspose scales its output channels (axis 1
    of each group's weights) and its bias: one layer, the same outputs."""
    cases = [((1, 4, 3, 3), (4, 3, 2, 2), {"strides": [2, 2], "group": 2}, True, "relu")]
    model = deconv_model(rng, cases)
    graph = model.graph
    bn_inits = {"g": rng.uniform(0.5, 1.5, 6), "be": rng.standard_normal(6), "mu": rng.standard_normal(6) * 0.3,
                "var": rng.uniform(0.5, 1.5, 6)}
    graph.initializer.extend(onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in bn_inits.items())
    graph.node[0].output[0] = "pre"
    graph.node.insert(1, helper.make_node("BatchNormalization", ["pre", "g", "be", "mu", "var"], ["C0"]))
    feeds = random_feeds(rng, {"X0": (1, 4, 3, 3)}, count=4)
    compiled = check_float_model(model, feeds[0], oracle=onnxruntime_oracle(model))
    assert [n.op_type for n in compiled.graph.nodes] == ["ConvTranspose"]
    check_int8_model(model, feeds, 2.0, oracle=onnxruntime_oracle(model), in_steps=4.0)


def _random_resize(seed: int):
    r = np.random.default_rng(seed)
    rank = int(r.integers(3, 5))
    shape = (1, 2) + tuple(int(r.integers(1, 7)) for _ in range(rank - 2))
    mode = str(r.choice(["nearest", "linear"]))
    coords = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]
    attrs = {"mode": mode, "coordinate_transformation_mode": str(r.choice(coords))}
    if mode == "nearest":
        attrs["nearest_mode"] = str(r.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]))
    if r.random() < 0.5:  # scales whose products with the lengths keep at least one output
        scales = [1.0, 1.0] + [float(r.choice([0.5, 0.75, 1.5, 1.7, 2.0, 2.5, 3.0])) for _ in range(rank - 2)]
        scales = [max(s, 1.0 / d) for s, d in zip(scales, shape)]
        return shape, attrs, scales, None
    return shape, attrs, None, list(shape[:2]) + [int(r.integers(1, 12)) for _ in range(rank - 2)]


def test_resize_coordinates_sweep():
    """The NumPy reference (the C's tables) against onnx.reference on 150 seeded configurations:
    every mode, coordinate transformation and nearest_mode, up and down, scales and sizes."""
    from codegen.frontend import import_model
    from codegen.reference import run_float
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(29)
    for seed in range(150):
        shape, attrs, scales, sizes = _random_resize(seed)
        model = resize_model("Resize", 19, [(shape, attrs, scales, sizes)])
        x = rng.standard_normal(shape).astype(np.float32)
        got = run_float(import_model(model), {"X0": x})["Y0"]
        want = ReferenceEvaluator(model).run(None, {"X0": x})[0]
        assert got.shape == want.shape and within_tolerance(got, want), (shape, attrs, scales, sizes)


def test_conv_transpose_sweep():
    """The NumPy reference (the kernels' sums) against onnxruntime and the corrected
    onnx.reference on 80 more seeded configurations, no C build."""
    from codegen.frontend import import_model
    from codegen.reference import run_float

    rng = np.random.default_rng(31)
    checked = 0
    for seed in range(100, 180):
        case = _deconv_case(seed)
        model = deconv_model(rng, [case])
        x = rng.standard_normal(case[0]).astype(np.float32)
        # an output_padding not below the stride (the spec and torch allow one below the
        # dilation) has no oracle: onnxruntime refuses it, onnx.reference fails on it
        if any(p >= s for p, s in zip(case[2].get("output_padding", []), case[2]["strides"])):
            continue
        try:
            import_model(model)
        except CompileError as e:  # an output_shape a stride beyond the natural size, or no output
            assert "exceeds the natural size" in str(e) or "leave no output" in str(e)
            continue
        got = run_float(import_model(model), {"X0": x})["Y0"]
        for oracle in (onnxruntime_oracle(model), onnx_reference(model)):
            want = oracle.run(None, {"X0": x})[0]
            assert got.shape == want.shape and within_tolerance(got, want), (seed, case)
        checked += 1
    assert checked >= 60
