"""Calibration: the range of every run-time tensor over the user's calibration inputs.

An analysis pass: `calibrate(graph, samples, method, percentile) -> (Ranges, details)`; the
graph is not changed. `run(graph, samples)` is min/max calibration, the ranges alone.
1. The float graph runs in NumPy (reference.run_float) on every sample, a batch of samples
   at a time; the minimum and maximum of every float32 tensor are kept (min/max calibration).
2. Progress shows on a terminal when the run takes longer than a second (codegen/progress.py),
   and is erased at the end, so an error that follows stands on its own line.
3. `check_samples` rejects what would make ranges meaningless: no samples, NaN or Inf.
4. Values an op computes inside a node and needs for its int8 rule (a recurrent layer's
   states, Op.internal_ranges) get ranges too, under internal_range_key(node, what); they
   keep min/max.
5. The other methods clip. A second pass (over the values of the first when they fit
   CACHE_BYTES, else running the graph again) fills fixed-size histograms per tensor: BINS
   bins over its [min, max], and for entropy ENTROPY_BINS bins of |x| over [0, max|x|]. Memory
   is bounded by the bins (and PENDING_BYTES of values on their way in), whatever the number
   of samples; the estimates below are those of the same rules on the full array of values,
   to within a bin (tests/test_calibrate.py recomputes them).
   - percentile P: [the (100-P)th, the Pth] percentile (linear interpolation between order
     statistics, as numpy.percentile; each order statistic is placed uniformly inside its bin).
   - mse: the [lo, hi] whose int8 rule (qparams.from_range: asymmetric, rounding, clamping)
     gives the least mean squared error of quantize-dequantize over the values. The error
     of a bin is integrated exactly for values spread uniformly over it (`_sq_error`), so it
     stays right when a quantization step is narrower than a bin; exact zeros are counted
     apart (they cost nothing). Search: lo and hi scaled together over a geometric grid of
     fractions of [min, max] (on bins merged by MSE_COARSE), then each bound alone on a finer
     grid around the best.
   - entropy (TensorRT's calibrator): the threshold T, from 128 bins up to all 2048, whose
     128-level quantization of the clipped histogram has the least KL divergence from it.
     A tensor that is never negative gets [0, T]; otherwise [-T, T] cut to [min, max]. One
     with fewer nonzero values than bins keeps [min, max] (too few to judge a tail). Exact
     zeros (a Relu's) stay out of the |x| histogram: every range holds them exactly, and their
     spike in the first bin would pull T down to the first 128 bins.
   - auto: of the ranges above, per tensor, the one whose fake-quantized values, fed through
     the nodes that read the tensor (through data movement that keeps its QParams, such as
     MaxPool or Reshape), give the least error at their outputs against the float outputs
     (squared error over the output's power, summed over those nodes), on AUTO_SAMPLES
     samples spread over the set. A graph output, or a tensor no computing node reads: mse.
6. Some tensors keep min/max whatever the method: model inputs (their range is often known
   exactly; `per_tensor` may choose otherwise), values inside nodes (rule 4), and tensors that
   a node compares or indexes by (its outputs are not float: ArgMax, Less...), where a clipped
   value changes the answer rather than adding noise. Each range contains 0 (qparams.from_range).
7. `per_tensor` {tensor name: method} overrides the method for those tensors.
8. Weights (`clip_weights`, "mse"): each Conv, ConvTranspose, Gemm and MatMul layer's
   per-channel scales become qparams.mse_weight_scales, in node.attrs["weight_scales"], which
   qparams.layer_weights honours.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from codegen.errors import CompileError
from codegen.ir import Graph
from codegen.ops import Op, get_op
from codegen.ops.base import internal_range_key
from codegen.progress import Progress
from codegen.qparams import QMAX, QMIN, from_range
from codegen.reference import run_float


class Ranges(dict):
    """{tensor: (lo, hi)} as the method chose them; `minmax` keeps every tensor's min and max
    (int16 tensors take those: passes/quantize.py wide_range)."""

    def __init__(self, chosen=(), minmax=None):
        super().__init__(chosen)
        self.minmax = dict(minmax if minmax is not None else self)


BATCH = 16
METHODS = ("minmax", "percentile", "mse", "entropy", "auto")
CANDIDATES = ("minmax", "percentile", "mse", "entropy")  # what auto chooses from
DEFAULT_PERCENTILE = 99.99
BINS = 4096
ENTROPY_BINS, ENTROPY_LEVELS = 2048, 128
KL_TIE = 1e-12
CACHE_BYTES = 64 << 20  # float values kept from the first pass for the second
PENDING_BYTES = 16 << 20  # values gathered before they go into the histograms at once
AUTO_SAMPLES = 32
MSE_GRID = 64  # joint fractions of [min, max], geometric from MSE_FLOOR to 1
MSE_FLOOR = 1e-3
MSE_REFINE = 32  # then each bound alone, geometric over [best / 2, best * 2], on all the bins
MSE_COARSE = 4  # the joint search merges this many bins into one


def check_samples(samples: list[dict[str, np.ndarray]], label: str) -> None:
    if not samples:
        raise CompileError(f"{label}: holds no calibration samples")
    for name in samples[0]:
        values = np.stack([s[name] for s in samples])
        if values.dtype.kind != "f":
            continue
        if not np.all(np.isfinite(values)):
            raise CompileError(f"{label}: input '{name}' holds NaN or Inf")


def check_options(method: str, percentile: float, label: str = "--calibration") -> None:
    """One-line errors for an unknown method or a percentile outside (50, 100]."""
    if method not in METHODS:
        raise CompileError(f"{label}: unknown calibration method '{method}' (choose from {', '.join(METHODS)})")
    try:
        p = float(percentile)
    except (TypeError, ValueError):
        raise CompileError(f"--percentile: '{percentile}' is not a number") from None
    if not (50.0 < p <= 100.0):
        raise CompileError(f"--percentile: {percentile} is outside (50, 100]")


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
    """Min/max calibration (rule 1): the ranges alone."""
    return calibrate(graph, samples, "minmax", progress=progress)[0]


def calibrate(graph: Graph, samples: list[dict[str, np.ndarray]], method: str = "minmax",
              percentile: float = DEFAULT_PERCENTILE, progress: bool = True,
              per_tensor: dict[str, str] | None = None) -> tuple[Ranges, dict[str, dict]]:
    """(ranges, details): details[tensor] = {method, lo, hi, clipped} for every run-time float
    tensor (clipped: the fraction of its calibration values outside [lo, hi])."""
    per_tensor = dict(per_tensor or {})
    check_options(method, percentile)
    for name, chosen in per_tensor.items():
        check_options(chosen, percentile, f"tensor '{name}'")
    fixed = minmax_tensors(graph)
    wanted = {name: per_tensor.get(name, "minmax" if name in fixed else method) for name in float_tensors(graph)}
    need_hist = any(m != "minmax" for m in wanted.values())
    need_abs = any(m in ("entropy", "auto") for m in wanted.values())
    need_auto = any(m == "auto" for m in wanted.values())
    passes = 1 + need_hist + need_auto
    with Progress("calibrating", passes * len(samples)) as bar:
        tick = (lambda done: bar.update(done)) if progress else (lambda done: None)
        lo, hi, cache = _minmax_pass(graph, samples, tick, need_hist)
        ranges = Ranges({name: (lo[name], hi[name]) for name in lo})
        details = {name: {"method": "minmax", "lo": lo[name], "hi": hi[name], "clipped": 0.0}
                   for name in lo if isinstance(name, str)}
        if not need_hist:
            return ranges, details
        clipping = [n for n, m in wanted.items() if m != "minmax" and n in lo]
        hists = _histogram_pass(graph, samples, clipping, lo, hi, need_abs, cache, tick, len(samples))
        cache = None
        choices: dict[str, dict[str, tuple[float, float]]] = {}
        for name in clipping:
            h = hists[name]
            m = wanted[name]
            options = {}
            for cand in (CANDIDATES if m == "auto" else (m,)):
                options[cand] = _method_range(cand, h, percentile)
            choices[name] = options
        picked = {name: wanted[name] for name in clipping}
        auto = [n for n in clipping if wanted[n] == "auto"]
        if auto:
            picked.update(choose_auto(graph, samples, {n: choices[n] for n in auto}, tick, 2 * len(samples)))
        for name in clipping:
            a, b = choices[name][picked[name]]
            ranges[name] = (a, b)
            details[name] = {"method": picked[name], "lo": a, "hi": b, "clipped": hists[name].clipped(a, b)}
    return ranges, details


# ---- which tensors, which method ---------------------------------------------------------

def float_tensors(graph: Graph) -> list[str]:
    """Run-time float32 tensors (graph inputs and node outputs), in graph order."""
    names = [n for n in graph.inputs if graph.tensors[n].dtype == "float32"]
    names += [o for node in graph.nodes for o in node.outputs if graph.tensors[o].dtype == "float32"]
    return names


def minmax_tensors(graph: Graph) -> set[str]:
    """Rule 6: the tensors that keep min/max whatever the method."""
    fixed = set(graph.inputs)
    for node in graph.nodes:
        op = get_op(node.op_type)
        if all(d != "float32" for d in op.output_dtypes(node, graph)):
            fixed.update(i for i in node.inputs if i)
    return fixed


# ---- pass 1: min/max ---------------------------------------------------------------------

def _float_values(graph: Graph, values: dict[str, np.ndarray]):
    for name, value in values.items():
        t = graph.tensors[name]
        if not t.is_const and t.dtype == "float32":
            yield name, value


def _minmax_pass(graph, samples, tick, keep: bool):
    lo: dict = {}
    hi: dict = {}
    cache: list | None = [] if keep else None
    cached = 0
    for first in range(0, len(samples), BATCH):
        for feeds in samples[first:first + BATCH]:
            values = run_float(graph, feeds, keep_all=True)
            for key, (vmin, vmax) in internal_ranges(graph, values).items():
                lo[key] = min(lo.get(key, np.inf), vmin)
                hi[key] = max(hi.get(key, -np.inf), vmax)
            kept = {}
            for name, value in _float_values(graph, values):
                vmin, vmax = float(np.min(value, initial=np.inf)), float(np.max(value, initial=-np.inf))
                lo[name] = min(lo.get(name, np.inf), vmin)
                hi[name] = max(hi.get(name, -np.inf), vmax)
                kept[name] = value
            if cache is not None:
                cached += sum(v.nbytes for v in kept.values())
                if cached > CACHE_BYTES:
                    cache = None
                else:
                    cache.append(kept)
        tick(min(first + BATCH, len(samples)))
    for name in lo:
        if not (np.isfinite(lo[name]) and np.isfinite(hi[name])):
            raise CompileError(f"calibration: tensor '{name}' reaches NaN or Inf on the calibration data")
    return lo, hi, cache


# ---- pass 2: histograms ------------------------------------------------------------------

class Histogram:
    """Counts of a tensor's values in BINS equal bins over [vmin, vmax] (and, when asked, of
    |x| in ENTROPY_BINS bins over [0, max|x|]), filled with numpy.histogram's rule."""

    def __init__(self, vmin: float, vmax: float, with_abs: bool, bins: int = BINS):
        self.vmin, self.vmax = float(vmin), float(vmax)
        self.counts = np.zeros(bins, np.int64)
        self.zeros = 0  # exact zeros (a Relu's), also counted in their bin
        self.amax = max(abs(self.vmin), abs(self.vmax))
        self.abs_counts = np.zeros(ENTROPY_BINS, np.int64) if with_abs else None

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, np.float64).reshape(-1)
        self.zeros += int(np.count_nonzero(v == 0))
        if self.vmax > self.vmin:
            self.counts += np.histogram(v, len(self.counts), (self.vmin, self.vmax))[0]
        else:
            self.counts[0] += v.size
        if self.abs_counts is not None and self.amax > 0:  # exact zeros left out (rule 5, entropy)
            self.abs_counts += np.histogram(np.abs(v[v != 0]), ENTROPY_BINS, (0.0, self.amax))[0]

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @functools.cached_property
    def zero_bin(self) -> int | None:
        """The bin that numpy.histogram puts 0 in (None: 0 is outside the range)."""
        if not (self.vmin <= 0.0 <= self.vmax) or self.vmax <= self.vmin:
            return None
        return int(np.argmax(np.histogram(np.zeros(1), len(self.counts), (self.vmin, self.vmax))[0]))

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.vmin, self.vmax, len(self.counts) + 1)

    def order_statistic(self, k: float) -> float:
        """The k-th smallest value (0-based, k integral), each bin's values placed at
        (j + 1/2) / count of its width: within one bin of the true one."""
        if self.vmax <= self.vmin:
            return self.vmin
        cum = np.cumsum(self.counts)
        b = int(np.searchsorted(cum, k, side="right"))
        b = min(b, len(self.counts) - 1)
        before = cum[b - 1] if b > 0 else 0
        width = (self.vmax - self.vmin) / len(self.counts)
        inside = (k - before + 0.5) / max(int(self.counts[b]), 1)
        return self.vmin + (b + min(max(inside, 0.0), 1.0)) * width

    def percentile(self, p: float) -> float:
        """numpy.percentile's linear rule on the histogram (within one bin)."""
        rank = p / 100.0 * (self.total - 1)
        below, frac = math.floor(rank), rank - math.floor(rank)
        a = self.order_statistic(below)
        if frac == 0:
            return a
        return a + frac * (self.order_statistic(below + 1) - a)

    def clipped(self, lo: float, hi: float) -> float:
        """The fraction of values outside [lo, hi] (bins cut by a bound counted pro rata)."""
        if self.total == 0 or self.vmax <= self.vmin:
            return 0.0
        edges = self.edges
        left, right = edges[:-1], edges[1:]
        width = right - left
        below = np.clip((np.minimum(right, lo) - left) / width, 0.0, 1.0)
        above = np.clip((right - np.maximum(left, hi)) / width, 0.0, 1.0)
        return float(np.sum(self.counts * (below + above)) / self.total)


