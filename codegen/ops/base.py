"""The contract every operator family implements, and the registry that finds them.

One module per family in codegen/ops/. A family is a subclass of `Op` registered for
one or more ONNX op types with `@register("Conv", ...)`. The compiler asks the op,
never inspects a node itself:

1. `check(node, graph)`: raise Unsupported(reason) for attributes or inputs the family
   cannot handle (non-constant weights, an unsupported mode...). Called once per node by
   the frontend, which collects every rejection into one message.
2. `infer_shapes(node, graph)`: the output shapes, from input shapes and attributes.
3. `reference(node, graph, inputs)`: the float NumPy semantics (ONNX spec, float32).
   `reference_in_kernel_order` is the same with every sum taken in the float kernel's
   order, which gives the C's bits (without contracted multiply-adds); verify uses it for
   models whose FakeQuantize nodes turn a last-bit difference at a rounding tie into a
   whole step. Families whose kernels sum (Conv, Gemm/MatMul) override it.
4. `macs(node, graph)`: multiply-accumulates for one inference.
5. `kernels(node, graph)`: the runtime calls that compute the node (KernelCall list).
6. `alias_input(node, graph)` / `inplace_input(node, graph)`: memory sharing the planner
   may use: an alias output is the input's bytes reinterpreted (Reshape); an in-place
   output may overwrite an input that dies at this node (elementwise ops).
   `scratch_bytes(node, graph, in_place, features)`: arena bytes the node's kernels need as
   working space for this call only (`in_place`: the planner made the output share the
   input's bytes; `features`: the target's CPU features, which choose the kernels); a kernel
   call receives it through a `Scratch` argument (NULL when this is 0).
7. `fuses_activation`: whether a following Relu/Clip may become this node's output clamp
   (node.attrs["activation"] = (lo, hi)).
8. int8 (passes/quantize.py drives it, in node order):
   a. `output_qparams(node, graph, choose)`: the scale and zero point of each output;
      `choose(name)` gives the calibrated (or QDQ-given) ones. Ops whose output must share
      its input's (max pooling, data movement) set `keeps_qparams`.
   b. `quantize(node, graph)`: all float math of the int8 rule, at compile time, once the
      inputs and outputs carry their QParams: returns the integer parameters (int8 weights,
      int32 bias, multipliers and shifts, tables) kept in node.attrs["q"]. The base class
      rejects int8 for a family that has none.
   c. `reference_s8(node, graph, inputs)`: the integer semantics in NumPy, bit-exact with
      the int8 kernels that `kernels` returns for a node whose tensors are int8.
   d. `internal_ranges(node, graph, inputs)`: the float ranges of values the node computes
      inside itself that its int8 rule needs (a recurrent layer's hidden and cell states):
      {what: (lo, hi)}. Calibration records them under `internal_range_key(node, what)`,
      which `choose` then accepts like a tensor name.
   `compact_outputs`: the importer drops the node's optional outputs that are absent (empty
   names) or that nothing reads (no memory for them), and lists the ONNX position of each
   output kept in node.attrs["output_slots"].
9. Element types: run-time tensors are float32 (int8 once quantized), int32 (ONNX int64 and
   int32: indices, labels) or uint8 (ONNX bool: 0 or 1). `output_dtypes` gives each output's
   type in the float graph; the quantize pass makes only float32 tensors int8 and leaves the
   others as they are (no QParams). A family reads run-time inputs of the other types only
   if it sets `int_inputs` (and checks them in `check`); the importer refuses them for the
   rest. `index_bound(node, graph, index)`: for an integer input, the count n of its valid
   values [0, n) (Gather's axis size, say), which random test inputs respect.
10. Precision: `precisions` lists the activation types the family's integer rule and kernels
   take: ("int8",) by default, ("int8", "int16") for families with int16 kernels (TFLite's 16x8
   scheme: symmetric int16 activations, int8 weights); `supports_precision(node, graph, p)`
   says it for one node (a family may take int16 for some nodes only). node.attrs["precision"]
   (set by passes/precision.py) asks for one; a node without it stays int8. An int16 node's
   run-time inputs and outputs are int16 (the quantize pass inserts Requantize nodes where
   precisions meet) and its `output_qparams` get int16 parameters from `choose`;
   `reference_s8` then computes the int16 semantics (`is_int16` tells which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from codegen.errors import Unsupported
from codegen.ir import Graph, Node
from codegen.qparams import QParams


@dataclass(frozen=True)
class Const:
    """A constant table a kernel call reads: emitted once as a `const` array in flash."""

    array: np.ndarray
    role: str  # short name used in the C symbol: "w", "b", "shift"...


@dataclass(frozen=True)
class Scratch:
    """The node's working space in the arena (its size comes from `Op.scratch_bytes`)."""

    ctype: str = "void"


