"""Element types: int64/int32 (carried as int32) and bool (uint8) inputs, outputs and tensors,
and Cast between them and float32, in float32 and int8 mode."""

import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.cli import main
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.ops.cast import saturate_s32
from codegen.reference import run_float, run_int8
from codegen.samples import random_samples
from codegen.verify import verify
from conftest import assert_same_on_cortex_m, make_model

INT64, BOOL, FLOAT = onnx.TensorProto.INT64, onnx.TensorProto.BOOL, onnx.TensorProto.FLOAT


def mixed_model():
    """ids int64 -> float, scaled, plus x; x > 0 as bool -> float; the sum back to int64; a mask input."""
    nodes = [
        helper.make_node("Cast", ["ids"], ["idf"], to=FLOAT),
        helper.make_node("Mul", ["idf", "k"], ["ids_scaled"]),
        helper.make_node("Add", ["ids_scaled", "x"], ["s"]),
        helper.make_node("Cast", ["s"], ["s_int"], to=INT64),
        helper.make_node("Cast", ["mask"], ["maskf"], to=FLOAT),
        helper.make_node("Mul", ["s", "maskf"], ["y"]),
        helper.make_node("Cast", ["y"], ["nonzero"], to=BOOL),
        helper.make_node("Reshape", ["s_int", "flat"], ["s_flat"]),
    ]
    return make_model(nodes, [("ids", (2, 5), INT64), ("x", (2, 5)), ("mask", (2, 5), BOOL)],
                      [("y", (2, 5)), ("s_flat", (10,), INT64), ("nonzero", (2, 5), BOOL)],
                      {"k": np.float32(0.37), "flat": np.array([10], np.int64)}, opset=13)


def feeds_for(rng, count=4):
    return [{"ids": rng.integers(-40, 40, (2, 5)).astype(np.int64),
             "x": (rng.standard_normal((2, 5)) * 3).astype(np.float32),
             "mask": rng.integers(0, 2, (2, 5)).astype(bool)} for _ in range(count)]


def test_float_types_end_to_end(rng):
    model = mixed_model()
    compiled = compile_model(model, "net")
    types = {t: compiled.graph.tensors[t].dtype for t in ("ids", "mask", "s_flat", "nonzero")}
    assert types == {"ids": "int32", "mask": "uint8", "s_flat": "int32", "nonzero": "uint8"}
    assert [s["ctype"] for s in compiled.report["api"]["inputs"]] == ["int32_t", "float", "uint8_t"]
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    oracle = ReferenceEvaluator(model)
    for feeds in feeds_for(rng):
        got = host.run([feeds[n] for n in compiled.graph.inputs])
        ref = run_float(compiled.graph, feeds)
        want = oracle.run(None, feeds)
        for g, name, w in zip(got, compiled.graph.outputs, want):
            np.testing.assert_array_equal(g, ref[name])
            np.testing.assert_array_equal(g, np.asarray(w).astype(g.dtype))
    result = verify(compiled, feeds_for(rng))
    assert result["passed"] and result["reference_agrees"]


def test_int8_types_end_to_end_and_on_cortex_m(rng):
    model = mixed_model()
    calib = feeds_for(rng, 16)
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    assert graph.tensors["ids"].quant is None and graph.tensors["s"].dtype == "int8"
    assert [graph.tensors[o].dtype for o in graph.outputs] == ["int8", "int32", "uint8"]
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    tests = feeds_for(rng, 6)
    q = [quantize_inputs(graph, f) for f in tests]
    outs = [host.run([f[n] for n in graph.inputs]) for f in q]
    for f, got in zip(q, outs):
        ref = run_int8(graph, f)
        for g, name in zip(got, graph.outputs):
            np.testing.assert_array_equal(g, ref[name])
    # the dequantized sum, truncated, is the int output; and the int output is near the float model's
    oracle = ReferenceEvaluator(model)
    for feeds, got in zip(tests, outs):
        want = oracle.run(None, feeds)[1]
        assert np.max(np.abs(got[1].astype(np.int64) - want)) <= 1 + graph.tensors["s"].quant.scale
    result = verify(compiled, tests)
    assert result["bit_exact"] and result["passed"]
    assert_same_on_cortex_m(compiled, q, outs)


