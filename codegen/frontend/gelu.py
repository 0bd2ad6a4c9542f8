"""GELU written out in elementary operators, fused into one Gelu node (activation.py).

Exporters spell GELU in two forms, with the products and sums in any order:
1. erf form ("none"):  x * 0.5 * (1 + erf(x / sqrt(2))), the inner scaling as Div by
   1.4142135 or Mul by 0.70710677, 0.5 multiplied first or last (torch's classic exporter
   at opsets 13-17, its dynamo exporter at 18, nn.GELU() and F.gelu alike);
2. tanh form ("tanh"): 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), x^3 as
   Pow(x, 3) or x * x * x.
A chain of Mul nodes is read as one product of its factors and a chain of Add (or Sum: the
expanded Gelu function of ONNX) nodes as one sum of its terms, so every association and
operand order matches. Fusion needs:
a. every constant a scalar or a one-element tensor equal to the form's value within float32
   rounding (2^-22 relative: two float32 steps), so a near miss (0.6 for 0.5) is left alone;
b. every intermediate tensor read only by the pattern (not by another node, not a model output);
c. the output with the input's shape (a constant must not broadcast it).
The fused node takes the place of the pattern's last node and keeps its output's name.
"""

from __future__ import annotations

import math
from collections import Counter

from codegen.ir import Graph, Node

SQRT_HALF = math.sqrt(0.5)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715
RTOL = 2.0**-22
ADDS = ("Add", "Sum")  # ONNX's expanded Gelu function adds with Sum


class _Match:
    """The walk over one candidate: which nodes it used (to remove) and which tensors they produce."""

    def __init__(self, graph: Graph, root: Node):
        self.graph = graph
        self.root = root
        self.used: list[Node] = [root]

    def interior(self, name: str) -> Node | None:
        """The producer of `name` when only nodes of the pattern may read it (rule b); checked at the end."""
        if not name or self.graph.const(name) is not None or name in self.graph.outputs:
            return None
        return self.graph.producer(name)

    def factors(self, node: Node) -> list[str]:
        """The factors of a Mul tree rooted at `node` (nested Muls whose output feeds it)."""
        out = []
        for name in node.inputs[:2]:
            inner = self.interior(name)
            if inner is not None and inner.op_type == "Mul" and len(self.graph.consumers(name)) == 1:
                self.used.append(inner)
                out += self.factors(inner)
            else:
                out.append(name)
        return out

    def terms(self, node: Node) -> list[str]:
        """The terms of a tree of Add (and Sum) nodes rooted at `node`."""
        out = []
        for name in node.inputs if node.op_type == "Sum" else node.inputs[:2]:
            inner = self.interior(name)
            if inner is not None and inner.op_type in ADDS and len(self.graph.consumers(name)) == 1:
                self.used.append(inner)
                out += self.terms(inner)
            else:
                out.append(name)
        return out

    def scalar(self, name: str) -> float | None:
        value = self.graph.const(name)
        if value is None or value.size != 1 or value.dtype.kind != "f":
            return None
        return float(value.reshape(-1)[0])

    def producer_of(self, name: str, *op_types: str) -> Node | None:
        node = self.interior(name)
        if node is None or node.op_type not in op_types:
            return None
        self.used.append(node)
        return node

    def split(self, names: list[str]) -> tuple[list[str], float]:
        """(the non-constant factors, the product of the constant ones)."""
        rest, k = [], 1.0
        for n in names:
            v = self.scalar(n)
            if v is None:
                rest.append(n)
            else:
                k *= v
        return rest, k

    def scaled(self, name: str) -> tuple[str, float] | None:
        """`name` = base * k through a Mul tree or a Div by a constant: (base, k)."""
        node = self.interior(name)
        if node is None:
            return None
        if node.op_type == "Div" and self.scalar(node.inputs[1]) not in (None, 0.0):
            self.used.append(node)
            return node.inputs[0], 1.0 / self.scalar(node.inputs[1])
        if node.op_type == "Mul":
            self.used.append(node)
            rest, k = self.split(self.factors(node))
            if len(rest) == 1:
                return rest[0], k
        return None

    def one_plus(self, name: str, op_type: str) -> str | None:
        """`name` = 1 + op_type(u): u's name."""
        add = self.producer_of(name, *ADDS)
        if add is None:
            return None
        rest, ones = [], []
        for t in self.terms(add):
            (ones if self.scalar(t) is not None else rest).append(t)
        if len(rest) != 1 or len(ones) != 1 or not _close(self.scalar(ones[0]), 1.0):
            return None
        f = self.producer_of(rest[0], op_type)
        return None if f is None else f.inputs[0]

    def cube_of(self, names: list[str], x: str) -> bool:
        """The factors are x, x, x (or Pow(x, 3), or x * Pow(x, 2))."""
        count = Counter()
        for n in names:
            if n == x:
                count[x] += 1
                continue
            node = self.producer_of(n, "Pow")
            power = None if node is None else self.scalar(node.inputs[1])
            if node is None or node.inputs[0] != x or not (_close(power, 3.0) or _close(power, 2.0)):
                return False
            count[x] += int(round(self.scalar(node.inputs[1])))
        return count[x] == 3 and len(count) == 1


