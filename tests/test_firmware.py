"""Several models in one firmware, and memory placement under the user's control.

Every folder carries its runtime under its own prefix (PREFIX_nn_*.c, PREFIX_nn.h), so folders
of any targets and options link into one image and each model runs the kernels it was compiled
with; a multi-model compile shares the runtime (and, with --shared-arena, the arena); the
arena may be defined by the caller (--arena extern) and the arena and tables placed in sections.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from codegen import cross
from codegen.cli import main
from codegen.compiler import compile_model, write_folder
from codegen.targets import load_target
from test_end_to_end import EXAMPLE, FIXTURES
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


# ---- two models of different targets and options in one Cortex-M4 image ----------------------

M4 = "cortex-m4"
SAMPLES = 3


class Model:
    """A compiled model, its folder and the references of a few samples (int8 API arrays)."""

    def __init__(self, compiled, inputs: list[dict]):
        from codegen.compiler import quantize_inputs
        from codegen.reference import run_int8

        self.compiled = compiled
        self.prefix = compiled.report["model"]
        self.api = compiled.report["api"]
        self.inputs = [quantize_inputs(compiled.graph, feeds) for feeds in inputs]
        self.expected = []
        for q in self.inputs:
            out = run_int8(compiled.graph, q)
            self.expected.append(b"".join(np.asarray(out[t["name"]], t["dtype"]).tobytes()
                                          for t in self.api["outputs"]).hex())


@pytest.fixture(scope="module")
def two_models():
    """The example, int8 for the host (portable kernels), and a residual convolutional network,
    int8 for the Cortex-M4 (DSP convolutions) pruned to 75% (sparse kernels)."""
    from codegen.passes.prune import PruneOptions
    from codegen.samples import load_samples

    digits = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=CALIB)
    resnet = compile_model(FIXTURES / "torch_resnetish.onnx", mode="int8", calib=FIXTURES / "torch_resnetish.npz",
                           target=M4, prune=PruneOptions(sparsity=0.75))
    assert any(k.startswith("opt/dsp/") for k in resnet.report["optimized_kernels"])
    assert not digits.report["optimized_kernels"]
    assert {"nn_conv_s8", "nn_fc_s8"} <= {k for layer in digits.report["layers"] for k in layer["kernels"]}
    assert any("sparse" in k for layer in resnet.report["layers"] for k in layer["kernels"])
    return [Model(c, load_samples(path, c.graph)[0][:SAMPLES])
            for c, path in ((digits, EXAMPLE / "test.npz"), (resnet, FIXTURES / "torch_resnetish.npz"))]


def main_source(models: list[Model]) -> str:
    """main(): every sample of every model in turn, one line per run: `out MODEL SAMPLE HEX`."""
    lines = ["#include <stdio.h>", "#include <stdint.h>"]
    lines += [f'#include "{m.prefix}.h"' for m in models]
    calls = []
    for i, m in enumerate(models):
        args = []
        for k, spec in enumerate(m.api["inputs"]):
            rows = ", ".join("{" + ", ".join(str(int(v)) for v in np.asarray(q[spec["name"]]).reshape(-1)) + "}"
                             for q in m.inputs)
            lines.append(f"static const {spec['ctype']} m{i}_in{k}[{len(m.inputs)}][{spec['size']}] = {{{rows}}};")
            args.append(f"m{i}_in{k}[s]")
        for k, spec in enumerate(m.api["outputs"]):
            lines.append(f"static {spec['ctype']} m{i}_out{k}[{spec['size']}];")
            args.append(f"m{i}_out{k}")
        calls += [f"        if ({m.api['invoke']}({', '.join(args)}) != 0) {{ return 2; }}",
                  f'        printf("out {i} %d ", s);']
        calls += [f"        dump(m{i}_out{k}, sizeof m{i}_out{k});" for k in range(len(m.api["outputs"]))]
        calls.append('        printf("\\n");')
    lines += ["", "static void dump(const void *data, unsigned bytes)", "{",
              "    const unsigned char *b = (const unsigned char *)data;", "    unsigned i;",
              "    for (i = 0; i < bytes; ++i) {", '        printf("%02x", b[i]);', "    }", "}", "",
              "int main(void)", "{", "    int s;", f"    for (s = 0; s < {SAMPLES}; ++s) {{", *calls, "    }",
              "    return 0;", "}", ""]
    return "\n".join(lines)


def check_output(text: str, models: list[Model]) -> None:
    """Each model's bytes equal its int8 reference, sample by sample."""
    got = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "out":
            got[(int(parts[1]), int(parts[2]))] = parts[3]
    for i, m in enumerate(models):
        for s, want in enumerate(m.expected):
            assert got.get((i, s)) == want, f"model {m.prefix}, sample {s}"


