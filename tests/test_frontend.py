"""Frontend: folding, simplification, static shapes, loading, and names that reach C."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.cli import main
from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.ops import get_op
from conftest import check_float_model, make_model


ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"


def _w(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_torch_flatten_chain_folds_to_a_reshape(rng):
    inits = {"W": _w(rng, 12, 5), "zero": np.array(0, np.int64), "minus1": np.array([-1], np.int64)}
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["y"]),
    ]
    inits["axes0"] = np.array([0], np.int64)
    model = make_model(nodes, [("x", ("batch", 3, 4))], [("y", ("batch", 5))], inits, opset=13)
    compiled = check_float_model(model, {"x": _w(rng, 1, 3, 4)})
    assert [n.op_type for n in compiled.graph.nodes] == ["Reshape", "MatMul"]
    assert compiled.graph.tensors["x"].shape == (1, 3, 4)


def test_identity_dropout_and_noop_cast_vanish(rng):
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Dropout", ["a"], ["b"]),
        helper.make_node("Cast", ["b"], ["c"], to=onnx.TensorProto.FLOAT),
        helper.make_node("MatMul", ["c", "W"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    model = make_model(nodes, [("x", (2, 6))], [("y", (2, 3))], {"W": _w(rng, 6, 3)})
    compiled = check_float_model(model, {"x": _w(rng, 2, 6)})
    assert [n.op_type for n in compiled.graph.nodes] == ["MatMul"]
    assert compiled.graph.nodes[0].outputs == ["y"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_batchnorm_after_gemm_folds(rng, trans_b):
    w = _w(rng, 4, 6) if trans_b else _w(rng, 6, 4)
    inits = {"W": w, "C": _w(rng, 4), "scale": _w(rng, 4), "bias": _w(rng, 4),
             "mean": _w(rng, 4), "var": np.abs(_w(rng, 4)) + 0.1}
    nodes = [
        helper.make_node("Gemm", ["x", "W", "C"], ["g"], transB=trans_b, alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["g", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3),
    ]
    model = make_model(nodes, [("x", (1, 6))], [("y", (1, 4))], inits)
    compiled = check_float_model(model, {"x": _w(rng, 1, 6)})
    assert [n.op_type for n in compiled.graph.nodes] == ["Gemm"]


def test_unsupported_nodes_are_all_listed():
    nodes = [
        helper.make_node("Acos", ["x"], ["a"], name="acos_1"),
        helper.make_node("Foo", ["a"], ["b"], name="custom", domain="com.example"),
        helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (2, 2)),
         helper.make_tensor_value_info("x2", onnx.TensorProto.FLOAT, (1, 1, 1, 1, 1, 2, 2))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, (1, 1, 1, 1, 1, 2, 2)),
         helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, (2, 2))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(CompileError) as e:
        compile_model(model)
    msg = str(e.value)
    assert "\n" not in msg
    assert "Acos node 'acos_1': operator not supported" in msg
    assert "Foo node 'custom'" in msg
    assert "MatMul node 'mm': rank 7 is above 6" in msg
    assert "supported operators:" in msg and "Gemm" in msg


def test_dynamic_dimension_names_the_input(rng):
    model = make_model([helper.make_node("MatMul", ["feat", "W"], ["y"])], [("feat", ("batch", "len"))],
                       [("y", ("batch", 3))], {"W": _w(rng, 4, 3)})
    with pytest.raises(CompileError, match="input 'feat' dimension 1 is dynamic"):
        compile_model(model)


def test_old_opset_is_upgraded(rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 4))], [("y", (1, 3))],
                       {"W": _w(rng, 4, 3)}, opset=9)
    compiled = check_float_model(model, {"x": _w(rng, 1, 4)})
    assert compiled.graph.opset == 11


def test_opset_newer_than_onnx_is_rejected(rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 4))], [("y", (1, 3))],
                       {"W": _w(rng, 4, 3)})
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(CompileError, match="is newer than this onnx knows"):
        compile_model(model)


def test_external_data(tmp_path, rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 64))], [("y", (1, 32))],
                       {"W": _w(rng, 64, 32)})
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    assert (tmp_path / "ext.data").is_file()
    compiled = compile_model(path)
    assert compiled.report["weights_bytes"] == 64 * 32 * 4
    (tmp_path / "ext.data").unlink()
    with pytest.raises(CompileError, match="ext.onnx: cannot read external data"):
        compile_model(path)


@pytest.mark.parametrize("content", [b"not a model at all", b"\x08\x07\x12\x05hello\x1a\xff\xff", b""])
def test_not_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(CompileError, match="bad.onnx"):
        compile_model(path)


def test_truncated_file(tmp_path, rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 64))], [("y", (1, 32))],
                       {"W": _w(rng, 64, 32)})
    data = model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompileError, match="cut.onnx"):
        compile_model(path)


def test_hostile_names_are_sanitized(rng):
    evil = 'x; system("rm -rf /")'
    nodes = [helper.make_node("MatMul", [evil, "W"], ["mid"], name="*/ int pwned; /*\r\n\x00"),
             helper.make_node("MatMul", ["mid", "W2"], ["int"], name=evil)]
    model = make_model(nodes, [(evil, (1, 4))], [("int", (1, 2))], {"W": _w(rng, 4, 3), "W2": _w(rng, 3, 2)})
    compiled = check_float_model(model, {evil: _w(rng, 1, 4)})
    text = compiled.emitted.files["net.c"] + compiled.emitted.files["net.h"]
    assert "int net_invoke(const float *x_system_rm_rf, float *t_int)" in text
    assert "pwned; /*" not in text and "\r" not in text and "\x00" not in text
    code = "\n".join(line.split("/*")[0] for line in text.splitlines())
    assert "system(" not in code


def test_same_model_gives_identical_files(rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 4))], [("y", (1, 3))],
                       {"W": _w(rng, 4, 3)})
    a, b = compile_model(model, "m"), compile_model(model.SerializeToString() and model, "m")
    assert a.emitted.files == b.emitted.files and a.report == b.report


def _asin_acos_rnn():
    """Three operators that stay out of reach of an int8 MCU compiler, in a chain."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [24, 1, 1, 8])
    inits = [onnx.numpy_helper.from_array(np.ones((1, 8, 8), np.float32), "W"),
             onnx.numpy_helper.from_array(np.ones((1, 8, 8), np.float32), "R"),
             onnx.numpy_helper.from_array(np.array([24, 1, 8], np.int64), "seq")]
    nodes = [helper.make_node("Asin", ["x"], ["r"], name="asin"),
             helper.make_node("Acos", ["r"], ["e"], name="acos"),
             helper.make_node("Reshape", ["e", "seq"], ["s"], name="to_sequence"),
             helper.make_node("RNN", ["s", "W", "R"], ["y"], name="rnn", hidden_size=8)]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _rnn_nms():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 1, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.INT64, [None, 3])
    inits = [onnx.numpy_helper.from_array(np.ones((1, 4, 8), np.float32), "W"),
             onnx.numpy_helper.from_array(np.ones((1, 4, 4), np.float32), "R"),
             onnx.numpy_helper.from_array(np.array([1, 5, 4], np.int64), "box_shape"),
             onnx.numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [helper.make_node("RNN", ["x", "W", "R"], ["h"], name="rnn", hidden_size=4),
             helper.make_node("Reshape", ["h", "box_shape"], ["boxes"], name="to_boxes"),
             helper.make_node("ReduceMean", ["boxes"], ["s"], name="score", axes=[2], keepdims=0),
             helper.make_node("Unsqueeze", ["s", "axis1"], ["scores"], name="scores"),
             helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["y"], name="nms")]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _attention_head():
    """Cosh -> Hardmax -> Acos, and a MatMul of two activations."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 4])
    nodes = [helper.make_node("Cosh", ["x"], ["n"], name="cosh"),
             helper.make_node("Hardmax", ["n"], ["q"], name="hardmax"),
             helper.make_node("Acos", ["q"], ["qe"], name="acos"),
             helper.make_node("Transpose", ["n"], ["kt"], name="kt", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["qe", "kt"], ["y"], name="scores")]
    graph = helper.make_graph(nodes, "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("model, expected", [
    (_asin_acos_rnn, ["Asin node 'asin'", "Acos node 'acos'", "RNN node 'rnn'"]),
    (_rnn_nms, ["RNN node 'rnn'", "NonMaxSuppression node 'nms'"]),
    (_attention_head, ["Cosh node 'cosh'", "Hardmax node 'hardmax'", "Acos node 'acos'"]),
])
def test_nodes_after_an_unsupported_one_are_checked(model, expected):
    """The outputs of an unsupported node get onnx's inferred shapes, so the nodes after it
    are checked too and every unsupported one is named in the one error."""
    for op in ("Asin", "Acos", "RNN", "NonMaxSuppression", "Cosh", "Hardmax"):
        assert get_op(op) is None, f"{op} is supported now: pick another unsupported operator"
    with pytest.raises(CompileError) as e:
        compile_model(model())
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{len(expected)} unsupported nodes" in msg
    for part in expected:
        assert part in msg and (part + ": operator not supported" in msg or "MatMul" in part)


def _digits():
    return onnx.load(str(EXAMPLE / "digits.onnx"))


def _set_init(model, name, array):
    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(onnx.numpy_helper.from_array(array, name))
    return init


def _poison(value, where=(0,)):
    def mutate(model):
        init = next(i for i in model.graph.initializer if i.name == "classifier.bias")
        a = onnx.numpy_helper.to_array(init).copy()
        a[where] = value
        _set_init(model, init.name, a)
    return mutate


def _conv_weight_nan(model):
    a = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "onnx::Conv_27")).copy()
    a[3, 0, 1, 1] = np.nan
    _set_init(model, "onnx::Conv_27", a)


def _conv_weight_huge(model):
    a = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "onnx::Conv_27")).copy()
    a[:, 0, 1, 1] = 3e38
    _set_init(model, "onnx::Conv_27", a)


def _bias_dtype(data_type):
    def mutate(model):
        next(i for i in model.graph.initializer if i.name == "classifier.bias").data_type = data_type
    return mutate


def _string_bias(model):
    _set_init(model, "classifier.bias", np.array(["a"] * 10, dtype=object))


@pytest.mark.parametrize("mutate, message", [
    (_poison(np.nan), "initializer 'classifier.bias' holds NaN"),
    (_poison(-np.inf), "initializer 'classifier.bias' holds Inf"),
    (_conv_weight_nan, "initializer 'onnx::Conv_27' holds NaN"),
    (_conv_weight_huge, "reaches NaN or Inf on the calibration data"),
    (_bias_dtype(999), "initializer 'classifier.bias': cannot read its 999 (unknown) data"),
    (_bias_dtype(onnx.TensorProto.INT8), "initializer 'classifier.bias': cannot read its INT8 data of dims [10]"),
    (_string_bias, "initializer 'classifier.bias': holds strings"),
], ids=["nan-bias", "-inf-bias", "nan-weight", "huge-weight", "dtype-999", "dtype-changed", "string"])
def test_bad_weights_are_one_line_errors_from_the_cli(tmp_path, mutate, message):
    """Run as a user would: stderr is exactly one line naming the initializer, status 2, and
    no NumPy RuntimeWarning (the 3e38 weights overflow in calibration) reaches the terminal."""
    model = _digits()
    mutate(model)
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "codegen", "compile", str(path), "-o", str(tmp_path / "out"),
                           "--calib", str(EXAMPLE / "calib.npz")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("onnx2mcu: error:"), proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()


def _clip_model(lo, hi):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    inits = [onnx.numpy_helper.from_array(np.asarray(lo, np.float32), "lo"),
             onnx.numpy_helper.from_array(np.asarray(hi, np.float32), "hi")]
    graph = helper.make_graph([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")], "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _reshape_model(shape):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"], name="rs")]
    graph = helper.make_graph(nodes, "g", [x], [y], [onnx.numpy_helper.from_array(np.asarray(shape, np.int64), "s")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _qdq_axis(axis=None, empty=False):
    model = onnx.load(str(ROOT / "tests" / "fixtures" / "qdq_convnet.onnx"))
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] == "body.0.weight_quantized":
            del node.attribute[:]
            if axis is not None:
                node.attribute.append(helper.make_attribute("axis", axis))
    if empty:
        w = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "body.0.weight_quantized"))
        _set_init(model, "body.0.weight_quantized", w[:0])
    return model


@pytest.mark.parametrize("model, message", [
    (lambda: _clip_model([0, 1], 6), "Clip node 'clip': min must be a scalar; it has shape (2,)"),
    (lambda: _clip_model(0, np.zeros(0)), "Clip node 'clip': max must be a scalar; it has shape (0,)"),
    (lambda: _reshape_model(4), "Reshape node 'rs': the shape must be a 1-D integer tensor"),
    (lambda: _reshape_model([2 ** 62, 4]), "Reshape node 'rs': cannot reshape (1, 4)"),
    (lambda: _reshape_model([2 ** 40, 2 ** 40, 0]), "Reshape node 'rs': a 0 in the target shape"),
    (lambda: _reshape_model([-2, -2]), "Reshape node 'rs': negative dimension"),
    (lambda: _qdq_axis(7), "DequantizeLinear node 'body.0.weight_DequantizeLinear': 8 scales along axis 7"),
    (lambda: _qdq_axis(-9), "8 scales along axis -9"),
    (lambda: _qdq_axis(None), "8 scales along axis 1"),
    (lambda: _qdq_axis(0, empty=True), "DequantizeLinear node 'body.0.weight_DequantizeLinear': zero-size"),
], ids=["clip-vector", "clip-empty", "reshape-scalar", "reshape-huge", "reshape-zero-past-rank",
        "reshape-negative", "dq-axis-7", "dq-axis-neg", "dq-axis-default", "dq-empty"])
@pytest.mark.parametrize("mode", [[], ["--float"]])
def test_malformed_nodes_are_one_line_errors(tmp_path, capsys, model, message, mode):
    path = tmp_path / "bad.onnx"
    path.write_bytes(model().SerializeToString())
    assert main(["compile", str(path), "-o", str(tmp_path / "out"), *mode]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("onnx2mcu: error:"), err
    assert message in err


def _folded_weight_model(exponent, clip_max):
    """W = Exp(exponent) folds at import; Clip's max is an initializer."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])
    inits = [onnx.numpy_helper.from_array(np.full((4, 3), exponent, np.float32), "e"),
             onnx.numpy_helper.from_array(np.array(0, np.float32), "lo"),
             onnx.numpy_helper.from_array(np.array(clip_max, np.float32), "hi")]
    nodes = [helper.make_node("Exp", ["e"], ["w"], name="exp"),
             helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Clip", ["m", "lo", "hi"], ["y"], name="clip")]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_folded_constants_reaching_inf_are_named():
    with pytest.raises(CompileError) as e:
        compile_model(_folded_weight_model(100.0, 6.0))
    assert str(e.value).endswith("1 unsupported node: Exp node 'exp': its constant output 'w' holds NaN or Inf")


def test_an_infinite_clip_bound_is_not_an_error(rng):
    """Inf is refused in weights but is a fine Clip max (a ReLU written as Clip(0, inf))."""
    compiled = check_float_model(_folded_weight_model(0.5, np.inf), {"x": _w(rng, 1, 4)})
    assert compiled.graph.nodes


def test_names_that_are_not_utf8_are_one_line_errors(tmp_path, capsys):
    """protobuf hands over a name that is not valid UTF-8 as bytes (here a flipped bit)."""
    data = (EXAMPLE / "digits.onnx").read_bytes().replace(b"/classifier/Gemm", b"/classifier/G\xe9mm")
    (tmp_path / "m.onnx").write_bytes(data)
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--float"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("onnx2mcu: error:"), err
    assert "name b'/classifier/G\\xe9mm" in err and "is not valid UTF-8" in err


def test_an_error_naming_a_multiline_name_stays_one_line(tmp_path, capsys):
    model = onnx.load(str(ROOT / "tests" / "fixtures" / "skl_mlp.onnx"))
    model.graph.input[0].name = "with\nnewline"
    for node in model.graph.node:
        node.input[:] = ["with\nnewline" if i == "X" else i for i in node.input]
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    status = main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"),
                   "--calib", str(ROOT / "tests" / "fixtures" / "skl_mlp.npz")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("onnx2mcu: error:"), err
    assert "'with\\nnewline'" in err
