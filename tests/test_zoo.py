"""The classic model-zoo networks that the onnx package ships (onnx/backend/test/data/light:
AlexNet, DenseNet-121, Inception v1 and v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19,
ZFNet-512; opset 9, weights from ConstantOfShape), and the frontend rules they need: opset-9
models upgraded and their constants folded at the model's opset, a Dropout's unread mask
dropped. `python -m benchmarks.zoo` compiles and verifies the big ones."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from conftest import check_float_model, check_int8_model, make_model, random_feeds

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def test_opset9_unsqueeze_of_constants_folds(rng):
    """The version converter writes opset-11 Unsqueeze with its `axes` attribute: folding a
    constant one evaluates it at the model's opset (a lone node would run at the newest, where
    axes is an input). DenseNet-121 and Inception v2 unsqueeze their batch-norm parameters so."""
    scale = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    nodes = [helper.make_node("Unsqueeze", ["s"], ["u"], axes=[1, 2]),
             helper.make_node("Unsqueeze", ["b"], ["v"], axes=[0]),
             helper.make_node("Mul", ["X", "u"], ["m"]), helper.make_node("Add", ["m", "v"], ["Y"])]
    model = make_model(nodes, [("X", (1, 4, 3, 5))], [("Y", None)], {"s": scale, "b": rng.standard_normal(5)
                                                                     .astype(np.float32)}, opset=9)
    feeds = random_feeds(rng, {"X": (1, 4, 3, 5)}, count=4)
    compiled = check_float_model(model, feeds[0])
    assert [n.op_type for n in compiled.graph.nodes] == ["Mul", "Add"]
    check_int8_model(model, feeds, 1.5)


@pytest.mark.parametrize("opset", [9, 13])
def test_dropout_with_an_unread_mask(rng, opset):
    """Caffe2's exports name Dropout's mask though nothing reads it: it is dropped, the node is
    Identity (inference), in float and in int8."""
    nodes = [helper.make_node("Dropout", ["X"], ["d", "mask"], **({"ratio": 0.5} if opset < 12 else {})),
             helper.make_node("Relu", ["d"], ["Y"])]
    model = make_model(nodes, [("X", (2, 9))], [("Y", None)], opset=opset)
    feeds = random_feeds(rng, {"X": (2, 9)}, count=4)
    compiled = check_float_model(model, feeds[0])
    assert [n.op_type for n in compiled.graph.nodes] == ["Relu"]
    assert "mask" not in compiled.graph.tensors
    check_int8_model(model, feeds, 0.5, in_steps=0.5)


@pytest.mark.parametrize("reader", ["output", "node"])
def test_dropout_with_a_read_mask_is_refused(reader):
    nodes = [helper.make_node("Dropout", ["X"], ["Y", "mask"], name="drop")]
    outputs = [("Y", (2, 9))]
    if reader == "output":
        outputs.append(("mask", (2, 9), onnx.TensorProto.BOOL))
    else:
        nodes.append(helper.make_node("Cast", ["mask"], ["Z"], to=onnx.TensorProto.FLOAT))
        outputs.append(("Z", (2, 9)))
    model = make_model(nodes, [("X", (2, 9))], outputs, opset=13)
    with pytest.raises(CompileError, match="Dropout node 'drop': the dropout mask output is not supported") as info:
        compile_model(model)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset,axis", [(11, None), (11, 2), (13, None), (13, 1)])
def test_float_oracle_follows_the_softmax_rule_of_the_opset(rng, op, opset, axis):
    """verify's onnx.reference applies the opset-13 rule at every opset; below 13 the input is
    flattened to 2-D at `axis` (default 1), as every zoo classifier's Softmax over [1, 1000, 1, 1]
    needs (onnx.reference: 1.0 everywhere)."""
    from codegen.verify import onnx_reference

    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    model = make_model([helper.make_node(op, ["X"], ["Y"], **attrs)], [("X", x.shape)], [("Y", x.shape)], opset=opset)
    y = onnx_reference(model).run(None, {"X": x})[0]
    a = (1 if opset < 13 else -1) if axis is None else axis
    rows = x.reshape(int(np.prod(x.shape[:a])), -1) if opset < 13 else np.moveaxis(x, a, -1)
    d = rows.astype(np.float64) - rows.max(axis=-1, keepdims=True)
    want = {"Softmax": np.exp(d) / np.exp(d).sum(axis=-1, keepdims=True),
            "LogSoftmax": d - np.log(np.exp(d).sum(axis=-1, keepdims=True)),
            "Hardmax": (d == 0).astype(np.float64)}[op]
    want = want.reshape(x.shape) if opset < 13 else np.moveaxis(want, -1, a)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_verify_of_a_legacy_softmax_classifier(rng):
    """The zoo's head: Gemm then Softmax at opset 9 with the default axis, over [1, 1000, 1, 1]."""
    from codegen.verify import verify

    nodes = [helper.make_node("Conv", ["X", "W"], ["c"]), helper.make_node("Softmax", ["c"], ["Y"])]
    model = make_model(nodes, [("X", (1, 8, 1, 1))], [("Y", (1, 20, 1, 1))],
                       {"W": rng.standard_normal((20, 8, 1, 1)).astype(np.float32)}, opset=9)
    feeds = random_feeds(rng, {"X": (1, 8, 1, 1)}, count=3)
    result = verify(compile_model(model), feeds)
    assert result["reference_agrees"] and result["passed"] and result["max_abs_diff"] < 1e-6


