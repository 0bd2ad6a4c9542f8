"""The pipeline in one place: load -> import -> plan -> emit -> (write folder)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from codegen.build import measure_sizes
from codegen.emit import EmittedModel, emit_model
from codegen.emit.cnames import Identifiers
from codegen.errors import CompileError
from codegen.frontend import import_model
from codegen.frontend.load import load_model
from codegen.ir import Graph
from codegen.passes import plan_memory
from codegen.passes.plan_memory import MemoryPlan


@dataclass
class CompiledModel:
    model: onnx.ModelProto  # the original model, checked, external data loaded
    graph: Graph
    plan: MemoryPlan
    emitted: EmittedModel

    @property
    def report(self) -> dict:
        return self.emitted.report


def model_prefix(source, name: str | None) -> str:
    if name is None:
        name = Path(str(source)).stem if not isinstance(source, onnx.ModelProto) else (source.graph.name or "model")
    return Identifiers().make(name)


def compile_model(source, name: str | None = None, measure: bool = False) -> CompiledModel:
    """`measure` compiles the folder for size and adds flash and RAM figures to the report."""
    model, label = load_model(source)
    prefix = model_prefix(source, name)
    graph = import_model(model, label=label, name=prefix)
    graph.meta["source"] = label
    graph.meta["sha256"] = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
    plan = plan_memory.run(graph)
    emitted = emit_model(graph, plan, prefix, {"mode": "float32"})
    if measure:
        sizes = measure_sizes(emitted.files)
        emitted.report.update(
            flash_bytes=sizes["code_bytes"] + sizes["const_bytes"] + sizes["data_bytes"],
            ram_bytes=sizes["data_bytes"] + sizes["bss_bytes"],
            sizes={"target": "host", **sizes},
        )
    return CompiledModel(model, graph, plan, emitted)


_MARKER = "report.json"


def write_folder(emitted: EmittedModel, outdir: str | os.PathLike) -> Path:
    """Write the folder atomically: a complete new folder replaces a previous output.

    A folder that exists, is not empty and is not an earlier output of this tool is left
    alone (CompileError), so `-o` never destroys unrelated files.
    """
    out = Path(outdir)
    if out.exists():
        if not out.is_dir():
            raise CompileError(f"{out}: exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not _is_ours(out / _MARKER):
            raise CompileError(f"{out}: folder is not empty and was not written by onnx2mcu; choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in emitted.files.items():
            (staging / name).write_text(text)
        (staging / _MARKER).write_text(json.dumps(emitted.report, indent=2, sort_keys=False) + "\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _is_ours(report: Path) -> bool:
    try:
        return json.loads(report.read_text()).get("tool", "").startswith("onnx2mcu")
    except (OSError, ValueError, AttributeError):
        return False
