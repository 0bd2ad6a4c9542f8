"""The classic model-zoo networks that the onnx package ships (onnx/backend/test/data/light:
AlexNet, DenseNet-121, Inception v1 and v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19,
ZFNet-512; opset 9, weights from ConstantOfShape), and the frontend rules they need: opset-9
models upgraded and their constants folded at the model's opset, a Dropout's unread mask
dropped. `python -m benchmarks.zoo` compiles and verifies the big ones."""

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from conftest import check_float_model, check_int8_model, make_model, random_feeds

LIGHT = __import__("pathlib").Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


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
