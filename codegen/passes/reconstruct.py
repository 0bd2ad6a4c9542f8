"""Reconstruct: after quantization, each Conv/Gemm/MatMul layer's integer weights and float
bias are chosen, in graph order, so that its output on the calibration samples matches the
float teacher's (layer-wise distillation, no training framework).

For one layer, X is the layer's input as the already-reconstructed int8 predecessors give it
(dequantized, the convolution's windows as rows) and Y the teacher's output of the same layer
before its fused activation, on the teacher's own float inputs (per output channel scaled as
the layer's float weights are scaled from the teacher's, should a factor have moved between
layers). With the weights W (as the kernels read them: one row per output channel) and the
bias b, the layer computes X W^T + b.

Modes (`MODES`; `CHOICES` adds "auto", which CompileOptions.reconstruction resolves):
1. "none": nothing.
2. "bias": the mean of Y - (X Wq^T + b) per output channel, over every sample and position,
   is added to the float bias (created when the layer has none), so the layer's error is
   centred (bias correction; Nagel et al. 2019). Wq: the int8 weights times their scales.
3. "adaround": the int8 weights are rounded up or down per weight by AdaRound (Nagel et al.
   2020): W~ = s * clip(floor(W / s) + h(V), -127, 127) with h(V) = clip(sigmoid(V) *
   (ZETA - GAMMA) + GAMMA, 0, 1), V found by Adam on ||X W~^T + b - Y||^2 (normalised by
   round-to-nearest's) + LAMBDA * mean(1 - |2 h(V) - 1|^beta), beta annealed from 20 to 2
   after a warm-up without the regulariser; V starts where h(V) is the fractional part of
   W / s. It is fitted on 1 - VALIDATION of the rows and kept only when its error on the
   others is below round-to-nearest's; then bias correction (2).
4. "full": layers that pruning left with zeros (or with fewer inputs than the teacher's)
   first get, with `choose_masks` (unstructured pruning), their zeros moved within each row by
   Optimal Brain Surgeon from the teacher's dense weights (`choose_mask`), then the kept
   weights of each output channel and its bias re-fitted by least squares to Y (ridge damping
   DAMPING * mean(diag(X^T X)), not on the bias; as OBS and SparseGPT re-fit); then AdaRound
   (3). The other layers get AdaRound.
The scales stay those of codegen/qparams.py layer_weights (node.attrs["weight_scales"] when
a clipping pass chose them); the chosen rounding goes into node.attrs["weight_q"], and the
layer is quantized again (node.attrs["q"]) before its successors read its output. At the
end, the model outputs' error on the samples decides: the reconstruction stays only if it
fell (smaller layer errors need not give a smaller output error: a saturating head, a few
samples); otherwise the graph is restored.

Bounded cost: at most MAX_SAMPLES samples (fewer when their values would pass VALUE_MEMORY);
the solves see at most MAX_ROWS rows (a seeded subset of samples x positions; the bias
correction's means take every row, through the column means of X). A layer whose reduction
is longer than MAX_REDUCTION gets bias correction only; a mask choice, re-fit or AdaRound
that would exceed MAX_WORK multiply-adds, or what is left of MAX_TOTAL_WORK for the model
(spent in graph order), is left out; the report says which.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np

from codegen.errors import CompileError
from codegen.ir import Graph, Node
from codegen.ops import get_op
from codegen.progress import Progress
from codegen.qparams import layer_weights
from codegen.reference import as_input

MODES = ("none", "bias", "adaround", "full")
CHOICES = ("auto",) + MODES  # auto (CompileOptions.reconstruction): full for a pruned model, else bias
MAX_SAMPLES = 256
# the samples' values held at once: the teacher's (float32), the quantized model's and, for the
# final check, the model as it came (int8), each at most about four of the largest tensor live
VALUE_MEMORY = 512 << 20
VALUE_BYTES = 4 * (4 + 1 + 1)
MAX_ROWS = 4096
MAX_REDUCTION = 4096
# multiply-adds of one layer's mask choice, re-fit or AdaRound, and of all of them in one model
# (about a second and a few seconds of NumPy); beyond, that step is left out and the report says so
MAX_WORK = 5e8
MAX_TOTAL_WORK = 2e9
SEED = 14

# AdaRound's constants (Nagel et al. 2020, section 4)
ZETA, GAMMA = 1.1, -0.1
# the reconstruction term is normalised to 1 at round-to-nearest and the regulariser averaged over
# the weights: LAMBDA 10 here plays the part of the paper's 0.01 on a sum (measured: from 0.3 to
# 100 the held-back error falls up to 10 and then stays)
LAMBDA = 10.0
BETA_START, BETA_END = 20.0, 2.0
WARMUP = 0.2
ITERATIONS = 400
BATCH = 512
LEARNING_RATE = 0.03
DAMPING = 0.01
MASK_MEMORY = 64 << 20  # bytes of inverse Hessians held at once by choose_mask
WHOLE_DAMPINGS = (0.01, 0.1, 1.0)  # the dampings a whole layer's re-fit tries (towards its own weights)
VALIDATION = 0.25  # the share of rows AdaRound does not see, on which its rounding must beat the nearest


# ---- the solvers, on [groups, ...] arrays ----

def rectified_sigmoid(v: np.ndarray) -> np.ndarray:
    return np.clip(1.0 / (1.0 + np.exp(-v)) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def adaround(x: np.ndarray, w: np.ndarray, scales: np.ndarray, y: np.ndarray, bias: np.ndarray | None = None,
             iterations: int = ITERATIONS, seed: int = SEED) -> np.ndarray:
    """AdaRound's int8 weights for x [G, R, K] -> y [G, R, N] with weights w [G, N, K] at per-row
    scales [G, N] (float64 math, Adam with a seeded minibatch order); bias [G, N] or None."""
    x, w, y = (np.asarray(a, np.float64) for a in (x, w, y))
    s = np.asarray(scales, np.float64)[..., None]
    b = np.zeros(w.shape[:2]) if bias is None else np.asarray(bias, np.float64).reshape(w.shape[:2])
    target = y - b[:, None, :]
    base = np.floor(w / s)
    rest = np.clip(w / s - base, 0.0, 1.0)
    # h(V) = rest: sigmoid(V) = (rest - GAMMA) / (ZETA - GAMMA)
    p = (rest - GAMMA) / (ZETA - GAMMA)
    v = np.log(p / (1.0 - p))
    nearest = s * np.clip(np.rint(w / s), -127, 127)
    scale = max(float(np.mean((x @ np.swapaxes(nearest, 1, 2) - target) ** 2)), 1e-30)
    groups, rows, k = x.shape
    batch = min(BATCH, rows)
    # short reductions: the exact gradient through the Gram matrix (G N K^2 per step) costs less
    # than a minibatch's (2 G B K N); long ones take seeded minibatches of rows
    exact = k <= batch
    if exact:
        gram = np.ascontiguousarray(np.swapaxes(x, 1, 2) @ x) / rows  # [G, K, K]
        cross = np.ascontiguousarray(np.swapaxes(target, 1, 2) @ x) / rows  # [G, N, K]
    rng = np.random.default_rng(seed)
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    order, at = rng.permutation(rows), 0
    warm = int(WARMUP * iterations)
    outputs = w.shape[1]
    for t in range(1, iterations + 1):
        sig = 1.0 / (1.0 + np.exp(-v))
        raw = sig * (ZETA - GAMMA) + GAMMA
        h = np.clip(raw, 0.0, 1.0)
        level = base + h
        wt = s * np.clip(level, -127, 127)
        if exact:  # d/dW~ of mean((x W~^T - target)^2) = 2 (W~ gram - cross) / N
            grad_w = 2.0 / (groups * outputs * scale) * (wt @ gram - cross)
        else:
            if at + batch > rows:
                order, at = rng.permutation(rows), 0
            pick = order[at:at + batch]
            at += batch
            xb, tb = np.ascontiguousarray(x[:, pick]), target[:, pick]
            err = xb @ np.ascontiguousarray(np.swapaxes(wt, 1, 2)) - tb  # [G, B, N]
            grad_w = 2.0 / (err.size * scale) * np.ascontiguousarray(np.swapaxes(err, 1, 2)) @ xb  # [G, N, K]
        grad_h = grad_w * s * ((level >= -127) & (level <= 127))
        if t > warm:
            beta = BETA_END + (BETA_START - BETA_END) * (1.0 - (t - warm) / max(iterations - warm, 1))
            d = 2.0 * h - 1.0
            grad_h = grad_h - LAMBDA / h.size * beta * np.abs(d) ** (beta - 1.0) * np.sign(d) * 2.0
        grad = grad_h * (ZETA - GAMMA) * sig * (1.0 - sig) * ((raw > 0.0) & (raw < 1.0))
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        v -= LEARNING_RATE * (m1 / (1.0 - 0.9 ** t)) / (np.sqrt(m2 / (1.0 - 0.999 ** t)) + 1e-8)
    up = rectified_sigmoid(v) >= 0.5
    return np.clip(base + up, -127, 127).astype(np.int8)


def adaround_work(rows: int, shape: tuple[int, ...], iterations: int = ITERATIONS) -> int:
    """Multiply-adds of `adaround` on `rows` rows for weights of `shape` [G, N, K]."""
    groups, outputs, k = shape
    batch = min(BATCH, rows)
    step = groups * outputs * k * k if k <= batch else 2 * groups * batch * k * outputs
    return iterations * step


def choose_mask(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, keep: np.ndarray,
                damping: float = DAMPING) -> np.ndarray:
    """The inputs each output row keeps, as many per row as in `keep` [G, N, K], chosen by Optimal
    Brain Surgeon from the dense weights w [G, N, K] (and bias b [G, N], never removed) on the
    inputs x [G, R, K]: with H = [x, 1]^T [x, 1] + damping * mean(diag(x^T x)) on the weights' diagonal,
    the weight q of least w_q^2 / [H^-1]_qq goes, the others absorb it (w -= w_q / [H^-1]_qq H^-1 e_q)
    and H^-1 loses q; one row's removals at a time for all rows together (Hassibi and Stork 1993;
    SparseGPT, Frantar and Alistarh 2023, sweeps the same objective column by column)."""
    x = np.asarray(x, np.float64)
    groups, rows, k = x.shape
    n = w.shape[1]
    chosen = np.zeros_like(keep, bool)
    chunk = max(1, int(MASK_MEMORY // (8 * (k + 1) ** 2)))
    for g in range(groups):
        xa = np.concatenate([x[g], np.ones((rows, 1))], axis=1)
        gram = xa.T @ xa
        gram[np.arange(k), np.arange(k)] += damping * float(np.mean(np.diag(gram)[:k])) if k else 0.0
        try:
            inverse = np.linalg.inv(gram)
        except np.linalg.LinAlgError:
            inverse = np.linalg.pinv(gram)
        zeros = (~keep[g]).sum(axis=1)
        for lo in range(0, n, chunk):
            sel = np.arange(lo, min(n, lo + chunk))
            cur = np.concatenate([w[g, sel], (np.zeros((sel.size, 1)) if b is None else b[g, sel, None])], axis=1)
            hinv = np.repeat(inverse[None], sel.size, axis=0)
            alive = np.ones((sel.size, k + 1), bool)
            todo = zeros[sel]
            every = np.arange(sel.size)
            for step in range(int(todo.max(initial=0))):
                diag = np.einsum("nii->ni", hinv)
                with np.errstate(divide="ignore", invalid="ignore"):
                    score = np.where(alive & (diag > 0), cur ** 2 / diag, np.inf)
                    score[:, k] = np.inf  # the bias stays
                    # rounding may leave a row no positive pivot: then the smallest weight goes, alone
                    stuck = ~np.isfinite(score.min(axis=1))
                    score[stuck] = np.where(alive[stuck], cur[stuck] ** 2, np.inf)
                    score[stuck, k] = np.inf
                    q = np.argmin(score, axis=1)
                    col = hinv[every, :, q]  # [n, K + 1]
                    pivot = col[every, q]
                    good = (pivot > 0) & ~stuck & (todo > step)
                    col = np.where(good[:, None], col, 0.0)
                    pivot = np.where(good, pivot, 1.0)
                    cur -= (cur[every, q] / pivot)[:, None] * col
                    hinv -= col[:, :, None] * (col / pivot[:, None])[:, None, :]
                done = todo > step  # rows that still had weights to lose lose q
                alive[every[done], q[done]] = False
                cur[every[done], q[done]] = 0.0
            chosen[g, sel] = alive[:, :k]
    return chosen


def mask_work(shape: tuple[int, ...], zeros: int) -> int:
    """Multiply-adds of `choose_mask` for weights of `shape` [G, N, K] losing `zeros` weights in all."""
    return int(zeros) * (shape[2] + 1) ** 2 * 2


def refit_work(rows: int, keep: np.ndarray) -> int:
    """Multiply-adds of `refit` on `rows` rows with the masks `keep` [G, N, K]."""
    groups, _, k = keep.shape
    kept = keep.sum(axis=2).astype(np.int64)
    return int(groups * rows * (k + 1) ** 2 + np.sum(kept ** 3) // 3)


def refit(x: np.ndarray, y: np.ndarray, keep: np.ndarray, damping: float = DAMPING,
          with_bias: bool = True, centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Least-squares weights of each output row over its kept inputs, for x [G, R, K] -> y [G, R, N]
    with keep [G, N, K] (bool): minimises ||x_S w_S + b - y_n||^2 + damping * mean(diag(x^T x))
    ||w_S - c_S||^2 per output n (S: the kept inputs; c: `centre` [G, N, K], default 0; b, when
    `with_bias`, undamped). Returns (w [G, N, K] with zeros outside the kept inputs, b [G, N] or None)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    groups, rows, k = x.shape
    n = y.shape[2]
    w = np.zeros((groups, n, k))
    b = np.zeros((groups, n)) if with_bias else None
    for g in range(groups):
        xa = np.concatenate([x[g], np.ones((rows, 1))], axis=1) if with_bias else x[g]
        gram = xa.T @ xa
        cross = xa.T @ y[g]  # [K(+1), N]
        ridge = damping * float(np.mean(np.diag(gram)[:k])) if k else 0.0
        for o in range(n):
            sel = np.flatnonzero(keep[g, o])
            idx = np.concatenate([sel, [k]]) if with_bias else sel
            if idx.size == 0:
                continue
            a = gram[np.ix_(idx, idx)].copy()
            a[np.arange(sel.size), np.arange(sel.size)] += ridge
            rhs = cross[idx, o].copy()
            if centre is not None:
                rhs[:sel.size] += ridge * centre[g, o, sel]
            try:
                sol = np.linalg.solve(a, rhs)
            except np.linalg.LinAlgError:
                sol = np.linalg.lstsq(a, rhs, rcond=None)[0]
            w[g, o, sel] = sol[:sel.size]
            if with_bias:
                b[g, o] = sol[-1]
    return w, b


# ---- a layer as a matrix product ----

class Layer:
    """A Conv (any groups) or fully connected node seen as rows x weights: `rows(value)` gives one
    sample's input as [G, P, K], `outputs(value)` a [1, N, ...] or [rows, N] output as [G, P, N // G]."""

    def __init__(self, node: Node, graph: Graph):
        self.node, self.op = node, get_op(node.op_type)
        if node.op_type == "Conv":
            self.geo = self.op.geometry(node, graph)
            w, b = self.op._weights(node, graph)
            self.groups = self.geo["groups"]
            self.data_input = 0
        else:
            self.fc = self.op.layout(node, graph)
            w, b = self.fc.weight, self.fc.bias
            self.groups = 1
            self.data_input = 1 if graph.const(node.inputs[0]) is not None else 0
        self.shape = w.shape
        self.w = np.asarray(w, np.float64).reshape(self.groups, w.shape[0] // self.groups, -1)
        self.b = None if b is None else np.asarray(b, np.float64).reshape(self.groups, -1)

    @property
    def reduction(self) -> int:
        return self.w.shape[2]

    @property
    def rows_per_sample(self) -> int:
        if self.node.op_type == "Conv":
            return int(self.geo["batch"] * np.prod(self.geo["out"]))
        return int(self.fc.rows)

    def rows(self, value: np.ndarray) -> np.ndarray:
        if self.node.op_type == "Conv":
            from codegen.ops.conv import windows

            geo = self.geo
            x = np.asarray(value, np.float64).reshape(value.shape[0], value.shape[1], *geo["in"])
            cols = windows(x, geo, 0.0)  # [N, C, KH, KW, OH, OW]
            n, c = cols.shape[:2]
            cols = cols.reshape(n, self.groups, c // self.groups, *cols.shape[2:4], -1)
            return np.moveaxis(cols, 5, 2).reshape(n, self.groups, -1, self.reduction).transpose(1, 0, 2, 3) \
                .reshape(self.groups, -1, self.reduction)
        fc = self.fc
        flat = np.asarray(value, np.float64).reshape(-1)
        r = np.arange(fc.rows)[:, None]
        k = np.arange(fc.in_features)[None, :]
        return flat[r * fc.in_row_stride + k * fc.in_col_stride][None]

    def outputs(self, value: np.ndarray) -> np.ndarray:
        if self.node.op_type == "Conv":
            v = np.asarray(value, np.float64).reshape(value.shape[0], self.groups, -1, int(np.prod(self.geo["out"])))
            return v.transpose(1, 0, 3, 2).reshape(self.groups, -1, v.shape[2])
        fc = self.fc
        flat = np.asarray(value, np.float64).reshape(-1)
        r = np.arange(fc.rows)[:, None]
        o = np.arange(fc.out_features)[None, :]
        return flat[r * fc.out_row_stride + o * fc.out_col_stride][None]


def layers_of(graph: Graph) -> list[Node]:
    """The nodes this pass can reconstruct: int8 Conv, and Gemm/MatMul with a constant weight
    that run as fully connected layers."""
    from codegen.ops.gemm import runs_batched

    out = []
    for node in graph.nodes:
        if "q" not in node.attrs or not isinstance(node.attrs["q"], dict) or "weight" not in node.attrs["q"]:
            continue
        if node.op_type == "Conv" and graph.const(node.inputs[1]) is not None:
            out.append(node)
        elif node.op_type in ("Gemm", "MatMul") and not runs_batched(node, graph):
            out.append(node)
    return out


# ---- running both graphs side by side ----

class _Sweep:
    """One graph run node by node over many samples, each value dropped after its last reader."""

    def __init__(self, graph: Graph, feeds: list[dict], int8: bool):
        self.graph, self.int8, self.at = graph, int8, 0
        self.index = {n.name: i for i, n in enumerate(graph.nodes)}
        last: dict[str, int] = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                last[name] = i
        self.last = last
        self.values = [{n: as_input(f[n], graph.tensors[n].dtype).reshape(graph.tensors[n].shape)
                        for n in graph.inputs} for f in feeds]

    def inputs(self, node: Node, values: dict) -> list:
        return [None if not i else (values[i] if i in values else self.graph.tensors[i].data) for i in node.inputs]

    def run_to(self, index: int) -> None:
        """Run the nodes before `index` (those not run yet)."""
        while self.at < index:
            node = self.graph.nodes[self.at]
            op = get_op(node.op_type)
            run = op.reference_s8 if self.int8 else op.reference
            for values in self.values:
                outs = run(node, self.graph, self.inputs(node, values))
                for name, out in zip(node.outputs, outs):
                    t = self.graph.tensors[name]
                    values[name] = np.asarray(out, t.dtype).reshape(t.shape)
                for name in node.inputs:
                    if name and self.last.get(name) == self.at and name not in self.graph.outputs:
                        values.pop(name, None)
            self.at += 1


def _dequantized(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    q = graph.tensors[name].quant
    return value if q is None else q.dequantize(value)


# ---- the pass ----

def run(graph: Graph, teacher: Graph, samples: list[dict], mode: str, progress: bool = True,
        choose_masks: bool = False) -> dict:
    """Reconstruct the quantized `graph` in place against the float `teacher` on `samples`
    (`choose_masks`: "full" may move an unstructured pruning's zeros within each row); returns the
    report's "reconstruction" section: the mode and, per layer, what was done, its seconds and the
    output MSE (pre-activation, calibration rows) before and after. The result is kept only when
    the model outputs' error on the samples is below the quantized model's as it came; else the
    graph is restored ("kept": false, with both errors)."""
    if mode not in MODES:
        raise CompileError(f"--reconstruct {mode}: choose from {', '.join(MODES)}")
    section: dict = {"mode": mode, "layers": []}
    if mode == "none":
        return section
    if not samples:
        section["skipped"] = "no calibration samples"
        return section
    largest = max((t.size for t in graph.tensors.values() if t.data is None), default=1)
    samples = samples[:max(1, min(MAX_SAMPLES, VALUE_MEMORY // (VALUE_BYTES * largest)))]
    section["samples"] = len(samples)
    nodes = layers_of(graph)
    student = _Sweep(graph, _feeds(graph, samples), int8=True)
    teacher_run = _Sweep(teacher, samples, int8=False)
    teachers = {n.name: n for n in teacher.nodes}
    backup = copy.deepcopy(graph)
    budget = [int(MAX_TOTAL_WORK), False]  # multiply-adds left for the solvers, in graph order; a layer re-fitted
    bar = Progress("reconstruct", len(nodes)) if progress else None
    try:
        for done, node in enumerate(nodes):
            start, left = time.perf_counter(), budget[0]
            student.run_to(student.index[node.name])
            entry = {"name": node.name}
            before = teachers.get(node.name)
            if before is None or teacher.tensors[before.outputs[0]].shape != graph.tensors[node.outputs[0]].shape:
                entry["skipped"] = "no teacher layer of this name and output shape"
            else:
                teacher_run.run_to(teacher_run.index[node.name])
                entry.update(_layer(graph, node, teacher, before, student, teacher_run, mode, done, choose_masks,
                                    budget))
            entry["multiply_adds"] = int(left - budget[0])  # the solvers' work: a figure that does not vary
            entry["seconds"] = round(time.perf_counter() - start, 3)
            section["layers"].append(entry)
            if bar is not None:
                bar.update(done + 1)
    finally:
        if bar is not None:
            bar.close()
    as_came = _Sweep(backup, [dict(v) for v in _feeds(graph, samples)], int8=True)
    for sweep in (student, teacher_run, as_came):
        sweep.run_to(len(sweep.graph.nodes))
    after, before = _output_error(graph, student, teacher_run), _output_error(backup, as_came, teacher_run)
    section.update(output_mse_before=_round(before), output_mse_after=_round(after), kept=after < before)
    if not after < before:  # the layers' own errors fell, the model's did not (a saturating head, few samples)
        graph.tensors, graph.nodes = backup.tensors, backup.nodes
    return section


def without_timings(section: dict) -> dict:
    """The section as report.json keeps it: seconds vary from run to run, the folder must not."""
    return {**section, "layers": [{k: v for k, v in e.items() if k != "seconds"} for e in section["layers"]]}


def carry_weights(graph: Graph, float_graph: Graph, section: dict) -> None:
    """After a kept re-fit of pruned layers, the float weights and biases the reconstruction
    changed, copied into `float_graph`: the float model the int8 one approximates is the
    re-fitted one (without a re-fit it stays the model as it came, which bias correction follows)."""
    if not section.get("kept") or not any(e.get("refit") is True for e in section["layers"]):
        return
    changed = {e["name"] for e in section["layers"] if e.get("refit") is True or e.get("bias_corrected")}
    nodes = {n.name: n for n in graph.nodes}
    for node in float_graph.nodes:
        source = nodes.get(node.name)
        if node.name not in changed or source is None:
            continue
        # the constants only: a run-time input of the quantized graph may be a Requantize node's output
        inputs = list(node.inputs) + [""] * (len(source.inputs) - len(node.inputs))
        for k, name in enumerate(source.inputs):
            t = graph.tensors.get(name) if name else None
            if t is not None and t.data is not None:
                inputs[k] = name
                float_graph.tensors[name] = dataclasses.replace(t, data=np.array(t.data, copy=True))
        node.inputs = inputs


def _feeds(graph: Graph, samples: list[dict]) -> list[dict]:
    return [{n: (graph.tensors[n].quant.quantize(f[n]) if graph.tensors[n].quant is not None else f[n])
             for n in graph.inputs} for f in samples]


def _output_error(graph: Graph, run: _Sweep, teacher_run: _Sweep) -> float:
    """Mean squared error of the quantized model outputs, dequantized, against the teacher's."""
    total, count = 0.0, 0
    for values, tvalues in zip(run.values, teacher_run.values):
        for name in graph.outputs:
            q = graph.tensors[name].quant
            if q is None or name not in tvalues:
                continue
            diff = q.dequantize(values[name]).astype(np.float64) - np.asarray(tvalues[name], np.float64)
            total += float(np.sum(diff * diff))
            count += diff.size
    return total / max(count, 1)


def _layer(graph: Graph, node: Node, teacher: Graph, before: Node, student: _Sweep, teacher_run: _Sweep,
           mode: str, index: int, choose_masks: bool, budget: list) -> dict:
    from codegen.passes.prune import _add_bias, _bias_target, _own_const, _pre_activation

    layer = Layer(node, graph)
    ref_layer = Layer(before, teacher)
    op = layer.op
    bare = _pre_activation(before)
    x_name = node.inputs[layer.data_input]
    ratio = channel_ratio(layer.w, ref_layer.w)
    per_sample = layer.rows_per_sample
    total = per_sample * len(student.values)
    pick = np.sort(np.random.default_rng([SEED, index]).choice(total, MAX_ROWS, replace=False)) \
        if total > MAX_ROWS else np.arange(total)
    # every row's mean (bias correction), a seeded subset of rows for the solves; one sample's
    # rows at a time
    x_sum, y_sum, xs, ys = 0.0, 0.0, [], []
    for i, (values, tvalues) in enumerate(zip(student.values, teacher_run.values)):
        xi = layer.rows(_dequantized(graph, x_name, values[x_name]))
        yi = ref_layer.outputs(np.asarray(op.reference(bare, teacher, teacher_run.inputs(before, tvalues))[0],
                                          np.float32)) * ratio[:, None, :]
        x_sum, y_sum = x_sum + xi.sum(axis=1), y_sum + yi.sum(axis=1)
        mine = pick[(pick >= i * per_sample) & (pick < (i + 1) * per_sample)] - i * per_sample
        xs.append(xi[:, mine])
        ys.append(yi[:, mine])
    x_mean, y_mean = x_sum / total, y_sum / total  # [G, K], [G, N]
    x, y = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
    del xs, ys
    bias_at = _bias_target(graph, node)
    x_scale = graph.tensors[x_name].quant.scale
    out: dict = {"rows": int(x.shape[1]), "reduction": layer.reduction}

    def weights_of(w, b):  # (int8 nearest, scales [G, N]) at the layer's rule
        flat_b = None if b is None else b.reshape(-1).astype(np.float32)
        wq, scales = layer_weights(node, w.reshape(layer.shape).astype(np.float32), flat_b, x_scale)
        return wq, scales

    def mse(wq, scales, b, rows=slice(None)):
        wd = wq.reshape(layer.w.shape).astype(np.float64) * scales.astype(np.float64).reshape(layer.w.shape[:2])[..., None]
        pred = x[:, rows] @ np.swapaxes(wd, 1, 2) + (0.0 if b is None else b[:, None, :])
        return float(np.mean((pred - y[:, rows]) ** 2)), wd

    w, b = layer.w, layer.b
    node.attrs.pop("weight_q", None)
    wq, scales = weights_of(w, b)
    out["mse_before"] = _round(mse(wq, scales, b)[0])
    too_long = layer.reduction > MAX_REDUCTION
    if mode in ("adaround", "full") and too_long:
        out["bias_only"] = f"reduction {layer.reduction} > {MAX_REDUCTION}"
    elif mode == "full" and (_pruned(layer, ref_layer) or budget[1]):
        # a pruned layer is re-fitted; a whole one after a re-fitted layer may absorb the error
        # that reaches it, where the re-fit on three quarters of the rows wins on the rest
        tentative = not _pruned(layer, ref_layer)
        keep = w != 0
        with_bias = bias_at is not None
        dense = ref_layer.w * ratio[..., None] if ref_layer.w.shape == w.shape else None
        if choose_masks and dense is not None and np.count_nonzero(dense == 0) < np.count_nonzero(~keep):
            work = mask_work(w.shape, np.count_nonzero(~keep))
            if work <= min(MAX_WORK, budget[0]):
                budget[0] -= work
                dense_b = None if ref_layer.b is None else ref_layer.b * ratio
                keep = choose_mask(x, dense, dense_b, keep, DAMPING)
                out["mask"] = "chosen by the solver"
            else:
                out["mask"] = f"the pruner's (choosing would take {work:.2g} multiply-adds)"
        work = refit_work(x.shape[1], keep)
        better = True
        damping, centre = DAMPING, None
        if tentative and work * len(WHOLE_DAMPINGS) <= min(MAX_WORK, budget[0]):
            # the whole layer's weights move from where they are as little as the rows it did not
            # fit ask: the damping (towards its weights, not zero) that fits those best, if any
            order = np.random.default_rng([SEED, index, 2]).permutation(x.shape[1])
            held, fit = order[:int(VALIDATION * x.shape[1])], np.sort(order[int(VALIDATION * x.shape[1]):])

            def held_error(wf, bf):
                pred = x[:, held] @ np.swapaxes(wf, 1, 2) + (0.0 if bf is None else bf[:, None, :])
                return float(np.mean((pred - y[:, held]) ** 2))

            centre, best, damping = w, held_error(w, b), None
            for trial in WHOLE_DAMPINGS:
                tw, tb = refit(x[:, fit], y[:, fit], keep, trial, with_bias, centre)
                error = held_error(tw, tb if with_bias else b)
                if error < best:
                    best, damping = error, trial
            budget[0] -= work * len(WHOLE_DAMPINGS)
            better = damping is not None
            if not better:
                out["refit"] = "not kept (no better on the rows it did not fit)"
        elif tentative:
            better = False
        if better and work <= min(MAX_WORK, budget[0]):
            budget[0] -= work
            budget[1] = True
            w, fitted_b = refit(x, y, keep, damping, with_bias, centre)
            if with_bias:
                b = fitted_b
            _write_weights(graph, node, layer, w, _own_const)
            if with_bias:
                _set_bias(graph, node, bias_at[0], b, _own_const, _add_bias)
            layer = Layer(node, graph)
            w, b = layer.w, layer.b
            wq, scales = weights_of(w, b)
            out["refit"] = True
        elif better:
            out["refit"] = f"skipped (it would take {work:.2g} multiply-adds)"
    work = adaround_work(x.shape[1], w.shape)
    if mode in ("adaround", "full") and "bias_only" not in out and work > min(MAX_WORK, budget[0]):
        out["bias_only"] = f"AdaRound would take {work:.2g} multiply-adds"
    elif mode in ("adaround", "full") and "bias_only" not in out:
        budget[0] -= work
        # optimised on most rows, judged on the others (few rows and long reductions overfit)
        order = np.random.default_rng([SEED, index, 1]).permutation(x.shape[1])
        held = order[:int(VALIDATION * x.shape[1])]
        fit = np.sort(order[held.size:])
        rounded = adaround(x[:, fit], w, scales.reshape(w.shape[:2]), y[:, fit], b, seed=SEED + index)
        near, _ = mse(wq, scales, b, held)
        ada, _ = mse(rounded, scales, b, held)
        out["adaround"] = ada < near
        if ada < near:
            wq = rounded.reshape(wq.shape)
            node.attrs["weight_q"] = wq
    if bias_at is not None:
        wd = wq.reshape(w.shape).astype(np.float64) * scales.astype(np.float64).reshape(w.shape[:2])[..., None]
        pred_mean = np.einsum("gk,gnk->gn", x_mean, wd) + (0.0 if b is None else b)
        delta = y_mean - pred_mean
        if np.any(delta):
            _add_bias(graph, node, bias_at[0], delta.reshape(-1).astype(np.float32))
            layer = Layer(node, graph)
            b = layer.b
            if "weight_q" in node.attrs:  # rule 3 may raise a scale for a larger bias: keep the pair consistent
                _, now = weights_of(layer.w, b)
                if not np.array_equal(now, scales):
                    node.attrs.pop("weight_q")
                    wq, scales = weights_of(layer.w, b)
            out["bias_corrected"] = True
    node.attrs["q"] = op.quantize(node, graph)
    wq_final, scales_final = weights_of(layer.w, layer.b) if "weight_q" not in node.attrs else (wq, scales)
    out["mse_after"] = _round(mse(wq_final, scales_final, layer.b)[0])
    return out


def _round(v: float) -> float:
    return float(f"{v:.6g}")


def channel_ratio(w: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Per output channel [G, N], the factor between the layer's float weights and the teacher's
    (1 when equal or pruned from them; 1/s where cross-layer equalization divided a channel by s),
    by which the teacher's output is scaled to be the layer's target."""
    if w.shape != teacher.shape:
        return np.ones(w.shape[:2])
    kept = teacher * (w != 0)
    num, den = np.sum(w * teacher, axis=2), np.sum(kept * kept, axis=2)
    with np.errstate(all="ignore"):
        r = num / den
    return np.where((den > 0) & np.isfinite(r) & (r > 0), r, 1.0)


def _pruned(layer: Layer, ref: Layer) -> bool:
    """Pruning left zeros in the layer, or changed its shape from the teacher's (structured)."""
    return bool(np.any(layer.w == 0)) or layer.w.shape != ref.w.shape


def _write_weights(graph: Graph, node: Node, layer: Layer, w: np.ndarray, own) -> None:
    """The float weights as the kernels read them ([G, N, K]) written back into the node's constant."""
    flat = w.reshape(w.shape[0] * w.shape[1], -1)
    if node.op_type == "Conv":
        data = own(graph, node, 1)
        data[...] = flat.reshape(data.shape).astype(data.dtype)
        return
    alpha = float(node.attrs.get("alpha", 1.0)) if node.op_type == "Gemm" else 1.0
    k = layer.data_input ^ 1
    data = own(graph, node, k)
    trans = bool(node.attrs.get("transB" if k == 1 else "transA", 0)) if node.op_type == "Gemm" else False
    # the layout's weight is [N, K]: B^T (x @ B), B (transB), A (A @ x), A^T (transA)
    as_rows = (k == 0) != trans
    value = (flat if as_rows else flat.T) / alpha
    data[...] = value.reshape(data.shape).astype(data.dtype)


def _set_bias(graph: Graph, node: Node, k: int, b: np.ndarray, own, add) -> None:
    flat = b.reshape(-1).astype(np.float32)
    beta = float(node.attrs.get("beta", 1.0)) if node.op_type == "Gemm" else 1.0
    if len(node.inputs) > k and node.inputs[k]:
        data = own(graph, node, k)
        data.reshape(-1)[...] = (flat / beta).astype(data.dtype)
    else:
        add(graph, node, k, flat)
