"""Calibration: the range of every run-time tensor over the user's calibration inputs.

An analysis pass: `run(graph, samples) -> Ranges`; the graph is not changed.
1. The float graph runs in NumPy (reference.run_float) on every sample, a batch of samples
   at a time; the minimum and maximum of every float32 tensor are kept (min/max calibration).
2. Progress shows on a terminal when the run takes longer than a second (codegen/progress.py),
   and is erased at the end, so an error that follows stands on its own line.
3. `check_samples` rejects what would make ranges meaningless: no samples, NaN or Inf.
4. Values an op computes inside a node and needs for its int8 rule (a recurrent layer's
   states, Op.internal_ranges) get ranges too, under internal_range_key(node, what).
"""

from __future__ import annotations

import numpy as np

from codegen.errors import CompileError
from codegen.ir import Graph
from codegen.ops import Op, get_op
from codegen.ops.base import internal_range_key
from codegen.progress import Progress
from codegen.reference import run_float

Ranges = dict[str, tuple[float, float]]

BATCH = 16


def check_samples(samples: list[dict[str, np.ndarray]], label: str) -> None:
    if not samples:
        raise CompileError(f"{label}: holds no calibration samples")
    for name in samples[0]:
        values = np.stack([s[name] for s in samples])
        if values.dtype.kind != "f":
            continue
        if not np.all(np.isfinite(values)):
            raise CompileError(f"{label}: input '{name}' holds NaN or Inf")


def internal_ranges(graph: Graph, values: dict[str, np.ndarray]) -> Ranges:
    """Rule 4: the ranges of values computed inside nodes (Op.internal_ranges), from the
    node's float inputs, keyed by internal_range_key."""
    found = {}
    for node in graph.nodes:
        op = get_op(node.op_type)
        if type(op).internal_ranges is Op.internal_ranges:
            continue
        inputs = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        for what, bounds in op.internal_ranges(node, graph, inputs).items():
            found[internal_range_key(node, what)] = bounds
    return found


def run(graph: Graph, samples: list[dict[str, np.ndarray]], progress: bool = True) -> Ranges:
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    with Progress("calibrating", len(samples)) as bar:
        for first in range(0, len(samples), BATCH):
            for feeds in samples[first:first + BATCH]:
                values = run_float(graph, feeds, keep_all=True)
                for key, (vmin, vmax) in internal_ranges(graph, values).items():
                    lo[key] = min(lo.get(key, np.inf), vmin)
                    hi[key] = max(hi.get(key, -np.inf), vmax)
                for name, value in values.items():
                    if graph.tensors[name].is_const or graph.tensors[name].dtype != "float32":
                        continue  # weights; indices, labels and masks
                    vmin, vmax = float(np.min(value, initial=np.inf)), float(np.max(value, initial=-np.inf))
                    lo[name] = min(lo.get(name, np.inf), vmin)
                    hi[name] = max(hi.get(name, -np.inf), vmax)
            if progress:
                bar.update(min(first + BATCH, len(samples)))
    for name in lo:
        if not (np.isfinite(lo[name]) and np.isfinite(hi[name])):
            raise CompileError(f"calibration: tensor '{name}' reaches NaN or Inf on the calibration data")
    return {name: (lo[name], hi[name]) for name in lo}
