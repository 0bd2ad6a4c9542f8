"""Several models in one firmware, and memory placement under the user's control.

Every folder carries its runtime under its own prefix (PREFIX_nn_*.c, PREFIX_nn.h), so folders
of any targets and options link into one image and each model runs the kernels it was compiled
with; a multi-model compile shares the runtime (and, with --shared-arena, the arena); the
arena may be defined by the caller (--arena extern) and the arena and tables placed in sections.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from codegen.cli import main
from codegen.compiler import compile_model, write_folder
from codegen.targets import load_target
from test_end_to_end import EXAMPLE
from test_targets import need

CALIB = str(EXAMPLE / "calib.npz")
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
LIBC = {"memcpy", "memmove", "memset", "expf", "tanhf", "floorf", "sqrtf", "logf", "fabsf", "roundf"}


def defined_and_undefined(nm: str, objects: list) -> tuple[set[str], set[str]]:
    """Global symbols the objects define, and those they need from elsewhere."""
    out = subprocess.run([nm, "-g", *map(str, objects)], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.endswith(":"):
            (undefined if parts[-2] == "U" else defined).add(parts[-1])
    return defined, undefined


@pytest.mark.parametrize("target, options", [("host", ["--float"]), ("host", []), ("cortex-m4", []),
                                             ("cortex-m4", ["--sparsity", "0.75", "--float-io"])])
def test_every_global_symbol_of_a_folder_carries_its_prefix(target, options, tmp_path):
    """nm on the compiled folder: every symbol it defines starts with the model's prefix, and
    every one it needs is the folder's own or from string.h / math.h."""
    if target != "host":
        need(target)
    spec = load_target(target)
    out = tmp_path / "digits"
    assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", CALIB, "--target", target, "-o", str(out),
                 *options]) == 0
    sources = sorted(p.name for p in out.glob("*.c"))
    assert len(sources) >= 3 and all(s.startswith("digits") for s in sources)
    subprocess.run([spec["cc"], *spec["cflags"], *STRICT, "-Os", "-c", *sources], cwd=out, check=True)
    defined, undefined = defined_and_undefined(spec.get("nm", "nm"), sorted(out.glob("*.o")))
    assert "digits_invoke" in defined and any(s.startswith("digits_nn_") for s in defined)
    assert all(s.startswith("digits_") for s in defined), sorted(defined)
    assert all(s in defined or s in LIBC for s in undefined), sorted(undefined - defined - LIBC)
    text = "".join(p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h"))
    assert not re.search(r"(?<![A-Za-z0-9_])(nn_|NN_|REQUANT)", text)  # identifiers, includes, comments


_FLASH: list[int] = []


def default_flash() -> int:
    """The example's int8 flash bytes on the host under its own name."""
    if not _FLASH:
        _FLASH.append(compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=CALIB, measure=True
                                    ).report["flash_bytes"])
    return _FLASH[0]


@pytest.mark.parametrize("name", ["nn", "requant", "nn_conv", "requant_dsp", "nn_fc_s8"])
def test_a_model_named_like_a_runtime_file_keeps_its_own_files(name, tmp_path):
    """--name equal to a runtime file's stem: NAME.h and NAME.c are the model's, the folder builds
    and its flash figure is the model's (not a runtime file's)."""
    out = tmp_path / "out"
    assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", CALIB, "--name", name, "-o", str(out),
                 "--target", "host"]) == 0
    assert f"int {name}_invoke(" in (out / f"{name}.h").read_text()
    assert f"{name}_invoke(" in (out / f"{name}.c").read_text()
    names = sorted(p.name for p in out.iterdir())
    assert f"{name}_nn.h" in names and f"{name}_requant.h" in names
    subprocess.run(["gcc", *STRICT, "-c", *[n for n in names if n.endswith(".c")]], cwd=out, check=True)
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["flash_bytes"] == default_flash() and report["weights_bytes"] > 4000


def test_two_files_under_one_name_are_an_error():
    from codegen.emit.model import add_file
    from codegen.errors import CompileError

    files = {"a.h": "x"}
    add_file(files, "a.h", "x")  # the same file twice (one runtime file for two models) is fine
    with pytest.raises(CompileError, match="two generated files would be named a.h"):
        add_file(files, "a.h", "y")
