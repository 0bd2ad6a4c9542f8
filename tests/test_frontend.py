"""Frontend: folding, simplification, static shapes, loading, and names that reach C."""

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from conftest import check_float_model, make_model


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
        helper.make_node("Erf", ["x"], ["a"], name="erf_1"),
        helper.make_node("Foo", ["a"], ["b"], name="custom", domain="com.example"),
        helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (2, 2)),
         helper.make_tensor_value_info("x2", onnx.TensorProto.FLOAT, (2, 2))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, (2, 2)),
         helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, (2, 2))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(CompileError) as e:
        compile_model(model)
    msg = str(e.value)
    assert "\n" not in msg
    assert "Erf node 'erf_1': operator not supported" in msg
    assert "Foo node 'custom'" in msg
    assert "MatMul node 'mm': exactly one operand must be a constant" in msg
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
    assert "int net_invoke(const float *x__system__rm__rf____, float *int_)" in text
    assert "pwned; /*" not in text and "\r" not in text and "\x00" not in text
    code = "\n".join(line.split("/*")[0] for line in text.splitlines())
    assert "system(" not in code


def test_same_model_gives_identical_files(rng):
    model = make_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", (1, 4))], [("y", (1, 3))],
                       {"W": _w(rng, 4, 3)})
    a, b = compile_model(model, "m"), compile_model(model.SerializeToString() and model, "m")
    assert a.emitted.files == b.emitted.files and a.report == b.report
