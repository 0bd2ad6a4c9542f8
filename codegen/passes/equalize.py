"""Cross-layer equalization (Nagel et al., 2019, "Data-Free Quantization"), on the float graph
before calibration.

1. Pairs. A layer L1 (Conv, Gemm, or MatMul by a constant 2-D weight) whose output reaches a
   layer L2 of the same kinds only through nodes that act on each channel alone and are
   positively homogeneous, f(x / s) = f(x) / s for s > 0: Relu, LeakyRelu, MaxPool,
   AveragePool, GlobalMaxPool, GlobalAveragePool, and a Flatten or Reshape of [N, C, ...] to
   [N, C * S] (channel c becomes the contiguous features c * S ... c * S + S - 1 of a Gemm or
   MatMul). Every tensor on the way is read by the next node only and is no model output. A
   fused activation (the clamp in node.attrs["activation"]) is homogeneous only when its
   bounds are 0 or infinite: Relu is, Relu6 and other Clips are not.
2. Scaling. Output channel c of L1 (its weights and bias) is divided by s_c and input channel
   c of L2 multiplied by s_c; the function is unchanged. With r1_c the largest |weight| of
   L1's output channel c and r2_c that of L2's input channel c (over its outputs and, after a
   Flatten, the channel's block of features), the ranges become r1_c / s_c and r2_c * s_c;
   they are equal for s_c = sqrt(r1_c / r2_c). A channel with r1_c or r2_c = 0 keeps s_c = 1;
   s_c is clamped to [1/1000, 1000].
3. Grouped convolutions: input channel c of L2 belongs to group c // (C / groups); a
   depthwise layer's channel c is both its input and its output channel c, so in a chain
   (pointwise -> depthwise -> pointwise) one layer is in two pairs. The pairs are swept in
   graph order until no s_c moves by more than TOLERANCE (at most MAX_SWEEPS sweeps).
4. Only where it helps: with per-channel int8 weights, L1's rounding does not change with its
   output channels' scale, but the per-tensor step of the activation between the layers and
   L2's per-output-channel weight steps do, and which way the output error goes depends on
   the data. With calibration samples each pair's scaling is kept at the strength (power of
   s: none, half, all) that gives the model's int8 output the highest SQNR on a few of them
   (min/max ranges, as the quantize pass would set them, each scaled tensor's from its
   channels' bounds divided by s; CHECK_SAMPLES of them, fewer for a model whose
   multiply-accumulates over them would exceed CHECK_MACS); without, all of it. That proxy
   knows neither the pipeline's calibration method nor its bias correction, which may undo
   what equalization wins; given them (`judge`), the choice is made int8 as the pipeline
   would make it, and kept only when that beats the model without equalization.
A model that carries its own quantization (QDQ) is left alone: its scales fit its weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from codegen.ir import Graph, Node
from codegen.ops import get_op

MAX_SWEEPS = 100
TOLERANCE = 1e-9  # |log s| below this everywhere: converged
S_MIN, S_MAX = 1e-3, 1e3
CHECK_SAMPLES = 32  # at most this many calibration samples on which rule 4 measures the int8 output,
CHECK_MACS = 100_000_000  # and no more than this many multiply-accumulates of the model over them (at least one)
STRENGTHS = (0.0, 0.5, 1.0)  # the powers of a pair's scaling that rule 4 compares
GREEDY_PAIRS = 8  # up to this many pairs are chosen one by one; more: all or none
CHANNELWISE = ("Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool")


@dataclass
class Layer:
    """A layer's weights as [out, in-per-group, ...] float64 and its bias [out], edited in place."""

    node: Node
    w: np.ndarray
    b: np.ndarray | None
    groups: int = 1
    changed: bool = False

    def out_ranges(self) -> np.ndarray:
        return np.abs(self.w).reshape(self.w.shape[0], -1).max(axis=1)

    def in_ranges(self, block: int) -> np.ndarray:
        """Largest |weight| per input channel, a channel being `block` consecutive inputs."""
        per_group = self.w.reshape(self.groups, self.w.shape[0] // self.groups, self.w.shape[1], -1)
        r = np.abs(per_group).max(axis=(1, 3)).reshape(-1)  # per input feature, in input order
        return r.reshape(-1, block).max(axis=1)

    def scale_out(self, s: np.ndarray) -> None:
        self.w /= s.reshape((-1,) + (1,) * (self.w.ndim - 1))
        if self.b is not None:
            self.b /= s
        self.changed = True

    def scale_in(self, s: np.ndarray, block: int) -> None:
        per_group = self.w.reshape(self.groups, self.w.shape[0] // self.groups, -1, block, *self.w.shape[2:])
        per_group *= s.reshape(self.groups, 1, -1, 1, *(1,) * (self.w.ndim - 2))
        self.changed = True


@dataclass
class Pair:
    first: Layer
    second: Layer
    block: int  # inputs of `second` per output channel of `first` (1, or H * W after a Flatten)
    tensors: list[tuple[str, int, int]]  # from L1's output to L2's input: (name, channel axis, block)


def _homogeneous(node: Node) -> bool:
    lo, hi = node.attrs.get("activation", (-np.inf, np.inf))
    return all(v == 0 or np.isinf(v) for v in (lo, hi))


def _layer(graph: Graph, node: Node) -> Layer | None:
    """`node` as a Layer with constant weights, or None."""
    ins = node.inputs
    if not ins or graph.const(ins[0]) is not None:
        return None
    w = graph.const(ins[1]) if len(ins) > 1 else None
    if w is None or w.dtype != np.float32:
        return None
    bias = graph.const(ins[2]) if len(ins) > 2 and ins[2] else None
    if len(ins) > 2 and ins[2] and bias is None:
        return None
    if node.op_type == "Conv":
        groups = int(node.attrs.get("group", 1))
        b = np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64).reshape(-1)
        return Layer(node, np.array(w, np.float64, order="C"), b, groups)
    if node.op_type == "Gemm" and w.ndim == 2 and not int(node.attrs.get("transA", 0)):
        alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
        wt = np.array(alpha * (w if int(node.attrs.get("transB", 0)) else w.T), np.float64, order="C")
        rows = graph.tensors[node.outputs[0]].shape[0]
        c = np.zeros(wt.shape[0]) if bias is None else beta * bias.astype(np.float64)
        c = np.broadcast_to(c, (rows, wt.shape[0]))
        if (c != c[0]).any():
            return None
        return Layer(node, wt, c[0].copy())
    if node.op_type == "MatMul" and w.ndim == 2 and len(ins) == 2:
        return Layer(node, np.array(w.T, np.float64, order="C"), None)
    return None


def _channel_axis(graph: Graph, node: Node) -> int:
    return len(graph.tensors[node.outputs[0]].shape) - 1 if node.op_type == "MatMul" else 1


def _pair_from(graph: Graph, node: Node, layers: dict[int, Layer]) -> Pair | None:
    first = layers.get(id(node))
    if first is None or not _homogeneous(node):
        return None
    tensor, block = node.outputs[0], 1
    axis = _channel_axis(graph, node)
    channels = graph.tensors[tensor].shape[axis]
    tensors = [(tensor, axis, 1)]
    while True:
        readers = graph.consumers(tensor)
        if len(readers) != 1 or tensor in graph.outputs:
            return None
        nxt = readers[0]
        shape = graph.tensors[tensor].shape
        if id(nxt) in layers and nxt.inputs[0] == tensor and tensor not in nxt.inputs[1:]:
            second = layers[id(nxt)]
            if nxt.op_type == "Conv":
                ok = axis == 1 and block == 1 and shape[1] == channels
            else:  # Gemm, MatMul: features on the last axis
                ok = axis == len(shape) - 1 and shape[-1] == channels * block
            return Pair(first, second, block, tensors) if ok and second is not first else None
        if len(nxt.outputs) != 1 or not _homogeneous(nxt) or nxt.inputs[0] != tensor:
            return None
        out_shape = graph.tensors[nxt.outputs[0]].shape
        if nxt.op_type in CHANNELWISE:
            if nxt.op_type not in ("Relu", "LeakyRelu") and (axis != 1 or len(shape) < 3):
                return None
        elif nxt.op_type in ("Flatten", "Reshape") and axis == 1 and block == 1 and len(shape) >= 3:
            if len(out_shape) != 2 or out_shape[0] != shape[0] or out_shape[1] != channels * int(np.prod(shape[2:])):
                return None
            block = int(np.prod(shape[2:]))
        else:
            return None
        tensor = nxt.outputs[0]
        tensors.append((tensor, axis, block))


def find_pairs(graph: Graph) -> list[Pair]:
    """The pairs of rule 1, in graph order; a layer's weights are shared by the pairs it is in."""
    layers = {}
    for node in graph.nodes:
        layer = _layer(graph, node) if node.op_type in ("Conv", "Gemm", "MatMul") else None
        if layer is not None:
            layers[id(node)] = layer
    pairs = []
    for node in graph.nodes:
        pair = _pair_from(graph, node, layers)
        if pair is not None:
            pairs.append(pair)
    return pairs


def _spread(r: np.ndarray) -> float | None:
    live = r[r > 0]
    return None if live.size == 0 else float(live.max() / live.min())


def equalizing_scales(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Rule 2: s_c = sqrt(r1_c / r2_c), 1 where either range is 0, clamped to [S_MIN, S_MAX]."""
    live = (r1 > 0) & (r2 > 0)
    s = np.ones_like(r1)
    s[live] = np.sqrt(r1[live] / r2[live])
    return np.clip(s, S_MIN, S_MAX)


def _sweep(pairs: list[Pair]) -> tuple[int, list[np.ndarray]]:
    """Rule 3: sweeps until converged; the number of sweeps and each pair's total s."""
    totals = [np.ones(p.first.w.shape[0]) for p in pairs]
    sweeps = 0
    for sweeps in range(1, MAX_SWEEPS + 1):
        moved = 0.0
        for p, total in zip(pairs, totals):
            s = equalizing_scales(p.first.out_ranges(), p.second.in_ranges(p.block))
            if (s != 1).any():
                p.first.scale_out(s)
                p.second.scale_in(s, p.block)
                total *= s
                moved = max(moved, float(np.max(np.abs(np.log(s)))))
        if moved <= TOLERANCE:
            break
    return sweeps, totals


def _apply(pairs: list[Pair], layers: dict[int, Layer], saved: dict, totals: list[np.ndarray],
           strengths: list[float]) -> None:
    """The layers' weights as saved, then each pair's scaling raised to its strength."""
    for k, layer in layers.items():
        layer.w, layer.b = saved[k][0].copy(), None if saved[k][1] is None else saved[k][1].copy()
        layer.changed = False
    for p, total, a in zip(pairs, totals, strengths):
        if a:
            p.first.scale_out(total ** a)
            p.second.scale_in(total ** a, p.block)


def int8_sqnr(graph: Graph, ranges: dict, samples: list[dict], expected: list[dict]) -> float:
    """Output SQNR in dB of `graph` quantized with `ranges` and run on `samples`, against the
    float outputs `expected`."""
    from codegen.passes import quantize

    quantize.run(graph, ranges)
    return _output_sqnr(graph, samples, expected)


def _output_sqnr(graph: Graph, samples: list[dict], expected: list[dict]) -> float:
    from codegen.reference import run_int8

    signal = noise = 0.0
    for feeds, want in zip(samples, expected):
        q = {n: graph.tensors[n].quant.quantize(feeds[n]) if graph.tensors[n].quant is not None else feeds[n]
             for n in graph.inputs}
        got = run_int8(graph, q)
        for name in graph.outputs:
            qp = graph.tensors[name].quant
            if qp is not None:
                w = want[name].astype(np.float64)
                signal += float(np.sum(w * w))
                noise += float(np.sum((qp.dequantize(got[name]).astype(np.float64) - w) ** 2))
    return float("inf") if noise == 0 else float(10.0 * np.log10(max(signal, 1e-300) / noise))


class ChannelRanges:
    """Per channel of each pair's tensors, the least and largest value on the check's samples, so
    that a scaling's min/max ranges follow without calibrating again: dividing channel c by
    s_c > 0 divides its bounds by s_c."""

    def __init__(self, pairs: list[Pair]):
        self.pairs = pairs
        self.lo: dict[str, np.ndarray] = {}
        self.hi: dict[str, np.ndarray] = {}

    def add(self, values: dict[str, np.ndarray]) -> None:
        for p in self.pairs:
            for name, axis, block in p.tensors:
                v = values[name]
                v = np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1)
                lo, hi = v.min(axis=1).reshape(-1, block).min(axis=1), v.max(axis=1).reshape(-1, block).max(axis=1)
                self.lo[name] = np.minimum(self.lo[name], lo) if name in self.lo else lo
                self.hi[name] = np.maximum(self.hi[name], hi) if name in self.hi else hi

    def ranges(self, base: dict, totals: list[np.ndarray], strengths: list[float]) -> dict:
        out = dict(base)
        for p, total, a in zip(self.pairs, totals, strengths):
            if a:
                s = total ** a
                for name, _, _ in p.tensors:
                    out[name] = (float(np.min(self.lo[name] / s)), float(np.max(self.hi[name] / s)))
        return out


def pipeline_sqnr(graph: Graph, samples: list[dict], expected: list[dict], calibration: str, percentile: float,
                  reconstruct: str) -> float:
    """Output SQNR in dB of the float `graph` (changed in place) as the pipeline would make it int8:
    calibrated by `calibration`, quantized, then reconstructed ("none" or "bias") against itself."""
    from codegen.passes import calibrate, quantize
    from codegen.passes import reconstruct as reconstruct_pass

    teacher = copy.deepcopy(graph)
    quantize.run(graph, calibrate.calibrate(graph, samples, calibration, percentile, progress=False)[0])
    if reconstruct != "none":
        reconstruct_pass.run(graph, teacher, samples, reconstruct, progress=False)
    return _output_sqnr(graph, samples, expected)


def run(graph: Graph, samples: list[dict] | None = None, teachers: tuple[Graph, ...] = (),
        off: frozenset[str] = frozenset(), judge: dict | None = None) -> dict:
    """Equalize the pairs of rule 1 in place. Without samples, every pair fully (rule 2). With
    calibration samples, rule 4: each pair keeps the strength a in STRENGTHS (its converged
    scaling raised to a) under which the model's int8 output on CHECK_SAMPLES samples has the
    highest SQNR, chosen pair by pair in graph order starting from none (beyond GREEDY_PAIRS
    pairs: all of them or none). The report: per pair the two layer names, the spread (largest /
    smallest nonzero per-channel weight range) of each side before and after, its strength,
    and with samples the check's SQNR without equalization and with the choice. `teachers`:
    graphs of the same layers (the float model before pruning) that get the same scalings,
    so that their layers' channels stay those of `graph`. `off`: names of layers whose pairs
    are left alone (per-layer choice). `judge`: the pipeline's calibration, percentile and
    reconstruct mode (pipeline_sqnr's arguments); the choice is then kept only when the
    model made int8 that way has a higher SQNR on the check's samples than without it."""
    if graph.meta.get("qdq"):
        return {"pairs": [], "skipped": "the model carries its own quantization (QDQ)"}
    pairs = [p for p in find_pairs(graph) if p.first.node.name not in off and p.second.node.name not in off]
    if not pairs:
        return {"pairs": [], "sweeps": 0}
    before = [(p.first.out_ranges(), p.second.in_ranges(p.block)) for p in pairs]
    layers = {id(p.first): p.first for p in pairs} | {id(p.second): p.second for p in pairs}
    saved = {k: (layer.w.copy(), None if layer.b is None else layer.b.copy()) for k, layer in layers.items()}
    sweeps, totals = _sweep(pairs)
    strengths = [1.0] * len(pairs)
    check = {}
    if samples:
        from codegen.passes import calibrate
        from codegen.reference import run_float

        macs = sum(get_op(n.op_type).macs(n, graph) for n in graph.nodes)
        subset = samples[:max(1, min(CHECK_SAMPLES, CHECK_MACS // max(macs, 1)))]
        base = calibrate.run(graph, subset, progress=False)
        channels, expected = ChannelRanges(pairs), []
        for feeds in subset:
            values = run_float(graph, feeds, keep_all=True)
            channels.add(values)
            expected.append({name: values[name] for name in graph.outputs})

        def score(choice: list[float]) -> float:
            _apply(pairs, layers, saved, totals, choice)
            trial = copy.deepcopy(graph)
            _write_back(trial, layers, [trial.nodes[graph.nodes.index(p.node)] for p in layers.values()])
            return int8_sqnr(trial, channels.ranges(base, totals, choice), subset, expected)

        strengths = [0.0] * len(pairs)
        best = none = score(strengths)
        options = [[i] for i in range(len(pairs))] if len(pairs) <= GREEDY_PAIRS else [list(range(len(pairs)))]
        for which in options:
            for a in STRENGTHS[1:]:
                trial = [a if i in which else v for i, v in enumerate(strengths)]
                got = score(trial)
                if got > best:
                    best, strengths = got, trial
        check = {"check_samples": len(subset), "sqnr_db_none": _db(none), "sqnr_db": _db(best)}
        if judge is not None and any(strengths):
            rated = []
            for choice in ([0.0] * len(pairs), strengths):
                _apply(pairs, layers, saved, totals, choice)
                trial = copy.deepcopy(graph)
                _write_back(trial, layers, [trial.nodes[graph.nodes.index(p.node)] for p in layers.values()])
                rated.append(pipeline_sqnr(trial, subset, expected, **judge))
            check["judged"] = {"sqnr_db_none": _db(rated[0]), "sqnr_db": _db(rated[1])}
            if rated[1] <= rated[0]:
                strengths = [0.0] * len(pairs)
    _apply(pairs, layers, saved, totals, strengths)
    _write_back(graph, layers, [p.node for p in layers.values()])
    for teacher in teachers:
        _scale_alike(teacher, pairs, totals, strengths)
    report = []
    for p, (r1, r2), a in zip(pairs, before, strengths):
        report.append({"first": p.first.node.name, "second": p.second.node.name, "strength": a,
                       "first_spread": [_spread(r1), _spread(p.first.out_ranges())],
                       "second_spread": [_spread(r2), _spread(p.second.in_ranges(p.block))]})
    return {"pairs": report, "sweeps": sweeps, **check}


def _db(value: float) -> float | None:
    """For the report: 2 decimals; None (JSON null) for an exact output."""
    return round(value, 2) if np.isfinite(value) else None


def _scale_alike(graph: Graph, pairs: list[Pair], totals: list[np.ndarray], strengths: list[float]) -> None:
    """The same scalings on `graph`'s pairs of the same layer names and channel counts."""
    alike = {(p.first.node.name, p.second.node.name): p for p in find_pairs(graph)}
    layers = {}
    for p, total, a in zip(pairs, totals, strengths):
        q = alike.get((p.first.node.name, p.second.node.name))
        if a and q is not None and q.block == p.block and q.first.w.shape[0] == total.size \
                and q.second.in_ranges(q.block).size == total.size:
            q.first.scale_out(total ** a)
            q.second.scale_in(total ** a, q.block)
            layers.update({id(q.first): q.first, id(q.second): q.second})
    _write_back(graph, layers, [layer.node for layer in layers.values()])


def _write_back(graph: Graph, layers: dict[int, Layer], nodes: list[Node]) -> None:
    """The changed layers' weights into `graph`, whose nodes `nodes` stand for the layers (in order)."""
    for layer, node in zip(layers.values(), nodes):
        if not layer.changed:
            continue
        w = layer.w.astype(np.float32)
        if node.op_type == "Conv":
            node.inputs = [node.inputs[0], graph.add_const(f"{node.name}_w", w),
                           graph.add_const(f"{node.name}_b", layer.b.astype(np.float32))]
        elif node.op_type == "Gemm":
            node.inputs = [node.inputs[0], graph.add_const(f"{node.name}_w", w),
                           graph.add_const(f"{node.name}_b", layer.b.astype(np.float32))]
            node.attrs.update(alpha=1.0, beta=1.0, transB=1)
        else:  # MatMul: [K, N]
            node.inputs = [node.inputs[0], graph.add_const(f"{node.name}_w", np.ascontiguousarray(w.T))]
    graph.remove_unused()
