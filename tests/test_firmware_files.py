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
    assert sorted(p.name for p in out.glob("*.o")) == ["digits.o", "nn_conv_s8.o", "nn_fc_s8.o", "nn_maxpool_s8.o"]


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
