"""The runtime and the generated code compile clean under a strict warning set, with gcc and
clang on the host and with every ARM target's toolchain and flags (targets/*.toml).

The set: -std=c99 -Wall -Wextra -Wconversion -Wsign-conversion -Wshadow -Wcast-align=strict
(clang: -Wcast-align) -Wstrict-prototypes -Wmissing-prototypes -Wundef -Wfloat-equal -Wvla
-pedantic -Werror. The folders: the example and the fixtures in every mode (int8, float32,
--float-io, sparse, 2:4, structured), each generated for every distinct set of the targets'
features that have replacement kernels (runtime_c/opt/dsp reaches only the folders of cores
with DSP) and named apart, so that one compiler call takes all the folders of a feature set (each file includes its
folder's headers). The host's gcc builds at -O2, which also runs the warnings that need the
optimizer; the other compilers check at -fsyntax-only. Without a target's toolchain its
compilations skip (fail under CI=true).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURE_MODELS
from codegen.compiler import compile_model
from codegen.paths import RUNTIME_DIR
from codegen.passes.prune import PruneOptions
from codegen.targets import load_target, target_names

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Wsign-conversion", "-Wshadow", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wundef", "-Wfloat-equal", "-Wvla", "-pedantic", "-Werror"]

MODES = {  # name: compile_model keyword arguments
    "int8": dict(mode="int8"),
    "f32": dict(mode="float32"),
    "floatio": dict(mode="int8", float_io=True),
    "sparse": dict(mode="int8", prune=PruneOptions(sparsity=0.75), encoding="sparse"),
    "p24": dict(mode="int8", prune=PruneOptions(pattern="2:4")),
    "structured": dict(mode="int8", prune=PruneOptions(pattern="structured")),
}


def features(target: str) -> tuple[str, ...]:
    """The target's features that change the generated C: those with replacement kernels in
    runtime_c/opt (they also change the layers' encodings and scratch)"""
    on = load_target(target).get("features", {})
    return tuple(sorted(k for k, v in on.items() if v and (RUNTIME_DIR / "opt" / k).is_dir()))


def compilers() -> list[tuple[str, str, list[str], str]]:
    """(label, compiler, flags, the target whose feature set its folders are generated for)"""
    found = [("host-gcc", "gcc", [*WARNINGS, "-Wcast-align=strict", "-O2"], "host"),
             ("host-clang", "clang", [*WARNINGS, "-Wcast-align", "-fsyntax-only"], "host")]
    for name in target_names():
        spec = load_target(name)
        if name != "host":
            found.append((name, spec["cc"], [*spec["cflags"], *WARNINGS, "-Wcast-align=strict", "-fsyntax-only"],
                          name))
    return found


COMPILERS = compilers()


def need(cc: str):
    if shutil.which(cc) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{cc} not found (CI=true)")
        pytest.skip(f"{cc} not found")


def run(cc: str, flags: list[str], sources: list[Path], cwd: Path):
    proc = subprocess.run([cc, *flags, *(str(s) for s in sources)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{cc} {' '.join(flags)}:\n{proc.stderr[:3000]}"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[tuple[str, ...], list[Path]]:
    """For every distinct feature set: every model in every mode, written to its own folder"""
    root = tmp_path_factory.mktemp("folders")
    sets: dict[tuple[str, ...], str] = {}
    for _, _, _, target in COMPILERS:
        sets.setdefault(features(target), target)
    out: dict[tuple[str, ...], list[Path]] = {}
    for feature_set, target in sets.items():
        out[feature_set] = []
        for model, (path, calib) in FIXTURE_MODELS.items():
            for mode, options in MODES.items():
                name = f"{model}_{mode}_{'_'.join(feature_set) or 'plain'}"
                compiled = compile_model(path, name, calib=calib, target=target, **options)
                folder = root / name
                folder.mkdir()
                for file, text in compiled.emitted.files.items():
                    (folder / file).write_text(text)
                out[feature_set].append(folder)
    return out


@pytest.mark.parametrize("label", [c[0] for c in COMPILERS])
def test_generated_folders_compile_clean(label, folders, tmp_path):
    _, cc, flags, target = next(c for c in COMPILERS if c[0] == label)
    need(cc)
    sources = sorted(p for folder in folders[features(target)] for p in folder.glob("*.c"))
    assert len({p.name for p in sources}) == len(sources)  # one call: the objects must not collide
    run(cc, ["-c", *flags], sources, tmp_path)


@pytest.mark.parametrize("label", [c[0] for c in COMPILERS])
def test_runtime_compiles_clean(label, tmp_path):
    """Every runtime_c source, the portable kernels and their replacements alike"""
    _, cc, flags, _ = next(c for c in COMPILERS if c[0] == label)
    need(cc)
    sources = sorted(RUNTIME_DIR.glob("src/**/*.c")) + sorted(RUNTIME_DIR.glob("opt/**/*.c"))
    assert len(sources) > 40
    syntax = [f for f in flags if f != "-O2"] + (["-fsyntax-only"] if "-O2" in flags else [])
    run(cc, ["-I", str(RUNTIME_DIR / "include"), *syntax], sources, tmp_path)
    if "-O2" in flags:  # the optimizer's warnings too; src and opt share file names, so two calls
        for part in ("src", "opt"):
            files = sorted(RUNTIME_DIR.glob(f"{part}/**/*.c"))
            run(cc, ["-I", str(RUNTIME_DIR / "include"), "-c", *flags], files, tmp_path)