def test_cast_from_float_saturates_and_maps_nan_to_zero():
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=INT64)], [("x", (8,))], [("y", (8,), INT64)])
    compiled = compile_model(model, "net")
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, -2.9, 2.9, -2147483648.0], np.float32)
    got = HostModel(compiled.emitted.files, compiled.report["api"]).run([x])[0]
    np.testing.assert_array_equal(got, [0, 2**31 - 1, -2**31, 2**31 - 1, -2**31, -2, 2, -2**31])
    np.testing.assert_array_equal(got, saturate_s32(x))
    np.testing.assert_array_equal(run_float(compiled.graph, {"x": x})["y"], got)


def test_int8_cast_to_int_is_the_truncated_real_value(rng):
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Cast", ["r"], ["y"], to=INT64)],
                       [("x", (1, 64))], [("y", (1, 64), INT64)])
    calib = [{"x": (rng.standard_normal((1, 64)) * 20).astype(np.float32)} for _ in range(4)]
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    q = quantize_inputs(graph, calib[0])
    got = HostModel(compiled.emitted.files, compiled.report["api"]).run([q["x"]])[0]
    r = graph.tensors["r"].quant
    expected = np.trunc(r.dequantize(run_int8(graph, q, keep_all=True)["r"]))
    np.testing.assert_array_equal(got, expected.reshape(got.shape))


def test_random_samples_respect_integer_inputs():
    graph = compile_model(mixed_model(), "net").graph
    samples = random_samples(graph, 20)
    ids = np.stack([s["ids"] for s in samples])
    mask = np.stack([s["mask"] for s in samples])
    assert ids.dtype == np.int32 and 0 <= ids.min() and ids.max() < 16 and len(np.unique(ids)) > 8
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_cli_verify_and_float_io_with_integer_inputs(tmp_path, capsys):
    path = tmp_path / "mixed.onnx"
    onnx.save(mixed_model(), path)
    calib = tmp_path / "calib.npz"
    f = feeds_for(np.random.default_rng(3), 8)
    np.savez(calib, **{k: np.stack([s[k] for s in f]) for k in ("ids", "x", "mask")})
    assert main(["verify", str(path), "--calib", str(calib), "--data", str(calib)]) == 0
    assert main(["compile", str(path), "--calib", str(calib), "--float-io", "-o", str(tmp_path / "out")]) == 0
    io_c = (tmp_path / "out" / "mixed_io.c").read_text()
    assert "const int32_t *ids" in io_c and "const uint8_t *mask" in io_c and "int32_t *s_flat" in io_c
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "mixed_io.c", "-o",
                    os.devnull], cwd=tmp_path / "out", check=True)


def test_integer_inputs_reach_only_operators_that_take_them(tmp_path):
    model = make_model([helper.make_node("Relu", ["ids"], ["y"])], [("ids", (4,), INT64)], [("y", (4,), INT64)])
    with pytest.raises(CompileError, match=r"Relu node .*input 'ids' is int32; float32 is supported"):
        compile_model(model, "net")
    model = make_model([helper.make_node("Relu", ["h"], ["y"])], [("h", (4,), onnx.TensorProto.FLOAT16)],
                       [("y", (4,), onnx.TensorProto.FLOAT16)])
    with pytest.raises(CompileError, match="input 'h' has element type FLOAT16; float32, int64, int32 and bool"):
        compile_model(model, "net")
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=onnx.TensorProto.DOUBLE)], [("x", (4,))],
                       [("y", (4,), onnx.TensorProto.DOUBLE)])
    with pytest.raises(CompileError, match="Cast node .*cast to DOUBLE is not supported"):
        compile_model(model, "net")
