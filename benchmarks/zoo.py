"""python -m benchmarks.zoo: the nine classic model-zoo networks that the onnx package ships
(onnx/backend/test/data/light: AlexNet, DenseNet-121, Inception v1 and v2, ResNet-50,
ShuffleNet, SqueezeNet, VGG-19, ZFNet-512; opset 9, upgraded by onnx's version converter),
compiled and verified on the host in int8 and float32.

Each model and mode runs in a fresh process: it compiles the model (budgets unbounded: these
are not microcontroller models), records the compiler's wall time and peak resident memory
(after compiling, before the C is built), then builds the C on the host and verifies it on
`--samples` seeded random images (`codegen.verify.verify`: C against the NumPy reference, bit
for bit in int8, and both against onnx.reference). int8 calibrates on `--calib` other seeded
random images. Prints a markdown table and writes benchmarks/zoo.json.

Weights: the files fill every weight, bias and batch-norm parameter with 0.02 (ConstantOfShape
nodes), so every channel of a layer computes the same value (a mix-up of channels would not
show) and the deep plain networks overflow float32. `--weights random` (the default) replaces
each with seeded random values of its shape, scaled for its role: He-normal Conv and Gemm
weights, small biases, batch-norm scales and variances in [0.5, 1.5] (the statistics that
DenseNet-121 and Inception v2 store as data stay), and drops the final Softmax (see
`drop_softmax`). `--weights file` keeps the files' constants and heads.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("squeezenet", "shufflenet", "inception_v1", "resnet50", "inception_v2", "densenet121", "bvlc_alexnet",
          "zfnet512", "vgg19")
DEFAULT_MODELS = MODELS[:6]  # the ones issue's "done when" names; AlexNet, ZFNet and VGG-19 on request
MODES = ("int8", "float32")
UNBOUNDED = 2**40
RESULTS = Path(__file__).resolve().parent / "zoo.json"


def light_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def load(name: str, weights: str = "random", seed: int = 0):
    """The zoo model as a ModelProto; with `weights` "random", its ConstantOfShape weights
    replaced by seeded random initializers (see the module docstring)."""
    import onnx

    model = onnx.load(str(light_dir() / f"light_{name}.onnx"))
    if weights == "random":
        randomize_weights(model, np.random.default_rng(seed))
        drop_softmax(model)
    return model


def drop_softmax(model) -> None:
    """A final Softmax dropped: its input, the class scores, becomes the output. A random
    network's 1000 probabilities all sit near 0.001, below the int8 softmax's 1/256 steps, so
    errors are measured on the scores."""
    g = model.graph
    last = [n for n in g.node if n.op_type == "Softmax" and n.output[0] == g.output[0].name]
    if last:
        g.output[0].name = last[0].input[0]
        g.node.remove(last[0])


def randomize_weights(model, rng) -> None:
    """Every ConstantOfShape whose shape is an initializer becomes an initializer of seeded
    random values, scaled for the role of its first reader (op type and input position)."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    readers: dict[str, tuple[str, int, object]] = {}
    for node in g.node:
        for k, i in enumerate(node.input):
            readers.setdefault(i, (node.op_type, k, node))
    kept = []
    for node in g.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in inits[node.input[0]])
        op, k, reader = readers.get(node.output[0], ("", 0, None))
        value = _random_weight(rng, shape, op, k, reader)
        g.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        if model.ir_version < 4:  # initializers are graph inputs too
            g.input.append(helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, shape))
        kept.append(None)
    nodes = [n for n in kept if n is not None]
    del g.node[:]
    g.node.extend(nodes)