def harness(folder, script_extra: str = "") -> list[str]:
    """startup.c and image.ld of the Cortex-M harness in `folder` (the linker script with
    `script_extra` output sections before .bss); the link arguments."""
    from string import Template

    run = load_target(M4)["run"]
    script = Template((cross.HARNESS / "cortex_m.ld").read_text()).substitute(
        {k: hex(run[k]) for k in ("flash_origin", "flash_size", "ram_origin", "ram_size")})
    script = script.replace("    .bss (NOLOAD)", script_extra + "    .bss (NOLOAD)", 1)
    (folder / "image.ld").write_text(script)
    shutil.copyfile(cross.HARNESS / "cortex_m_startup.c", folder / "startup.c")
    return ["-T", str(folder / "image.ld"), "-Wl,--gc-sections", *run.get("link_flags", [])]


def run_image(image) -> str:
    proc = subprocess.run(cross.emulator_command(M4, image), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + "\n" + proc.stderr


def mcu_flags() -> list[str]:
    return list(load_target(M4)["cflags"])


def write_models(models: list[Model], root, single_header: bool = False) -> None:
    from codegen.emit import EmittedModel
    from codegen.emit.model import single_header as one_header

    for m in models:
        emitted = m.compiled.emitted
        if single_header:
            emitted = EmittedModel({f"{m.prefix}.h": one_header(emitted, m.prefix)}, emitted.report)
        write_folder(emitted, root / m.prefix)


def test_two_models_in_one_image_with_make(two_models, tmp_path):
    need(M4)
    write_models(two_models, tmp_path)
    (tmp_path / "main.c").write_text(main_source(two_models))
    link = harness(tmp_path)
    rules = []
    for m in two_models:
        v = m.prefix.upper()
        rules += [f"include {m.prefix}/{m.prefix}.mk", f"OBJS += $({v}_SRCS:.c=.o)",
                  f"$({v}_SRCS:.c=.o): %.o: %.c", f"\t$(CC) $(MCU) $({v}_CFLAGS) $(STRICT) -c $< -o $@"]
    (tmp_path / "Makefile").write_text("\n".join([
        "CC = arm-none-eabi-gcc", f"MCU = {' '.join(mcu_flags())}", f"STRICT = {' '.join(STRICT[1:])}",
        "all: image.elf", "OBJS :=", *rules,
        "image.elf: $(OBJS) main.c startup.c",
        f"\t$(CC) $(MCU) -std=c99 $(STRICT) -Os $(addprefix -I,{' '.join(m.prefix for m in two_models)}) "
        f"main.c startup.c $(OBJS) {' '.join(link)} -o $@", ""]))
    proc = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_output(run_image(tmp_path / "image.elf"), two_models)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed (apt-get install cmake)")
def test_two_models_in_one_image_with_cmake(two_models, tmp_path):
    need(M4)
    write_models(two_models, tmp_path)
    (tmp_path / "main.c").write_text(main_source(two_models))
    link = harness(tmp_path)
    (tmp_path / "CMakeLists.txt").write_text("\n".join([
        "cmake_minimum_required(VERSION 3.13)", "project(firmware LANGUAGES C)",
        *[f"add_subdirectory({m.prefix})" for m in two_models],
        "add_executable(image.elf main.c startup.c)",
        f"target_link_libraries(image.elf PRIVATE {' '.join(m.prefix for m in two_models)})",
        f"target_link_options(image.elf PRIVATE {' '.join(link)})", ""]))
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(tmp_path), "-B", str(build), "-DCMAKE_SYSTEM_NAME=Generic",
                 "-DCMAKE_C_COMPILER=arm-none-eabi-gcc", "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY",
                 f"-DCMAKE_C_FLAGS={' '.join(mcu_flags() + STRICT[1:])}", "-DCMAKE_BUILD_TYPE=MinSizeRel"]
    for cmd in (configure, ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    check_output(run_image(build / "image.elf"), two_models)


def test_two_single_headers_in_one_image(two_models, tmp_path):
    """Both implementations in one translation unit, the API used from another."""
    need(M4)
    write_models(two_models, tmp_path, single_header=True)
    assert sorted(p.name for p in (tmp_path / two_models[1].prefix).iterdir()) == sorted([
        f"{two_models[1].prefix}.h", "report.json"])
    (tmp_path / "main.c").write_text(main_source(two_models))
    (tmp_path / "models.c").write_text("".join(f'#define {m.prefix.upper()}_IMPLEMENTATION\n#include "{m.prefix}.h"\n'
                                               for m in two_models))
    link = harness(tmp_path)
    includes = [f"-I{tmp_path / m.prefix}" for m in two_models]
    proc = subprocess.run(["arm-none-eabi-gcc", *mcu_flags(), *STRICT, "-Os", "-ffunction-sections",
                           "-fdata-sections", *includes, "main.c", "models.c", "startup.c", *link, "-o", "image.elf"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    check_output(run_image(tmp_path / "image.elf"), two_models)


# ---- multi-model compile -------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["own-arenas", "shared-arena"])
def test_multi_model_compile_runs_each_model_bit_exact(shared, tmp_path, capsys):
    """`compile a.onnx b.onnx -o OUT`: one folder, the runtime once; the models, run in turn
    (with --shared-arena in one arena), each give their int8 reference's bytes."""
    import json

    from codegen.build import HostModel
    from codegen.compiler import quantize_inputs
    from codegen.reference import run_int8
    from codegen.samples import load_samples

    out = tmp_path / "models"
    fixture = FIXTURES / "torch_resnetish"
    args = ["compile", str(EXAMPLE / "digits.onnx"), f"{fixture}.onnx", "--calib", CALIB, "--calib", f"{fixture}.npz",
            "-o", str(out)] + (["--shared-arena"] if shared else [])
    assert main(args) == 0
    assert "2 models" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    names = sorted(p.name for p in out.iterdir())
    assert {"digits.h", "digits.c", "torch_resnetish.h", "torch_resnetish.c", "models.h", "models.mk",
            "CMakeLists.txt", "models_nn.h", "models_nn_conv_s8.c", "models_nn_fc_s8.c"} <= set(names)
    assert ("models.c" in names) == shared
    assert not any(n.startswith(("digits_nn", "torch_resnetish_nn")) for n in names)
    digits, resnet = report["models"]
    arenas = [digits["arena_bytes"], resnet["arena_bytes"]]
    assert report["arena_bytes"] == (max(arenas) if shared else sum(arenas))
    # the shared runtime: flash saved is at least the smaller model's copy of nn_conv_s8 and nn_fc_s8
    assert report["saved"]["flash_bytes"] > 0
    assert report["saved"]["ram_bytes"] >= (min(arenas) if shared else 0)
    assert report["separate"]["flash_bytes"] == digits["flash_bytes"] + resnet["flash_bytes"]
    assert report["flash_bytes"] + report["saved"]["flash_bytes"] == report["separate"]["flash_bytes"]
    files = {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h")}
    runs = []
    for own, path in ((digits, EXAMPLE / "test.npz"), (resnet, f"{fixture}.npz")):
        graph = compile_model(EXAMPLE / "digits.onnx" if own is digits else f"{fixture}.onnx", mode="int8",
                              calib=CALIB if own is digits else f"{fixture}.npz").graph
        host = HostModel(files, own["api"])
        runs.append((host, graph, load_samples(path, graph)[0][:4]))
    for s in range(4):  # one model after the other, the activations of each overwriting the other's
        for host, graph, samples in runs:
            q = quantize_inputs(graph, samples[s])
            got = host.run([q[n] for n in graph.inputs])
            want = run_int8(graph, q)
            for g, name in zip(got, graph.outputs):
                np.testing.assert_array_equal(g, want[name])


@pytest.mark.parametrize("args, message", [
    (["--calib", CALIB], "2 models and 1 --calib files: give --calib once per model"),
    (["--calib", CALIB, "--calib", CALIB, "--single-header"], "--single-header takes one model"),
    (["--calib", CALIB, "--calib", CALIB, "--name", "digits"], "model 'digits' and the folder's name 'digits'"),
])
def test_multi_model_compile_errors(args, message, tmp_path, capsys):
    model = str(EXAMPLE / "digits.onnx")
    other = tmp_path / "small.onnx"
    shutil.copyfile(model, other)
    assert main(["compile", model, str(other), "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("onnx2mcu: error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_multi_model_names_must_not_overlap(tmp_path, capsys):
    model = str(EXAMPLE / "digits.onnx")
    for stem in ("Digits", "digits_x"):
        (tmp_path / stem).mkdir()
        shutil.copyfile(model, tmp_path / stem / f"{stem}.onnx")
        assert main(["compile", model, str(tmp_path / stem / f"{stem}.onnx"), "--calib", CALIB, "--calib", CALIB,
                     "-o", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert f"model '{stem}' and model 'digits' would share C names" in err, err
    assert main(["compile", model, "--shared-arena", "--calib", CALIB, "-o", str(tmp_path / "out")]) == 2
    assert "--shared-arena needs two or more models" in capsys.readouterr().err


# ---- C++ and memory placement ----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["folder", "shared-extern-arena"])
def test_cpp_translation_unit_includes_the_headers(layout, tmp_path):
    """g++ -pedantic compiles a C++ file that includes NAME.h (and, for several models, the
    folder's header and the caller's arena definition); the program gives the reference's bytes."""
    from codegen.compiler import quantize_inputs
    from codegen.reference import run_int8
    from codegen.samples import load_samples

    if shutil.which("g++") is None:  # .ci/run installs it
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("g++ not found; install with: apt-get install g++")
    out = tmp_path / "models"
    args = ["compile", str(EXAMPLE / "digits.onnx"), "--calib", CALIB, "--float-io", "-o", str(out)]
    if layout != "folder":
        args[2:2] = [str(FIXTURES / "skl_mlp.onnx")]
        args += ["--calib", str(FIXTURES / "skl_mlp.npz"), "--shared-arena", "--arena", "extern"]
    assert main(args) == 0
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=CALIB)
    q = quantize_inputs(compiled.graph, load_samples(EXAMPLE / "test.npz", compiled.graph)[0][0])["x"]
    header, arena = ("digits.h", "") if layout == "folder" else \
        ("models.h", "int32_t models_arena[MODELS_ARENA_WORDS];\n")
    (tmp_path / "main.cpp").write_text(
        f'#include <cstdio>\n#include "{header}"\n{arena}'
        f"static const int8_t x[DIGITS_INPUT_X_SIZE] = {{{', '.join(str(int(v)) for v in q.reshape(-1))}}};\n"
        "int main() {\n  int8_t y[DIGITS_OUTPUT_LOGITS_SIZE];\n  float fx[DIGITS_INPUT_X_SIZE] = {0};\n"
        "  float fy[DIGITS_OUTPUT_LOGITS_SIZE];\n  if (digits_invoke(x, y) != 0) { return 1; }\n"
        "  for (int i = 0; i < DIGITS_OUTPUT_LOGITS_SIZE; ++i) { std::printf(\"%d\\n\", y[i]); }\n"
        "  return digits_invoke_float(fx, fy);\n}\n")
    sources = sorted(str(p) for p in out.glob("*.c"))
    subprocess.run(["gcc", *STRICT, "-c", *sources], cwd=tmp_path, check=True)
    subprocess.run(["g++", "-std=c++11", *STRICT[1:], f"-I{out}", "-c", "main.cpp"], cwd=tmp_path, check=True)
    subprocess.run(["g++", "-o", "prog", *sorted(p.name for p in tmp_path.glob("*.o")), "-lm"], cwd=tmp_path,
                   check=True)
    got = subprocess.run(["./prog"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    want = run_int8(compiled.graph, {"x": q})[compiled.graph.outputs[0]].reshape(-1)
    assert [int(v) for v in got] == want.tolist()


DTCM = "    .dtcm (NOLOAD) : ALIGN(4) { *(.dtcm*) } > RAM\n    .extflash : ALIGN(4) { *(.extflash*) } > FLASH\n"
IN_DTCM = '__attribute__((section(".dtcm")))'


@pytest.mark.parametrize("arena", ["static", "extern"])
def test_arena_and_weights_in_the_sections_the_user_names(arena, tmp_path):
    """NAME_WEIGHTS_ATTR puts every constant table in .extflash, NAME_ARENA_ATTR (static arena)
    or the caller's definition (--arena extern) the arena in .dtcm; objdump shows them there in
    the linked Cortex-M4 image, which still gives the reference's bytes."""
    from codegen.samples import load_samples

    need(M4)
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=CALIB, target=M4, arena=arena)
    model = Model(compiled, load_samples(EXAMPLE / "test.npz", compiled.graph)[0][:SAMPLES])
    folder = write_folder(compiled.emitted, tmp_path / "digits")
    header = (folder / "digits.h").read_text()
    assert "#define DIGITS_ARENA_ALIGN 4" in header
    assert ("extern int32_t digits_arena[DIGITS_ARENA_WORDS];" in header) == (arena == "extern")
    main_c = main_source([model])
    if arena == "extern":
        main_c += f"\nint32_t digits_arena[DIGITS_ARENA_WORDS] {IN_DTCM};\n"
    (tmp_path / "main.c").write_text(main_c)
    link = harness(tmp_path, DTCM)
    defines = ['-DDIGITS_WEIGHTS_ATTR=__attribute__((section(".extflash")))']
    if arena == "static":
        defines.append(f"-DDIGITS_ARENA_ATTR={IN_DTCM}")
    proc = subprocess.run(["arm-none-eabi-gcc", *mcu_flags(), *STRICT, "-Os", "-ffunction-sections", "-fdata-sections",
                           *defines, f"-I{folder}", "main.c", "startup.c", *map(str, sorted(folder.glob("*.c"))),
                           *link, "-o", "image.elf"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = subprocess.run(["arm-none-eabi-objdump", "-t", "image.elf"], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout
    sections = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].startswith("digits_"):
            sections[parts[-1]] = parts[-3]
    tables = re.findall(r"^static const \w+ (\w+)\[", (folder / "digits.c").read_text(), flags=re.M)
    assert len(tables) >= 8 and all(sections[t] == ".extflash" for t in tables), sections
    assert sections["digits_arena"] == ".dtcm"
    assert sections["digits_invoke"] == ".text" and sections["digits_p0"] == ".rodata"
    check_output(run_image(tmp_path / "image.elf"), [model])


def test_every_runtime_name_is_one_the_prefix_covers(tmp_path):
    """The prefix rewrite covers names that begin with nn_, NN_ or REQUANT: every macro, type and
    function (static ones too: two single headers may share one translation unit) of runtime_c
    is such a name."""
    from codegen.paths import RUNTIME_DIR

    covered = re.compile(r"(nn_|NN_|REQUANT)")
    texts = {p: p.read_text() for p in sorted(RUNTIME_DIR.rglob("*.[ch]"))}
    for path, text in texts.items():
        names = re.findall(r"^\s*#\s*define\s+(\w+)", text, flags=re.M)
        names += re.findall(r"^\}\s*(\w+)\s*;", text, flags=re.M)  # typedef struct { ... } name;
        assert all(covered.match(n) for n in names), (path.name, [n for n in names if not covered.match(n)])
    sources = [p for p in texts if p.suffix == ".c"]
    assert len(sources) > 30
    for path in sources:
        obj = tmp_path / f"{path.parent.name}_{path.stem}.o"
        subprocess.run(["gcc", "-std=c99", "-O1", "-I", str(RUNTIME_DIR / "include"), "-c", str(path), "-o", str(obj)],
                       check=True)
    out = subprocess.run(["nm", *map(str, sorted(tmp_path.glob("*.o")))], capture_output=True, text=True,
                         check=True).stdout
    symbols = {line.split()[-1] for line in out.splitlines()
               if len(line.split()) >= 2 and line.split()[-2] not in ("U", "u")}
    stray = sorted(s for s in symbols if not covered.match(s) and not s.startswith(".") and "." not in s)
    assert not stray, stray


def test_multi_model_folder_with_shared_arena_in_a_cortex_m4_image(tmp_path):
    """The folder of `compile digits.onnx torch_resnetish.onnx --target cortex-m4 --shared-arena`
    through its Makefile fragment into one image: both models, in turn in the one arena, give
    their references' bytes under emulation."""
    from codegen.bundle import compile_bundle
    from codegen.emit import EmittedModel
    from codegen.passes.prune import PruneOptions
    from codegen.samples import load_samples

    need(M4)
    fixture = FIXTURES / "torch_resnetish"
    emitted, compiled = compile_bundle([EXAMPLE / "digits.onnx", f"{fixture}.onnx"], "models",
                                       [CALIB, f"{fixture}.npz"], shared_arena=True, target=M4, measure=False,
                                       mode="int8", prune=PruneOptions(sparsity=0.75))
    write_folder(EmittedModel(emitted.files, emitted.report), tmp_path / "models")
    models = [Model(c, load_samples(path, c.graph)[0][:SAMPLES])
              for c, path in zip(compiled, (EXAMPLE / "test.npz", f"{fixture}.npz"))]
    (tmp_path / "main.c").write_text(main_source(models).replace('#include "digits.h"', '#include "models.h"', 1))
    link = harness(tmp_path)
    (tmp_path / "Makefile").write_text("\n".join([
        "CC = arm-none-eabi-gcc", f"STRICT = {' '.join(STRICT[1:])}", "all: image.elf",
        "include models/models.mk", "OBJS := $(MODELS_SRCS:.c=.o)",
        "$(OBJS): %.o: %.c", "\t$(CC) $(MODELS_CFLAGS) $(STRICT) -c $< -o $@",
        "image.elf: $(OBJS) main.c startup.c",
        f"\t$(CC) $(MODELS_CFLAGS) $(STRICT) main.c startup.c $(OBJS) {' '.join(link)} -o $@", ""]))
    proc = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    symbols = subprocess.run(["arm-none-eabi-nm", "image.elf"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
    assert " models_arena" in symbols and "digits_arena" not in symbols and "torch_resnetish_arena" not in symbols
    check_output(run_image(tmp_path / "image.elf"), models)


def test_extern_arena_counts_in_the_reported_ram(tmp_path):
    import json

    reports = {}
    for arena in ("static", "extern"):
        assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", CALIB, "--arena", arena,
                     "-o", str(tmp_path / arena)]) == 0
        reports[arena] = json.loads((tmp_path / arena / "report.json").read_text())
    static, extern = reports["static"], reports["extern"]
    code = (tmp_path / "extern" / "digits.c").read_text()
    assert extern["options"]["arena"] == "extern" and "static union" not in code
    assert "extern int32_t digits_arena[" in code
    assert extern["sizes"]["bss_bytes"] == static["sizes"]["bss_bytes"] - static["arena_bytes"]
    assert extern["ram_bytes"] == static["ram_bytes"]
