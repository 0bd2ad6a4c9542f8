"""Several models in one folder: `onnx2mcu compile a.onnx b.onnx ... -o OUT`.

Each model is compiled as it would be alone (same options for all; calibration data per
model), then emitted again with the runtime under the folder's prefix, once for all, and
with `shared_arena` one arena as large as the largest model's. The report holds each model's
own report and the flash and RAM the folder saves against one folder per model linked into
the same firmware (whose data and bss add up, while the stack is the deepest one's).
"""

from __future__ import annotations

from pathlib import Path

from codegen import cross
from codegen.compiler import CompiledModel, compile_model, model_prefix
from codegen.emit import EmittedModel
from codegen.emit.bundle import BundledModel, check_names, emit_bundle
from codegen.errors import CompileError
from codegen.targets import load_target


def _ram(sizes: dict) -> int:
    return sizes["data_bytes"] + sizes["bss_bytes"]


def _words(arena_bytes: int) -> int:
    """Bytes of an int32_t arena array of at least `arena_bytes` (one word at least)."""
    return 4 * max(1, -(-arena_bytes // 4))


def compile_bundle(sources: list, name: str, calibs: list | None = None, shared_arena: bool = False,
                   arena: str = "static", target: str = "host", measure: bool = True, **options
                   ) -> tuple[EmittedModel, list[CompiledModel]]:
    """The folder's files and report, and each model compiled alone (keyword `options` as
    compile_model takes them). `calibs`: one calibration source per model, in order, or None."""
    if len(sources) < 2:
        raise CompileError("a multi-model compile takes two or more models")
    calibs = list(calibs) if calibs else [None] * len(sources)
    if len(calibs) != len(sources):
        raise CompileError(f"{len(sources)} models and {len(calibs)} --calib files: give --calib once per model, "
                           f"in the models' order")
    prefix = model_prefix(name, name)
    check_names([model_prefix(src, None) for src in sources], prefix)  # before the work
    compiled = [compile_model(src, None, measure=measure, calib=calib, target=target, arena=arena, **options)
                for src, calib in zip(sources, calibs)]
    spec = load_target(target)
    features = tuple(sorted(k for k, on in spec.get("features", {}).items() if on))
    folder_options = dict(compiled[0].report["options"])
    for key in ("quantization", "prune", "float_io", "encoding"):  # per model (e.g. qdq or calibrated)
        folder_options.pop(key, None)
    models = [BundledModel(c.graph, c.plan, c.report["model"], c.report["options"]) for c in compiled]
    emitted = emit_bundle(models, prefix, folder_options, features, shared_arena)
    for own, alone in zip(emitted.report["models"], compiled):  # measured and computed facts of each model
        for key in ("flash_bytes", "ram_bytes", "sizes", "pruning", "calibration"):
            if key in alone.report:
                own[key] = alone.report[key]
        for layer, measured in zip(own["layers"], alone.report["layers"]):
            for key in ("sqnr_db", "sparsity", "encoding", "weight_bytes_dense", "weight_bytes_encoded",
                        "encoding_reason"):
                if key in measured:
                    layer[key] = measured[key]
    if measure:
        sizes = cross.measure(emitted.files, target)
        arenas = [emitted.report["arena_bytes"]] if shared_arena else [c.plan.arena_bytes for c in compiled]
        by_caller = sum(_words(n) for n in arenas) if arena == "extern" else 0  # outside the folder's objects
        flash = sizes["code_bytes"] + sizes["const_bytes"] + sizes["data_bytes"]
        ram = _ram(sizes) + by_caller + sizes.get("stack_bytes", 0)
        alone = [c.report["sizes"] for c in compiled]
        separate_flash = sum(s["code_bytes"] + s["const_bytes"] + s["data_bytes"] for s in alone)
        separate_ram = sum(c.report["ram_bytes"] - c.report["sizes"].get("stack_bytes", 0) for c in compiled) \
            + max(s.get("stack_bytes", 0) for s in alone)
        emitted.report.update(flash_bytes=flash, ram_bytes=ram, sizes=sizes,
                              separate={"flash_bytes": separate_flash, "ram_bytes": separate_ram},
                              saved={"flash_bytes": separate_flash - flash, "ram_bytes": separate_ram - ram})
    return emitted, compiled


def bundle_name(outdir, name: str | None) -> str:
    """--name, else the output folder's name."""
    return name if name is not None else Path(outdir).resolve().name or "models"
