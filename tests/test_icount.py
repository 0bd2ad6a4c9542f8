"""Instruction counts (benchmarks/icount.py) are exact and repeat run after run.

The QEMU plugin is checked on hand-written assembly whose executed instruction count is known,
on every Cortex-M target; callees of NAME_invoke are checked to count on Cortex-M and on the host
(callgrind); the bundled example's counts repeat exactly and scale with its MACs.

Without valgrind, the Cortex-M toolchain or QEMU these tests skip with what to install; under
CI=true (.ci/run installs them) a missing tool fails.
"""

import os
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.icount import MARKERS, build_plugin, count_image, count_instructions, main
from codegen import cross
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.targets import load_target, target_names
from codegen.samples import load_samples

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"
SEMIHOSTING = [t for t in target_names() if load_target(t).get("run", {}).get("kind") == "semihosting"]


def need(target: str) -> None:
    """Skip (fail under CI=true) naming what to install when `target`'s counting tools are missing."""
    spec = load_target(target)
    if target == "host":
        missing = [t for t in ("gcc", "valgrind") if shutil.which(t) is None]
        problem = None
        if missing:
            problem = f"{', '.join(missing)} not found; install with: apt-get install {' '.join(missing)}"
    else:
        problem = cross.missing_tools(spec)
        if problem is None and shutil.which(spec["nm"]) is None:
            problem = f"{spec['nm']} not found; install with: apt-get install {' '.join(spec['apt'])}"
        if problem is None and shutil.which("gcc") is None:
            problem = "gcc (builds the QEMU plugin) not found; install with: apt-get install gcc"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{target}: {problem}")
        pytest.skip(f"{target}: {problem}")


def marker_program(iterations: int) -> str:
    """A main() calling hand-written Thumb code (ARMv6-M subset, so every Cortex-M runs it):
    the first marker runs a loop of `iterations` calls of a three-instruction leaf, then
    branches to the second marker. Executed from entering the first marker to entering the
    second: push, movs (2); per iteration bl + leaf (3) + subs, bne (6); pop, pop, mov, b (4)."""
    begin, end = MARKERS
    body = "\n".join([
        ".syntax unified", ".thumb", ".text", ".align 1",
        f".global {begin}", f".global {end}", f".type {begin}, %function", f".type {end}, %function",
        ".type onnx2mcu_test_leaf, %function",
        ".thumb_func", f"{begin}:",
        "push {r4, lr}", f"movs r4, #{iterations}",
        "1:", "bl onnx2mcu_test_leaf", "subs r4, #1", "bne 1b",
        "pop {r4}", "pop {r1}", "mov lr, r1", f"b {end}",
        ".thumb_func", "onnx2mcu_test_leaf:",
        "adds r0, #1", "adds r0, #1", "bx lr",
        ".thumb_func", f"{end}:",
        "bx lr",
    ])
    asm = "\n".join(f'    "{line}\\n"' for line in body.splitlines())
    return f"void {begin}(void);\n\n__asm__(\n{asm}\n);\n\nint main(void)\n{{\n    {begin}();\n    return 0;\n}}\n"


@pytest.mark.parametrize("target", SEMIHOSTING)
def test_plugin_counts_hand_written_code_exactly(target, tmp_path):
    need(target)
    for iterations in (1, 7, 200):
        folder = tmp_path / str(iterations)
        folder.mkdir()
        image = cross.build_image({}, marker_program(iterations), target, folder)
        assert count_image(image, target) == 2 + 6 * iterations + 4


SPIN_LOOP = 4  # instructions per iteration of onnx2mcu_test_spin, on every architecture below

SPIN_SOURCE = r"""/* unsigned onnx2mcu_test_spin(unsigned n): n > 0 iterations of four instructions, then return */
#if defined(__thumb__)
__asm__(".syntax unified\n.thumb\n.text\n.align 1\n.global onnx2mcu_test_spin\n"
        ".type onnx2mcu_test_spin, %function\n.thumb_func\nonnx2mcu_test_spin:\n"
        "1: adds r1, r1, #1\nnop\nsubs r0, r0, #1\nbne 1b\nbx lr\n");
#elif defined(__x86_64__)
__asm__(".text\n.global onnx2mcu_test_spin\n.type onnx2mcu_test_spin, @function\nonnx2mcu_test_spin:\n"
        "1: addl $1, %eax\nnop\nsubl $1, %edi\njne 1b\nret\n");
#elif defined(__aarch64__)
__asm__(".text\n.global onnx2mcu_test_spin\n.type onnx2mcu_test_spin, %function\nonnx2mcu_test_spin:\n"
        "1: add w1, w1, #1\nnop\nsubs w0, w0, #1\nb.ne 1b\nret\n");
#else
#error "onnx2mcu_test_spin: no hand-written loop for this architecture"
#endif
typedef int onnx2mcu_test_spin_defined;
"""


