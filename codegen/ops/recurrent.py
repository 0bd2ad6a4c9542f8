"""Recurrent layers: LSTM and GRU (forward, reverse, bidirectional; GRU linear_before_reset
0 and 1; layout 0 and 1; the outputs Y, Y_h, Y_c in any subset: the importer drops the
ones that are absent or that nothing reads, `compact_outputs`).

Supported: constant W, R, B; sequence_lens absent or constant and equal to the sequence
length everywhere; initial_h / initial_c absent (zeros) or constant; peepholes P absent or
constant zeros; the default activations (Sigmoid, Tanh, Tanh); no clip; input_forget 0.

The C runs the sequence in a loop, one kernel call per direction (the reverse one walks the
steps backwards), with the state in the node's arena scratch:
  LSTM (ONNX gate order i, o, f, c):  g = b + x W^T + h R^T; c = f * c + i * tanh(g_c);
                                       h = o * tanh(c)  (i, o, f = sigmoid of their rows)
  GRU (z, r, h):  z, r = sigmoid(b + x W^T + h R^T);
                  linear_before_reset 0: n = tanh(b_h + x W_h^T + (r * h) R_h^T)   (b_h = Wb_h + Rb_h)
                  linear_before_reset 1: n = tanh(Wb_h + x W_h^T + r * (Rb_h + h R_h^T))
                  h = (1 - z) * n + z * h
Float: every sum in that order (bias, then x's terms, then h's), which `reference_in_kernel_order`
follows term by term; `reference` is the same recurrence with matrix products.

int8 (in the manner of TFLite's 8x8_16 integer LSTM):
1. x and h are int8 (h: one scale and zero point for Y, Y_h and the state, both directions,
   from the calibrated range of every hidden state and initial_h); W and R int8 per row.
2. Each gate row j: two int32 accumulators, x.W (with the folded bias Wb + Rb and input zero
   point) and h.R, each requantized to Q3.12 (scale 2^-12: x_scale * w_scale[j] * 2^12 and
   h_scale * r_scale[j] * 2^12), added and saturated to int16.
3. sigmoid and tanh of a Q3.12 value: a 513-entry int16 table over [-8, 8] (one entry per
   1/32), linear interpolation between entries, result Q0.15 (runtime_c/src/recurrent/
   nn_gate_*_s16.c hold the tables GATE_TABLES computes).
4. LSTM cell state: int16 at scale 2^-k, k = 15 - ceil(log2(max |c|)) (in [0, 15]) from the
   calibrated range of the cell over all steps and initial_c. f * c >> 15 and i * g >> (30 - k)
   (rounding half away from zero), saturated to int16; tanh(c) takes c rescaled to Q3.12.
   h = requantize(o * tanh(c), 2^-30 / h_scale) + h_zero_point. Y_c is the cell requantized to
   its own int8 scale.
5. GRU: z and r as 2; linear_before_reset 1: n = tanh(sat16(x part + r * (h.R_h in Q3.12) >> 15));
   0: the int8 vector r * h (at h's scale: zp + (r * (h - zp)) >> 15) goes through R_h.
   h = zp + requantize((2^15 - z) * n, 2^-30 / h_scale) + (z * (h - zp)) >> 15, clamped.
Calibration sees the internal states through `internal_ranges`: the hidden state ("h") and
the cell state ("c") over every step, recorded by calibrate.run under internal_range_key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8, requantize, rounding_divide_by_pot
from codegen.ops.base import Const, KernelCall, Op, Scratch, internal_range_key, is_int8, qparams, register, shape_of
from codegen.qparams import (QParams, floor_for_bias, fold_input_offset, multipliers, quantize_bias,
                             quantize_weights, weight_scales)

GATES = {"LSTM": 4, "GRU": 3}
OUTPUTS = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h")}
DEFAULT_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh")}
GATE_FRAC = 12  # gate pre-activations are Q3.12
TABLE_SIZE = 513


def gate_table(kind: str) -> np.ndarray:
    """The int16 Q0.15 table of sigmoid or tanh at x = (128 i - 32768) / 4096, i in [0, 512]."""
    x = (np.arange(TABLE_SIZE, dtype=np.float64) * 128 - 32768) / 4096
    y = 1.0 / (1.0 + np.exp(-x)) if kind == "sigmoid" else np.tanh(x)
    return np.clip(np.floor(y * 32768 + 0.5), -32767, 32767).astype(np.int16)


GATE_TABLES = {"sigmoid": gate_table("sigmoid"), "tanh": gate_table("tanh")}


def gate_s16(kind: str, x: np.ndarray) -> np.ndarray:
    """nn_gate_<kind>_s16: the table at (x + 32768) >> 7, interpolated over the low 7 bits."""
    table = GATE_TABLES[kind].astype(np.int64)
    u = np.asarray(x, np.int64) + 32768
    i, f = u >> 7, u & 127
    return (table[i] + (((table[i + 1] - table[i]) * f + 64) >> 7)).astype(np.int64)


def sat16(x) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), -32768, 32767)


# The float32 functions of the float twin: NumPy's (the tests put the C library's expf and tanhf
# in their place to compare the C with the twin bit for bit)
exp_f32 = np.exp
tanh_f32 = np.tanh


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = exp_f32(-np.abs(x))
    one = np.float32(1)
    return np.where(x >= 0, one / (one + e), e / (one + e)).astype(np.float32)


@dataclass
class Rnn:
    kind: str
    seq: int
    batch: int
    input_size: int
    hidden: int
    reverse: list[bool]  # per direction
    layout: int
    lbr: int
    w: np.ndarray  # [D, G*H, I]
    r: np.ndarray  # [D, G*H, H]
    wb: np.ndarray  # [D, G*H]
    rb: np.ndarray  # [D, G*H]
    h0: np.ndarray | None  # [D, B, H]
    c0: np.ndarray | None
    slots: tuple[int, ...]  # what each node output is: 0 Y, 1 Y_h, 2 Y_c

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def directions(self) -> int:
        return len(self.reverse)


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional_const(graph, node, index: int, what: str) -> np.ndarray | None:
    if index >= len(node.inputs) or not node.inputs[index]:
        return None
    value = graph.const(node.inputs[index])
    if value is None:
        raise Unsupported(f"{what} must be a constant")
    return value


def output_slots(node) -> tuple[int, ...]:
    """Which of Y, Y_h, Y_c each of node.outputs is (the importer drops absent ones)."""
    return tuple(node.attrs.get("output_slots", range(len(node.outputs))))


def rnn_layout(node, graph) -> Rnn:
    kind = node.op_type
    g = GATES[kind]
    direction = _text(node.attrs.get("direction"), "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise Unsupported(f"direction '{direction}' is not supported")
    reverse = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]
    d = len(reverse)
    layout = int(node.attrs.get("layout", 0))
    if layout not in (0, 1):
        raise Unsupported(f"layout {layout} is not supported")
    acts = node.attrs.get("activations")
    if acts is not None:
        names = tuple(_text(a, "").lower() for a in acts)
        if names != DEFAULT_ACTIVATIONS[kind] * d:
            raise Unsupported(f"activations {list(names)} are not supported (only the defaults "
                              f"{list(DEFAULT_ACTIVATIONS[kind])})")
    if node.attrs.get("clip") is not None:
        raise Unsupported("clip is not supported")
    if int(node.attrs.get("input_forget", 0)):
        raise Unsupported("input_forget is not supported")
    x_shape = shape_of(graph, node.inputs[0])
    if len(x_shape) != 3:
        raise Unsupported(f"input X must be 3-D; it has shape {x_shape}")
    seq, batch, input_size = (x_shape[1], x_shape[0], x_shape[2]) if layout else x_shape
    w = _optional_const(graph, node, 1, "W")
    r = _optional_const(graph, node, 2, "R")
    if w is None or r is None:
        raise Unsupported("W and R must be given as constants")
    if w.ndim != 3 or w.shape[0] != d or w.shape[1] % g or w.shape[2] != input_size:
        raise Unsupported(f"W of shape {w.shape} does not fit {d} direction(s), {g} gates and input size {input_size}")
    hidden = w.shape[1] // g
    if hidden < 1:
        raise Unsupported("the hidden size must be at least 1")
    if "hidden_size" in node.attrs and int(node.attrs["hidden_size"]) != hidden:
        raise Unsupported(f"hidden_size {node.attrs['hidden_size']} differs from W's {hidden}")
    if r.shape != (d, g * hidden, hidden):
        raise Unsupported(f"R of shape {r.shape} is not {(d, g * hidden, hidden)}")
    b = _optional_const(graph, node, 3, "B")
    if b is None:
        b = np.zeros((d, 2 * g * hidden), np.float32)
    if b.shape != (d, 2 * g * hidden):
        raise Unsupported(f"B of shape {b.shape} is not {(d, 2 * g * hidden)}")
    lens = _optional_const(graph, node, 4, "sequence_lens")
    if lens is not None and (lens.size != batch or np.any(lens.reshape(-1) != seq)):
        raise Unsupported(f"sequence_lens must equal the sequence length {seq} for every batch entry")
    state_shape = (batch, d, hidden) if layout else (d, batch, hidden)
    states = []
    for index, what in ((5, "initial_h"), (6, "initial_c")):
        value = _optional_const(graph, node, index, what) if (index == 5 or kind == "LSTM") else None
        if value is not None:
            if value.shape != state_shape:
                raise Unsupported(f"{what} of shape {value.shape} is not {state_shape}")
            value = np.asarray(value, np.float32)
            value = value.transpose(1, 0, 2) if layout else value
        states.append(value)
    if kind == "LSTM":
        p = _optional_const(graph, node, 7, "P")
        if p is not None and np.any(p != 0):
            raise Unsupported("peepholes (P) are supported only when absent or zero")
    lbr = int(node.attrs.get("linear_before_reset", 0)) if kind == "GRU" else 0
    f32 = np.float32
    return Rnn(kind, int(seq), int(batch), int(input_size), int(hidden), reverse, layout, lbr,
               np.asarray(w, f32), np.asarray(r, f32), np.asarray(b[:, :g * hidden], f32),
               np.asarray(b[:, g * hidden:], f32), states[0], states[1], output_slots(node))


def _canonical_x(rnn: Rnn, x: np.ndarray) -> np.ndarray:
    """X as [seq, batch, input]."""
    return x.transpose(1, 0, 2) if rnn.layout else x


def _outputs(rnn: Rnn, y: np.ndarray, y_h: np.ndarray, y_c: np.ndarray | None) -> list[np.ndarray]:
    """Canonical Y [S, D, B, H], Y_h and Y_c [D, B, H] in the node's layout, for the present outputs."""
    if rnn.layout:
        y = y.transpose(2, 0, 1, 3)
        y_h = y_h.transpose(1, 0, 2)
        y_c = None if y_c is None else y_c.transpose(1, 0, 2)
    values = (y, y_h, y_c)
    return [values[s] for s in rnn.slots]


