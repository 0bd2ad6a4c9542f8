"""python -m benchmarks: flash, RAM and instruction counts of the MLPerf Tiny models.

For each model (benchmarks/models.py), mode (int8, float32) and target (host and the emulated
Cortex-M4 by default) the model is compiled in a fresh process (its wall time and peak
resident memory are the compiler's), built with the target's toolchain for the size figures,
and run once on one calibration sample while instructions are counted (benchmarks/icount.py:
a QEMU plugin on Cortex-M, callgrind on the host). Prints a markdown table and writes JSON.
Counts repeat exactly run after run; nothing here is timed except the compiler.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_TARGETS = ("host", "cortex-m4")
DEFAULT_MODES = ("int8", "float32")
CALIBRATION_SAMPLES = 16


def compile_job(name: str, mode: str, target: str, out: str) -> None:
    """Run in a fresh interpreter: compile and measure, then pickle (seconds, peak RSS bytes,
    report, files, one sample in the C API's dtypes) to `out`."""
    from benchmarks import models
    from codegen.compiler import compile_model, quantize_inputs

    model = models.MODELS[name]()
    calib = models.calibration_for(name, CALIBRATION_SAMPLES, 0)
    start = time.perf_counter()
    compiled = compile_model(model, name, measure=True, mode=mode, calib=calib if mode == "int8" else None,
                             target=target)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    sample = quantize_inputs(compiled.graph, calib[0]) if mode == "int8" else calib[0]
    with open(out, "wb") as f:
        pickle.dump((seconds, peak, compiled.report, compiled.emitted.files, sample), f)


def measure(name: str, mode: str, target: str) -> dict:
    from benchmarks.icount import count_instructions
    from codegen.errors import CompileError

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "job.pkl"
        code = f"from benchmarks.__main__ import compile_job; compile_job({name!r}, {mode!r}, {target!r}, {str(out)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode:
            lines = proc.stderr.strip().splitlines()
            raise CompileError(f"compiling {name} ({mode}, {target}) failed: {lines[-1] if lines else ''}")
        with open(out, "rb") as f:
            seconds, peak, report, files, sample = pickle.load(f)
    feeds = sample
    instructions = count_instructions(files, report["api"], feeds, target)
    sizes = report["sizes"]
    return {
        "model": name,
        "mode": mode,
        "target": target,
        "macs": report["macs"],
        "weights_bytes": report["weights_bytes"],
        "code_bytes": sizes["code_bytes"],
        "const_bytes": sizes["const_bytes"],
        "flash_bytes": report["flash_bytes"],
        "arena_bytes": report["arena_bytes"],
        "arena_lower_bound": report["arena_lower_bound"],
        "other_ram_bytes": sizes["data_bytes"] + sizes["bss_bytes"] - report["arena_bytes"],
        "stack_bytes": sizes["stack_bytes"],
        "instructions": instructions,
        "instructions_per_mac": round(instructions / report["macs"], 3) if report["macs"] else None,
        "compile_seconds": round(seconds, 2),
        "compiler_peak_mb": round(peak / 2**20, 1),
    }


COLUMNS = [("model", "model"), ("mode", "mode"), ("target", "target"), ("MACs", "macs"),
           ("code B", "code_bytes"), ("tables B", "const_bytes"), ("arena B", "arena_bytes"),
           ("bound B", "arena_lower_bound"), ("other RAM B", "other_ram_bytes"), ("stack B", "stack_bytes"),
           ("instructions", "instructions"), ("instr/MAC", "instructions_per_mac"),
           ("compile s", "compile_seconds"), ("compiler MB", "compiler_peak_mb")]


def markdown(rows: list[dict]) -> str:
    def cell(value) -> str:
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |",
             "|" + "|".join("---" if key in ("model", "mode", "target") else "---:" for _, key in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell(row[key]) for _, key in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import models
    from codegen.errors import CompileError

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(models.MODELS), help="comma-separated (default: all)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help="int8,float32 (default: both)")
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help="default: host,cortex-m4")
    p.add_argument("--json", default="benchmarks/results.json", help="where to write the figures")
    args = p.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in models.MODELS]
    if unknown:
        print(f"benchmarks: unknown model(s) {', '.join(unknown)}; choose from {', '.join(models.MODELS)}",
              file=sys.stderr)
        return 2
    rows = []
    try:
        for name in names:
            for mode in args.modes.split(","):
                for target in args.targets.split(","):
                    rows.append(measure(name, mode, target))
                    print(f"  {name} {mode} {target}: {rows[-1]['instructions']:,} instructions", file=sys.stderr)
    except CompileError as e:
        print(f"benchmarks: error: {e}", file=sys.stderr)
        return 2
    table = markdown(rows)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
