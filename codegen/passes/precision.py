"""Precision: which layers compute with int16 activations (TFLite's 16x8 scheme), before quantize.

1. Each node asks for a precision: its entry in `per_layer` ({node name: {"precision": ...}}),
   else the model's `default` ("int8" or "int16").
2. A family without an int16 rule (Op.precisions, ops/base.py section 10) stays int8, and so
   does a node whose output a QDQ model quantizes itself (its Q/DQ pair states int8, and the
   clamp of that int8 range can stand for an activation the file dropped); the result lists
   the nodes asked for int16 that stay int8, and why.
3. A family that keeps its input's quantization (Op.keeps_qparams: Reshape, MaxPool...) keeps
   its input's precision, when it has a rule for it; a graph input is int16 when every node
   that reads it asked for int16, where a node that keeps its input's quantization stands for
   the nodes reading its output.
4. node.attrs["precision"] holds the choice; passes/quantize.py inserts a Requantize node
   wherever a tensor meets a layer of the other precision.

`auto` chooses per layer (mixed precision), on calibration samples against the float model:
5. The candidates are the nodes that can take int16 and do not merely keep their input's
   parameters, less those whose precision `per_layer` fixes. Each candidate's sensitivity is the
   output SQNR lost when it alone is int8 and the other candidates int16.
6. From all candidates int8, the most sensitive are promoted to int16 one at a time, until the
   output SQNR reaches the target (default: 1 dB below all-int16) or no candidate is left; a
   promotion that would take the arena beyond `ram_budget` is skipped. The result is the
   per-layer choice of the first state that reaches the target (or the last one), with the
   figures of each step in the report, measured on each candidate as the compile leaves it:
   quantized, then through the reconstruct pass when one runs (the compiler's `finish`).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from codegen.errors import CompileError
from codegen.ir import Graph
from codegen.ops import get_op

PRECISIONS = ("int8", "int16")
AUTO_SAMPLES = 64  # calibration samples auto measures each choice on
AUTO_MARGIN_DB = 1.0  # the default target: this much below all-int16


def check_precision(value, where: str) -> str:
    if value not in PRECISIONS:
        raise CompileError(f"{where}: unknown precision {value!r} (choose from {', '.join(PRECISIONS)})")
    return value


def requested(graph: Graph, default: str = "int8", per_layer: dict | None = None) -> dict[str, str]:
    """Rule 1: node name -> the precision asked for."""
    check_precision(default, "--precision")
    asked = _per_layer(graph, per_layer)
    return {n.name: asked.get(n.name, default) for n in graph.nodes}


def _per_layer(graph: Graph, per_layer: dict | None) -> dict[str, str]:
    """The precisions `per_layer` fixes, by node name."""
    per_layer = per_layer or {}
    names = {n.name for n in graph.nodes}
    asked = {}
    for name, entry in per_layer.items():
        if isinstance(entry, dict) and "precision" in entry:
            if name not in names:
                raise CompileError(f"per-layer precision of node '{name}': the model has no such node")
            asked[name] = check_precision(entry["precision"], f"per-layer option of node '{name}'")
    return asked


def run(graph: Graph, default: str = "int8", per_layer: dict | None = None, given=()) -> dict:
    """Set node.attrs["precision"] on every node (rules 1-4; `given`: the tensors a QDQ model
    quantizes itself); returns the report's summary:
    {"default", "int16": [node names], "kept_int8": [{"node", "op", "reason"}]}."""
    asked = requested(graph, default, per_layer)

    def wide(name: str, node) -> bool:
        """Whether `node`, reading tensor `name`, wants it int16: a node that keeps its input's
        parameters defers to the nodes reading its output (rule 3)."""
        op = get_op(node.op_type)
        if op.keeps_qparams and node.inputs and node.inputs[0] == name and op.supports_precision(node, graph, "int16"):
            readers = [r for out in node.outputs for r in graph.consumers(out)]
            if readers:
                return all(wide(out, r) for out in node.outputs for r in graph.consumers(out))
        return asked[node.name] == "int16"

    tensor_precision: dict[str, str] = {}
    for name in graph.inputs:
        readers = graph.consumers(name)
        tensor_precision[name] = "int16" if readers and all(wide(name, n) for n in readers) else "int8"
    kept = []
    for node in graph.nodes:
        op = get_op(node.op_type)
        want = asked[node.name]
        if op.keeps_qparams and node.inputs and node.inputs[0] in tensor_precision:
            want = tensor_precision[node.inputs[0]]
        if want == "int16" and not op.supports_precision(node, graph, want):
            kept.append({"node": node.name, "op": node.op_type, "reason": "no int16 kernel for this operator"})
            want = "int8"
        elif want == "int16" and any(o in given for o in node.outputs):
            kept.append({"node": node.name, "op": node.op_type, "reason": "the QDQ model quantizes its output to int8"})
            want = "int8"
        node.attrs["precision"] = want
        for out in node.outputs:
            tensor_precision[out] = want
    return {"default": default, "int16": [n.name for n in graph.nodes if n.attrs["precision"] == "int16"],
            "kept_int8": kept}


def candidates(graph: Graph, per_layer: dict | None = None, given=()) -> list[str]:
    """Rule 5: the nodes auto may choose int16 for."""
    fixed = _per_layer(graph, per_layer)
    return [n.name for n in graph.nodes if n.name not in fixed and not get_op(n.op_type).keeps_qparams
            and not any(o in given for o in n.outputs)
            and get_op(n.op_type).supports_precision(n, graph, "int16")
            and any(graph.tensors[o].dtype == "float32" for o in n.outputs)]


def auto(graph: Graph, ranges: dict, given: dict, samples: list[dict], per_layer: dict | None = None,
         target_db: float | None = None, ram_budget: int | None = None, features: tuple[str, ...] = (),
         encoding: str = "auto", finish=None) -> tuple[dict[str, dict], dict]:
    """Rules 5 and 6 on the float graph (left unchanged): (the per-layer precisions to compile
    with, merged over `per_layer`; the report's summary). `finish(graph)`, when given, runs on
    each quantized candidate before it is measured (the reconstruct pass)."""
    from codegen.passes import encode, plan_memory, quantize
    from codegen.reference import run_float, run_int8

    if not samples:
        raise CompileError("--precision auto measures on calibration samples: pass --calib")
    per_layer = per_layer or {}
    samples = samples[:AUTO_SAMPLES]
    outputs = [o for o in graph.outputs if graph.tensors[o].dtype == "float32"]
    expected = [run_float(graph, feeds) for feeds in samples]
    signal = sum(float(np.sum(np.square(e[o], dtype=np.float64))) for e in expected for o in outputs)
    names = candidates(graph, per_layer, given)

    def trial(wide: set[str]) -> tuple[float, int]:
        """(output SQNR in dB, arena bytes) with the candidates in `wide` int16, the rest int8."""
        g = copy.deepcopy(graph)
        layers = {**per_layer, **{n: {**per_layer.get(n, {}), "precision": "int16" if n in wide else "int8"}
                                  for n in names}}
        run(g, "int8", layers, given)
        quantize.run(g, ranges, given)
        if finish is not None:
            finish(g)
        noise = 0.0
        for feeds, want in zip(samples, expected):
            q = {n: g.tensors[n].quant.quantize(feeds[n]) if g.tensors[n].quant is not None else feeds[n]
                 for n in g.inputs}
            got = run_int8(g, q)
            for o in outputs:
                real = g.tensors[o].quant.dequantize(got[o]).astype(np.float64)
                noise += float(np.sum((real - want[o]) ** 2))
        arena = 0
        if ram_budget is not None:
            encode.run(g, features, encoding)
            arena = plan_memory.run(g, features).arena_bytes
        db = math.inf if noise == 0 else (10.0 * math.log10(signal / noise) if signal > 0 else -math.inf)
        return db, arena

    every = set(names)
    all16, arena16 = trial(every)
    all8, arena8 = trial(set())
    target = all16 - AUTO_MARGIN_DB if target_db is None else float(target_db)
    loss = {}
    for name in names:
        db, _ = trial(every - {name})
        loss[name] = all16 - db
    order = sorted(names, key=lambda n: (-loss[n], names.index(n)))  # rule 6: most sensitive first
    wide: set[str] = set()
    db, arena = all8, arena8
    steps = []
    if ram_budget is not None and arena8 > ram_budget:
        raise CompileError(f"--ram-budget {ram_budget} B: the arena takes {arena8} B with every layer in int8")
    for name in order:
        if db >= target:
            break
        trial_db, trial_arena = trial(wide | {name})
        if ram_budget is not None and trial_arena > ram_budget:
            steps.append({"node": name, "sqnr_db": _db(trial_db), "arena_bytes": trial_arena, "promoted": False})
            continue
        wide.add(name)
        db, arena = trial_db, trial_arena
        steps.append({"node": name, "sqnr_db": _db(db), "arena_bytes": arena, "promoted": True})
    chosen = {**per_layer, **{n: {**per_layer.get(n, {}), "precision": "int16" if n in wide else "int8"}
                              for n in names}}
    summary = {"target_sqnr_db": _db(target), "sqnr_db_int8": _db(all8), "sqnr_db_int16": _db(all16),
               "sqnr_db": _db(db), "reached": bool(db >= target), "samples": len(samples),
               "ram_budget": ram_budget, "candidates": len(names), "promoted": len(wide),
               "sensitivity_db": {n: _db(loss[n]) for n in names}, "steps": steps,
               "per_layer": {n: {"precision": chosen[n]["precision"]} for n in names}}  # reproduces the choice
    if ram_budget is not None:
        summary.update(arena_bytes=arena, arena_bytes_int8=arena8, arena_bytes_int16=arena16)
    return chosen, summary


def _db(x: float) -> float | None:
    return round(x, 2) if math.isfinite(x) else None
