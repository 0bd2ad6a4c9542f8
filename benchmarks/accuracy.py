"""python -m benchmarks.accuracy: what compression costs in accuracy, on trained models.

The models are the bundled example (examples/digits) and the trained models of
tests/fixtures/trained (made by make_trained.py there): each has calibration samples taken from
its training split and a test split, with labels, that neither training nor calibration saw.
Every figure is measured on the test split, against the float ONNX model:

- float: the float model's accuracy;
- minmax: int8 as the compiler used to quantize (min/max calibration, no equalization, no
  reconstruction: the options of LEGACY that CompileOptions knows), SQNR in dB and accuracy;
- default: int8 with the default options;
- sparse75, sparse90: 75% and 90% unstructured sparsity (the default pruning otherwise):
  accuracy, and the bytes of the weight tables (as encoded) relative to the same tables dense;
- int16, auto: `precision` "int16" and "auto" (when CompileOptions knows them): SQNR and the
  share of layers that compute in int16.

A configuration whose option the compiler does not have is "n/a". The held-back model
(heldout_*) is not tuned on: it is measured last and printed in a table of its own.

By default every configuration is compiled to C, built on the host and run through
codegen.verify (the C must equal the NumPy int8 reference byte for byte, `exact`); `--numpy`
runs the NumPy int8 reference instead (the C's bit-exact twin; the float outputs then come from
onnxruntime), which is faster.

    python -m benchmarks.accuracy [--models digits cancer_mlp ...] [--configs default sparse75 ...]
                                  [--limit N] [--numpy] [--set FIELD=VALUE ...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAINED = ROOT / "tests" / "fixtures" / "trained"
HELD_BACK_PREFIX = "heldout_"


@dataclass(frozen=True)
class TrainedModel:
    name: str
    onnx: Path
    calib: Path
    test: Path

    @property
    def held_back(self) -> bool:
        return self.name.startswith(HELD_BACK_PREFIX)


def _fixture(name: str) -> TrainedModel:
    return TrainedModel(name, TRAINED / f"{name}.onnx", TRAINED / f"{name}_calib.npz", TRAINED / f"{name}_test.npz")


EXAMPLE = ROOT / "examples" / "digits"
MODELS = (
    TrainedModel("digits", EXAMPLE / "digits.onnx", EXAMPLE / "calib.npz", EXAMPLE / "test.npz"),
    _fixture("digits_wide"),
    _fixture("cancer_mlp"),
    _fixture("digits_seq1d"),
    _fixture("heldout_digits_res"),
)
TUNED = tuple(m for m in MODELS if not m.held_back)  # what tests/test_accuracy.py holds to the bounds

# the compiler's behaviour before calibration methods, equalization and reconstruction
LEGACY = {"calibration": "minmax", "equalize": False, "reconstruct": "none"}
SPARSITIES = {"sparse75": 0.75, "sparse90": 0.9}
CONFIGS = ("minmax", "default", "sparse75", "sparse90", "int16", "auto")


def option_fields() -> set[str]:
    from codegen.options import CompileOptions

    return {f.name for f in dataclasses.fields(CompileOptions)}


def precisions() -> tuple[str, ...]:
    from codegen import options

    return tuple(getattr(options, "PRECISIONS", ("int8",)))


def configuration(config: str) -> dict | None:
    """CompileOptions fields (besides mode int8) of a configuration, None when the compiler has
    no such option yet."""
    from codegen.passes.prune import PruneOptions

    if config == "minmax":
        fields = option_fields()
        return {k: v for k, v in LEGACY.items() if k in fields}
    if config == "default":
        return {}
    if config in SPARSITIES:
        return {"prune": PruneOptions(sparsity=SPARSITIES[config])}
    if config in ("int16", "auto"):
        return {"precision": config} if config in precisions() else None
    raise ValueError(f"unknown configuration '{config}' (choose from {', '.join(CONFIGS)})")


def load_test(model: TrainedModel, limit: int | None = None) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """The test split as the compiler's samples (one dict per sample, the model's input shape)
    and its labels; the first `limit` samples when given."""
    from codegen.frontend import import_model
    from codegen.frontend.load import load_model
    from codegen.samples import load_samples

    onnx_model, label = load_model(str(model.onnx))
    samples, labels = load_samples(model.test, import_model(onnx_model, label=label))
    if limit is not None:
        samples, labels = samples[:limit], labels[:limit]
    return samples, np.asarray(labels)


def float_outputs(model: TrainedModel, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """The float model's first output on each sample (onnxruntime, optimizations off), [1, ...]."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(model.onnx), options, providers=["CPUExecutionProvider"])
    return [np.asarray(session.run(None, feeds)[0], np.float64) for feeds in samples]


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """10 log10(sum reference^2 / sum (actual - reference)^2) over every output value (the
    figure codegen.verify reports)."""
    noise = float(np.sum((np.asarray(actual, np.float64) - reference) ** 2))
    signal = float(np.sum(np.asarray(reference, np.float64) ** 2))
    return math.inf if noise == 0 else 10.0 * math.log10(signal / noise)


