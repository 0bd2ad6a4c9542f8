"""Place every run-time tensor: in the static arena, or in the caller's input/output buffers.

An analysis pass: `run(graph) -> MemoryPlan`; the graph is not changed.

1. Tensors that share bytes form one storage group:
   a. an alias (the op's `alias_input`, e.g. Reshape) joins its input's group;
   b. an in-place output (the op's `inplace_input`) joins the group of that input when
      every member of the group dies at this node, no other input of the node is in the
      group, and the sizes match;
   c. a join is refused when the group would then hold a model input and a model output,
      or two model outputs; the op then runs as a copy.
2. A group that holds a model input lives in the caller's input buffer (read only); one
   that holds a model output lives in the caller's output buffer; every other group is an
   arena buffer, live from the first node that writes it to the last node that reads it.
3. A node whose kernels need working space (the op's `scratch_bytes`) gets one more arena
   buffer, live at that node only.
4. Arena buffers are placed greedily, each at the lowest aligned offset free for its whole
   lifetime, in a few orders (largest first, the planner of TensorFlow Lite Micro; first
   use; size x lifetime), keeping the smallest arena. `plan_offsets` is a
   pure function of (size, first, last) and `check_plan` proves no two buffers that are
   live at the same step overlap.
5. `arena_lower_bound` is the largest total size of buffers live at one step: no plan
   that keeps every buffer whole can use less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codegen.ir import Graph
from codegen.ops import get_op

ALIGNMENT = 4


@dataclass(frozen=True)
class Buffer:
    size: int
    first: int  # index of the node that writes it first
    last: int  # index of the node that reads it last

    def live_with(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Location:
    region: str  # "arena", "input" or "output"
    index: int  # offset in bytes for the arena; position in the model's inputs/outputs otherwise


@dataclass
class MemoryPlan:
    locations: dict[str, Location]
    buffers: list[Buffer]
    offsets: list[int]
    arena_bytes: int
    arena_lower_bound: int
    scratch: dict[int, int] = field(default_factory=dict)  # node index -> arena offset of its working space


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _place(buffers: list[Buffer], order: list[int]) -> list[int]:
    """Place buffers in `order`, each at the lowest aligned offset free over its lifetime."""
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        busy = sorted((offsets[j], offsets[j] + buffers[j].size) for j in placed if buffers[j].live_with(b))
        candidate = 0
        for start, end in busy:
            if candidate + b.size <= start:
                break
            candidate = max(candidate, _align(end))
        offsets[i] = candidate
        placed.append(i)
    return offsets


def plan_offsets(buffers: list[Buffer]) -> list[int]:
    """Greedy placement in a few orders (largest first, as TFLite Micro does; by first use;
    by size x lifetime); the plan with the smallest arena wins, ties to the earlier order."""
    idx = range(len(buffers))
    orders = [
        sorted(idx, key=lambda i: (-buffers[i].size, buffers[i].first, i)),
        sorted(idx, key=lambda i: (buffers[i].first, -buffers[i].size, i)),
        sorted(idx, key=lambda i: (-buffers[i].size * (buffers[i].last - buffers[i].first + 1), i)),
    ]
    best: list[int] = []
    best_end = -1
    for order in orders:
        offsets = _place(buffers, order)
        end = max((o + b.size for o, b in zip(offsets, buffers)), default=0)
        if best_end < 0 or end < best_end:
            best, best_end = offsets, end
    return best


def check_plan(buffers: list[Buffer], offsets: list[int]) -> None:
    """Raise AssertionError if two buffers live at the same step share a byte."""
    for i, a in enumerate(buffers):
        assert offsets[i] % ALIGNMENT == 0, f"buffer {i} is misaligned"
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if a.size and b.size and a.live_with(b):
                disjoint = offsets[i] + a.size <= offsets[j] or offsets[j] + b.size <= offsets[i]
                assert disjoint, f"buffers {i} and {j} overlap"


def lower_bound(buffers: list[Buffer]) -> int:
    steps = {b.first for b in buffers} | {b.last for b in buffers}
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)


class _Groups:
    """Union-find over tensor names, tracking which model inputs/outputs a group holds."""

    def __init__(self, graph: Graph):
        self.parent = {n: n for n, t in graph.tensors.items() if not t.is_const}
        self.inputs = {n: {k} for k, n in enumerate(graph.inputs)}
        self.outputs: dict[str, set[int]] = {}
        for k, n in enumerate(graph.outputs):
            self.outputs.setdefault(n, set()).add(k)

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def external(self, root: str) -> int:
        return len(self.inputs.get(root, ())) + len(self.outputs.get(root, ()))

    def try_join(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.external(ra) + self.external(rb) > 1:
            return False
        self.parent[rb] = ra
        self.inputs[ra] = self.inputs.get(ra, set()) | self.inputs.pop(rb, set())
        self.outputs[ra] = self.outputs.get(ra, set()) | self.outputs.pop(rb, set())
        return True

    def members(self, root: str) -> list[str]:
        return [n for n in self.parent if self.find(n) == root]


def run(graph: Graph, features: tuple[str, ...] = ()) -> MemoryPlan:
    """The plan for a target with these CPU features (they choose kernels, and so scratch)."""
    end = len(graph.nodes)
    first = {n: -1 for n in graph.inputs}
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for o in node.outputs:
            first[o] = i
            last.setdefault(o, i)
        for n in node.inputs:
            if n:
                last[n] = i
    for n in graph.outputs:
        last[n] = end

    groups = _Groups(graph)
    in_place: set[int] = set()
    for i, node in enumerate(graph.nodes):
        op = get_op(node.op_type)
        out = node.outputs[0]
        k = op.alias_input(node, graph)
        if k is not None:
            groups.try_join(node.inputs[k], out)
            continue
        k = op.inplace_input(node, graph)
        if k is None or graph.tensors[node.inputs[k]].is_const:
            continue
        src = node.inputs[k]
        root = groups.find(src)
        others = [n for j, n in enumerate(node.inputs) if j != k and n and not graph.tensors[n].is_const]
        if (
            not groups.inputs.get(root)
            and all(last[m] <= i for m in groups.members(root))
            and all(groups.find(n) != root for n in others)
            and graph.tensors[src].nbytes == graph.tensors[out].nbytes
        ):
            if groups.try_join(src, out):
                in_place.add(i)

    locations: dict[str, Location] = {}
    roots: dict[str, int] = {}
    buffers: list[Buffer] = []
    for name in groups.parent:
        root = groups.find(name)
        if groups.inputs.get(root):
            locations[name] = Location("input", min(groups.inputs[root]))
        elif groups.outputs.get(root):
            locations[name] = Location("output", min(groups.outputs[root]))
        else:
            roots.setdefault(root, len(roots))
    for root, index in roots.items():
        members = groups.members(root)
        buffers.append(
            Buffer(
                size=max(graph.tensors[m].nbytes for m in members),
                first=min(first[m] for m in members),
                last=max(last[m] for m in members),
            )
        )
    scratch_buffers: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        size = get_op(node.op_type).scratch_bytes(node, graph, i in in_place, features)
        if size:
            scratch_buffers[i] = len(buffers)
            buffers.append(Buffer(size=_align(size), first=i, last=i))
    offsets = plan_offsets(buffers)
    check_plan(buffers, offsets)
    for root, index in roots.items():
        for m in groups.members(root):
            locations[m] = Location("arena", offsets[index])
    arena = _align(max((o + b.size for o, b in zip(offsets, buffers)), default=0))
    scratch = {i: offsets[k] for i, k in scratch_buffers.items()}
    return MemoryPlan(locations, buffers, offsets, arena, lower_bound(buffers), scratch)
