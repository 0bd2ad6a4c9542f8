"""Names from the model reach C as short, collision-free identifiers (or a clean error).

Hostile and reserved names for inputs, outputs, nodes, initializers and the model itself:
each model compiles (float32, and int8 with the float I/O wrapper), its folder builds with the
strict flags (C99 and the compiler's default GNU dialect, which predefines `linux` and `unix`),
NAME.h compiles from C++ and after the common standard headers, every identifier fits 63
characters, and the C gives the reference's outputs exactly."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen.build import HostModel
from codegen.cli import main
from codegen.compiler import compile_model, model_prefix, quantize_inputs
from codegen.emit.cnames import MAX_IDENTIFIER, MAX_PREFIX, Identifiers, is_reserved, prefix_identifier
from codegen.emit.model import single_header
from codegen.errors import CompileError
from codegen.reference import run_float, run_int8

STRICT = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes"]

HOSTILE = [
    "INT8_MAX", "INT8_MIN", "INT32_MAX", "UINT8_MAX", "SIZE_MAX", "NAN", "INFINITY", "int8_t", "int32_t",
    "size_t", "NULL", "memcpy", "offsetof", "expf", "HUGE_VAL", "int", "float", "class", "new", "and", "not",
    "template", "this", "main", "errno", "EOF", "stdin", "bool", "true", "I", "M_PI", "linux", "unix",
    "i", "status", "nn_fc_s8", "NN_MAX_DIMS", "requant_h", "REQUANT_H", "net_invoke", "net_arena", "net_p0",
    "NET_H_", "net_io_x", "_x", "__y", "a__b", "c_", "9lives", "入力", "é", "a b;c/*d*/e\n#define Z 1",
    "\\", "x" * 5000, "y" * 5000, "x" * 4999 + "z", "\x00", "-", "t_int", "t",
]
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# what the templates themselves ask of the implementation: the C++ guard and the GCC/Clang alignment
# and diagnostic hooks; no name from the model may take this form
IMPLEMENTATION_NAMES = {"__cplusplus", "__GNUC__", "__attribute__"}
NAME_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")  # no leading, trailing or double "_"


def spare(names, taken):
    """Hostile names not in `taken`, for initializers, intermediate tensors and nodes."""
    return [n for n in HOSTILE + [f"w{k}" for k in range(20)] if n and n not in taken][: len(names)]


def model_with(inputs: list[str], outputs: list[str], graph_name: str = "g") -> onnx.ModelProto:
    """s = sum of the inputs ([1, 4] each); output k = s @ W_k + b_k ([1, 3]). Tensors, initializers
    and nodes other than the inputs and outputs get hostile names too."""
    rng = np.random.default_rng(len(inputs) * 31 + len(outputs))
    extra = spare(range(3 * len(outputs) + len(inputs) + 2), set(inputs) | set(outputs))
    nodes, inits = [], []
    s = inputs[0]
    for k, name in enumerate(inputs[1:]):
        out = extra.pop()
        nodes.append(helper.make_node("Add", [s, name], [out], name=HOSTILE[k]))
        s = out
    for k, name in enumerate(outputs):
        w, b, mid = extra.pop(), extra.pop(), extra.pop()
        inits += [onnx.numpy_helper.from_array(rng.integers(-2, 3, (4, 3)).astype(np.float32), w),
                  onnx.numpy_helper.from_array(rng.integers(-2, 3, (3,)).astype(np.float32), b)]
        nodes += [helper.make_node("MatMul", [s, w], [mid], name="" if k == 0 else HOSTILE[-k]),
                  helper.make_node("Add", [mid, b], [name], name=HOSTILE[k + 7])]
    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 3]) for n in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd[:3]))} ... failed:\n{proc.stderr[-3000:]}"


USER_C = """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <errno.h>
#include <limits.h>
#include <float.h>
#include <stddef.h>
#include <stdbool.h>
#include <iso646.h>
#include <complex.h>
#include <inttypes.h>
#include "{header}"
"""

USER_CPP = """#include <cstdint>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include "{header}"
int main() {{ return 0; }}
"""


def check_folder(compiled, tmp_path: Path) -> dict:
    """Build the folder every way a user may and check its identifiers; the files by name."""
    files = compiled.emitted.files
    prefix = compiled.report["model"]
    folder = tmp_path / prefix
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    sources = sorted(n for n in files if n.endswith(".c"))
    run(["gcc", "-std=c99", *STRICT, "-fsyntax-only", *sources], folder)
    run(["gcc", *STRICT, "-fsyntax-only", *sources], folder)  # GNU dialect: `linux` and `unix` are macros
    header = f"{prefix}.h"
    (folder / "user.c").write_text(USER_C.format(header=header))
    run(["gcc", *STRICT, "-fsyntax-only", "user.c"], folder)
    (folder / "user.cpp").write_text(USER_CPP.format(header=header))
    run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-fsyntax-only",
         "user.cpp"], folder)
    one = tmp_path / "single"  # --single-header: the runtime, NAME.c and NAME_io.c in one translation unit
    one.mkdir()
    (one / header).write_text(single_header(compiled.emitted, prefix))
    (one / "impl.c").write_text(f'#define {prefix.upper()}_IMPLEMENTATION\n#include "{header}"\n')
    run(["gcc", "-std=c99", *STRICT, "-fsyntax-only", "impl.c"], one)

    for name, text in files.items():
        if name.endswith((".c", ".h")):
            too_long = [w for w in IDENT.findall(strip_comments(text)) if len(w) > MAX_IDENTIFIER]
            assert not too_long, f"{name}: identifiers over {MAX_IDENTIFIER} characters: {too_long[:3]}"
    own = [n for n in files if n.startswith(prefix) and n.endswith((".c", ".h"))
           and n in (header, f"{prefix}.c", f"{prefix}_io.c")]
    for name in own:
        reserved = {w for w in IDENT.findall(strip_comments(files[name])) if w.startswith("_") or "__" in w}
        assert reserved <= IMPLEMENTATION_NAMES, f"{name}: reserved identifiers {sorted(reserved)}"
    api = compiled.report["api"]
    cnames = [t["cname"] for t in api["inputs"] + api["outputs"]]
    assert len({c.upper() for c in cnames}) == len(cnames), cnames
    for c in cnames:
        assert NAME_IDENT.fullmatch(c) and not is_reserved(c), c
        assert not c.lower().startswith(("nn_", "requant_", prefix.lower() + "_")), c
    assert len(prefix) <= MAX_PREFIX and NAME_IDENT.fullmatch(prefix) and not is_reserved(prefix)
    return files


GROUPS = [HOSTILE[k: k + 6] for k in range(0, len(HOSTILE), 6)] + [["x", "X", "y", "Y"]]


def check_runs(compiled, mode: str, seed: int) -> None:
    """The C gives the reference's bytes: int8 exactly, float exactly too (integer data)."""
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    rng = np.random.default_rng(seed)
    for _ in range(3):
        feeds = {n: rng.integers(-3, 4, (1, 4)).astype(np.float32) for n in graph.inputs}
        if mode == "int8":
            feeds = quantize_inputs(graph, feeds)
            ref = run_int8(graph, feeds)
        else:
            ref = run_float(graph, feeds)
        got = host.run([feeds[n] for n in graph.inputs])
        for name, c in zip(graph.outputs, got):
            np.testing.assert_array_equal(c, ref[name].reshape(c.shape))


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("group", range(len(GROUPS)))
def test_hostile_io_node_and_initializer_names(group, mode, tmp_path):
    names = GROUPS[group]
    half = (len(names) + 1) // 2
    model = model_with(names[:half], names[half:])
    calib = None
    if mode == "int8":
        rng = np.random.default_rng(group)
        calib = [{n: rng.uniform(-3, 3, (1, 4)).astype(np.float32) for n in names[:half]} for _ in range(8)]
    compiled = compile_model(model, "net", mode=mode, calib=calib, float_io=mode == "int8")
    files = check_folder(compiled, tmp_path)
    if mode == "int8":
        assert "net_io.c" in files
    check_runs(compiled, mode, group)
    again = compile_model(model, "net", mode=mode, calib=calib, float_io=mode == "int8")
    assert again.emitted.files == files  # same model, same names