def weight_tables_ratio(report: dict) -> float | None:
    """Bytes of the weight tables as encoded over the same tables dense (int8), all layers."""
    layers = [layer for layer in report["layers"] if layer.get("weight_bytes_dense")]
    dense = sum(layer["weight_bytes_dense"] for layer in layers)
    return sum(layer["weight_bytes_encoded"] for layer in layers) / dense if dense else None


def int16_share(graph) -> float | None:
    """The share of the model's layers whose activations are int16: the layers that choose a
    precision of their own (not the Requantize nodes between precisions, nor the operators that
    keep their input's quantization: reshapes, max pooling)."""
    from codegen.ops import get_op

    layers = [n for n in graph.nodes if "precision" in n.attrs and n.op_type != "Requantize"
              and not get_op(n.op_type).keeps_qparams]
    if not layers:
        return None
    return sum(n.attrs["precision"] == "int16" for n in layers) / len(layers)


def compile_config(model: TrainedModel, choices: dict, **extra):
    from codegen.compiler import compile_model
    from codegen.options import CompileOptions

    options = CompileOptions(mode="int8", **choices, **extra)
    return compile_model(str(model.onnx), model.name, calib=str(model.calib), options=options)


def int8_outputs(compiled, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """The NumPy int8 reference's first output on each sample, dequantized (the C's values)."""
    from codegen.compiler import quantize_inputs
    from codegen.reference import run_int8

    graph = compiled.graph
    name = graph.outputs[0]
    return [graph.tensors[name].quant.dequantize(run_int8(graph, quantize_inputs(graph, feeds))[name]
                                                 ).astype(np.float64) for feeds in samples]


def evaluate(model: TrainedModel, config: str, samples, labels, reference: list[np.ndarray] | None = None,
             build: bool = True, overrides: dict | None = None) -> dict | None:
    """One configuration's figures on the samples, None when the compiler lacks its option.
    build: the C on the host through codegen.verify; else the NumPy int8 reference against
    `reference` (the float outputs, float_outputs()). `overrides`: CompileOptions fields set in
    every configuration but minmax."""
    choices = configuration(config)
    if choices is None:
        return None
    if overrides and config != "minmax":
        choices = {**overrides, **choices}
    start = time.perf_counter()
    compiled = compile_config(model, choices)
    seconds = time.perf_counter() - start
    out = {"compile_seconds": round(seconds, 2), "weight_tables_ratio": weight_tables_ratio(compiled.report),
           "int16_share": int16_share(compiled.graph), "weights_bytes": compiled.report["weights_bytes"]}
    if build:
        from codegen import verify

        result = verify.verify(compiled, samples, labels)
        out.update(sqnr_db=result["sqnr_db"], accuracy=result["accuracy"], accuracy_float=result["accuracy_float"],
                   exact=result["bit_exact"])
    else:
        outputs = int8_outputs(compiled, samples)
        out.update(sqnr_db=sqnr_db(np.concatenate([r.reshape(-1) for r in reference]),
                                   np.concatenate([o.reshape(-1) for o in outputs])),
                   accuracy=float(np.mean([int(np.argmax(o)) == y for o, y in zip(outputs, labels)])),
                   accuracy_float=float(np.mean([int(np.argmax(r)) == y for r, y in zip(reference, labels)])),
                   exact=None)
    return out


def run(models, configs, limit: int | None = None, build: bool = True, log=print, overrides: dict | None = None
        ) -> dict:
    """{model name: {"samples", "accuracy_float", config: figures or None}}."""
    table = {}
    for model in models:
        samples, labels = load_test(model, limit)
        reference = None if build else float_outputs(model, samples)
        row = {"samples": len(samples), "held_back": model.held_back}
        for config in configs:
            row[config] = evaluate(model, config, samples, labels, reference, build, overrides)
            if row[config] is not None:
                row.setdefault("accuracy_float", row[config]["accuracy_float"])
            log(f"  {model.name} {config}: {_cell(config, row[config]) or 'n/a'}", file=sys.stderr)
        if "accuracy_float" not in row:
            samples_ref = reference or float_outputs(model, samples)
            row["accuracy_float"] = float(np.mean([int(np.argmax(r)) == y for r, y in zip(samples_ref, labels)]))
        table[model.name] = row
    return table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _db(x: float | None) -> str:
    return "n/a" if x is None else ("exact" if math.isinf(x) else f"{x:.1f} dB")


def _cell(config: str, figures: dict | None) -> str:
    if figures is None:
        return "n/a"
    mark = "" if figures.get("exact") in (None, True) else " (C DIFFERS)"
    if config in SPARSITIES:
        ratio = figures["weight_tables_ratio"]
        return f"{_pct(figures['accuracy'])}, {'n/a' if ratio is None else f'{ratio:.2f}x'}{mark}"
    if config in ("int16", "auto"):
        share = figures["int16_share"]
        return f"{_db(figures['sqnr_db'])}, {'n/a' if share is None else f'{100 * share:.0f}%'} int16{mark}"
    return f"{_db(figures['sqnr_db'])}, {_pct(figures['accuracy'])}{mark}"


HEADERS = {"minmax": "int8 minmax (SQNR, acc)", "default": "int8 default (SQNR, acc)",
           "sparse75": "75% sparse (acc, tables)", "sparse90": "90% sparse (acc, tables)",
           "int16": "int16 (SQNR, layers)", "auto": "auto (SQNR, layers)"}


def format_table(table: dict, configs) -> str:
    head = ["model", "test", "float acc"] + [HEADERS[c] for c in configs]
    rows = [[name, str(row["samples"]), _pct(row["accuracy_float"])] + [_cell(c, row[c]) for c in configs]
            for name, row in table.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=[m.name for m in MODELS],
                        help="default: all, the held-back model last in a table of its own")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--limit", type=int, help="the first N test samples of each model (default: all)")
    parser.add_argument("--numpy", action="store_true", help="the NumPy int8 reference instead of the C")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="CompileOptions fields for every configuration but minmax (e.g. reconstruct=full)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    overrides = dict(_field(item, parser) for item in args.set)
    chosen = [m for m in MODELS if args.models is None or m.name in args.models]
    tuned = [m for m in chosen if not m.held_back]
    held = [m for m in chosen if m.held_back]
    configs = [c for c in CONFIGS if c in args.configs]
    tables = {}
    for title, models in (("trained models", tuned), ("held back", held)):
        if not models:
            continue
        table = run(models, configs, args.limit, build=not args.numpy,
                    log=lambda *a, **k: print(*a, **k, flush=True), overrides=overrides)
        tables[title] = table
        print(f"\n{title}:\n")
        print(format_table(table, configs))
    print("\nminmax: " + (", ".join(f"{k} {v}" for k, v in configuration("minmax").items()) or "the defaults"))
    if overrides:
        print("the other configurations: " + ", ".join(f"{k} {v}" for k, v in overrides.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"configs": {c: _describe(configuration(c)) for c in configs}, "overrides": overrides,
                       **tables}, f, indent=2)
            f.write("\n")
    return 0


def _field(item: str, parser) -> tuple[str, object]:
    """FIELD=VALUE of --set: a CompileOptions field, its value read as JSON when it parses
    (numbers, true/false), else as a string."""
    name, sep, value = item.partition("=")
    if not sep or name not in option_fields():
        parser.error(f"--set {item}: FIELD=VALUE with a CompileOptions field ({', '.join(sorted(option_fields()))})")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _describe(choices: dict | None):
    if choices is None:
        return None
    return {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v) for k, v in choices.items()}


if __name__ == "__main__":
    sys.exit(main())
