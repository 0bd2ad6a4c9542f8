"""Build generated code with a target's toolchain, measure it, and run it under emulation.

Targets are data (targets/*.toml); nothing here branches on a target's name:
- `measure(files, target)`: the folder compiled as firmware is (-Os, one section per function
  and object): code, constant tables, data and bss bytes from the toolchain's `size`, and the
  stack an inference needs from -fstack-usage (NAME_invoke's frame plus the deepest kernel's).
- `run_samples(files, api, inputs, target)`: a test image holding the inputs, built with the
  project's harness (targets/harness: start-up, linker script from the target's memory map,
  semihosting output) and run under the target's emulator; returns every output, byte-exact.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from string import Template

import numpy as np

from codegen import workdirs
from codegen.errors import CompileError
from codegen.paths import TARGETS_DIR
from codegen.targets import load_target

HARNESS = TARGETS_DIR / "harness"
RUN_TIMEOUT = 120
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def missing_tools(target: dict, run: bool = True) -> str | None:
    """What to install for building (and with `run`, emulating) on this target, or None."""
    tools = [target["cc"], target.get("size", "size")]
    if run and "run" in target and target["run"]["kind"] != "native":
        tools.append(target["run"]["emulator"])
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return None
    return f"{', '.join(missing)} not found; install with: apt-get install {' '.join(target.get('apt', []))}"


def _require(target: dict, run: bool) -> None:
    problem = missing_tools(target, run)
    if problem:
        raise CompileError(f"target {target['name']}: {problem}")


def _write(files: dict[str, str], folder: Path) -> list[str]:
    for name, text in files.items():
        (folder / name).write_text(text)
    return sorted(n for n in files if n.endswith(".c"))


def _run(cmd: list[str], cwd: Path, what: str, timeout: int = RUN_TIMEOUT, env=None, merge: bool = False) -> str:
    """Run a tool; its stdout (with `merge`, stdout then stderr: QEMU's mps3 boards write
    semihosting output to stderr)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CompileError(f"{what} did not finish within {timeout} s") from None
    if proc.returncode:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CompileError(f"{what} failed (status {proc.returncode}): {detail[0] if detail else ''}")
    return proc.stdout + "\n" + proc.stderr if merge else proc.stdout


def measure(files: dict[str, str], target_name: str) -> dict:
    target = load_target(target_name)
    _require(target, run=False)
    flags = [*target["cflags"], "-std=c99", "-Os", "-ffunction-sections", "-fdata-sections", "-fstack-usage", "-c"]
    sizes = {"target": target_name, "code_bytes": 0, "const_bytes": 0, "data_bytes": 0, "bss_bytes": 0}
    with workdirs.build_folder() as folder:
        sources = _write(files, folder)
        workdirs.checkpoint("measure")
        _run([target["cc"], *flags, *sources], folder, f"{target['cc']} (target {target_name})")
        objects = [str(folder / Path(s).with_suffix(".o").name) for s in sources]
        out = _run([target.get("size", "size"), "-A", *objects], folder, "size")
        frames = {}
        for su in folder.glob("*.su"):
            for line in su.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1].isdigit():
                    frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        section, size = parts[0], int(parts[1])
        for prefix, key in ((".text", "code_bytes"), (".rodata", "const_bytes"), (".data", "data_bytes"),
                            (".bss", "bss_bytes")):
            if section == prefix or section.startswith(prefix + "."):
                sizes[key] += size
    invoke = [v for k, v in frames.items() if k.endswith("_invoke")]
    kernels = [v for k, v in frames.items() if "_nn_" in k and not k.endswith("_invoke")]  # PREFIX_nn_*
    sizes["stack_bytes"] = (max(invoke) if invoke else 0) + (max(kernels) if kernels else 0)
    return sizes


def _c_array(values: np.ndarray) -> str:
    from codegen.emit.cnames import array_body

    return "{" + array_body(values) + "}"


