"""The command line: exit codes, one-line errors, atomic output folders, verify --json."""

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.cli import main
from conftest import make_model


@pytest.fixture
def model_path(tmp_path):
    rng = np.random.default_rng(1)
    model = make_model([helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)], [("x", ("N", 6))],
                       [("y", ("N", 4))], {"W": rng.standard_normal((4, 6)).astype(np.float32),
                                           "b": rng.standard_normal(4).astype(np.float32)})
    path = tmp_path / "fc.onnx"
    onnx.save(model, str(path))
    return path


def test_compile_float_writes_a_folder_that_builds(model_path, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(model_path), "-o", str(out), "--float"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert {"fc.c", "fc.h", "fc_nn.h", "fc_nn_fc_f32.c", "report.json"} <= set(names)
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", *[n for n in names if n.endswith(".c")]],
                   cwd=out, check=True)
    report = json.loads((out / "report.json").read_text())
    assert report["weights_bytes"] == (24 + 4) * 4
    assert report["flash_bytes"] >= report["weights_bytes"]


def test_recompile_replaces_and_is_identical(model_path, calib_path, tmp_path):
    out = tmp_path / "out"
    args = ["compile", str(model_path), "-o", str(out), "--calib", str(calib_path)]
    assert main(args) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "stale.c").write_text("int stale;\n")
    assert main(args) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_foreign_folder_is_left_alone(model_path, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["compile", str(model_path), "-o", str(out), "--float"]) == 2
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
    assert "not written by onnx2mcu" in capsys.readouterr().err


def test_failed_compile_leaves_nothing(tmp_path, capsys):
    model = make_model([helper.make_node("Acos", ["x"], ["y"], name="e")], [("x", (1, 2))], [("y", (1, 2))])
    path = tmp_path / "acos.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Acos node 'e'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acos.onnx"]


def test_verify_json_contract(model_path, tmp_path):
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(2)
    np.savez(data, x=rng.standard_normal((5, 6)).astype(np.float32), y=np.array([0, 1, 2, 3, 0]))
    out = tmp_path / "v.json"
    assert main(["verify", str(model_path), "--float", "--data", str(data), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("bit_exact", "samples", "max_abs_diff", "float_top1_agreement", "sqnr_db", "accuracy_float",
                "accuracy_quantized", "flash_bytes", "weights_bytes", "arena_bytes", "macs"):
        assert key in result
    assert result["bit_exact"] is True and result["samples"] == 5
    assert result["max_abs_diff"] < 1e-4


def test_verify_bad_data_names_the_file(model_path, tmp_path, capsys):
    data = tmp_path / "wrong.npz"
    np.savez(data, x=np.zeros((3, 7), np.float32))
    assert main(["verify", str(model_path), "--float", "--data", str(data)]) == 2
    assert "wrong.npz: input 'x' has shape [3, 7]" in capsys.readouterr().err


def test_inspect_table(model_path, capsys):
    assert main(["inspect", str(model_path), "--float"]) == 0
    out = capsys.readouterr().out
    assert "Gemm" in out and "total" in out and "24" in out


def test_subprocess_error_has_no_traceback(tmp_path):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    proc = subprocess.run([sys.executable, "-m", "codegen", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("onnx2mcu: error: ") and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def _code(path) -> str:
    return re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)


@pytest.fixture
def calib_path(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(3).standard_normal((16, 6)).astype(np.float32))
    return path


def test_int8_is_the_default(model_path, calib_path, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(model_path), "-o", str(out), "--calib", str(calib_path)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["mode"] == "int8" and "nn_fc_s8.c" in report["runtime_sources"]
    assert report["weights_bytes"] == 24 + 4 * (4 + 4 + 1)  # int8 weights; int32 bias and multiplier, int8 shift
    header = (out / "fc.h").read_text()
    assert "#define FC_INPUT_X_SCALE" in header and "#define FC_OUTPUT_Y_ZERO_POINT" in header
    assert not re.search(r"\bfloat\b|\bdouble\b", _code(out / "fc.c"))
    assert all(layer["sqnr_db"] is None or layer["sqnr_db"] > 30 for layer in report["layers"])


def test_int8_verify_json_contract(model_path, calib_path, tmp_path):
    data = tmp_path / "data.npz"
    np.savez(data, x=np.random.default_rng(4).standard_normal((6, 6)).astype(np.float32), y=np.arange(6) % 4)
    out = tmp_path / "v.json"
    assert main(["verify", str(model_path), "--calib", str(calib_path), "--data", str(data), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["bit_exact"] is True and result["mode"] == "int8"
    assert result["accuracy_quantized"] is not None and result["sqnr_db"] > 25


def test_float_io_wrapper(model_path, calib_path, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(model_path), "-o", str(out), "--calib", str(calib_path), "--float-io"]) == 0
    assert "int fc_invoke_float(const float *x, float *y);" in (out / "fc.h").read_text()
    assert not re.search(r"\bfloat\b|\bdouble\b", _code(out / "fc.c"))


@pytest.mark.parametrize("content,message", [
    (None, "int8 needs calibration data"),
    ({"x": np.zeros((0, 6), np.float32)}, "different or zero numbers of samples"),
    ({"x": np.zeros((4, 5), np.float32)}, "input 'x' has shape [4, 5]"),
    ({"x": np.array([["a"] * 6])}, "input 'x' has dtype <U1"),
    ({"x": np.full((4, 6), np.nan, np.float32)}, "input 'x' holds NaN or Inf"),
    ({"x": np.full((4, 6), np.inf, np.float32)}, "input 'x' holds NaN or Inf"),
    ({"z": np.zeros((4, 6), np.float32)}, "no array for input 'x'"),
])
def test_bad_calibration_data(model_path, tmp_path, capsys, content, message):
    args = ["compile", str(model_path), "-o", str(tmp_path / "out")]
    if content is not None:
        np.savez(tmp_path / "calib.npz", **content)
        args += ["--calib", str(tmp_path / "calib.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    if content is not None:
        assert "calib.npz" in err
    assert not (tmp_path / "out").exists()