def _gate_sums(x, h, w, r, bias, kernel_order: bool):
    """bias + x W^T + h R^T in float32: at once, or term by term in the kernel's order."""
    if not kernel_order:
        return (bias[None, :] + x @ w.T + h @ r.T).astype(np.float32)
    acc = np.broadcast_to(bias, (x.shape[0], bias.size)).astype(np.float32)
    for k in range(w.shape[1]):
        acc = acc + x[:, k:k + 1] * w[None, :, k]
    for k in range(r.shape[1]):
        acc = acc + h[:, k:k + 1] * r[None, :, k]
    return acc


def run_float(rnn: Rnn, x: np.ndarray, kernel_order: bool = False):
    """(Y, Y_h, Y_c, every hidden state, every cell state), canonical layout."""
    x = _canonical_x(rnn, np.asarray(x, np.float32))
    s, b, hsz, d = rnn.seq, rnn.batch, rnn.hidden, rnn.directions
    y = np.zeros((s, d, b, hsz), np.float32)
    y_h = np.zeros((d, b, hsz), np.float32)
    y_c = np.zeros((d, b, hsz), np.float32)
    hs, cs = [], []
    one = np.float32(1)
    for di, rev in enumerate(rnn.reverse):
        h = np.zeros((b, hsz), np.float32) if rnn.h0 is None else rnn.h0[di].copy()
        c = np.zeros((b, hsz), np.float32) if rnn.c0 is None else rnn.c0[di].copy()
        hs.append(h)
        cs.append(c)
        w, r, wb, rb = rnn.w[di], rnn.r[di], rnn.wb[di], rnn.rb[di]
        for t in (range(s - 1, -1, -1) if rev else range(s)):
            if rnn.kind == "LSTM":
                g = _gate_sums(x[t], h, w, r, (wb + rb).astype(np.float32), kernel_order)
                i, o, f = (_sigmoid(g[:, k * hsz:(k + 1) * hsz]) for k in range(3))
                c = f * c + i * tanh_f32(g[:, 3 * hsz:])
                h = o * tanh_f32(c)
                cs.append(c)
            else:
                bias = np.concatenate([wb[:2 * hsz] + rb[:2 * hsz],
                                       wb[2 * hsz:] + (0 if rnn.lbr else rb[2 * hsz:])]).astype(np.float32)
                zr = _sigmoid(_gate_sums(x[t], h, w[:2 * hsz], r[:2 * hsz], bias[:2 * hsz], kernel_order))
                z, rg = zr[:, :hsz], zr[:, hsz:]
                if rnn.lbr:
                    hx = _gate_sums(x[t], np.zeros((b, 0), np.float32), w[2 * hsz:], r[2 * hsz:, :0],
                                    bias[2 * hsz:], kernel_order)
                    hr = _gate_sums(np.zeros((b, 0), np.float32), h, w[2 * hsz:, :0], r[2 * hsz:],
                                    rb[2 * hsz:], kernel_order)
                    n = tanh_f32(hx + rg * hr)
                else:
                    n = tanh_f32(_gate_sums(x[t], rg * h, w[2 * hsz:], r[2 * hsz:], bias[2 * hsz:], kernel_order))
                h = (one - z) * n + z * h
            hs.append(h)
            y[t, di] = h
        y_h[di], y_c[di] = h, c
    return y, y_h, (y_c if rnn.kind == "LSTM" else None), hs, cs


