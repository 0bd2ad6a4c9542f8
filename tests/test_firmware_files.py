"""The CMakeLists.txt and Makefile fragment of every generated folder build it as they are."""

import shutil
import subprocess

import pytest

from codegen.compiler import compile_model, write_folder
from test_end_to_end import EXAMPLE
from test_targets import need

STRICT = "-Wall -Wextra -Werror -pedantic"
COMPILERS = {"host": "gcc", "cortex-m4": "arm-none-eabi-gcc"}


def folder(target, tmp_path):
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz", target=target)
    return write_folder(compiled.emitted, tmp_path / "digits")


@pytest.mark.parametrize("target", sorted(COMPILERS))
def test_makefile_fragment_builds(target, tmp_path):
    if target != "host":
        need(target)
    out = folder(target, tmp_path)
    (tmp_path / "Makefile").write_text(
        "include digits/digits.mk\n"
        "all: $(DIGITS_SRCS:.c=.o)\n"
        f"%.o: %.c\n\t$(CC) $(DIGITS_CFLAGS) {STRICT} -c $< -o $@\n")
    proc = subprocess.run(["make", f"CC={COMPILERS[target]}"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.o")) == ["digits.o", "digits_nn_conv_s8.o", "digits_nn_fc_s8.o",
                                                       "digits_nn_maxpool_s8.o"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed (apt-get install cmake)")
@pytest.mark.parametrize("target", sorted(COMPILERS))
def test_cmake_library_builds(target, tmp_path):
    if target != "host":
        need(target)
    out = folder(target, tmp_path)
    configure = ["cmake", "-S", str(out), "-B", str(tmp_path / "build"), f"-DCMAKE_C_FLAGS={STRICT}",
                 f"-DCMAKE_C_COMPILER={COMPILERS[target]}"]
    if target != "host":
        configure += ["-DCMAKE_SYSTEM_NAME=Generic", "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY"]
    for cmd in (configure, ["cmake", "--build", str(tmp_path / "build")]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "build" / "libdigits.a").is_file()


def test_single_header_builds_and_computes_the_same(tmp_path):
    """Two translation units include NAME.h, one defines NAME_IMPLEMENTATION; the program's
    output equals the folder's build on the same input."""
    import numpy as np

    from codegen.build import HostModel
    from codegen.cli import main
    from codegen.samples import load_samples

    calib = str(EXAMPLE / "calib.npz")
    assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", calib, "-o", str(tmp_path / "one"),
                 "--single-header"]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["digits.h", "report.json"]
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=calib)
    sample = load_samples(EXAMPLE / "test.npz", compiled.graph)[0][0]
    q = compiled.graph.tensors["x"].quant.quantize(sample["x"]).reshape(-1)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#define DIGITS_IMPLEMENTATION\n#include "digits.h"\n'
        f"static const int8_t x[DIGITS_INPUT_X_SIZE] = {{{', '.join(map(str, q))}}};\n"
        "int run(int8_t *y);\n"
        "int main(void) { int8_t y[DIGITS_OUTPUT_LOGITS_SIZE]; int i; run(y);\n"
        '  for (i = 0; i < DIGITS_OUTPUT_LOGITS_SIZE; ++i) { printf("%d\\n", y[i]); }\n  return 0; }\n'
        "const int8_t *input(void) { return x; }\n")
    (tmp_path / "other.c").write_text(
        '#include "digits.h"\nconst int8_t *input(void);\n'
        "int run(int8_t *y) { return digits_invoke(input(), y); }\n")
    build = ["gcc", "-std=c99", *STRICT.split(), "-I", str(tmp_path / "one"), "main.c", "other.c", "-o", "prog"]
    proc = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [int(v) for v in subprocess.run(["./prog"], cwd=tmp_path, capture_output=True, text=True).stdout.split()]
    want = HostModel(compiled.emitted.files, compiled.report["api"]).run([q])[0].reshape(-1)
    np.testing.assert_array_equal(got, want)