def test_upper_case_pairs_give_distinct_macros(tmp_path):
    compiled = compile_model(model_with(["x", "X"], ["y", "Y"]), "net")
    header = compiled.emitted.files["net.h"]
    macros = re.findall(r"#define (\w+)", header)
    assert len(macros) == len(set(macros))
    assert "int net_invoke(const float *x, const float *X_2, float *y, float *Y_2);" in header


PREFIXES = ["int", "all", "clean", "test", "install", "nn", "nn_conv", "requant", "main", "NULL", "INT8_MAX",
            "9x", "", "入力", "__m", "a__b_", "x" * 5000, "CMakeLists", "report", "t_int"]


PREFIX_CASES = [(k, "float32") for k in range(len(PREFIXES))] + \
    [(PREFIXES.index(n), "int8") for n in ("x" * 5000, "all", "nn", "int", "入力", "main")]


@pytest.mark.parametrize("name,mode", PREFIX_CASES)
def test_hostile_model_names(name, mode, tmp_path):
    text = PREFIXES[name]
    model = model_with(["x"], ["y"])
    calib = [{"x": np.random.default_rng(k).uniform(-3, 3, (1, 4)).astype(np.float32)} for k in range(8)]
    compiled = compile_model(model, text, mode=mode, calib=calib if mode == "int8" else None, float_io=mode == "int8")
    prefix = compiled.report["model"]
    assert prefix == model_prefix(None, text) == prefix_identifier(text)
    assert len(prefix) <= MAX_PREFIX and not is_reserved(prefix)
    assert f"{prefix}.h" in compiled.emitted.files and f"{prefix}.c" in compiled.emitted.files
    check_folder(compiled, tmp_path)
    check_runs(compiled, mode, name)