def harness_source(api: dict, inputs: list[dict[str, np.ndarray]]) -> str:
    """main(): run every sample and print each output's bytes in hex, one line per sample."""
    header = api["invoke"][: -len("_invoke")] + ".h"
    lines = ["#include <stdio.h>", "#include <stdint.h>", f'#include "{header}"', ""]
    for k, spec in enumerate(api["inputs"]):
        rows = ", ".join(_c_array(np.asarray(s[spec["name"]], spec["dtype"]).reshape(-1)) for s in inputs)
        lines.append(f"static const {spec['ctype']} in{k}[{len(inputs)}][{spec['size']}] = {{{rows}}};")
    for k, spec in enumerate(api["outputs"]):
        lines.append(f"static {spec['ctype']} out{k}[{spec['size']}];")
    args = ", ".join([f"in{k}[s]" for k in range(len(api["inputs"]))] + [f"out{k}" for k in range(len(api["outputs"]))])
    lines += [
        "",
        "static void dump(const void *data, unsigned bytes)",
        "{",
        "    const unsigned char *b = (const unsigned char *)data;",
        "    unsigned i;",
        "    for (i = 0; i < bytes; ++i) {",
        '        printf("%02x", b[i]);',
        "    }",
        "}",
        "",
        "int main(void)",
        "{",
        "    int s;",
        f"    for (s = 0; s < {len(inputs)}; ++s) {{",
        f"        if ({api['invoke']}({args}) != 0) {{",
        "            return 2;",
        "        }",
        *[f"        dump(out{k}, sizeof out{k});" for k in range(len(api["outputs"]))],
        '        printf("\\n");',
        "    }",
        "    return 0;",
        "}",
        "",
    ]
    return "\n".join(lines)


def build_image(files: dict[str, str], main_source: str, target_name: str, folder: Path) -> Path:
    """Write the folder plus `main_source` into `folder` and link a test image for the target
    (with the harness start-up and linker script on semihosting boards); its path."""
    target = load_target(target_name)
    _require(target, run=True)
    run = target["run"]
    sources = _write({**files, "onnx2mcu_test_main.c": main_source}, folder)
    cmd = [target["cc"], *target["cflags"], *STRICT, "-Os", "-ffunction-sections", "-fdata-sections",
           *sources, "-o", "image.elf", "-Wl,--gc-sections", *run.get("link_flags", [])]
    if run["kind"] == "semihosting":
        script = Template((HARNESS / "cortex_m.ld").read_text()).substitute(
            {k: hex(run[k]) for k in ("flash_origin", "flash_size", "ram_origin", "ram_size")})
        (folder / "image.ld").write_text(script)
        shutil.copyfile(HARNESS / "cortex_m_startup.c", folder / "startup.c")
        cmd += ["startup.c", "-T", "image.ld"]
    if any("#include <math.h>" in text for text in files.values()):
        cmd.append("-lm")
    _run(cmd, folder, f"{target['cc']} (target {target_name})")
    return folder / "image.elf"


def emulator_command(target_name: str, image: Path) -> list[str]:
    """The command that runs a test image on the target's emulator."""
    run = load_target(target_name)["run"]
    if run["kind"] == "semihosting":
        return [run["emulator"], "-M", run["machine"], "-display", "none", "-serial", "null", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(image)]
    return [run["emulator"], str(image)]


def run_samples(files: dict[str, str], api: dict, inputs: list[dict[str, np.ndarray]], target_name: str
                ) -> list[list[np.ndarray]]:
    """Run the model on every sample on the emulated target; outputs per sample, in API order."""
    target = load_target(target_name)
    with workdirs.build_folder() as folder:
        image = build_image(files, harness_source(api, inputs), target_name, folder)
        out = _run(emulator_command(target_name, image), folder, f"{target['run']['emulator']} (target {target_name})",
                   env={"PATH": os.environ["PATH"]}, merge=True)
    rows = [line for line in out.splitlines() if line and re.fullmatch(r"[0-9a-f]+", line)]
    if len(rows) != len(inputs):
        raise CompileError(f"target {target_name}: expected {len(inputs)} output lines, got {len(rows)}")
    results = []
    for row in rows:
        raw, outs, at = bytes.fromhex(row), [], 0
        for spec in api["outputs"]:
            n = spec["size"] * np.dtype(spec["dtype"]).itemsize
            outs.append(np.frombuffer(raw[at:at + n], spec["dtype"]).reshape(spec["shape"]).copy())
            at += n
        results.append(outs)
    return results
