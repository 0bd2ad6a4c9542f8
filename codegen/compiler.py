"""The pipeline in one place: load -> import (and fold) -> the passes of PIPELINE -> emit -> (write folder)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from codegen import cross, workdirs
from codegen.emit import EmittedModel, emit_model
from codegen.emit.cnames import prefix_identifier
from codegen.errors import CompileError
from codegen.frontend import import_model, qdq
from codegen.frontend.load import load_model
from codegen.ir import Graph
from codegen.ops import get_op
from codegen.options import CompileOptions
from codegen.passes import calibrate, encode, equalize, plan_memory, precision, quantize
from codegen.passes import prune as prune_pass
from codegen.passes import reconstruct
from codegen.passes.plan_memory import MemoryPlan
from codegen.reference import run_float, run_int8
from codegen.samples import calibration_samples
from codegen.targets import load_target


@dataclass
class CompiledModel:
    model: onnx.ModelProto  # the original model, checked, external data loaded
    graph: Graph  # the graph the C computes (int8 after quantization)
    plan: MemoryPlan
    emitted: EmittedModel
    float_graph: Graph | None = None  # the float graph before quantization (int8 mode)
    host_files: dict[str, str] | None = None  # the folder with portable kernels, when the target's differ

    @property
    def report(self) -> dict:
        return self.emitted.report

    @property
    def mode(self) -> str:
        return self.emitted.report["options"]["mode"]


def model_prefix(source, name: str | None) -> str:
    """The model's C prefix from --name, else the file's stem (the graph's name for a ModelProto):
    short and never a reserved name (codegen/emit/cnames.py prefix_identifier)."""
    if name is None:
        name = Path(str(source)).stem if not isinstance(source, onnx.ModelProto) else (source.graph.name or "model")
    return prefix_identifier(name)


@dataclass
class Compilation:
    """What the passes of the pipeline share. Each pass reads and changes it in place."""

    options: CompileOptions
    label: str  # the model as errors name it
    graph: Graph  # the graph being compiled: float, then int8 after quantize
    calib: object = None  # the calibration source: an .npz path or a list of samples
    samples: list = field(default_factory=list)  # calibration samples, {input name: array}
    original: Graph | None = None  # the float graph before pruning: the teacher
    float_graph: Graph | None = None  # the float graph the int8 graph approximates
    ranges: dict = field(default_factory=dict)  # calibrated tensor ranges
    given: dict = field(default_factory=dict)  # a QDQ model's own activation parameters
    features: tuple = ()  # the target's CPU features
    plan: MemoryPlan | None = None
    report_options: dict = field(default_factory=dict)  # report.json's "options"
    report: dict = field(default_factory=dict)  # merged into report.json
    layer_sqnr: list = field(default_factory=list)


def samples_step(c: Compilation) -> None:
    """The calibration samples, when a pass needs them: int8 without a QDQ model's own
    parameters (or with --calib anyway), or pruning with --calib."""
    o = c.options
    if (o.int8 and (c.calib is not None or not c.given)) or (o.pruning is not None and c.calib is not None):
        c.samples, calib_label, calibration = calibration_samples(c.calib, c.graph, c.label, o.calib_samples)
        calibrate.check_samples(c.samples, calib_label)
        c.report["calibration"] = {"source": calib_label, **calibration}


def prune_step(c: Compilation) -> None:
    """Pruning of the float weights (codegen/passes/prune.py); then the flash budget on a lower bound."""
    prune = c.options.pruning
    if prune is not None and prune.bias_correction and c.options.int8 and c.options.reconstruction == "full":
        prune = dataclasses.replace(prune, bias_correction=False)  # the re-fit of pruned layers does more
    if prune is not None:
        c.original = copy.deepcopy(c.graph)
        c.report["pruning"] = prune_pass.run(c.graph, prune, c.samples)
        c.report_options["prune"] = prune.describe()
        if not c.options.int8:
            c.float_graph = c.graph  # what the pruned float C computes
    check_weights_fit(weights_lower_bound(c.graph), _flash_budget(c.options), c.options.target, c.label,
                      "need at least")


def equalize_step(c: Compilation) -> None:
    """int8: cross-layer equalization of the float weights, each pair kept where it raises the int8
    SQNR on the calibration samples, and the whole kept only where it raises it with this
    compile's calibration method and bias correction (codegen/passes/equalize.py); the float
    model before pruning, the teacher of reconstruct, gets the same scalings. A QDQ model keeps
    its own weights."""
    o = c.options
    if o.int8 and o.equalize and not c.given:
        teachers = (c.original,) if c.original is not None else ()
        off = frozenset(name for name, choice in o.per_layer.items() if choice.get("equalize") is False)
        judge = {"calibration": o.calibration, "percentile": o.percentile,
                 "reconstruct": "none" if o.reconstruction == "none" else "bias"}
        c.report["equalization"] = equalize.run(c.graph, c.samples, teachers, off, judge)


def calibrate_step(c: Compilation) -> None:
    """int8: the range of every run-time tensor on the calibration samples (codegen/passes/calibrate.py)."""
    if not c.options.int8:
        return
    c.float_graph = copy.deepcopy(c.graph)
    if c.original is None:
        c.original = c.float_graph
    o = c.options
    if c.samples:
        per_tensor = {out: choice["calibration"] for name, choice in o.per_layer.items() if "calibration" in choice
                      for out in _layer_outputs(c.graph, name)}
        c.ranges, tensors = calibrate.calibrate(c.graph, c.samples, o.calibration, o.percentile, per_tensor=per_tensor)
        c.report.setdefault("calibration", {}).update(
            method=o.calibration, percentile=o.percentile, weight_clipping=o.weight_clipping,
            tensors={n: {"method": d["method"], "lo": float(d["lo"]), "hi": float(d["hi"]),
                         "clipped": round(float(d["clipped"]), 6)} for n, d in tensors.items()})
    if not c.given:  # a QDQ model's weights keep the scales of their file
        calibrate.clip_weights(c.graph, o.weight_clipping, o.per_layer)


def _layer_outputs(graph: Graph, name: str) -> list[str]:
    """The outputs of node `name`, or [name] for a graph input (per_layer may name either)."""
    node = next((n for n in graph.nodes if n.name == name), None)
    if node is None and name not in graph.inputs:
        raise CompileError(f"per-layer calibration of '{name}': the model has no such node or input")
    return list(node.outputs) if node is not None else [name]


def precision_step(c: Compilation) -> None:
    """int8: each layer's activation precision, int8 or int16 (codegen/passes/precision.py)."""
    if not c.options.int8:
        return
    o = c.options
    layers = any("precision" in v for v in o.per_layer.values())
    if o.precision != "int8" or layers:  # the provenance line of every file
        c.report_options["precision"] = o.precision + (" and per layer" if layers else "")
    if o.precision == "auto":
        finish = None
        if o.reconstruction != "none" and not c.given:  # each candidate as reconstruct_step will leave it
            prune = o.pruning
            masks = prune is not None and prune.pattern == "unstructured"
            finish = lambda g: reconstruct.run(g, c.original, c.samples, o.reconstruction,  # noqa: E731
                                               progress=False, choose_masks=masks)
        layers, found = precision.auto(c.graph, c.ranges, c.given, c.samples, o.per_layer, o.min_sqnr,
                                       o.ram_budget, c.features, o.encoding, finish)
        c.report["precision"] = {**precision.run(c.graph, "int8", layers, c.given), "default": "auto",
                                 "auto": found}
        return
    c.report["precision"] = precision.run(c.graph, o.precision, o.per_layer, c.given)


def quantize_step(c: Compilation) -> None:
    """int8: every run-time tensor gets its scale and zero point, every node its integer parameters."""
    if not c.options.int8:
        return
    c.report_options["quantization"] = "qdq" if c.given else "calibrated"
    quantize.run(c.graph, c.ranges, c.given)


def reconstruct_step(c: Compilation) -> None:
    """int8: layer by layer, the weights' rounding and the bias (and with "full" the pruned layers'
    weights) fitted to the float teacher's outputs (codegen/passes/reconstruct.py). A QDQ model's
    weights keep the rounding of their file."""
    if c.options.int8 and c.options.reconstruction != "none" and not c.given:
        prune = c.options.pruning
        section = reconstruct.run(c.graph, c.original, c.samples, c.options.reconstruction,
                                  choose_masks=prune is not None and prune.pattern == "unstructured")
        reconstruct.carry_weights(c.graph, c.float_graph, section)
        c.report["reconstruction"] = reconstruct.without_timings(section)


def measure_step(c: Compilation) -> None:
    """int8: each layer's SQNR against the float graph on (some of) the calibration samples."""
    if c.options.int8 and c.samples:
        c.layer_sqnr = layer_errors(c.float_graph, c.graph, c.samples[:SQNR_SAMPLES])


def encode_step(c: Compilation) -> None:
    """int8: dense or sparse weight tables per layer (codegen/passes/encode.py)."""
    if c.options.int8:
        encode.run(c.graph, c.features, c.options.encoding)
        if c.options.encoding != "auto":
            c.report_options["encoding"] = c.options.encoding


def plan_step(c: Compilation) -> None:
    """The arena: every run-time tensor's offset (codegen/passes/plan_memory.py)."""
    c.plan = plan_memory.run(c.graph, c.features)


# The pipeline, in order (DESIGN.md, "The compression pipeline"). Folding happens on import
# (codegen/frontend/simplify.py), so every pass sees the folded graph.
PIPELINE = (
    ("samples", samples_step),
    ("prune", prune_step),
    ("equalize", equalize_step),
    ("calibrate", calibrate_step),
    ("precision", precision_step),
    ("quantize", quantize_step),
    ("reconstruct", reconstruct_step),
    ("measure", measure_step),
    ("encode", encode_step),
    ("plan", plan_step),
)


def _flash_budget(options: CompileOptions) -> int | None:
    return options.flash_budget or load_target(options.target).get("flash_budget")


def compile_model(source, name: str | None = None, measure: bool = False, calib=None,
                  options: CompileOptions | None = None, **choices) -> CompiledModel:
    """Compile a model (path or ModelProto) to C.

    `options` (codegen/options.py) says what to do; keyword `choices` set or override its
    fields (mode="int8", prune=PruneOptions(...), ...). int8 needs `calib`: an .npz path or a
    list of {input name: array} samples, of which at most `options.calib_samples` are used (a
    seeded subset, codegen/samples.py; None: all). The passes of PIPELINE run in order;
    `measure` then compiles the folder for size with the target's toolchain and adds flash and
    RAM figures to the report. A model whose weight tables cannot fit the flash budget
    (default: the target's) is refused before any C compiler runs: first on a lower bound from
    the graph, then on the tables' bytes."""
    options = dataclasses.replace(options, **choices) if options is not None else CompileOptions(**choices)
    model, label = load_model(source)
    prefix = model_prefix(source, name)
    graph = import_model(model, label=label, name=prefix)
    if options.int8:  # Q/DQ pairs become the tensors' own scales and zero points
        qdq.for_int8(graph, label)
    graph.meta["source"] = label
    graph.meta["sha256"] = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
    spec = load_target(options.target)
    c = Compilation(options, label, graph, calib=calib, given=graph.meta.get("qdq", {}),
                    features=tuple(sorted(k for k, on in spec.get("features", {}).items() if on)))
    c.report_options["mode"] = options.mode
    if options.arena == "extern":
        c.report_options["arena"] = "extern"
    if options.float_io:
        c.report_options["float_io"] = True
    for _, step in PIPELINE:
        step(c)
    if options.target != "host":
        c.report_options["target"] = options.target
        c.report_options["cflags"] = list(spec["cflags"])
    emitted = emit_model(c.graph, c.plan, prefix, c.report_options, c.features)
    host_files = None
    if emitted.report["optimized_kernels"]:
        host_options = {k: v for k, v in c.report_options.items() if k != "cflags"}
        host_files = emit_model(c.graph, c.plan, prefix, host_options).files
    for layer, sqnr in zip(emitted.report["layers"], c.layer_sqnr):
        layer["sqnr_db"] = sqnr  # null: the layer's output equals the float reference
    emitted.report.update(c.report)
    for layer, node in zip(emitted.report["layers"], c.graph.nodes):
        if options.int8 and c.graph.tensors[node.outputs[0]].quant is not None:
            layer["precision"] = c.graph.tensors[node.outputs[0]].dtype  # int8 or int16 activations
        calibrated = c.report.get("calibration", {}).get("tensors", {}).get(node.outputs[0])
        if calibrated is not None and not get_op(node.op_type).keeps_qparams:  # (those share their input's)
            layer["calibration"] = calibrated
        choice = node.attrs.get("encoding")
        if choice is not None:
            layer.update(sparsity=round(choice.sparsity, 4), encoding=choice.encoding,
                         weight_bytes_dense=choice.dense_bytes, weight_bytes_encoded=choice.bytes,
                         encoding_reason=choice.reason)
    check_weights_fit(emitted.report["weights_bytes"], _flash_budget(options), options.target, label, "take")
    if measure:
        sizes = cross.measure(emitted.files, options.target)
        emitted.report.update(
            flash_bytes=sizes["code_bytes"] + sizes["const_bytes"] + sizes["data_bytes"],
            ram_bytes=sizes["data_bytes"] + sizes["bss_bytes"] + sizes.get("stack_bytes", 0),
            sizes=sizes,
        )
        if options.arena == "extern":  # defined by the caller, outside the folder's objects
            emitted.report["ram_bytes"] += 4 * max(1, -(-c.plan.arena_bytes // 4))
    return CompiledModel(model, c.graph, c.plan, emitted, c.float_graph, host_files)


def check_budget(report: dict, target: str, flash_budget: int | None = None, ram_budget: int | None = None) -> None:
    """CompileError when the measured flash or RAM exceeds the target's budget (or the override)."""
    spec = load_target(target)
    for what, used, budget in (("flash", report.get("flash_bytes"), flash_budget or spec.get("flash_budget")),
                               ("RAM", report.get("ram_bytes"), ram_budget or spec.get("ram_budget"))):
        if used is not None and budget and used > budget:
            raise CompileError(f"{report['model']}: {what} {used} B exceeds the {target} budget of {budget} B")


TABLE_MIN = 64  # constants this large are weight tables; smaller ones may become immediates


def weights_lower_bound(graph: Graph) -> int:
    """Bytes that the weight tables take at least: one per nonzero value of each large constant
    a node reads (int8 is the smallest element; a sparse encoding still stores every nonzero)."""
    seen, total = set(), 0
    for node in graph.nodes:
        for name in node.inputs:
            data = graph.const(name) if name and name not in seen else None
            seen.add(name)
            if data is not None and data.size >= TABLE_MIN:
                total += int(np.count_nonzero(data))
    return total


def check_weights_fit(weight_bytes: int, budget: int | None, target: str, label: str, verb: str) -> None:
    """CompileError, before any C compiler runs, when the weight tables exceed the flash budget."""
    if budget and weight_bytes > budget:
        raise CompileError(f"{label}: the weight tables {verb} {weight_bytes} B, more than the {target} flash "
                           f"budget of {budget} B")


SQNR_SAMPLES = 32


def quantize_inputs(graph: Graph, feeds: dict) -> dict:
    """Float inputs -> the int8 arrays the C API takes (the inputs' scales and zero points);
    integer and bool inputs as they are."""
    return {n: graph.tensors[n].quant.quantize(feeds[n]) if graph.tensors[n].quant is not None else feeds[n]
            for n in graph.inputs}


def layer_errors(float_graph: Graph, graph: Graph, samples: list[dict]) -> list[float | None]:
    """SQNR in dB of each node's first output, dequantized, against the float reference."""
    signal = np.zeros(len(graph.nodes))
    noise = np.zeros(len(graph.nodes))
    for feeds in samples:
        ref = run_float(float_graph, feeds, keep_all=True)
        got = run_int8(graph, quantize_inputs(graph, feeds), keep_all=True)
        for i, node in enumerate(graph.nodes):
            name = node.outputs[0]
            if graph.tensors[name].quant is None:  # indices, labels, masks: no quantization error
                continue
            expected = ref[name if name in ref else node.inputs[0]].astype(np.float64)  # Requantize: its input
            actual = graph.tensors[name].quant.dequantize(got[name]).astype(np.float64)
            signal[i] += np.sum(expected ** 2)
            noise[i] += np.sum((actual - expected) ** 2)
    return [sqnr_db(s, n) for s, n in zip(signal, noise)]


def sqnr_db(signal_power: float, noise_power: float) -> float | None:
    """10 log10(signal / noise); None (JSON null) for an exact layer or a silent one."""
    if noise_power == 0 or signal_power == 0:
        return None
    return round(10.0 * math.log10(signal_power / noise_power), 2)


_MARKER = "report.json"


def write_folder(emitted: EmittedModel, outdir: str | os.PathLike) -> Path:
    """Write the folder atomically: a complete new folder replaces a previous output.

    1. A folder that exists, is not empty and is not an earlier output of this tool is left
       alone (CompileError), so `-o` never destroys unrelated files.
    2. The new folder is written beside the output as `.OUT.onnx2mcu-PID-new-*`, then renamed
       over it (the previous output moves aside to `.OUT.onnx2mcu-PID-old-*` for that instant):
       OUT is always the previous complete output, the new one or (if killed between the two
       renames) absent, never partial. Leftovers of killed runs are removed first
       (codegen/workdirs.py).
    3. `-o` may be a symbolic link to a folder: the folder it points to is replaced, the link
       stays. A link to anything else (or to nothing) is refused before anything is written.
    4. Folders and files get the usual modes: 0777 and 0666 minus the umask.
    """
    given = Path(outdir)
    out = given.resolve() if given.name in ("", ".", "..") else given
    if out.is_symlink():
        target = Path(os.path.realpath(out))
        if not target.is_dir():
            raise CompileError(f"{given}: is a symbolic link to {target}, which is not a folder")
        out = target
    if not out.name:
        raise CompileError(f"{given}: cannot replace this folder; choose another -o")
    if out.exists():
        if not out.is_dir():
            raise CompileError(f"{given}: exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not _is_ours(out / _MARKER):
            raise CompileError(f"{given}: folder is not empty and was not written by onnx2mcu; choose another -o")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CompileError(f"{given}: cannot create its parent folder: {e.strerror or e}") from None
    tag = f".{out.name}.{workdirs.TAG}"
    workdirs.sweep(out.parent, tag)
    staging = workdirs.make_folder(out.parent, tag, "new")
    try:
        for name, text in emitted.files.items():
            (staging / name).write_text(text)
            workdirs.checkpoint("write")
        (staging / _MARKER).write_text(json.dumps(emitted.report, indent=2, sort_keys=False) + "\n")
        if out.exists():
            old = workdirs.make_folder(out.parent, tag, "old")
            os.rmdir(old)
            os.replace(out, old)
            workdirs.checkpoint("swap")
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return given


def _is_ours(report: Path) -> bool:
    try:
        return json.loads(report.read_text()).get("tool", "").startswith("onnx2mcu")
    except (OSError, ValueError, AttributeError):
        return False