def _histogram_pass(graph, samples, names, lo, hi, need_abs, cache, tick, done0):
    hists = {n: Histogram(lo[n], hi[n], need_abs) for n in names}
    pending: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def flush():
        for n, parts in pending.items():
            if parts:
                hists[n].add(np.concatenate([p.reshape(-1) for p in parts]))
                parts.clear()

    for first in range(0, len(samples), BATCH):
        held = 0
        for i in range(first, min(first + BATCH, len(samples))):
            values = cache[i] if cache is not None else run_float(graph, samples[i], keep_all=True)
            for n in names:
                pending[n].append(values[n])
                held += values[n].nbytes
            if held > PENDING_BYTES:  # a large model's values go in sample by sample
                flush()
                held = 0
        flush()
        tick(done0 + min(first + BATCH, len(samples)))
    return hists


# ---- the methods -------------------------------------------------------------------------

def _method_range(method: str, h: Histogram, percentile: float) -> tuple[float, float]:
    if method == "minmax":
        return min(h.vmin, 0.0), max(h.vmax, 0.0)
    if method == "percentile":
        return percentile_range(h, percentile)
    if method == "mse":
        return mse_range(h)
    return entropy_range(h)


def percentile_range(h: Histogram, p: float) -> tuple[float, float]:
    if p >= 100.0:
        return min(h.vmin, 0.0), max(h.vmax, 0.0)
    return min(h.percentile(100.0 - p), 0.0), max(h.percentile(p), 0.0)


