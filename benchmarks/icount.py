"""Instructions executed by one inference, exactly and repeatably.

- Cortex-M targets (semihosting test images under qemu-system-arm): the project's TCG plugin
  (benchmarks/plugin/insn_count.c, built here on first use) counts the instructions executed
  between entering `onnx2mcu_bench_begin` and entering `onnx2mcu_bench_end`, which the image
  calls around one `NAME_invoke`; the count covers the call and everything it calls, plus the
  two-instruction return of the first marker and the call sequence (a few instructions).
- host: valgrind's callgrind on an executable of the same folder, collecting only inside
  `NAME_invoke` (--toggle-collect).
Bare-metal emulation and callgrind are deterministic: the same image gives the same count.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codegen import cross
from codegen.build import cache_dir
from codegen.errors import CompileError
from codegen.targets import load_target

PLUGIN_SOURCE = Path(__file__).parent / "plugin" / "insn_count.c"


def build_plugin(cache: Path | None = None) -> Path:
    """The plugin's shared object, compiled once per source version."""
    if shutil.which("gcc") is None:
        raise CompileError("gcc not found: it builds the instruction-counting QEMU plugin")
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:16]
    folder = Path(cache or cache_dir()) / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / f"insn_count-{digest}.so"
    if not lib.exists():
        tmp = lib.with_suffix(".tmp")
        proc = subprocess.run(["gcc", "-O2", "-fPIC", "-shared", str(PLUGIN_SOURCE), "-o", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise CompileError(f"building the QEMU plugin failed: {proc.stderr.strip().splitlines()[0]}")
        tmp.replace(lib)
    return lib


def bench_source(api: dict, sample: dict[str, np.ndarray]) -> str:
    """main(): one inference on `sample` between the two marker calls."""
    from codegen.emit.cnames import array_body

    header = api["invoke"][: -len("_invoke")] + ".h"
    lines = ["#include <stdint.h>", f'#include "{header}"', ""]
    for k, spec in enumerate(api["inputs"]):
        values = np.asarray(sample[spec["name"]], spec["dtype"]).reshape(-1)
        lines.append(f"static const {spec['ctype']} in{k}[{spec['size']}] = {{{array_body(values)}}};")
    for k, spec in enumerate(api["outputs"]):
        lines.append(f"static {spec['ctype']} out{k}[{spec['size']}];")
    args = ", ".join([f"in{k}" for k in range(len(api["inputs"]))] + [f"out{k}" for k in range(len(api["outputs"]))])
    lines += [
        "",
        "void onnx2mcu_bench_begin(void) __attribute__((noinline));",
        "void onnx2mcu_bench_end(void) __attribute__((noinline));",
        'void onnx2mcu_bench_begin(void) { __asm__ __volatile__(""); }',
        'void onnx2mcu_bench_end(void) { __asm__ __volatile__(""); }',
        "",
        "int main(void)",
        "{",
        "    int status;",
        "    onnx2mcu_bench_begin();",
        f"    status = {api['invoke']}({args});",
        "    onnx2mcu_bench_end();",
        "    return status;",
        "}",
        "",
    ]
    return "\n".join(lines)


def count_instructions(files: dict[str, str], api: dict, sample: dict[str, np.ndarray], target: str) -> int:
    """Instructions of one `NAME_invoke` on `sample` (arrays of the API's input dtypes)."""
    spec = load_target(target)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if target == "host":
            return _callgrind(files, api, sample, spec, folder)
        if spec.get("run", {}).get("kind") != "semihosting":
            raise CompileError(f"target {target}: instruction counts need a Cortex-M (semihosting) target or host")
        image = cross.build_image(files, bench_source(api, sample), target, folder)
        symbols = _symbols(spec.get("nm", "nm"), image)
        plugin = build_plugin()
        cmd = cross.emulator_command(target, image) + [
            "-plugin", f"{plugin},begin={symbols['onnx2mcu_bench_begin']:#x},end={symbols['onnx2mcu_bench_end']:#x}",
            "-d", "plugin"]
        out = _run(cmd, folder, f"{spec['run']['emulator']} (target {target})")
    found = re.findall(r"insn_count (\d+)", out)
    if not found:
        raise CompileError(f"target {target}: the instruction-counting plugin printed nothing")
    return int(found[-1])


def _symbols(nm: str, image: Path) -> dict[str, int]:
    out = _run([nm, str(image)], image.parent, nm)
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16) & ~1  # Thumb addresses carry bit 0
    return table


def _callgrind(files: dict[str, str], api: dict, sample: dict[str, np.ndarray], spec: dict, folder: Path) -> int:
    if shutil.which("valgrind") is None:
        raise CompileError("valgrind not found; install with: apt-get install valgrind")
    for name, text in {**files, "onnx2mcu_bench_main.c": bench_source(api, sample)}.items():
        (folder / name).write_text(text)
    sources = sorted(n for n in files if n.endswith(".c")) + ["onnx2mcu_bench_main.c"]
    libm = ["-lm"] if any("#include <math.h>" in t for t in files.values()) else []
    _run([spec["cc"], *spec["cflags"], *sources, "-o", "bench", *libm], folder, spec["cc"])
    out_file = folder / "callgrind.out"
    _run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", f"--toggle-collect={api['invoke']}",
          "./bench"], folder, "valgrind")
    totals = re.findall(r"^(?:summary|totals):\s*(\d+)", out_file.read_text(), flags=re.M)
    if not totals:
        raise CompileError("callgrind wrote no instruction total")
    return int(totals[-1])


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CompileError(f"{cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise CompileError(f"{what} did not finish within 600 s") from None
    if proc.returncode:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CompileError(f"{what} failed (status {proc.returncode}): {detail[0] if detail else ''}")
    return proc.stdout + "\n" + proc.stderr
