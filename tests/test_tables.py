"""Weight tables: written fast and compiled fast (int8 tables as string literals), read back by
the C compilers byte for byte; a model whose tables exceed the flash budget is refused before
any C compiler runs."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper

from codegen import cross
from codegen.cli import main
from codegen.compiler import compile_model, weights_lower_bound
from codegen.emit.cnames import STRING_TABLE_MIN, array_body, table_initializer
from conftest import make_model

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wsign-conversion"]


def _dump_program(tables: dict[str, np.ndarray]) -> str:
    """A C program that prints every table's bytes in hex, one table a line."""
    lines = ["#include <stdio.h>", "#include <stdint.h>", ""]
    lines += ["#if defined(__GNUC__)", "#pragma GCC diagnostic push",
              '#pragma GCC diagnostic ignored "-Woverlength-strings"', "#endif"]
    ctypes = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "uint16": "uint16_t"}
    for name, arr in tables.items():
        size, body = table_initializer(arr)
        lines.append(f"static const {ctypes[str(arr.dtype)]} {name}[{size}] = {{\n    {body}\n}};")
    lines += ["#if defined(__GNUC__)", "#pragma GCC diagnostic pop", "#endif", "",
              "static void dump(const void *p, unsigned long n)", "{",
              "    const unsigned char *b = (const unsigned char *)p;", "    unsigned long i;",
              '    for (i = 0; i < n; ++i) { printf("%02x", b[i]); }', '    printf("\\n");', "}", "",
              "int main(void)", "{"]
    lines += [f"    dump({name}, {arr.nbytes}u);" for name, arr in tables.items()]
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_tables_read_back_byte_for_byte(tmp_path, cc):
    if shutil.which(cc) is None:
        pytest.fail(f"{cc} is not installed (.ci/run installs it)")
    rng = np.random.default_rng(12)
    tables = {
        "edges": np.array([-128, 127, 0, -1, 1, 10, 63, 64, 92, 63, 48, 57] * 8, np.int8),  # \ ? " 0-9 bytes
        "long_s8": rng.integers(-128, 128, 70_001).astype(np.int8),  # beyond C99's 4,095 characters
        "full_lines": rng.integers(-128, 128, 32 * 40).astype(np.int8),
        "u8": rng.integers(0, 256, 5000).astype(np.uint8),
        "short_s8": rng.integers(-128, 128, STRING_TABLE_MIN - 1).astype(np.int8),
        "s16": rng.integers(-32768, 32768, 3001).astype(np.int16),
        "s32": np.concatenate([[-(2**31) + 1, 2**31 - 1, 0], rng.integers(-(2**31) + 1, 2**31, 2000)]).astype(np.int32),
        "u16": rng.integers(0, 65536, 77).astype(np.uint16),
    }
    (tmp_path / "t.c").write_text(_dump_program(tables))
    subprocess.run([cc, *STRICT, "t.c", "-o", "t"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()
    for (name, arr), line in zip(tables.items(), out):
        assert bytes.fromhex(line) == arr.tobytes(), name
    assert table_initializer(tables["long_s8"])[1].startswith('"')  # the string form was exercised
    assert not table_initializer(tables["short_s8"])[1].startswith('"')


def test_array_body_numbers_round_trip():
    rng = np.random.default_rng(5)
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dtype)
        for n in (1, 2, 31, 32, 33, 1000, 70_001):
            a = rng.integers(max(info.min, -(2**31) + 1), info.max, n, endpoint=True).astype(dtype)
            assert [int(v) for v in re.split(r",\s*", array_body(a).strip())] == a.tolist()
    assert array_body(np.array([-(2**31), 1], np.int32)) == "(-2147483647 - 1), 1"


def _gemm_model(rng, k, n):
    w = rng.standard_normal((n, k)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    return make_model(nodes, [("x", (1, k))], [("y", None)], {"w": w, "b": rng.standard_normal(n).astype(np.float32)})


@pytest.fixture
def no_compiler(monkeypatch):
    """Any C compiler run fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a C compiler ran")
    monkeypatch.setattr(cross, "measure", refuse)
    monkeypatch.setattr(cross, "_run", refuse)


def test_a_model_over_the_flash_budget_is_refused_before_the_c_compiler(tmp_path, capsys, rng, no_compiler):
    """1.2 MB of weights for the cortex-m4's 1 MB of flash: refused on the graph's lower bound."""
    import onnx

    path = tmp_path / "big.onnx"
    onnx.save(_gemm_model(rng, 1100, 1100), path)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=rng.standard_normal((4, 1, 1100)).astype(np.float32))
    status = main(["compile", str(path), "--calib", str(calib), "--target", "cortex-m4", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "the weight tables need at least 1211100 B, more than the cortex-m4 flash budget of 1048576 B" in err
    assert not (tmp_path / "o").exists()


def test_the_tables_own_bytes_are_checked_before_the_c_compiler(tmp_path, capsys, rng, no_compiler):
    """A budget between the lower bound and the tables' bytes (int32 biases take 4 B each)."""
    import onnx

    model = _gemm_model(rng, 100, 100)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    compiled = compile_model(model, "m", mode="float32")
    bound, exact = weights_lower_bound(compiled.graph), compiled.report["weights_bytes"]
    assert bound < exact
    status = main(["compile", str(path), "--float", "--flash-budget", str(bound), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and f"the weight tables take {exact} B, more than the host flash budget of {bound} B" in err
    status = main(["compile", str(path), "--float", "--flash-budget", str(bound - 1), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and f"need at least {bound} B" in err


def test_a_large_int8_model_is_written_as_string_tables(rng):
    compiled = compile_model(_gemm_model(rng, 300, 200), "big", mode="int8",
                             calib=[{"x": rng.standard_normal((1, 300)).astype(np.float32)} for _ in range(4)])
    text = compiled.emitted.files["big.c"]
    assert re.search(r"static const int8_t big_w0\[60001\][^=]*= \{\n    \"\\\d{3}", text)