# ---- int8 --------------------------------------------------------------------------------


def cell_frac_bits(max_abs: float) -> int:
    """k: the cell state is int16 at scale 2^-k, covering [-2^(15-k), 2^(15-k)).

    >>> [cell_frac_bits(v) for v in (0.0, 0.9, 1.0, 3.0, 8.5, 1e6)]
    [15, 15, 15, 13, 11, 0]
    """
    if not max_abs > 0:
        return 15
    return int(min(15, max(0, 15 - math.ceil(math.log2(max_abs)))))


def _range_bound(q: QParams) -> float:
    """The largest magnitude an int8 tensor with these parameters represents."""
    return max(abs(q.scale * (-128 - q.zero_point)), abs(q.scale * (127 - q.zero_point)))


def _quantize_matrix(m: np.ndarray, bias: np.ndarray | None, in_q: QParams):
    """int8 rows, folded int32 bias, Q3.12 multipliers for `m` [rows, cols] read by an input with in_q."""
    scales = floor_for_bias(weight_scales(m, 0), bias, in_q.scale)
    mq, scales = quantize_weights(m, axis=0, scales=scales)
    folded = fold_input_offset(quantize_bias(bias, in_q.scale, scales), mq, in_q.zero_point)
    m0, shift = multipliers(in_q.scale * scales.astype(np.float64) * 2.0 ** GATE_FRAC)
    return mq, folded, m0, shift