def _close(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) <= RTOL * abs(want)


def _match(graph: Graph, root: Node) -> tuple[str, str, list[Node]] | None:
    """(x, approximate, the pattern's nodes) when the Mul tree at `root` is a GELU."""
    m = _Match(graph, root)
    rest, k = m.split(m.factors(root))
    if len(rest) != 2 or not _close(k, 0.5):
        return None
    for x, other in (rest, rest[::-1]):
        if graph.const(x) is not None:
            continue
        trial = _Match(graph, root)
        trial.used = list(m.used)
        inner = trial.one_plus(other, "Erf")
        if inner is not None:
            scaled = trial.scaled(inner)
            if scaled is not None and scaled[0] == x and _close(scaled[1], SQRT_HALF):
                return x, "none", trial.used
            continue
        trial = _Match(graph, root)
        trial.used = list(m.used)
        inner = trial.one_plus(other, "Tanh")
        if inner is None:
            continue
        scaled = trial.scaled(inner)
        if scaled is None or not _close(scaled[1], SQRT_2_OVER_PI):
            continue
        add = trial.producer_of(scaled[0], *ADDS)
        if add is None:
            continue
        terms = trial.terms(add)
        if len(terms) != 2 or x not in terms:
            continue
        cubic = terms[1] if terms[0] == x else terms[0]
        mul = trial.producer_of(cubic, "Mul")
        if mul is None:
            continue
        factors, c = trial.split(trial.factors(mul))
        if _close(c, TANH_CUBIC) and trial.cube_of(factors, x):
            return x, "tanh", trial.used
    return None


def fuse_gelu(graph: Graph) -> bool:
    """Rewrite every GELU pattern into one Gelu node; whether anything changed."""
    changed = False
    for root in [n for n in graph.nodes if n.op_type == "Mul"]:
        if root not in graph.nodes:
            continue
        found = _match(graph, root)
        if found is None:
            continue
        x, approximate, used = found
        out = root.outputs[0]
        inside = {o for n in used for o in n.outputs} - {out}
        readers_ok = all(any(c is n for n in used) for t in inside for c in graph.consumers(t)) \
            and not inside & set(graph.outputs)
        if not readers_ok or len({id(n) for n in used}) != len(used):
            continue
        if graph.tensors[out].shape != graph.tensors[x].shape or graph.tensors[x].dtype != "float32":
            continue
        at = graph.nodes.index(root)
        graph.nodes[at] = Node("Gelu", root.name, [x], [out], {"approximate": approximate})
        graph.nodes = [n for n in graph.nodes if not any(n is u for u in used[1:])]
        changed = True
    return changed

