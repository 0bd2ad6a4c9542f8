"""The compiler's intermediate representation: small dataclasses, no ONNX types.

A Graph holds tensors by name and nodes in topological order. A tensor with `data`
is a constant (weights, folded values); every other tensor is computed at run time
and gets a place in memory from passes/plan_memory.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen.qparams import QParams


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quant: QParams | None = None  # int8 tensors: real = scale * (q - zero_point)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.op_type} node '{self.name}'"


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    opset: int
    meta: dict[str, Any] = field(default_factory=dict)  # source file, model hash

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def const(self, name: str) -> np.ndarray | None:
        """The value of input `name` if it is a constant, else None ('' is an absent optional input)."""
        if not name:
            return None
        return self.tensors[name].data

    def fresh_name(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`, ... : the first name no tensor has."""
        name, k = base, 1
        while name in self.tensors:
            k += 1
            name = f"{base}_{k}"
        return name

    def add_const(self, base: str, value: np.ndarray) -> str:
        """A new constant tensor under a fresh name built from `base`; returns the name."""
        name = self.fresh_name(base)
        self.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value)
        return name

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def producer(self, name: str) -> Node | None:
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def rename_uses(self, old: str, new: str) -> None:
        """Make every reader of `old` (nodes and graph outputs) read `new` instead."""
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_unused(self) -> None:
        """Drop nodes whose outputs nobody reads, then tensors nothing refers to."""
        while True:
            used = set(self.outputs)
            for n in self.nodes:
                used.update(n.inputs)
            kept = [n for n in self.nodes if any(o in used for o in n.outputs)]
            if len(kept) == len(self.nodes):
                break
            self.nodes = kept
        live = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            live.update(n.inputs)
            live.update(n.outputs)
        self.tensors = {k: t for k, t in self.tensors.items() if k in live}
