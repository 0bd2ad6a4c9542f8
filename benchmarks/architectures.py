"""python -m benchmarks.architectures: every model fixture through compile and verify.

Each tests/fixtures/*.onnx (torch's classic and dynamo exports, skl2onnx, a QDQ model)
compiles in float32 and in int8 and verifies on its own samples: the fixture's .npz (the file
named by the longest prefix of the model's name), else seeded random inputs. Prints one
markdown row per model: its operators, float32's largest error relative to onnxruntime's
outputs, whether the int8 C equals its reference byte for byte, the int8 SQNR against the
float model, and the first line of any error.

    python3 -m benchmarks.architectures [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def samples_file(model: Path) -> Path | None:
    stems = sorted((p.stem for p in FIXTURES.glob("*.npz")), key=len, reverse=True)
    for stem in stems:
        if model.stem.startswith(stem):
            return FIXTURES / f"{stem}.npz"
    return None


def onnxruntime_error(compiled, samples) -> float:
    """The C's largest difference from onnxruntime (graph optimizations off), relative to the
    largest magnitude of onnxruntime's real-valued outputs; integer outputs must be equal."""
    import onnxruntime

    from codegen.build import HostModel

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(compiled.model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    types = compiled.graph.meta["onnx_types"]
    worst = scale = 0.0
    for s in samples:
        got = host.run([s[n] for n in compiled.graph.inputs])
        feeds = {i.name: np.asarray(s[i.name]).astype(types[i.name]).reshape(compiled.graph.tensors[i.name].shape)
                 for i in session.get_inputs()}
        for g, w in zip(got, session.run(None, feeds)):
            if isinstance(w, list) and w and isinstance(w[0], dict):  # ZipMap's maps: the scores in label order
                w = [[row[k] for k in sorted(row)] for row in w]
            w = np.asarray(w).reshape(g.shape)
            if g.dtype.kind != "f":
                if not np.array_equal(g, w):
                    return float("inf")
                continue
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w), initial=0.0)))
            scale = max(scale, float(np.max(np.abs(w), initial=0.0)))
    return worst / max(scale, 1e-30)


def run_one(path: Path) -> dict:
    from codegen.compiler import compile_model
    from codegen.errors import CompileError
    from codegen.samples import load_samples, random_samples
    from codegen.verify import verify

    row = {"model": path.stem, "ops": sorted({n.op_type for n in onnx.load(str(path)).graph.node} - {"Constant"})}
    data = samples_file(path)
    qdq = any(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)
    randoms = None
    for mode in ("float32", "int8"):
        start = time.time()
        try:
            calib = None if mode == "float32" or qdq else (data or randoms)
            compiled = compile_model(path, "net", mode=mode, calib=calib)
            if randoms is None:
                randoms = random_samples(compiled.graph, 16)
            samples = load_samples(data, compiled.graph)[0][:16] if data else randoms
            result = verify(compiled, samples)
            if mode == "float32":
                row["float_rel_err_ort"] = onnxruntime_error(compiled, samples)
                row["float_passed"] = result["passed"]
            else:
                row["int8_bit_exact"] = result["bit_exact"]
                row["int8_sqnr_db"] = result["sqnr_db"]
                row["int8_passed"] = result["passed"]
        except CompileError as e:
            row[f"{mode}_error"] = str(e).splitlines()[0][:160]
        except Exception as e:  # a crash is a finding to report, not a reason to stop the table
            row[f"{mode}_error"] = f"crash: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        row[f"{mode}_seconds"] = round(time.time() - start, 1)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.architectures", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="models whose name contains this")
    args = parser.parse_args(argv)
    models = sorted(p for p in FIXTURES.glob("*.onnx") if args.only in p.stem and not p.stem.endswith("_float"))
    print("| model | float32 vs onnxruntime (rel) | int8 bit-exact | int8 SQNR dB | error |")
    print("|---|---|---|---|---|")
    failed = 0
    for path in models:
        row = run_one(path)
        error = row.get("float32_error") or row.get("int8_error") or ""
        ok = not error and row.get("float_passed") and row.get("int8_passed")
        failed += not ok
        rel = row.get("float_rel_err_ort")
        sqnr = row.get("int8_sqnr_db")
        print(f"| {row['model']} | {'-' if rel is None else f'{rel:.1e}'} | {row.get('int8_bit_exact', '-')} | "
              f"{'-' if sqnr is None else f'{sqnr:.1f}'} | {error} |", flush=True)
    print(f"\n{len(models) - failed} of {len(models)} models compile and verify in float32 and int8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