def spin_folder() -> tuple[dict, dict]:
    """A model folder whose invoke copies x to y and calls the hand-written loop x[0] times: two
    counts differ by exactly SPIN_LOOP instructions per iteration, and only if callees count."""
    files = {
        "k.h": "#include <stdint.h>\nint k_invoke(const int8_t *x, int8_t *y);\n",
        "k.c": '#include "k.h"\nunsigned onnx2mcu_test_spin(unsigned n);\n\n'
               "int k_invoke(const int8_t *x, int8_t *y)\n{\n    y[0] = x[0];\n"
               "    (void)onnx2mcu_test_spin((uint8_t)x[0]);\n    return 0;\n}\n",
        "spin.c": SPIN_SOURCE,
    }
    spec = {"name": "x", "dtype": "int8", "ctype": "int8_t", "size": 1, "shape": [1]}
    return files, {"invoke": "k_invoke", "inputs": [spec], "outputs": [{**spec, "name": "y"}]}


@pytest.mark.parametrize("target", ["cortex-m4", "host"])
def test_callees_count_exactly(target):
    need(target)
    if target == "host" and platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"):
        pytest.skip(f"no hand-written loop for a {platform.machine()} host")
    files, api = spin_folder()
    counts = {n: count_instructions(files, api, {"x": np.array([n], np.int8)}, target) for n in (3, 40, 103)}
    assert counts[40] - counts[3] == 37 * SPIN_LOOP
    assert counts[103] - counts[3] == 100 * SPIN_LOOP
    assert counts[3] > 3 * SPIN_LOOP


@pytest.fixture(scope="module")
def digits():
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz", target="cortex-m4")
    samples, _ = load_samples(EXAMPLE / "calib.npz", compiled.graph)
    return compiled, [quantize_inputs(compiled.graph, s) for s in samples[:2]]


@pytest.mark.parametrize("target", ["cortex-m4", "host"])
def test_example_counts_repeat_and_scale(target, digits):
    need(target)
    compiled, samples = digits
    files = compiled.emitted.files if target != "host" else (compiled.host_files or compiled.emitted.files)
    api, macs = compiled.report["api"], compiled.report["macs"]
    first = count_instructions(files, api, samples[0], target)
    assert first == count_instructions(files, api, samples[0], target)
    assert macs / 4 <= first <= 50 * macs
    other = count_instructions(files, api, samples[1], target)
    assert other == count_instructions(files, api, samples[1], target)
    assert macs / 4 <= other <= 50 * macs


def test_cli_prints_count_per_mac(capsys):
    need("cortex-m4")
    assert main([str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"), "--target", "cortex-m4"]) == 0
    line = capsys.readouterr().out.strip()
    count = int(line.split(": ")[1].split()[0])
    assert line.endswith(f"{count / 81920:.2f} instructions per MAC") and "81920 MACs" in line
    assert main([str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"), "--sample", "100000"]) == 2
    assert "no sample 100000" in capsys.readouterr().err


def test_plugin_is_built_once(tmp_path):
    need("cortex-m4")
    lib = build_plugin(tmp_path)
    stamp = lib.stat().st_mtime_ns
    assert build_plugin(tmp_path) == lib and lib.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "plugins").iterdir()] == [lib.name]


def test_errors_name_the_problem(tmp_path):
    need("cortex-m4")
    files, api = spin_folder()
    with pytest.raises(CompileError, match="armv7-linux: instruction counts need host or a Cortex-M target"):
        count_instructions(files, api, {"x": np.array([1], np.int8)}, "armv7-linux")
    with pytest.raises(CompileError, match="no array for input 'x'"):
        count_instructions(files, api, {"z": np.array([1], np.int8)}, "cortex-m4")
    image = cross.build_image({}, "int main(void)\n{\n    return 0;\n}\n", "cortex-m4", tmp_path)
    with pytest.raises(CompileError, match=f"no symbol {MARKERS[0]}, {MARKERS[1]}"):
        count_image(image, "cortex-m4")
