"""Instructions executed by one inference, exactly and repeatably.

The test program (`bench_source`) calls `NAME_invoke` once on one sample, between calls of two
empty, never-inlined marker functions, `onnx2mcu_bench_begin` and `onnx2mcu_bench_end`.

- Cortex-M targets (semihosting images under qemu-system-arm, linked like every test image by
  codegen.cross.build_image): the project's TCG plugin (benchmarks/plugin/insn_count.c, built
  here on first use) counts the instructions executed from entering the first marker to
  entering the second: the call of NAME_invoke and everything it calls, plus a fixed handful
  (the first marker's return, the argument set-up and the call itself).
- host: valgrind's callgrind on an executable of the same folder (the host target's flags and
  -Os, like firmware), collecting only inside `NAME_invoke` and its callees (--toggle-collect).
  Symbols are bound when the program loads (-z now), so no dynamic-linker work lands in the count.

Bare-metal emulation and callgrind are deterministic: the same image gives the same count.

    python -m benchmarks.icount MODEL.onnx --calib CALIB.npz --target cortex-m4
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from codegen import cross
from codegen.build import cache_dir
from codegen.errors import CompileError
from codegen.targets import load_target

PLUGIN_SOURCE = Path(__file__).parent / "plugin" / "insn_count.c"
MARKERS = ("onnx2mcu_bench_begin", "onnx2mcu_bench_end")
TIMEOUT = 600
_PLUGIN_LINE = re.compile(r"^insn_count (\d+) begin (\d+) end (\d+)$", re.M)


def build_plugin(cache: Path | None = None) -> Path:
    """The plugin's shared object, compiled once per source version (under `cache`, by default
    the compiler's cache folder)."""
    if shutil.which("gcc") is None:
        raise CompileError("gcc not found: it builds the instruction-counting QEMU plugin; "
                           "install with: apt-get install gcc")
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:16]
    folder = Path(cache or cache_dir()) / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / f"insn_count-{digest}.so"
    if not lib.exists():
        tmp = folder / f"insn_count-{digest}.{os.getpid()}.tmp"
        _run(["gcc", *cross.STRICT, "-O2", "-fPIC", "-shared", str(PLUGIN_SOURCE), "-o", str(tmp)], folder,
             "building the QEMU plugin (gcc)")
        tmp.replace(lib)
    return lib


def bench_source(api: dict, sample: dict[str, np.ndarray]) -> str:
    """main(): one inference on `sample` between the two marker calls; returns its status."""
    from codegen.emit.cnames import array_body

    header = api["invoke"][: -len("_invoke")] + ".h"
    lines = ["#include <stdint.h>", f'#include "{header}"', ""]
    for k, spec in enumerate(api["inputs"]):
        if spec["name"] not in sample:
            raise CompileError(f"benchmark sample: no array for input '{spec['name']}'")
        values = np.asarray(sample[spec["name"]], spec["dtype"]).reshape(-1)
        if values.size != spec["size"]:
            raise CompileError(f"benchmark sample: input '{spec['name']}' holds {values.size} values, "
                               f"expected {spec['size']}")
        lines.append(f"static const {spec['ctype']} in{k}[{spec['size']}] = {{{array_body(values)}}};")
    for k, spec in enumerate(api["outputs"]):
        lines.append(f"static {spec['ctype']} out{k}[{spec['size']}];")
    args = ", ".join([f"in{k}" for k in range(len(api["inputs"]))] + [f"out{k}" for k in range(len(api["outputs"]))])
    lines += [
        "",
        *[f"void {m}(void) __attribute__((noinline));" for m in MARKERS],
        *[f'void {m}(void) {{ __asm__ __volatile__(""); }}' for m in MARKERS],
        "",
        "int main(void)",
        "{",
        "    int status;",
        f"    {MARKERS[0]}();",
        f"    status = {api['invoke']}({args});",
        f"    {MARKERS[1]}();",
        "    return status;",
        "}",
        "",
    ]
    return "\n".join(lines)


def count_instructions(files: dict[str, str], api: dict, sample: dict[str, np.ndarray], target: str) -> int:
    """Instructions of one `NAME_invoke` on `sample` (arrays in the API's input dtypes): `files`
    and `api` as compile_model gives them (emitted.files, report["api"]); target "host" or a
    Cortex-M target that runs test images under semihosting."""
    spec = load_target(target)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if target == "host":
            return _callgrind(files, api, sample, spec, folder)
        if spec.get("run", {}).get("kind") != "semihosting":
            raise CompileError(f"target {target}: instruction counts need host or a Cortex-M target "
                               "run under semihosting")
        image = cross.build_image(files, bench_source(api, sample), target, folder)
        return count_image(image, target)