def test_cmake_accepts_a_model_named_like_a_reserved_target(tmp_path):
    compiled = compile_model(model_with(["x"], ["y"]), "all")
    folder = tmp_path / "all"
    folder.mkdir()
    for name, text in compiled.emitted.files.items():
        (folder / name).write_text(text)
    run(["cmake", "-S", str(folder), "-B", str(tmp_path / "build")], tmp_path)


def test_long_names_are_cut_with_a_hash_that_keeps_them_apart():
    a, b = prefix_identifier("x" * 5000), prefix_identifier("x" * 4999 + "y")
    assert a != b and len(a) == len(b) == MAX_PREFIX and a.startswith("xxxx")
    ids = Identifiers(max_length=30)
    cut = [ids.make("v" * 100 + str(k)) for k in range(50)]
    assert len(set(cut)) == 50 and all(len(c) <= 30 for c in cut)
    assert Identifiers(max_length=30).make("v" * 100 + "0") == cut[0]  # stable


def test_identifiers_on_random_text():
    """Seeded random names (underscores, digits, unicode, reserved words, case twins): every
    identifier valid, not reserved, not under a reserved prefix, short, distinct ignoring case."""
    rng = np.random.default_rng(12)
    alphabet = list("aAbBxX_09 -.:/é入") + ["int", "nn_", "m_", "NAN", "t_", "__", "size_t", "Requant_"]
    for trial in range(40):
        ids = Identifiers(reserved_prefixes=("nn_", "requant_", "m_"), reserved=("i", "status"), max_length=24)
        made = [ids.make("".join(rng.choice(alphabet, rng.integers(0, 12)))) for _ in range(60)]
        assert len({m.upper() for m in made}) == len(made)
        for m in made:
            assert NAME_IDENT.fullmatch(m) and len(m) <= 24, m
            assert not is_reserved(m) and m not in ("i", "status"), m
            assert not m.lower().startswith(("nn_", "requant_", "m_")), m


def test_empty_input_name_is_a_clean_error():
    with pytest.raises(CompileError, match="invalid ONNX model: .*non-empty"):
        compile_model(model_with([""], ["y"]), "net")


def test_duplicated_output_is_refused_by_name(tmp_path, capsys):
    model = model_with(["x"], ["y"])
    model.graph.output.append(model.graph.output[0])
    with pytest.raises(CompileError, match="output 'y' is listed twice in the model's outputs"):
        compile_model(model, "net")
    path = tmp_path / "dup.onnx"
    onnx.save(model, path)
    assert main(["compile", str(path), "-o", str(tmp_path / "out"), "--float"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "listed twice" in err
    assert not (tmp_path / "out").exists()


def test_negative_macro_values_are_parenthesised(tmp_path):
    """-NET_INPUT_X_ZERO_POINT must negate the value, not parse as `--128`."""
    rng = np.random.default_rng(3)
    calib = [{"x": rng.uniform(0.0, 3.0, (1, 4)).astype(np.float32)} for _ in range(8)]  # zero point -128
    compiled = compile_model(model_with(["x"], ["y"]), "net", mode="int8", calib=calib)
    header = compiled.emitted.files["net.h"]
    assert "#define NET_INPUT_X_ZERO_POINT (-128)" in header
    for name, text in compiled.emitted.files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "use.c").write_text(
        '#include "net.h"\nint negated(void);\nint negated(void) { return -NET_INPUT_X_ZERO_POINT; }\n'
        "float shifted(float q);\nfloat shifted(float q) { return NET_INPUT_X_SCALE * (q-NET_INPUT_X_ZERO_POINT); }\n"
        "typedef char zero_point_is_minus_128[-NET_INPUT_X_ZERO_POINT == 128 ? 1 : -1];\n")
    run(["gcc", "-std=c99", *STRICT, "-c", "use.c"], tmp_path)


def test_cli_long_model_name_and_file_count(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(model_with(["x"], ["y"]), path)
    for extra, out in (([], tmp_path / "folder"), (["--single-header"], tmp_path / "single")):
        assert main(["compile", str(path), "-o", str(out), "--float", "--name", "n" * 5000, *extra]) == 0
        line = capsys.readouterr().out
        written = sorted(p.name for p in out.iterdir())
        assert f", {len(written)} files;" in line, line
        assert max(map(len, written)) <= 64, written
    assert "report.json" in written and len(written) == 2


def test_cnames_doctests():
    import doctest

    import codegen.emit.cnames

    assert doctest.testmod(codegen.emit.cnames).failed == 0