def _small_squeezenet(side: int):
    """The zoo's SqueezeNet (seeded random weights and no final Softmax, benchmarks/zoo.py) at
    side x side pixels: the whole network (26 convolutions, 8 fire-module concatenations,
    Dropout with its mask) in a fraction of the 224 x 224 work."""
    from benchmarks.zoo import load

    model = load("squeezenet")
    init_names = {t.name for t in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in init_names]
    for d, size in zip(inp.type.tensor_type.shape.dim[2:], (side, side)):
        d.dim_value = size
    del model.graph.value_info[:]  # the output, [1, 1000, 1, 1] after the global pooling, stays
    return model, inp.name


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_squeezenet_compiles_and_verifies(mode):
    from codegen.verify import verify

    model, name = _small_squeezenet(48)
    rng = np.random.default_rng(5)
    calib = [{name: rng.standard_normal((1, 3, 48, 48)).astype(np.float32)} for _ in range(3)]
    tests = [{name: rng.standard_normal((1, 3, 48, 48)).astype(np.float32)} for _ in range(2)]
    compiled = compile_model(model, "squeezenet", mode=mode, calib=calib if mode == "int8" else None,
                             flash_budget=1 << 30)
    assert sum(n.op_type == "Conv" for n in compiled.graph.nodes) == 26
    result = verify(compiled, tests)
    assert result["bit_exact"] and result["passed"]
    if mode == "float32":
        assert result["reference_agrees"] and result["max_rel_diff"] < 1e-4
    else:
        assert result["float_top1_agreement"] == 1.0 and result["sqnr_db"] > 25


@pytest.mark.parametrize("opset", [9, 11, 15])
def test_float_oracle_batchnorm_is_inference(rng, opset):
    """onnx.reference runs BatchNormalization 9 to 13 with the batch's statistics blended in by
    momentum; verify's oracle uses the given mean and variance, as the spec's inference does
    (DenseNet-121's and Inception v2's trained statistics hold variances near 0)."""
    from codegen.verify import onnx_reference, verify

    c = 5
    stats = {"s": rng.uniform(0.5, 1.5, c), "b": rng.standard_normal(c), "m": rng.standard_normal(c),
             "v": np.r_[1e-12, rng.uniform(0.1, 2.0, c - 1)]}
    model = make_model([helper.make_node("BatchNormalization", ["X", "s", "b", "m", "v"], ["Y"])],
                       [("X", (1, c, 4, 3))], [("Y", (1, c, 4, 3))],
                       {k: v.astype(np.float32) for k, v in stats.items()}, opset=opset)
    feeds = random_feeds(rng, {"X": (1, c, 4, 3)}, count=2)
    x = feeds[0]["X"].astype(np.float64)
    f = {k: v.reshape(1, c, 1, 1).astype(np.float32).astype(np.float64) for k, v in stats.items()}
    want = (x - f["m"]) / np.sqrt(f["v"] + 1e-5) * f["s"] + f["b"]
    np.testing.assert_allclose(onnx_reference(model).run(None, feeds[0])[0], want, rtol=1e-5, atol=1e-4)
    result = verify(compile_model(model), feeds)
    assert result["reference_agrees"] and result["passed"]


@pytest.mark.parametrize("name,ops", [
    ("squeezenet", {"Conv": 26, "Concat": 8, "MaxPool": 3, "GlobalAveragePool": 1, "Softmax": 1}),
    ("inception_v1", {"Conv": 57, "LRN": 2, "Concat": 9, "Gemm": 1, "Softmax": 1}),
])
def test_small_zoo_models_import_as_given(name, ops):
    """The files as shipped (constant weights, opset 9): LRN, Dropout's unread masks and the
    upgraded constants all accepted; Relu fused, Dropout gone. (`python -m benchmarks.zoo`
    compiles and verifies all of them.)"""
    from collections import Counter

    from codegen.frontend import import_model

    graph = import_model(str(LIGHT / f"light_{name}.onnx"))
    counts = Counter(n.op_type for n in graph.nodes)
    assert {op: counts[op] for op in ops} == ops
    assert "Dropout" not in counts and "Relu" not in counts and "Identity" not in counts