def _random_weight(rng, shape, op: str, k: int, reader) -> np.ndarray:
    if op == "Conv" and k == 1 or op == "Gemm" and k == 1:
        trans_b = op == "Gemm" and any(a.name == "transB" and a.i for a in reader.attribute)
        fan_in = math.prod(shape[1:]) if op == "Conv" or trans_b else shape[0]
        return rng.standard_normal(shape) * math.sqrt(2.0 / max(fan_in, 1))
    if op == "BatchNormalization" and k in (1, 4):  # scale, variance
        return rng.uniform(0.5, 1.5, shape)
    if op == "Mul":  # the Unsqueeze'd batch-norm scales that DenseNet-121 and Inception v2 multiply by
        return rng.uniform(0.5, 1.5, shape)
    return 0.1 * rng.standard_normal(shape)  # biases, batch-norm bias and mean


def images(shape, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32)


def run_one(name: str, mode: str, weights: str, calib: int, samples: int) -> dict:
    """Compile and verify one model in one mode, in this process."""
    from codegen.compiler import compile_model
    from codegen.verify import verify

    model = load(name, weights)
    init_names = {t.name for t in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in init_names]
    shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
    calib_set = [{inp.name: x} for x in images(shape, calib, 1)] if mode == "int8" else None
    tests = [{inp.name: x} for x in images(shape, samples, 2)]
    start = time.perf_counter()
    compiled = compile_model(model, name, mode=mode, calib=calib_set, calib_samples=None, flash_budget=UNBOUNDED)
    compile_s = time.perf_counter() - start
    compiler_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = verify(compiled, tests)
    verify_s = time.perf_counter() - start
    report = compiled.report
    return {"model": name, "mode": mode, "weights": weights, "params": report["params"], "macs": report["macs"],
            "layers": len(report["layers"]), "weights_bytes": report["weights_bytes"],
            "arena_bytes": report["arena_bytes"], "compile_s": round(compile_s, 2),
            "compiler_mb": round(compiler_mb, 1), "verify_s": round(verify_s, 2), "samples": samples,
            "bit_exact": result["bit_exact"], "passed": result["passed"],
            "max_abs_diff": result["max_abs_diff"], "max_rel_diff": result["max_rel_diff"],
            "reference_max_rel_diff": result["reference_max_rel_diff"], "sqnr_db": result["sqnr_db"],
            "float_top1_agreement": result["float_top1_agreement"]}


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v)


def table(rows: list[dict]) -> str:
    head = ["model", "mode", "params", "MACs", "tables B", "arena B", "compile s", "compiler MB", "verify s",
            "C = reference", "max error", "rel. error", "SQNR dB", "top-1 agreement"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['mode']} | " + r["error"].replace("|", "/") + " |" +
                         " |" * (len(head) - 3))
            continue
        lines.append("| " + " | ".join([r["model"], r["mode"], _fmt(r["params"]), _fmt(r["macs"]),
                                        _fmt(r["weights_bytes"]), _fmt(r["arena_bytes"]), _fmt(r["compile_s"]),
                                        _fmt(r["compiler_mb"]), _fmt(r["verify_s"]), _fmt(r["bit_exact"]),
                                        _fmt(r["max_abs_diff"]), _fmt(r["max_rel_diff"]), _fmt(r["sqnr_db"]),
                                        _fmt(r["float_top1_agreement"])]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)} (default: the first six)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--weights", choices=("random", "file"), default="random")
    parser.add_argument("--calib", type=int, default=4, help="random calibration images (int8)")
    parser.add_argument("--samples", type=int, default=1, help="random test images")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_one(*args.worker, args.weights, args.calib, args.samples)))
        return 0
    rows = []
    for name in args.models.split(","):
        if name not in MODELS:
            parser.error(f"unknown model {name!r}")
        for mode in args.modes.split(","):
            cmd = [sys.executable, "-m", "benchmarks.zoo", "--worker", name, mode, "--weights", args.weights,
                   "--calib", str(args.calib), "--samples", str(args.samples)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            else:
                why = (proc.stderr.strip().splitlines() or ["failed"])[-1]
                rows.append({"model": name, "mode": mode, "error": why})
            print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r.get("passed") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