def count_image(image: Path, target: str) -> int:
    """Instructions a semihosting test image for `target` executes from entering
    `onnx2mcu_bench_begin` to entering `onnx2mcu_bench_end`; each must be entered exactly once."""
    spec = load_target(target)
    if spec.get("run", {}).get("kind") != "semihosting":
        raise CompileError(f"target {target}: the instruction-counting plugin runs semihosting images only")
    problem = cross.missing_tools(spec)
    if problem:
        raise CompileError(f"target {target}: {problem}")
    nm = spec.get("nm", "nm")
    if shutil.which(nm) is None:
        raise CompileError(f"target {target}: {nm} not found; install with: apt-get install {' '.join(spec['apt'])}")
    symbols = _symbols(nm, image)
    missing = [m for m in MARKERS if m not in symbols]
    if missing:
        raise CompileError(f"{image.name}: no symbol {', '.join(missing)}: the image must define both markers")
    plugin = build_plugin()
    log = image.parent / "insn_count.log"
    log.unlink(missing_ok=True)
    cmd = cross.emulator_command(target, image) + [
        "-plugin", f"{plugin},begin={symbols[MARKERS[0]]:#x},end={symbols[MARKERS[1]]:#x}", "-d", "plugin",
        "-D", str(log)]
    _run(cmd, image.parent, f"{spec['run']['emulator']} (target {target})", env={"PATH": os.environ["PATH"]})
    found = _PLUGIN_LINE.findall(log.read_text() if log.exists() else "")
    if len(found) != 1:
        raise CompileError(f"target {target}: the instruction-counting plugin reported {len(found)} results, "
                           "expected one")
    count, begun, ended = (int(v) for v in found[0])
    if begun != 1 or ended != 1:
        raise CompileError(f"target {target}: {MARKERS[0]} ran {begun} times and {MARKERS[1]} {ended} times; "
                           "expected once each")
    return count


def _symbols(nm: str, image: Path) -> dict[str, int]:
    """Defined symbols and their addresses (Thumb bit clear: a function's first instruction)."""
    table = {}
    for line in _run([nm, str(image)], image.parent, nm).splitlines():
        parts = line.split()
        if len(parts) == 3 and re.fullmatch(r"[0-9a-fA-F]+", parts[0]):
            table[parts[2]] = int(parts[0], 16) & ~1
    return table


def _callgrind(files: dict[str, str], api: dict, sample: dict[str, np.ndarray], spec: dict, folder: Path) -> int:
    if shutil.which("valgrind") is None:
        raise CompileError("valgrind not found: it counts host instructions; install with: apt-get install valgrind")
    if shutil.which(spec["cc"]) is None:
        raise CompileError(f"C compiler '{spec['cc']}' not found; install gcc")
    main_file = "onnx2mcu_bench_main.c"
    for name, text in {**files, main_file: bench_source(api, sample)}.items():
        (folder / name).write_text(text)
    sources = sorted(n for n in files if n.endswith(".c")) + [main_file]
    libm = ["-lm"] if any("#include <math.h>" in t for t in files.values()) else []
    _run([spec["cc"], *spec["cflags"], "-Os", "-ffunction-sections", "-fdata-sections", *sources, "-o", "bench",
          "-Wl,--gc-sections", "-Wl,-z,now", *libm], folder, f"{spec['cc']} (target host)")
    out_file = folder / "callgrind.out"
    _run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", f"--toggle-collect={api['invoke']}",
          "./bench"], folder, "valgrind --tool=callgrind", env={"PATH": os.environ["PATH"]})
    totals = re.findall(r"^(?:summary|totals):\s*(\d+)", out_file.read_text() if out_file.exists() else "", re.M)
    if not totals:
        raise CompileError("callgrind wrote no instruction total")
    if int(totals[-1]) == 0:
        raise CompileError(f"callgrind counted no instructions in {api['invoke']}")
    return int(totals[-1])


def _run(cmd: list[str], cwd: Path, what: str, env: dict | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CompileError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise CompileError(f"{what} did not finish within {TIMEOUT} s") from None
    if proc.returncode:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CompileError(f"{what} failed (status {proc.returncode}): {detail[0] if detail else ''}")
    return proc.stdout + "\n" + proc.stderr


def main(argv: list[str] | None = None) -> int:
    """python -m benchmarks.icount MODEL.onnx [--calib CALIB.npz] [--target T] [--float] [--sample K]
    [--precision int8|int16]"""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.icount",
                                     description="Instructions executed by one inference of a compiled model.")
    parser.add_argument("model", help="the ONNX model")
    parser.add_argument("--calib", help="calibration samples (.npz); the counted sample is one of them")
    parser.add_argument("--target", default="cortex-m4", help="host or a Cortex-M target (default cortex-m4)")
    parser.add_argument("--float", action="store_true", help="count the float32 model instead of int8")
    parser.add_argument("--sample", type=int, default=0, help="which calibration sample to run (default 0)")
    parser.add_argument("--precision", choices=("int8", "int16"), default="int8",
                        help="activations of the integer layers (default int8)")
    args = parser.parse_args(argv)
    from codegen.compiler import compile_model, quantize_inputs
    from codegen.samples import load_samples

    try:
        mode = "float32" if args.float else "int8"
        compiled = compile_model(args.model, mode=mode, calib=args.calib, target=args.target, precision=args.precision)
        if args.calib:
            samples, _ = load_samples(args.calib, compiled.graph)
            if not 0 <= args.sample < len(samples):
                raise CompileError(f"{args.calib}: no sample {args.sample} (it holds {len(samples)})")
            feeds = samples[args.sample]
        else:
            feeds = {n: np.zeros(compiled.graph.tensors[n].shape, np.float32) for n in compiled.graph.inputs}
        sample = quantize_inputs(compiled.graph, feeds) if mode == "int8" else feeds
        files = compiled.emitted.files
        if args.target == "host" and compiled.host_files is not None:
            files = compiled.host_files
        count = count_instructions(files, compiled.report["api"], sample, args.target)
    except CompileError as e:
        print(f"icount: error: {e}", file=sys.stderr)
        return 2
    macs = compiled.report["macs"]
    per_mac = f"{count / macs:.2f}" if macs else "n/a"
    what = mode if mode == "float32" or args.precision == "int8" else f"{mode}, {args.precision} activations"
    print(f"{Path(args.model).name} ({what}) on {args.target}: {count} instructions per inference, "
          f"{macs} MACs, {per_mac} instructions per MAC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
