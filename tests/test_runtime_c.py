"""runtime_c/ on its own: strict C99 with every available compiler, and only the allowed headers."""

import re
import shutil
import subprocess

import pytest

from codegen.paths import RUNTIME_DIR

SOURCES = sorted(RUNTIME_DIR.glob("src/**/*.c"))
OPTIMIZED = sorted(RUNTIME_DIR.glob("opt/*/*.c"))  # same-named replacements, per CPU feature
HEADERS = sorted(RUNTIME_DIR.glob("include/*.h"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-c"]
COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]  # CI installs both (.ci/run)


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("files", [SOURCES, OPTIMIZED], ids=["src", "opt"])
def test_runtime_compiles_strictly(cc, files, tmp_path):
    assert files
    proc = subprocess.run([cc, *STRICT, "-I", str(RUNTIME_DIR / "include"), *map(str, files)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", OPTIMIZED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_optimized_kernels_replace_a_portable_one(path):
    assert [p.name for p in SOURCES].count(path.name) == 1, f"{path.name} has no portable twin in src/"


@pytest.mark.parametrize("path", SOURCES + OPTIMIZED + HEADERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_allowed_headers_and_no_allocation(path):
    text = path.read_text()
    includes = set(re.findall(r'#include\s*<([^>]+)>', text))
    dsp = path in OPTIMIZED or (path in HEADERS and "dsp" in path.stem)  # the DSP kernels and their headers
    allowed = {"stdint.h", "string.h"} | ({"arm_acle.h"} if dsp else set())
    if path.name.endswith("_f32.c"):
        allowed |= {"math.h", "float.h"}
    assert includes <= allowed, f"{path.name} includes {sorted(includes - allowed)}"
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert not re.search(r"\b(malloc|calloc|realloc|free|printf)\s*\(", code)


@pytest.mark.parametrize("path", SOURCES + OPTIMIZED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_one_public_function_per_file(path):
    code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    public = re.findall(r"^(?!static)[a-z_][a-z0-9_ \*]*\b(nn_[a-z0-9_]+)\s*\(", code, flags=re.M)
    assert public == [path.stem], f"{path.name} defines {public}"


@pytest.mark.parametrize("path", [p for p in SOURCES + OPTIMIZED if p.stem.endswith("_s8")] + [
    RUNTIME_DIR / "include" / "requant.h"], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_int8_kernels_are_integer_only(path):
    code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    assert not re.search(r"\b(float|double)\b|math\.h", code), f"{path.name} uses floating point"
