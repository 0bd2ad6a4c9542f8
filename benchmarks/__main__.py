"""python -m benchmarks: flash, RAM and instruction counts of the MLPerf Tiny models.

For each model (benchmarks/models.py), mode and target (host and the emulated Cortex-M4 by
default) the model is compiled in a fresh process (its wall time and peak resident memory are
the compiler's), built with the target's toolchain for the size figures, and run once on one
calibration sample while instructions are counted (benchmarks/icount.py: a QEMU plugin on
Cortex-M, callgrind on the host). Prints a markdown table and writes JSON. Counts repeat
exactly run after run; nothing here is timed except the compiler.

Modes: int8 (dense weights), int8-sparse (int8 at the highest of SPARSITIES, unstructured per
layer, that keeps the model's accuracy: see `keeps_accuracy`; encodings chosen by the cost
model) and float32.
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

import numpy as np

DEFAULT_TARGETS = ("host", "cortex-m4")
DEFAULT_MODES = ("int8", "int8-sparse", "float32")
UNBOUNDED = 2**31  # bytes: no budget check, the emulated boards hold it
CALIBRATION_SAMPLES = 16
SPARSITIES = (0.9, 0.75, 0.5)  # tried in this order by int8-sparse
HELD_OUT = 32  # samples the accuracy of a pruned model is judged on


def top1_or_sqnr(outputs: list[np.ndarray], reference: list[np.ndarray], labels) -> float:
    """Accuracy against `labels`; without labels, top-1 agreement with `reference` for a
    classifier (outputs of at most 1000 values), else the SQNR in dB against it."""
    got = np.stack([o.reshape(-1) for o in outputs]).astype(np.float64)
    want = np.stack([r.reshape(-1) for r in reference]).astype(np.float64)
    if labels is not None:
        return float(np.mean(got.argmax(axis=1) == labels))
    if got.shape[1] <= 1000:
        return float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))
    return float(10 * np.log10(np.sum(want ** 2) / max(np.sum((got - want) ** 2), 1e-30)))


def keeps_accuracy(score: float, dense_score: float, classifier: bool) -> bool:
    """Within 2 points of dense int8's accuracy (or agreement); for regression outputs, within
    3 dB of its SQNR."""
    return score >= dense_score - (0.02 if classifier else 3.0)


def best_sparsity(name: str, model, calib: list[dict]) -> tuple[float, float, float]:
    """(sparsity, its score, dense int8's score) for int8-sparse: the highest of SPARSITIES that
    keeps accuracy on HELD_OUT samples (the example's test set for digits), 0.0 if none."""
    from benchmarks import models
    from codegen.compiler import compile_model, quantize_inputs
    from codegen.frontend import import_model
    from codegen.passes.prune import PruneOptions
    from codegen.reference import run_float, run_int8

    labels = None
    if name == "digits":
        data = np.load(models.ROOT / "examples" / "digits" / "test.npz")
        key = [k for k in data.files if k != "y"][0]
        held = [{key: data[key][i:i + 1]} for i in range(len(data[key]))]
        labels = data["y"]
    else:
        held = models.calibration(model, HELD_OUT, 1000)
    graph = import_model(model)
    reference = [run_float(graph, feeds)[graph.outputs[0]] for feeds in held]
    classifier = labels is not None or reference[0].size <= 1000

    def score(prune):
        compiled = compile_model(model, name, mode="int8", calib=calib, prune=prune)
        g = compiled.graph
        out = [g.tensors[g.outputs[0]].quant.dequantize(run_int8(g, quantize_inputs(g, f))[g.outputs[0]])
               for f in held]
        return top1_or_sqnr(out, reference, labels)

    dense = score(None)
    for s in SPARSITIES:
        got = score(PruneOptions(sparsity=s))
        if keeps_accuracy(got, dense, classifier):
            return s, got, dense
    return 0.0, dense, dense


def compile_job(name: str, mode: str, target: str, out: str) -> None:
    """Run in a fresh interpreter: compile and measure, then pickle (seconds, peak RSS bytes,
    report, files, one sample in the C API's dtypes) to `out`."""
    from benchmarks import models
    from codegen.compiler import compile_model, quantize_inputs
    from codegen.passes.prune import PruneOptions

    model = models.MODELS[name]()
    calib = models.calibration_for(name, CALIBRATION_SAMPLES, 0)
    prune, extra = None, {}
    if mode == "int8-sparse":
        s, got, dense = best_sparsity(name, model, calib)
        prune = PruneOptions(sparsity=s)
        extra = {"sparsity": s, "score": round(got, 4), "dense_score": round(dense, 4)}
    start = time.perf_counter()
    compiled = compile_model(model, name, measure=True, mode="float32" if mode == "float32" else "int8",
                             calib=None if mode == "float32" else calib, target=target, prune=prune,
                             flash_budget=UNBOUNDED)  # measured even where a real part's flash is too small
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    sample = calib[0] if mode == "float32" else quantize_inputs(compiled.graph, calib[0])
    with open(out, "wb") as f:
        pickle.dump((seconds, peak, compiled.report, compiled.emitted.files, sample, extra), f)


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
            seconds, peak, report, files, sample, extra = pickle.load(f)
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
        "sparsity": extra.get("sparsity", 0.0),
        **extra,
    }


COLUMNS = [("model", "model"), ("mode", "mode"), ("target", "target"), ("sparsity", "sparsity"), ("MACs", "macs"),
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
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"default: {','.join(DEFAULT_MODES)}")
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