def _phi(y: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integral from 0 to y of the squared distance from t to the nearest integer level in
    [low, high] (y and the levels in quantization steps). Between levels the distance is a
    sawtooth, whose integral is n/12 + g^3/3 with n = rint(y), g = y - n (each whole period
    adds 1/12); beyond the last level on either side the distance grows linearly."""
    c = np.clip(y, low, high)
    n = np.rint(c)
    g = c - n
    d = y - c  # beyond the levels: the distance to the last one, minus what the sawtooth counts
    return n / 12.0 + (g * g * g + d * d * d) / 3.0


def _from_ranges(los: np.ndarray, his: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """qparams.from_range for arrays of ranges: (scales, zero points), the same numbers."""
    lo, hi = np.minimum(los, 0.0), np.maximum(his, 0.0)
    scale = ((hi - lo) / (QMAX - QMIN)).astype(np.float32).astype(np.float64)
    bad = ~(scale >= 1e-30) | ~np.isfinite(scale)
    scale = np.where(bad, 1.0, scale)
    zp = np.where(bad, 0.0, np.clip(np.round(QMIN - lo / scale), QMIN, QMAX))
    return scale, zp


def _sq_error(h: Histogram, los: np.ndarray, his: np.ndarray) -> np.ndarray:
    """Mean squared error of quantize-dequantize under from_range(lo, hi), for each candidate
    pair, with each bin's values spread uniformly over the bin (empty bins skipped), except exact
    zeros, which every range holds exactly."""
    counts = h.counts.astype(np.float64)
    if h.zero_bin is not None:
        counts[h.zero_bin] -= h.zeros
    scale, zp = _from_ranges(np.asarray(los, np.float64), np.asarray(his, np.float64))
    scale, zp = scale[:, None], zp[:, None]
    used = np.flatnonzero(counts)
    edges = h.edges
    width = (h.vmax - h.vmin) / len(h.counts)
    low, high = QMIN - zp, QMAX - zp
    at, where = np.unique(np.concatenate([used, used + 1]), return_inverse=True)
    phi = _phi(edges[at][None, :] / scale, low, high)  # each edge once
    per_bin = (phi[:, where[len(used):]] - phi[:, where[:len(used)]]) * (scale ** 3 / width)
    return per_bin @ counts[used] / max(h.total, 1)


def _merged(h: Histogram, factor: int) -> Histogram:
    """The same histogram with every `factor` neighbouring bins merged."""
    m = Histogram(h.vmin, h.vmax, False, len(h.counts) // factor)
    m.counts = h.counts.reshape(-1, factor).sum(axis=1)
    m.zeros = h.zeros
    m.__dict__["zero_bin"] = None if h.zero_bin is None else h.zero_bin // factor
    return m


def mse_range(h: Histogram) -> tuple[float, float]:
    lo0, hi0 = min(h.vmin, 0.0), max(h.vmax, 0.0)
    if h.vmax <= h.vmin or hi0 - lo0 <= 0:
        return lo0, hi0
    fractions = np.geomspace(MSE_FLOOR, 1.0, MSE_GRID)
    err = _sq_error(_merged(h, MSE_COARSE), lo0 * fractions, hi0 * fractions)
    best = int(np.argmin(err))
    a_frac = b_frac = float(fractions[best])
    for _ in range(1):  # each bound alone, the other fixed, on the full histogram
        if lo0 < 0:
            fr = np.append(np.geomspace(a_frac / 2, min(1.0, a_frac * 2), MSE_REFINE), a_frac)
            e = _sq_error(h, lo0 * fr, np.full(len(fr), hi0 * b_frac))
            a_frac = float(fr[int(np.argmin(e))])
        if hi0 > 0:
            fr = np.append(np.geomspace(b_frac / 2, min(1.0, b_frac * 2), MSE_REFINE), b_frac)
            e = _sq_error(h, np.full(len(fr), lo0 * a_frac), hi0 * fr)
            b_frac = float(fr[int(np.argmin(e))])
    return lo0 * a_frac, hi0 * b_frac


@functools.lru_cache(maxsize=4)
def _kl_groups(n: int, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate i (levels to n, as a column), where each group of bins starts and ends."""
    i = np.arange(levels, n + 1)[:, None]
    starts = ((np.arange(levels + 1)[None, :] * i) // levels).astype(np.intp)  # last = i
    return i, np.ascontiguousarray(starts[:, :-1]), np.ascontiguousarray(starts[:, 1:])


def kl_threshold_bin(counts: np.ndarray, levels: int = ENTROPY_LEVELS) -> int:
    """The number i of leading bins (levels <= i <= len(counts)) whose clipped histogram P (the
    bins beyond i added to bin i-1) is closest in KL divergence to Q: bins 0..i-1 merged into
    `levels` groups (group j: bins j*i//levels up to (j+1)*i//levels), each group's count
    spread evenly over the bins of the group where P is not empty. A candidate whose last group
    is empty while the tail beyond it is not cannot be represented (infinite divergence). Of
    candidates of equal divergence (within KL_TIE) the largest wins: with few values, a point
    mass at the threshold matches its own quantization exactly, as does the whole range.

    All candidates at once, from running sums: with N the count of all values, T the tail, g_j
    and z_j a group's count and non-empty bins, KL(P/N || Q/(N - T)) = (sum P log P - sum_j
    (g_j + [j last] T) log(g_j / z_j)) / N - log N + log(N - T)."""
    c = np.asarray(counts, np.float64)
    n = len(c)
    total = c.sum()
    if n <= levels or total == 0:
        return n
    cum = np.concatenate([[0.0], np.cumsum(c)])
    nonzero = np.concatenate([[0], np.cumsum(c > 0)]).astype(np.float64)
    xlogx = np.concatenate([[0.0], np.cumsum(np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0))])
    i, first, end = _kl_groups(n, levels)
    group = cum[end] - cum[first]
    z = nonzero[end] - nonzero[first]
    tail = total - cum[i[:, 0]]
    last_bin = c[i[:, 0] - 1]
    z[:, -1] += (last_bin == 0) & (tail > 0)  # P's last bin holds the tail
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.where(group > 0, np.log(group / np.maximum(z, 1.0)), 0.0)
        weight = group.copy()
        weight[:, -1] += tail
        cross = (weight * log_q).sum(axis=1)
        p_last = last_bin + tail
        plogp = xlogx[i[:, 0] - 1] + np.where(p_last > 0, p_last * np.log(np.where(p_last > 0, p_last, 1.0)), 0.0)
        kl = (plogp - cross) / total - np.log(total) + np.log(total - tail)
    kl[(group[:, -1] == 0) & (tail > 0)] = np.inf
    if not np.isfinite(kl).any():
        return n
    best = np.flatnonzero(kl <= kl.min() + KL_TIE)  # of equal divergence, the least clipping
    return int(i[best[-1], 0])


def entropy_range(h: Histogram) -> tuple[float, float]:
    if h.abs_counts is None or h.amax <= 0 or h.abs_counts.sum() < ENTROPY_BINS:
        return min(h.vmin, 0.0), max(h.vmax, 0.0)  # fewer values than bins: no tail to judge
    i = kl_threshold_bin(h.abs_counts)
    t = h.amax * i / ENTROPY_BINS
    if h.vmin >= 0:
        return 0.0, t
    return max(-t, min(h.vmin, 0.0)), min(t, max(h.vmax, 0.0))


# ---- auto: the consumers' error ----------------------------------------------------------

def consumer_cone(graph: Graph, name: str) -> tuple[list, list[str]] | None:
    """(nodes to run, outputs to compare) when `name` is read by computing nodes, through data
    movement that keeps the QParams; None for a graph output or a tensor nobody computes from."""
    reach, nodes, compared = {name}, [], []
    for node in graph.nodes:
        if not any(i in reach for i in node.inputs if i):
            continue
        op = get_op(node.op_type)
        nodes.append(node)
        if op.keeps_qparams and node.inputs[0] in reach:
            reach.update(node.outputs)
        else:
            compared.extend(o for o in node.outputs if graph.tensors[o].dtype == "float32")
    if any(o in reach for o in graph.outputs) or not compared:
        return None
    return nodes, compared


def _fake_quant(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    qp = from_range(lo, hi)
    return qp.dequantize(qp.quantize(values))


def choose_auto(graph: Graph, samples: list, choices: dict[str, dict[str, tuple[float, float]]],
                tick, done0: int) -> dict[str, str]:
    """Per tensor, the candidate with the least relative error at its consumers' outputs."""
    picked, cones = {}, {}
    for name, options in choices.items():
        cone = consumer_cone(graph, name)
        if cone is None or len(set(options.values())) == 1:
            picked[name] = "mse"
        else:
            cones[name] = cone
    step = max(1, len(samples) // AUTO_SAMPLES)
    subset = samples[::step][:AUTO_SAMPLES]
    noise = {n: {c: {} for c in choices[n]} for n in cones}
    power: dict[str, dict[str, float]] = {n: {} for n in cones}
    for k, feeds in enumerate(subset):
        values = run_float(graph, feeds, keep_all=True)
        for name, (nodes, compared) in cones.items():
            for out in compared:
                power[name][out] = power[name].get(out, 0.0) + float(np.sum(values[out].astype(np.float64) ** 2))
            for cand, (lo, hi) in choices[name].items():
                same = next((c for c in choices[name] if c != cand and choices[name][c] == (lo, hi)
                             and CANDIDATES.index(c) < CANDIDATES.index(cand)), None)
                if same is not None:  # the same range as an earlier candidate: the same error
                    noise[name][cand] = noise[name][same]
                    continue
                local = {name: _fake_quant(values[name], lo, hi)}
                for node in nodes:
                    ins = [None if not i else local.get(i, values[i] if i in values else graph.tensors[i].data)
                           for i in node.inputs]
                    for o, v in zip(node.outputs, get_op(node.op_type).reference(node, graph, ins)):
                        local[o] = np.asarray(v, graph.tensors[o].dtype).reshape(graph.tensors[o].shape)
                for out in compared:
                    d = local[out].astype(np.float64) - values[out]
                    noise[name][cand][out] = noise[name][cand].get(out, 0.0) + float(np.sum(d * d))
        tick(done0 + int(len(samples) * (k + 1) / len(subset)))
    for name in cones:
        def score(cand):
            return sum(e / power[name][o] if power[name][o] > 0 else e for o, e in noise[name][cand].items())
        picked[name] = min(choices[name], key=lambda c: (score(c), CANDIDATES.index(c)))
    return picked


# ---- weights -----------------------------------------------------------------------------

def layer_weight(node, graph: Graph) -> np.ndarray | None:
    """The float weights of a Conv, ConvTranspose, Gemm or MatMul layer as qparams.layer_weights
    receives them (output channels on axis 0); None for other nodes and non-constant weights."""
    from codegen.ops.gemm import runs_batched

    op = get_op(node.op_type)
    if node.op_type in ("Conv", "ConvTranspose"):
        if graph.const(node.inputs[1]) is None:
            return None
        return op._weights(node, graph)[0] if node.op_type == "Conv" else \
            op._weights(node, graph, op.geometry(node, graph))[0]
    if node.op_type in ("Gemm", "MatMul") and not runs_batched(node, graph):
        w = op.layout(node, graph).weight
        return None if w is None else np.asarray(w)
    return None


def clip_weights(graph: Graph, method: str = "none", per_layer: dict[str, dict] | None = None) -> list[str]:
    """Weight clipping "mse": each layer's per-channel scales become qparams.mse_weight_scales,
    in node.attrs["weight_scales"] (a per-layer "weight_clipping" wins). Returns the layers so
    changed."""
    from codegen.qparams import mse_weight_scales

    names = {node.name for node in graph.nodes}
    for name, entry in (per_layer or {}).items():
        if "weight_clipping" in entry and name not in names:
            raise CompileError(f"per-layer weight clipping of node '{name}': the model has no such node")
    done = []
    for node in graph.nodes:
        chosen = (per_layer or {}).get(node.name, {}).get("weight_clipping", method)
        if chosen not in ("none", "mse"):
            raise CompileError(f"layer '{node.name}': unknown weight clipping '{chosen}' (choose from none, mse)")
        if chosen != "mse" or "weight_scales" in node.attrs:
            continue
        w = layer_weight(node, graph)
        if w is not None and w.size:
            node.attrs["weight_scales"] = mse_weight_scales(w, 0)
            done.append(node.name)
    return done