@dataclass
class KernelCall:
    """One call into runtime_c: `function(&params, args...)`.

    `args` are tensor names (resolved by the emitter to pointers into the arena, an input
    or an output), Const tables, Scratch (the node's working space), or None for a NULL
    pointer. `params` fills a `params_type` struct in declaration order; lists become
    brace-initialised arrays.
    `sources` are paths below runtime_c/ of the files that define the function.
    """

    function: str
    sources: tuple[str, ...]
    params_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)
    # when the call only moves bytes from args[0] to args[1] it is dropped if both resolve
    # to the same address (an alias the planner made free)
    is_copy: bool = False


class Op:
    op_types: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("int8",)  # section 10
    fuses_activation = False
    int_inputs = False  # reads run-time int32/uint8 tensors (section 9 above)

    def check(self, node: Node, graph: Graph) -> None:
        pass

    def supports_precision(self, node: Node, graph: Graph, precision: str) -> bool:
        """Whether the node can run with `precision` activations (section 10)."""
        return precision in self.precisions

    def infer_shapes(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def output_dtypes(self, node: Node, graph: Graph) -> list[str]:
        return ["float32"] * len(node.outputs)

    def index_bound(self, node: Node, graph: Graph, index: int) -> int | None:
        return None

    def class_names(self, node: Node, graph: Graph) -> dict[str, list[str]]:
        """Text names of the values of an int32 output (a classifier's string labels: the output
        holds the class index), by output name; NAME.h declares them for the model outputs."""
        return {}

    def reference(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def reference_in_kernel_order(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.reference(node, graph, inputs)

    def macs(self, node: Node, graph: Graph) -> int:
        return 0

    def kernels(self, node: Node, graph: Graph) -> list[KernelCall]:
        raise NotImplementedError

    def alias_input(self, node: Node, graph: Graph) -> int | None:
        return None

    def inplace_input(self, node: Node, graph: Graph) -> int | None:
        return None

    def scratch_bytes(self, node: Node, graph: Graph, in_place: bool, features: tuple[str, ...] = ()) -> int:
        return 0

    def sparse_layer(self, node: Node, graph: Graph) -> tuple[str, np.ndarray, dict] | None:
        """int8 layers a sparse kernel can run: (kind, int8 weights, geometry) as
        codegen.sparse.choose takes them; None for the others."""
        return None

    keeps_qparams = False

    def output_qparams(self, node: Node, graph: Graph, choose: Callable[[str], QParams]) -> list[QParams]:
        if self.keeps_qparams:
            return [graph.tensors[node.inputs[0]].quant for _ in node.outputs]
        return [choose(name) for name in node.outputs]

    def quantize(self, node: Node, graph: Graph) -> Any:
        raise Unsupported("no int8 rule for this operator")

    def reference_s8(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    compact_outputs = False  # section 8d

    def internal_ranges(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> dict[str, tuple[float, float]]:
        return {}

    def params_count(self, node: Node, graph: Graph) -> int:
        """Weights and biases the node reads (elements of its constant inputs)."""
        return sum(graph.tensors[i].size for i in node.inputs if i and graph.tensors[i].is_const)


_REGISTRY: dict[str, Op] = {}


def register(*op_types: str):
    """Class decorator: one instance of the family serves every listed ONNX op type."""

    def wrap(cls: type[Op]) -> type[Op]:
        instance = cls()
        cls.op_types = op_types
        for t in op_types:
            if t in _REGISTRY:
                raise RuntimeError(f"operator {t} registered twice")
            _REGISTRY[t] = instance
        return cls

    return wrap


def get_op(op_type: str) -> Op | None:
    return _REGISTRY.get(op_type)


def supported_op_types() -> list[str]:
    """The ONNX op types a model may use (not the frontend's own, `internal` ones)."""
    return sorted(t for t, op in _REGISTRY.items() if not getattr(op, "internal", False))


# ---- helpers shared by the families -------------------------------------------------

NO_CLAMP = (-np.inf, np.inf)


def activation(node: Node) -> tuple[float, float]:
    return node.attrs.get("activation", NO_CLAMP)


def apply_activation(node: Node, y: np.ndarray) -> np.ndarray:
    lo, hi = activation(node)
    if lo == -np.inf and hi == np.inf:
        return y
    return np.minimum(np.maximum(y, np.float32(lo)), np.float32(hi)).astype(y.dtype)


def is_sparse(node: Node) -> bool:
    """Whether the encoding pass chose sparse weights for the node (codegen/passes/encode.py)."""
    choice = node.attrs.get("encoding")
    return choice is not None and choice.encoding != "dense"


def sparse_tables(weight: np.ndarray, encoding: str) -> list[Const]:
    """The counts, positions and values tables of int8 weights in a sparse encoding."""
    from codegen import sparse

    tables = sparse.encode(weight, encoding)
    return [Const(tables["counts"], "wc"), Const(tables["positions"], "wp"), Const(tables["values"], "wv")]


def require_const(graph: Graph, node: Node, index: int, what: str) -> np.ndarray:
    if index >= len(node.inputs) or not node.inputs[index]:
        raise Unsupported(f"missing {what}")
    value = graph.const(node.inputs[index])
    if value is None:
        raise Unsupported(f"{what} must be a constant")
    return value


def shape_of(graph: Graph, name: str) -> tuple[int, ...]:
    return graph.tensors[name].shape


def normalize_axis(axis: int, rank: int, node: Node) -> int:
    if not -rank <= axis < max(rank, 1):
        raise Unsupported(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def c_type(dtype: str) -> str:
    return {"float32": "float", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "uint8": "uint8_t",
            "uint16": "uint16_t"}[dtype]


def float_suffix(graph: Graph, names: Sequence[str]) -> str:
    """Kernel name suffix for the element type of the first tensor: f32, s8 or s16."""
    dtype = graph.tensors[names[0]].dtype
    if dtype == "float32":
        return "f32"
    if dtype == "int8":
        return "s8"
    if dtype == "int16":
        return "s16"
    raise Unsupported(f"element type {dtype} is not supported")


def is_int8(graph: Graph, node: Node) -> bool:
    """Whether the quantize pass has made this node's tensors int8."""
    return graph.tensors[node.outputs[0]].dtype == "int8"


def is_int16(graph: Graph, node: Node) -> bool:
    """Whether the quantize pass has made this node's tensors int16 (section 10)."""
    return graph.tensors[node.outputs[0]].dtype == "int16"


def internal_range_key(node: Node, what: str) -> tuple[str, str, str]:
    """The calibration key of a value computed inside `node` (section 8d): a tuple, so never a
    tensor's name; the node's first output names it."""
    return ("internal", node.outputs[0], what)


def qparams(graph: Graph, name: str) -> QParams:
    q = graph.tensors[name].quant
    if q is None:
        raise Unsupported(f"tensor '{name}' has no quantization parameters")
    return q
