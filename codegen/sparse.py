"""Sparse int8 weights: the encodings of runtime_c/include/nn_sparse.h, and the cost model that
picks dense or sparse for a layer.

A weight matrix is given as the dense kernels read it:
- fully connected: 2-D [out_features, in_features];
- depthwise convolution: 2-D [channels, kernel_h * kernel_w];
- convolution with groups 1: 4-D [out_channels, in_channels, kernel_h, kernel_w]; its rows are
  cut into segments of whole taps (nn_sparse.h): up to 127 input channels, as many taps as fit
  in 255 positions, and the kernel steps from tap to tap as an entry's position passes the
  tap's end; from 128 channels, a tap (and chunk of 255 channels) a segment, with no steps.

Two encodings, each three byte tables (counts uint8, positions uint8, values int8):
- "index8": an entry per non-zero, its uint8 index in a segment of up to 255 positions: the
  fewest instructions (an FC entry is: load index, load the input at base + index, load the
  value, multiply-accumulate); 2 bytes per non-zero.
- "delta4": 4-bit steps from entry to entry, two a byte, zero-valued fillers across gaps of
  more than 15: 1.5 bytes per non-zero, the smallest from 75% sparsity up, 0.3-0.6
  instructions more per entry than index8.
They won on the emulated Cortex-M4 among four candidates, measured as first kernels on the
Gemm 256x256 against nn_fc_s8 with SMLAD (bytes and instructions relative to dense):
    sparsity   bitmask+values   index8        delta4        1x4 blocks
    50%        0.62 / 1.66      1.00 / 1.20   0.75 / 1.37   1.18 / 1.21
    75%        0.37 / 0.92      0.51 / 0.65   0.39 / 0.74   0.86 / 0.91
    90%        0.23 / 0.49      0.21 / 0.33   0.20 / 0.41   0.45 / 0.50
The bitmask is smaller only below 75%, where every sparse form is slower than the dense
kernel, and finding each set bit costs 3-4 instructions more per non-zero; 1x4 blocks for SMLAD
keep 68% of the blocks at 75% unstructured sparsity and lose everywhere (uint8 deltas instead
of indices: the bytes of index8 and 5-11% more instructions). SMLAD does not help the sparse
kernels: each non-zero's input is a load of its own, and the convolution's four positions per
word through SXTB16 and SMLABB/SMLATB measured within 0.1% of the portable loop, so they have
no runtime_c/opt/dsp versions.

The op code calls, for a layer with int8 weights wq (as above) on a target with `features`:
    choice = choose(wq, kind, features, geometry)      # kind "fc", "conv" or "dw"
and when choice.encoding != "dense":
    tables = encode(wq, choice.encoding)                # counts, positions, values
    function, source, params_type = sparse_kernel(kind)
    params = sparse_params(kind, dense_params, choice.encoding)
    args: input, tables["counts"], tables["positions"], tables["values"], bias, multiplier,
          shift, [dw only: the int8 scratch of scratch_bytes("dw", geometry) bytes], output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.errors import CompileError

SEGMENT = 255  # NN_SPARSE_SEGMENT
ENCODINGS = ("index8", "delta4")
SPANS = "-span"  # a convolution's encoding + SPANS: segments of several taps (conv_span)
SPAN_ENCODINGS = tuple(e + SPANS for e in ENCODINGS)
# NN_SPARSE_INDEX8, NN_SPARSE_DELTA4, or'ed with NN_SPARSE_SPANS
ENCODING_IDS = {"index8": 0, "delta4": 1, "index8-span": 2, "delta4-span": 3}
KINDS = ("fc", "conv", "dw")
_MAX_STEP = 15


def sparsity(w: np.ndarray) -> float:
    """The fraction of zero weights (0.0 for an empty array)."""
    w = np.asarray(w)
    return float(np.count_nonzero(w == 0)) / w.size if w.size else 0.0


def conv_span(in_channels: int, taps: int) -> int:
    """Taps of a convolution segment (nn_sparse_span): as many whole taps as fit in SEGMENT
    positions; 1 from 128 input channels (and for 1x1 kernels)."""
    fit = SEGMENT // in_channels if in_channels < SEGMENT else 1
    return min(fit, taps)


def encodings(w: np.ndarray, kind: str) -> tuple[str, ...]:
    """The sparse encodings for a layer's weights (as `encode` takes them): ENCODINGS, and for a
    convolution whose segments can hold several taps, SPAN_ENCODINGS too."""
    w = np.asarray(w)
    spans = kind == "conv" and w.ndim == 4 and conv_span(w.shape[1], w.shape[2] * w.shape[3]) > 1
    return ENCODINGS + SPAN_ENCODINGS if spans else ENCODINGS


def _segments(w: np.ndarray, spans: bool = False) -> np.ndarray:
    """[rows * segments, SEGMENT] int8: every segment of every row in table order, zero-padded;
    `spans`: a convolution's segments of several taps."""
    w = np.asarray(w)
    if w.dtype != np.int8:
        raise CompileError(f"sparse encoding needs int8 weights, got {w.dtype}")
    if w.ndim not in (2, 4) or 0 in w.shape:
        raise CompileError(f"sparse encoding needs a 2-D or 4-D weight array without empty dimensions, "
                           f"got shape {list(w.shape)}")
    if w.ndim == 4:  # [oc, ic, kh, kw] -> tap-major [oc, taps, ic]
        oc, ic, taps = w.shape[0], w.shape[1], w.shape[2] * w.shape[3]
        w = w.reshape(oc, ic, taps).transpose(0, 2, 1)
        span = conv_span(ic, taps) if spans else 1
        if span > 1:  # [oc, groups of span taps, span * ic]
            groups = -(-taps // span)
            grouped = np.zeros((oc, groups * span, ic), np.int8)
            grouped[:, :taps] = w
            w = grouped.reshape(oc, groups, span * ic)
    else:
        w = w[:, None, :]
    rows, groups, length = w.shape
    chunks = -(-length // SEGMENT)
    padded = np.zeros((rows, groups, chunks * SEGMENT), np.int8)
    padded[:, :, :length] = w
    return padded.reshape(rows * groups * chunks, SEGMENT)


def _check(encoding: str, w_ndim: int | None = None) -> tuple[str, bool]:
    """(the encoding of the entries, whether segments span taps)."""
    if encoding not in ENCODING_IDS:
        raise CompileError(f"unknown sparse encoding '{encoding}' (known: {', '.join(ENCODING_IDS)})")
    spans = encoding.endswith(SPANS)
    if spans and w_ndim is not None and w_ndim != 4:
        raise CompileError(f"'{encoding}' is for convolution weights [out, in, kh, kw] only")
    return encoding.removesuffix(SPANS), spans


def encode(w: np.ndarray, encoding: str) -> dict[str, np.ndarray]:
    """The tables a sparse kernel call passes, in argument order: counts (uint8), positions
    (uint8) and values (int8)."""
    encoding, spans = _check(encoding, np.ndim(w))
    seg = _segments(w, spans)
    nonzero = seg != 0
    if encoding == "index8":
        return {"counts": nonzero.sum(axis=1).astype(np.uint8),
                "positions": np.nonzero(nonzero)[1].astype(np.uint8),
                "values": seg[nonzero].astype(np.int8)}
    counts, steps, values = [], [], []
    for row in seg:
        cols = np.flatnonzero(row)
        gaps = np.diff(cols, prepend=0)
        fillers = np.maximum(gaps - 1, 0) // _MAX_STEP  # each filler moves the cursor by 15
        where = np.cumsum(fillers) + np.arange(len(cols))  # each non-zero's entry
        entries = len(cols) + int(fillers.sum())
        st = np.full(entries + entries % 2, _MAX_STEP, np.uint8)
        val = np.zeros(entries + entries % 2, np.int8)
        st[where] = gaps - _MAX_STEP * fillers
        val[where] = row[cols]
        if entries % 2:
            st[-1] = 0
        counts.append(len(st) // 2)
        steps.append(st)
        values.append(val)
    st = np.concatenate(steps) if steps else np.zeros(0, np.uint8)
    return {"counts": np.array(counts, np.uint8),
            "positions": (st[0::2] | (st[1::2] << 4)).astype(np.uint8),
            "values": np.concatenate(values).astype(np.int8) if values else np.zeros(0, np.int8)}


def decode(tables: dict[str, np.ndarray], encoding: str, shape: tuple[int, ...]) -> np.ndarray:
    """The dense int8 weights of `shape` (2-D or 4-D, as given to `encode`) back from the tables."""
    encoding, spans = _check(encoding, len(shape))
    shape = tuple(int(d) for d in shape)
    template = _segments(np.zeros(shape, np.int8), spans)
    seg = np.zeros_like(template)
    counts, positions, values = (np.asarray(tables[k]) for k in ("counts", "positions", "values"))
    if len(counts) != len(seg):
        raise CompileError(f"{len(counts)} segment counts for {len(seg)} segments of {list(shape)}")
    at_pos = at_val = 0
    for s, count in enumerate(counts.astype(np.int64)):
        if encoding == "index8":
            seg[s, positions[at_pos:at_pos + count]] = values[at_val:at_val + count]
            at_pos += count
            at_val += count
            continue
        steps = positions[at_pos:at_pos + count]
        steps = np.stack([steps & 15, steps >> 4], axis=1).reshape(-1).astype(np.int64)
        cursor = np.cumsum(steps)
        vals = values[at_val:at_val + 2 * count]
        if cursor.size and cursor[-1] >= SEGMENT:
            raise CompileError(f"delta4 segment {s} steps past its end")
        np.add.at(seg[s], cursor, vals)  # fillers and pads add zero
        at_pos += count
        at_val += 2 * count
    if at_pos != len(positions) or at_val != len(values):
        raise CompileError("sparse tables hold more entries than their counts")
    if len(shape) == 4:
        oc, ic, kh, kw = shape
        taps, span = kh * kw, conv_span(ic, kh * kw) if spans else 1
        if span > 1:
            groups = -(-taps // span)
            dense = seg.reshape(oc, groups, SEGMENT)[:, :, :span * ic].reshape(oc, groups * span, ic)[:, :taps]
        else:
            chunks = -(-ic // SEGMENT)
            dense = seg.reshape(oc, taps, chunks * SEGMENT)[:, :, :ic]
        return np.ascontiguousarray(dense.transpose(0, 2, 1)).reshape(shape)
    rows, k = shape
    return seg.reshape(rows, -1)[:, :k].copy()


def encoded_bytes(w: np.ndarray, encoding: str) -> int:
    """Flash bytes of the encoded tables (counts, positions and values)."""
    return sum(table_lengths(w, encoding).values())  # every table is of bytes


def table_lengths(w: np.ndarray, encoding: str) -> dict[str, int]:
    """The lengths of `encode`'s tables, counted without building them (all segments at once:
    the cost model asks for every layer of a model of millions of weights)."""
    encoding, spans = _check(encoding, np.ndim(w))
    seg = _segments(w, spans)
    rows, cols = np.nonzero(seg)  # row-major: each segment's non-zeros in column order
    if encoding == "index8":
        return {"counts": len(seg), "positions": len(cols), "values": len(cols)}
    previous = np.zeros_like(cols)
    same = rows[1:] == rows[:-1]
    previous[1:][same] = cols[:-1][same]
    fillers = np.maximum(cols - previous - 1, 0) // _MAX_STEP
    entries = np.bincount(rows, minlength=len(seg)) + np.bincount(rows, weights=fillers, minlength=len(seg)).astype(
        np.int64)
    padded = int((entries + entries % 2).sum())
    return {"counts": len(seg), "positions": padded // 2, "values": padded}



# ---- the cost model ----

NN_BLOCK = 4  # output positions per block in the convolution kernels
COST_TERMS = ("entry", "output", "segment, column input or copied byte", "row", "checked entry",
              "checked segment")

# Instructions per COST_TERMS item (dense: per MAC, per output, ...), per target class ("dsp":
# the Cortex-M4 build with runtime_c/opt/dsp; "base": the portable kernels, measured on the
# Cortex-M3), kind and encoding; "dense3x3": nn_conv_dw_s8's own 3x3 loop. Counted on the
# CALIBRATION (and CALIBRATION_SPARSE) layers at CALIBRATION_SPARSITIES and fitted by least
# squares of the relative error (worst fit 8%, a tap a segment 12%; segments of several taps
# 33%: on small padded layers their checked blocks step through taps at a cost no term follows) by
#     python -m benchmarks.sparse calibrate
# (QEMU with the instruction-counting plugin of benchmarks/icount.py; about 5 minutes). The portable
# dense convolution without scratch loops per input channel and kernel row, which no term
# follows: its "base" constants fit the calibration layers (4%) but not more.
COSTS = {
    "dsp": {
        "fc": {"dense": (2.5, 48.7, 0.0, 0.0, 0.0, 0.0),
               "index8": (5.23, 61.77, 13.72, 0.0, 0.0, 0.0),
               "delta4": (5.78, 63.75, 18.66, 0.0, 0.0, 0.0)},
        "conv": {"dense": (0.79, 21.75, 12.77, 1.47, 0.0, 0.0),
                 "index8": (3.54, 40.0, 31.38, 0.0, 3.84, 66.88),
                 "delta4": (3.85, 39.36, 39.25, 0.0, 4.08, 60.25),
                 "index8-span": (4.65, 57.33, 13.53, 0.0, 14.29, 13.06),
                 "delta4-span": (5.7, 58.0, 13.99, 0.0, 15.18, 7.95)},
        "dw": {"dense": (7.03, 64.68, 2.06, 4.07, 0.0, 0.0),
               "dense3x3": (0.0, 18.15, 1.78, 112.95, 0.0, 0.0),
               "index8": (5.35, 34.75, 2.51, 150.68, 0.0, 0.0),
               "delta4": (8.65, 38.96, 2.53, 153.6, 0.0, 0.0)},
    },
    "base": {
        "fc": {"dense": (9.0, 48.15, 0.0, 0.0, 0.0, 0.0),
               "index8": (5.23, 59.73, 13.72, 0.0, 0.0, 0.0),
               "delta4": (5.72, 65.36, 20.78, 0.0, 0.0, 0.0)},
        "conv": {"dense": (21.02, 2649.61, -114.3, 174.33, 0.0, 0.0),
                 "index8": (3.57, 39.59, 29.63, 0.0, 3.6, 67.76),
                 "delta4": (4.0, 39.27, 39.45, 0.0, 3.81, 59.02),
                 "index8-span": (4.63, 57.44, 13.43, 0.0, 14.6, 12.16),
                 "delta4-span": (5.67, 58.1, 13.92, 0.0, 15.47, 7.17)},
        "dw": {"dense": (7.03, 87.2, 3.71, 5.49, 0.0, 0.0),
               "dense3x3": (0.0, 57.38, 2.81, 150.47, 0.0, 0.0),
               "index8": (5.37, 35.24, 2.62, 143.88, 0.0, 0.0),
               "delta4": (8.4, 38.61, 2.62, 147.26, 0.0, 0.0)},
    },
}

# The rule (choose): a sparse encoding qualifies when it is neither larger nor slower than
# dense, or when it saves clearly in one (at most CLEAR of dense) and costs little in the other
# (at most LITTLE of dense); of those that qualify, the one with the least bytes x instructions
# (both relative to dense: a relative saving in flash and in time weigh the same) wins.
CLEAR, LITTLE = 0.8, 1.05


@dataclass(frozen=True)
class Choice:
    """The encoding chosen for a layer and why: bytes of its weights (dense and chosen),
    estimated instructions per call (dense and the best sparse encoding), one line for reports."""

    encoding: str  # "dense" or one of ENCODINGS or SPAN_ENCODINGS
    sparsity: float
    dense_bytes: int
    bytes: int
    est_dense: int
    est_sparse: int  # the best sparse encoding's, chosen or not
    sparse_bytes: int  # likewise
    reason: str


def estimate(w: np.ndarray, kind: str, encoding: str, features: tuple[str, ...] = (),
             geometry: dict | None = None) -> int:
    """Estimated instructions of one call of the dense kernel ("dense") or the sparse one.
    w as `encode` takes it; geometry: nn_fc_s8_params fields for fc ("rows" is read), the
    nn_conv_geometry fields for conv and dw (positions and padding are read); None estimates
    one output row or position without padding."""
    if kind not in KINDS:
        raise CompileError(f"unknown layer kind '{kind}' (known: {', '.join(KINDS)})")
    costs = COSTS["dsp" if "dsp" in features else "base"][kind]
    key = encoding
    if kind == "dw" and encoding == "dense":
        three = (geometry["kernel_h"], geometry["kernel_w"], geometry["dilation_h"], geometry["dilation_w"]) == \
            (3, 3, 1, 1) if geometry else w.shape[1] == 9
        key = "dense3x3" if three else "dense"
    return int(round(sum(c * n for c, n in zip(costs[key], work(np.asarray(w), kind, encoding, geometry)))))


POLICIES = ("auto", "dense", "sparse")


def choose(w: np.ndarray, kind: str, features: tuple[str, ...] = (), geometry: dict | None = None,
           policy: str = "auto") -> Choice:
    """Dense or one of ENCODINGS for a layer's int8 weights (w and geometry as for `estimate`)
    on a target with these CPU features (e.g. ("dsp", "fpu")). policy "auto": by the rule above;
    "sparse": the best sparse encoding whenever a weight is zero; "dense": dense."""
    if policy not in POLICIES:
        raise CompileError(f"unknown encoding policy '{policy}' (choose from {', '.join(POLICIES)})")
    w = np.asarray(w)
    dense_bytes, s = int(w.size), sparsity(w)
    est_dense = estimate(w, kind, "dense", features, geometry)
    if policy == "dense" or s == 0:
        why = "--encoding dense" if policy == "dense" else "no zero weights"
        return Choice("dense", s, dense_bytes, dense_bytes, est_dense, est_dense, dense_bytes, f"dense: {why}")
    options = []
    for encoding in encodings(w, kind):
        size, est = encoded_bytes(w, encoding), estimate(w, kind, encoding, features, geometry)
        b, i = size / dense_bytes, est / max(est_dense, 1)
        qualifies = (b <= 1 and i <= 1) or (b <= CLEAR and i <= LITTLE) or (i <= CLEAR and b <= LITTLE)
        options.append((b * i, not qualifies and policy == "auto", encoding, size, est, b, i))
    score, rejected, encoding, size, est, b, i = min(options, key=lambda o: (o[1], o[0]))
    figures = f"{b:.2f}x the bytes and {i:.2f}x the instructions of dense at {s:.0%} sparsity"
    if rejected:
        return Choice("dense", s, dense_bytes, dense_bytes, est_dense, est, size,
                      f"dense: the best sparse form, {encoding}, would take {figures}")
    why = " (--encoding sparse)" if policy == "sparse" else ""
    return Choice(encoding, s, dense_bytes, size, est_dense, est, size, f"{encoding}: {figures}{why}")


def work(w: np.ndarray, kind: str, encoding: str, geometry: dict | None = None) -> tuple[float, ...]:
    """What the cost model counts for one call, COST_TERMS in order: entries visited (dense:
    MACs); outputs; for fc and a sparse conv the segment visits (segments of several taps: the
    taps stepped through), for a dense conv the inputs gathered into columns, for dw (both
    kernels) the input bytes copied into the padded scratch;
    output rows (conv, dw: per channel and image); the entries and segments visited in conv
    blocks checked for padding. The sparse convolutions count the positions they compute,
    overlapping blocks included. w as `encode` takes it; geometry: nn_fc_s8_params fields (fc)
    or nn_conv_geometry (conv, dw), or None for one output row or position without padding."""
    rows = w.shape[0]
    per_row = int(np.prod(w.shape[1:]))
    if geometry is None:
        repeats, computed, lines, checked, copied = 1, 1, 0.0, 0.0, 0.0
    elif kind == "fc":
        repeats = computed = geometry["rows"]
        lines, checked, copied = 0.0, 0.0, 0.0
    else:
        batch = geometry["batch"]
        repeats = batch * geometry["out_h"] * geometry["out_w"]
        computed, checked_positions = (batch * n for n in _computed_positions(geometry, kind))
        checked = checked_positions / computed
        lines = float(batch * geometry["out_h"] * rows)
        copied = float(batch * rows * scratch_bytes("dw", geometry)) if kind == "dw" else 0.0
    if encoding == "dense":
        third = copied if kind == "dw" else float(repeats * per_row) if kind == "conv" else 0.0
        return float(w.size * repeats), float(rows * repeats), third, lines, 0.0, 0.0
    tables = table_lengths(w, encoding)
    entries = float(tables["values"]) * computed
    outputs = float(rows * computed)
    if kind == "dw":
        return entries, outputs, copied, lines, 0.0, 0.0
    visits = _taps_stepped(w) if encoding.endswith(SPANS) else tables["counts"]
    segments = float(visits) * computed / (1 if kind == "fc" else NN_BLOCK)
    return entries, outputs, segments, lines, entries * checked, segments * checked


def _taps_stepped(w: np.ndarray) -> int:
    """Steps from tap to tap per block of a convolution whose segments hold several taps: in
    every segment but a row's last, on to the next segment's first tap; in the last, up to the
    tap of its last non-zero."""
    oc, ic, kh, kw = w.shape
    taps, span = kh * kw, conv_span(ic, kh * kw)
    last_group = (taps - 1) // span
    nonzero = np.any(w.reshape(oc, ic, taps)[:, :, last_group * span:] != 0, axis=1)  # [oc, taps of the last]
    reached = np.where(nonzero.any(axis=1), nonzero.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1), 0)
    return int(oc * last_group * span + reached.sum())


def _computed_positions(g: dict, kind: str) -> tuple[int, int]:
    """(positions computed, of which in blocks checked for padding) by nn_conv_sparse_s8
    (kind "conv") or nn_conv_dw_sparse_s8 ("dw") for one image: their rules, from the geometry.
    A row ends on a block that overlaps its neighbour, so some positions are computed twice."""
    out_w, out_h = g["out_w"], g["out_h"]

    def blocks(width: int) -> int:  # positions computed for `width` outputs in blocks
        return -(-width // NN_BLOCK) * NN_BLOCK if width >= NN_BLOCK else width

    if kind == "dw":
        return out_h * blocks(out_w), 0
    sw, pl = g["stride_w"], g["pad_left"]
    reach = (NN_BLOCK - 1) * sw + (g["kernel_w"] - 1) * g["dilation_w"] - pl
    lo = (pl + sw - 1) // sw
    hi = 0 if g["in_w"] - reach <= 0 else (g["in_w"] - 1 - reach) // sw + 1
    inside_end = min(hi - 1 + NN_BLOCK, out_w)
    left = -(-lo // NN_BLOCK) * NN_BLOCK
    right = out_w - -(-(out_w - inside_end) // NN_BLOCK) * NN_BLOCK
    computed = checked = 0
    for oy in range(out_h):
        y0 = oy * g["stride_h"] - g["pad_top"]
        if y0 >= 0 and y0 + (g["kernel_h"] - 1) * g["dilation_h"] < g["in_h"] and right - left >= NN_BLOCK:
            edges = left + out_w - right
            computed += edges + blocks(right - left)
            checked += edges
        else:
            computed += blocks(out_w)
            checked += blocks(out_w)
    return computed, checked


KERNELS = {  # kind -> (dense kernel, its source, sparse kernel, params type of the dense kernel)
    "fc": ("nn_fc_s8", "src/fc/nn_fc_s8.c", "nn_fc_sparse_s8", "nn_fc_s8_params"),
    "conv": ("nn_conv_s8", "src/conv/nn_conv_s8.c", "nn_conv_sparse_s8", "nn_conv_s8_params"),
    "dw": ("nn_conv_dw_s8", "src/conv/nn_conv_dw_s8.c", "nn_conv_dw_sparse_s8", "nn_conv_s8_params"),
}


def sparse_kernel(kind: str) -> tuple[str, str, str]:
    """(function, runtime source, params type) of the sparse kernel for a layer kind."""
    if kind not in KERNELS:
        raise CompileError(f"unknown layer kind '{kind}' (known: {', '.join(KINDS)})")
    function = KERNELS[kind][2]
    params_type = "nn_fc_sparse_s8_params" if kind == "fc" else "nn_conv_sparse_s8_params"
    return function, f"src/sparse/{function}.c", params_type


def sparse_params(kind: str, dense_params: dict, encoding: str) -> dict:
    """The sparse kernel's params from the dense kernel's (nn_fc_s8_params fields, or the nested
    nn_conv_s8_params of codegen/ops/conv.py)."""
    _check(encoding)
    return {"fc" if kind == "fc" else "conv": dense_params, "encoding": ENCODING_IDS[encoding]}


def scratch_bytes(kind: str, geometry: dict) -> int:
    """Bytes of the scratch buffer the sparse kernel takes: none for fc and conv; for dw, as
    for nn_conv_dw_s8, the padded input plane when the layer pads (0: pass NULL).
    geometry: the nn_conv_geometry fields (ignored for fc)."""
    if kind != "dw":
        return 0
    g = geometry
    span_h = (g["out_h"] - 1) * g["stride_h"] + (g["kernel_h"] - 1) * g["dilation_h"] + 1
    span_w = (g["out_w"] - 1) * g["stride_w"] + (g["kernel_w"] - 1) * g["dilation_w"] + 1
    padded = (g["pad_top"] or g["pad_left"] or span_h > g["in_h"] + g["pad_top"]
              or span_w > g["in_w"] + g["pad_left"])
    return span_h * span_w if padded else 0