def _pot_multiplier(real: float) -> tuple[int, int]:
    m0, shift = multipliers(np.float64([real]))
    return int(m0[0]), int(shift[0])


@register("LSTM", "GRU")
class Recurrent(Op):
    compact_outputs = True

    def check(self, node, graph):
        rnn_layout(node, graph)

    def infer_shapes(self, node, graph):
        rnn = rnn_layout(node, graph)
        d, s, b, h = rnn.directions, rnn.seq, rnn.batch, rnn.hidden
        shapes = [(b, s, d, h) if rnn.layout else (s, d, b, h)] + [(b, d, h) if rnn.layout else (d, b, h)] * 2
        if any(slot >= len(OUTPUTS[node.op_type]) for slot in rnn.slots):
            raise Unsupported(f"{node.op_type} has {len(OUTPUTS[node.op_type])} outputs")
        return [shapes[slot] for slot in rnn.slots]

    def reference(self, node, graph, inputs):
        rnn = rnn_layout(node, graph)
        return _outputs(rnn, *run_float(rnn, inputs[0])[:3])

    def reference_in_kernel_order(self, node, graph, inputs):
        rnn = rnn_layout(node, graph)
        return _outputs(rnn, *run_float(rnn, inputs[0], kernel_order=True)[:3])

    def internal_ranges(self, node, graph, inputs):
        rnn = rnn_layout(node, graph)
        _, _, _, hs, cs = run_float(rnn, inputs[0])
        ranges = {"h": (float(min(v.min() for v in hs)), float(max(v.max() for v in hs)))}
        if rnn.kind == "LSTM":
            ranges["c"] = (float(min(v.min() for v in cs)), float(max(v.max() for v in cs)))
        return ranges

    def macs(self, node, graph):
        rnn = rnn_layout(node, graph)
        return rnn.directions * rnn.seq * rnn.batch * rnn.gates * rnn.hidden * (rnn.input_size + rnn.hidden)

    def scratch_bytes(self, node, graph, in_place, features=()):
        rnn = rnn_layout(node, graph)
        g, h, bh = rnn.gates, rnn.hidden, rnn.batch * rnn.hidden
        if is_int8(graph, node):  # int32 gates, then the int16 cell (LSTM), int8 h (and GRU's r * h)
            return 4 * g * h + (2 * bh + bh if rnn.kind == "LSTM" else bh + h)
        return 4 * (4 * h + (2 * bh if rnn.kind == "LSTM" else bh))

    # ---- int8 ----

    def output_qparams(self, node, graph, choose):
        rnn = rnn_layout(node, graph)
        try:
            hq = choose(internal_range_key(node, "h"))
            cq = choose(internal_range_key(node, "c")) if rnn.kind == "LSTM" else None
        except Unsupported:
            raise Unsupported("its int8 rule needs the calibrated ranges of the hidden and cell states "
                              "(pass --calib)") from None
        node.attrs["state_qparams"] = (hq, cq)
        return [hq if slot < 2 else choose(name) for slot, name in zip(rnn.slots, node.outputs)]

    def quantize(self, node, graph):
        rnn = rnn_layout(node, graph)
        xq = qparams(graph, node.inputs[0])
        hq, cq = node.attrs["state_qparams"]
        hsz = rnn.hidden
        k = cell_frac_bits(_range_bound(cq)) if cq is not None else 15
        directions = []
        for di in range(rnn.directions):
            wb, rb = rnn.wb[di].astype(np.float64), rnn.rb[di].astype(np.float64)
            if rnn.kind == "LSTM":
                w_bias, r_bias = wb + rb, None
            else:
                w_bias = np.concatenate([wb[:2 * hsz] + rb[:2 * hsz], wb[2 * hsz:] + (0 if rnn.lbr else rb[2 * hsz:])])
                r_bias = np.concatenate([np.zeros(2 * hsz), rb[2 * hsz:]]) if rnn.lbr else None
            w = _quantize_matrix(rnn.w[di], w_bias.astype(np.float32), xq)
            r = _quantize_matrix(rnn.r[di], None if r_bias is None else r_bias.astype(np.float32), hq)
            h0 = np.full((rnn.batch, hsz), hq.zero_point, np.int8) if rnn.h0 is None else hq.quantize(rnn.h0[di])
            c0 = np.zeros((rnn.batch, hsz), np.int16)
            if rnn.c0 is not None:
                c0 = np.clip(np.rint(rnn.c0[di].astype(np.float64) * 2.0 ** k), -32768, 32767).astype(np.int16)
            directions.append({"w": w, "r": r, "h0": h0, "c0": c0})
        q = {"directions": directions, "cell_frac": k, "h_offset": hq.zero_point,
             "h_mult": _pot_multiplier(2.0 ** -30 / hq.scale)}
        if 2 in rnn.slots:
            yc = qparams(graph, node.outputs[rnn.slots.index(2)])
            q["c_mult"] = _pot_multiplier(2.0 ** -k / yc.scale)
            q["c_offset"] = yc.zero_point
        else:
            q["c_mult"], q["c_offset"] = (0, 0), 0
        return q

    def reference_s8(self, node, graph, inputs):
        rnn, q = rnn_layout(node, graph), node.attrs["q"]
        x = _canonical_x(rnn, np.asarray(inputs[0], np.int64))
        s, b, hsz, d = rnn.seq, rnn.batch, rnn.hidden, rnn.directions
        y = np.zeros((s, d, b, hsz), np.int8)
        y_h = np.zeros((d, b, hsz), np.int8)
        y_c = np.zeros((d, b, hsz), np.int8)
        zh, k = q["h_offset"], q["cell_frac"]
        hm, hs = q["h_mult"]
        for di, rev in enumerate(rnn.reverse):
            dq = q["directions"][di]
            wq, wbias, wm, ws = dq["w"]
            rq, rbias, rm, rs = dq["r"]
            wq, rq = wq.astype(np.int64), rq.astype(np.int64)
            h = dq["h0"].astype(np.int64)
            c = dq["c0"].astype(np.int64)
            x_parts = requantize(x @ wq.T + wbias, wm, ws).astype(np.int64)  # every step's x.W, requantized
            for t in (range(s - 1, -1, -1) if rev else range(s)):
                if rnn.kind == "LSTM":
                    acc_h = h @ rq.T + rbias
                    pre = sat16(x_parts[t] + requantize(acc_h, rm, rs))
                    i, o, f = (gate_s16("sigmoid", pre[:, j * hsz:(j + 1) * hsz]) for j in range(3))
                    g = gate_s16("tanh", pre[:, 3 * hsz:])
                    c = sat16(rounding_divide_by_pot(f * c, 15).astype(np.int64)
                              + rounding_divide_by_pot(i * g, 30 - k))
                    tc = rounding_divide_by_pot(c, k - GATE_FRAC) if k >= GATE_FRAC else sat16(c << (GATE_FRAC - k))
                    h = output_s8(o * gate_s16("tanh", tc), hm, hs, zh).astype(np.int64)
                else:
                    zr_rows = slice(0, 2 * hsz)
                    acc_h = h @ rq[zr_rows].T + rbias[zr_rows]
                    pre = sat16(x_parts[t][:, zr_rows] + requantize(acc_h, rm[zr_rows], rs[zr_rows]))
                    z, rg = gate_s16("sigmoid", pre[:, :hsz]), gate_s16("sigmoid", pre[:, hsz:])
                    n_rows = slice(2 * hsz, 3 * hsz)
                    hx = x_parts[t][:, n_rows]
                    if rnn.lbr:
                        hr = sat16(requantize(h @ rq[n_rows].T + rbias[n_rows], rm[n_rows], rs[n_rows]))
                        pre_n = sat16(hx + rounding_divide_by_pot(rg * hr, 15))
                    else:
                        rh = zh + rounding_divide_by_pot(rg * (h - zh), 15).astype(np.int64)
                        pre_n = sat16(hx + requantize(rh @ rq[n_rows].T + rbias[n_rows], rm[n_rows], rs[n_rows]))
                    n = gate_s16("tanh", pre_n)
                    new = (requantize((32768 - z) * n, hm, hs).astype(np.int64)
                           + rounding_divide_by_pot(z * (h - zh), 15) + zh)
                    h = np.clip(new, -128, 127)
                y[t, di] = h
            y_h[di] = h
            if rnn.kind == "LSTM":
                y_c[di] = output_s8(c, *q["c_mult"], q["c_offset"])
        return _outputs(rnn, y, y_h, y_c if rnn.kind == "LSTM" else None)

    # ---- C ----

    def _dims(self, rnn: Rnn, di: int) -> dict:
        s, b, i, h, d = rnn.seq, rnn.batch, rnn.input_size, rnn.hidden, rnn.directions
        if rnn.layout:
            x_strides, y_strides, state = (i, s * i), (di * h, d * h, s * d * h), (di * h, d * h)
        else:
            x_strides, y_strides, state = (b * i, i), (di * b * h, d * b * h, h), (di * b * h, h)
        return {"seq_len": s, "batch": b, "input_size": i, "hidden_size": h, "reverse": int(rnn.reverse[di]),
                "x_seq_stride": x_strides[0], "x_batch_stride": x_strides[1], "y_offset": y_strides[0],
                "y_seq_stride": y_strides[1], "y_batch_stride": y_strides[2], "state_offset": state[0],
                "state_batch_stride": state[1]}

    def _output_args(self, rnn: Rnn, node) -> list:
        names = dict(zip(rnn.slots, node.outputs))
        return [names.get(slot) for slot in range(len(OUTPUTS[rnn.kind]))]

    def kernels(self, node, graph):
        rnn = rnn_layout(node, graph)
        kind = rnn.kind.lower()
        hsz = rnn.hidden
        outs = self._output_args(rnn, node)
        calls = []
        if is_int8(graph, node):
            q = node.attrs["q"]
            function = f"nn_{kind}_s8"
            sources = (f"src/recurrent/{function}.c", "src/recurrent/nn_gate_sigmoid_s16.c",
                       "src/recurrent/nn_gate_tanh_s16.c")
            for di in range(rnn.directions):
                dq = q["directions"][di]
                params = {**self._dims(rnn, di), "hidden_offset": q["h_offset"], "h_multiplier": q["h_mult"][0],
                          "h_shift": q["h_mult"][1]}
                if rnn.kind == "LSTM":
                    params.update(cell_frac=q["cell_frac"], c_multiplier=q["c_mult"][0], c_shift=q["c_mult"][1],
                                  c_offset=q["c_offset"])
                else:
                    params["linear_before_reset"] = rnn.lbr
                matrices = []
                for role, (m, bias, m0, shift) in (("w", dq["w"]), ("r", dq["r"])):
                    matrices += [Const(m, role), Const(bias, role + "b"), Const(m0, role + "m"),
                                 Const(shift.astype(np.int8), role + "s")]
                states = [Const(dq["h0"], "h0")] + ([Const(dq["c0"], "c0")] if rnn.kind == "LSTM" else [])
                calls.append(KernelCall(function, sources, f"{function}_params", params,
                                        [node.inputs[0], *matrices, *states, *outs, Scratch("int32_t")]))
            return calls
        function = f"nn_{kind}_f32"
        for di in range(rnn.directions):
            params = self._dims(rnn, di)
            wb, rb = rnn.wb[di], rnn.rb[di]
            if rnn.kind == "LSTM":
                biases = [Const((wb + rb).astype(np.float32), "b")]
            else:
                params["linear_before_reset"] = rnn.lbr
                bias = np.concatenate([wb[:2 * hsz] + rb[:2 * hsz], wb[2 * hsz:] + (0 if rnn.lbr else rb[2 * hsz:])])
                biases = [Const(bias.astype(np.float32), "b"),
                          Const(np.ascontiguousarray(rb[2 * hsz:], np.float32), "rb") if rnn.lbr else None]
            states = [None if rnn.h0 is None else Const(np.ascontiguousarray(rnn.h0[di]), "h0")]
            if rnn.kind == "LSTM":
                states.append(None if rnn.c0 is None else Const(np.ascontiguousarray(rnn.c0[di]), "c0"))
            calls.append(KernelCall(function, (f"src/recurrent/{function}.c",), f"{function}_params", params,
                                    [node.inputs[0], Const(np.ascontiguousarray(rnn.w[di]), "w"),
                                     Const(np.ascontiguousarray(rnn.r[di]), "r"), *biases, *states, *outs,
                                     Scratch("float")]))
        return calls
