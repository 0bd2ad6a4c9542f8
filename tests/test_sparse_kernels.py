"""Sparse int8 kernels (runtime_c/src/sparse, codegen/sparse.py): every encoding decodes back to
its weights, and every sparse kernel gives the dense kernel's output and the NumPy int8
reference's, bit for bit, on the host and on the emulated Cortex-M4 (DSP) and Cortex-M3.

All layers of a run go into one folder (codegen.bench.layer_folder), each with the dense kernel
and both encodings, so a target builds and boots one image.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest

from benchmarks import sparse as bench
from codegen import cross, sparse
from codegen.build import HostModel
from codegen.errors import CompileError
from codegen.fixedpoint import quantize_multipliers, requantize
from codegen.ops.conv import windows
from codegen.targets import load_target
from test_targets import need

SPARSITIES = (0.0, 0.5, 0.75, 0.9, 0.99)
PATTERNS = SPARSITIES + ("empty-rows", "zero", "single", "gaps")


def runs(layer) -> list[str]:
    """The kernels a case runs with: dense and every sparse encoding for its weights."""
    return ["dense", *sparse.encodings(layer.encoded_weight(), layer.kind)]


# ---- weights, layers and the NumPy int8 reference ----

def sparse_weights(rng, shape, pattern) -> np.ndarray:
    """int8 weights in [-127, 127] with a seeded pattern of zeros."""
    w = rng.integers(-127, 128, shape).astype(np.int8)
    w[w == 0] = 1
    rows = w.reshape(shape[0], -1)
    if pattern == "zero":
        rows[:] = 0
    elif pattern == "single":
        keep = rows[rng.integers(shape[0]), rng.integers(rows.shape[1])]
        rows[:] = 0
        rows[rng.integers(shape[0]), rng.integers(rows.shape[1])] = keep
    elif pattern == "empty-rows":  # half the rows empty, the others 60% sparse
        rows[rng.random(rows.shape) < 0.6] = 0
        rows[rng.permutation(shape[0])[: max(1, shape[0] // 2)]] = 0
    elif pattern == "gaps":  # non-zeros 14..300 apart: fillers, segment ends and empty segments
        rows[:] = 0
        for r in range(shape[0]):
            k = int(rng.integers(0, 20))
            while k < rows.shape[1]:
                rows[r, k] = rng.choice([-127, -3, 5, 127])
                k += int(rng.choice([14, 15, 16, 17, 31, 254, 255, 256, 300]))
    else:
        rows[rng.random(rows.shape) < pattern] = 0
    return w


def _multipliers(rng, acc_rows: np.ndarray, channels: int):
    """Per-channel requantization that spreads the outputs over int8, some of them saturating."""
    spread = np.array([max(1.0, float(np.abs(a).max(initial=0))) for a in acc_rows])
    real = 120.0 / spread * rng.uniform(0.4, 1.3, channels)
    real[rng.integers(channels)] *= 1e-3  # one channel near zero
    return quantize_multipliers(real)


def _finish(rng, kind, w, params, x) -> tuple[bench.Layer, np.ndarray]:
    """A layer with bias, multipliers and clamp chosen from its raw accumulators, and its input."""
    channels = w.shape[0]
    params.update(output_offset=int(rng.integers(-20, 21)))
    relu = rng.random() < 0.3
    params.update(act_min=params["output_offset"] if relu else -128, act_max=int(rng.choice([100, 127])))
    layer = bench.Layer(kind, w, np.zeros(channels, np.int32), np.zeros(channels, np.int32),
                         np.zeros(channels, np.int8), params)
    reach = np.abs(accumulators(layer, x)).max(axis=1, initial=0) + 1  # bias on the sums' own scale
    layer.bias = (rng.uniform(-0.5, 0.5, channels) * reach).astype(np.int32)
    acc = accumulators(layer, x)
    layer.multiplier, shift = _multipliers(rng, acc, channels)
    layer.shift = shift.astype(np.int8)
    return layer, x


def fc_layer(rng, rows, in_features, out_features, pattern, transposed=False):
    w = sparse_weights(rng, (out_features, in_features), pattern)
    if transposed:  # W @ x: the rows are the columns of x, and so are the outputs
        strides = dict(in_row_stride=1, in_col_stride=rows, out_row_stride=1, out_col_stride=rows)
    else:
        strides = dict(in_row_stride=in_features + 3, in_col_stride=1, out_row_stride=out_features,
                       out_col_stride=1)
    params = dict(rows=rows, in_features=in_features, out_features=out_features, **strides)
    size = (rows - 1) * params["in_row_stride"] + (in_features - 1) * params["in_col_stride"] + 1
    x = rng.integers(-128, 128, size).astype(np.int8)
    return _finish(rng, "fc", w, params, x)


def conv_layer(rng, x_shape, out_channels, kernel, pattern, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0),
               depthwise=False):
    n, c, h, wd = x_shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = kernel, stride, dilation, pads
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if depthwise:
        out_channels = c
    w = sparse_weights(rng, (out_channels, 1 if depthwise else c, kh, kw), pattern)
    geometry = dict(batch=n, in_channels=c, in_h=h, in_w=wd, out_channels=out_channels, out_h=oh, out_w=ow,
                    groups=c if depthwise else 1, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                    dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl)
    params = {"g": geometry, "input_offset": int(rng.integers(-127, 129))}
    x = rng.integers(-128, 128, n * c * h * wd).astype(np.int8)
    return _finish(rng, "dw" if depthwise else "conv", w, params, x)


def accumulators(layer: bench.Layer, x: np.ndarray) -> np.ndarray:
    """int64 accumulators [channels, everything else] before requantization."""
    p = layer.params
    if layer.kind == "fc":
        r = np.arange(p["rows"])[:, None]
        k = np.arange(p["in_features"])[None, :]
        xs = x.astype(np.int64)[r * p["in_row_stride"] + k * p["in_col_stride"]]
        return (xs @ layer.weight.astype(np.int64).T + layer.bias).T
    g = p["g"]
    x4 = x.astype(np.int64).reshape(g["batch"], g["in_channels"], g["in_h"], g["in_w"]) + p["input_offset"]
    geo = {"begin": [g["pad_top"], g["pad_left"]], "end": [0, 0], "strides": [g["stride_h"], g["stride_w"]],
           "dilations": [g["dilation_h"], g["dilation_w"]], "out": [g["out_h"], g["out_w"]],
           "kernel": [g["kernel_h"], g["kernel_w"]]}
    cols = windows(x4, geo, 0)  # [N, C, KH, KW, OH, OW], padding 0 after the offset
    w = layer.weight.astype(np.int64)
    if layer.kind == "dw":
        acc = np.einsum("nckhyx,ckh->cnyx", cols, w[:, 0])
    else:
        acc = np.einsum("nckhyx,ockh->onyx", cols, w)
    return acc.reshape(acc.shape[0], -1) + layer.bias[:, None]


def reference_s8(layer: bench.Layer, x: np.ndarray) -> np.ndarray:
    """The layer's int8 output buffer, as the dense kernel writes it."""
    p = layer.params
    acc = accumulators(layer, x)
    m, s = layer.multiplier[:, None], layer.shift.astype(np.int64)[:, None]
    y = np.clip(requantize(acc, m, s) + p["output_offset"], p["act_min"], p["act_max"]).astype(np.int8)
    if layer.kind == "fc":
        out = np.zeros(layer.out_size, np.int8)
        n = np.arange(p["out_features"])[:, None]
        r = np.arange(p["rows"])[None, :]
        out[r * p["out_row_stride"] + n * p["out_col_stride"]] = y
        return out
    g = p["g"]  # [C, N * OH * OW] -> [N, C, OH, OW]
    return y.reshape(y.shape[0], g["batch"], -1).transpose(1, 0, 2).reshape(-1)


# ---- the cases ----

@functools.lru_cache(maxsize=None)
def cases() -> list[tuple[str, bench.Layer, np.ndarray]]:
    rng = np.random.default_rng(20240606)
    out = []
    for pattern in PATTERNS:
        out.append((f"fc-1x37x9-{pattern}", *fc_layer(rng, 1, 37, 9, pattern)))
        out.append((f"fc-3x64x16-{pattern}", *fc_layer(rng, 3, 64, 16, pattern)))
        out.append((f"fc-2x600x5-T-{pattern}", *fc_layer(rng, 2, 600, 5, pattern, transposed=True)))
        out.append((f"conv1x1-3x8x8->6-{pattern}", *conv_layer(rng, (1, 3, 8, 8), 6, (1, 1), pattern)))
        out.append((f"conv3x3-pad-{pattern}", *conv_layer(rng, (1, 5, 7, 9), 4, (3, 3), pattern, pads=(1, 1, 1, 1))))
        out.append((f"conv3x2-s2-dil-{pattern}", *conv_layer(rng, (2, 4, 9, 11), 3, (3, 2), pattern, stride=(2, 2),
                                                             dilation=(1, 2), pads=(1, 0, 2, 1))))
        out.append((f"dw3x3-pad-{pattern}", *conv_layer(rng, (1, 6, 7, 10), 0, (3, 3), pattern, pads=(1, 1, 1, 1),
                                                        depthwise=True)))
        out.append((f"dw3x3-valid-{pattern}", *conv_layer(rng, (1, 4, 6, 9), 0, (3, 3), pattern, depthwise=True)))
        out.append((f"dw5x5-s2-{pattern}", *conv_layer(rng, (2, 3, 11, 6), 0, (5, 5), pattern, stride=(2, 2),
                                                       pads=(2, 2, 2, 2), depthwise=True)))
    for pattern in (0.5, 0.9, "gaps"):
        out.append((f"conv1d-{pattern}", *conv_layer(rng, (1, 7, 1, 30), 5, (1, 5), pattern, stride=(1, 3),
                                                     dilation=(1, 2), pads=(0, 3, 0, 1))))
        out.append((f"conv1x1-300ch-{pattern}", *conv_layer(rng, (1, 300, 2, 5), 3, (1, 1), pattern)))
        out.append((f"conv1x1-s2-pad-{pattern}", *conv_layer(rng, (1, 4, 6, 6), 5, (1, 1), pattern, stride=(2, 2),
                                                             pads=(1, 1, 1, 1))))
        out.append((f"conv-narrow-{pattern}", *conv_layer(rng, (1, 3, 4, 3), 2, (3, 3), pattern, pads=(2, 2, 2, 2))))
        out.append((f"conv-pad-beyond-{pattern}", *conv_layer(rng, (1, 3, 5, 2), 4, (1, 2), pattern, stride=(2, 5),
                                                              pads=(3, 2, 0, 1))))
        out.append((f"dw-1d-dil-{pattern}", *conv_layer(rng, (1, 4, 1, 25), 0, (1, 7), pattern, dilation=(1, 3),
                                                        pads=(0, 4, 0, 4), depthwise=True)))
        out.append((f"dw-17x17-{pattern}", *conv_layer(rng, (1, 2, 18, 18), 0, (17, 17), pattern, pads=(1, 0, 0, 1),
                                                       depthwise=True)))
        # segments of 2 taps (the last one of 1), of 6 taps (3 in the last), a tap a segment at 3x3
        out.append((f"conv-span2-{pattern}", *conv_layer(rng, (1, 100, 5, 6), 3, (3, 3), pattern, pads=(1, 1, 1, 1))))
        out.append((f"conv-span6-s2-{pattern}", *conv_layer(rng, (1, 40, 9, 13), 4, (3, 3), pattern, stride=(2, 2),
                                                            pads=(1, 1, 0, 0))))
        out.append((f"conv-128ch-{pattern}", *conv_layer(rng, (1, 128, 4, 9), 2, (3, 3), pattern, pads=(1, 1, 1, 1))))
    return out


def expected() -> list[np.ndarray]:
    return [reference_s8(layer, x) for _, layer, x in cases()]


def run_folder(runner, features: tuple[str, ...]) -> dict[tuple[str, str], np.ndarray]:
    """Every case with every kernel in one folder; output per (case, run)."""
    calls = [(layer, run) for _, layer, _ in cases() for run in runs(layer)]
    files, api = bench.layer_folder(calls, features, name="sparse_suite")
    x = np.concatenate([x for _, layer, x in cases() for _ in runs(layer)])
    out = runner(files, api, x)
    results, at = {}, 0
    for name, layer, _ in cases():
        for run in runs(layer):
            results[(name, run)] = out[at:at + layer.out_size]
            at += layer.out_size
    assert at == out.size
    return results


def check(results: dict) -> None:
    for (name, layer, _), want in zip(cases(), expected()):
        for run in runs(layer):
            np.testing.assert_array_equal(results[(name, run)], want, err_msg=f"{name}: {run} kernel")


# ---- tests ----

@pytest.mark.parametrize("shape", [(5, 37), (3, 600), (1, 255), (2, 256), (4, 3, 3, 3), (2, 300, 1, 2), (6, 1, 3, 3),
                                   (1, 1), (3, 100, 1, 5), (2, 40, 3, 3), (2, 128, 3, 3), (1, 255, 1, 2), (2, 1, 17, 17)])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_encoding_round_trip(shape, pattern):
    rng = np.random.default_rng(zlib.crc32(f"{shape} {pattern}".encode()))
    w = sparse_weights(rng, shape, pattern)
    kind = "conv" if len(shape) == 4 else "fc"
    spans = len(shape) == 4 and sparse.conv_span(shape[1], shape[2] * shape[3]) > 1
    assert sparse.encodings(w, kind) == sparse.ENCODINGS + (sparse.SPAN_ENCODINGS if spans else ())
    for encoding in sparse.encodings(w, kind):
        tables = sparse.encode(w, encoding)
        assert [t.dtype for t in tables.values()] == [np.uint8, np.uint8, np.int8]
        np.testing.assert_array_equal(sparse.decode(tables, encoding, shape), w, err_msg=encoding)
        assert sparse.encoded_bytes(w, encoding) == sum(t.nbytes for t in tables.values())


def test_table_layout():
    w = np.zeros((2, 300), np.int8)
    w[0, [0, 16, 254, 255, 299]] = [1, -2, 3, -4, 5]
    idx = sparse.encode(w, "index8")
    np.testing.assert_array_equal(idx["counts"], [3, 2, 0, 0])  # segments [0, 255) and [255, 300) per row
    np.testing.assert_array_equal(idx["positions"], [0, 16, 254, 0, 44])
    np.testing.assert_array_equal(idx["values"], [1, -2, 3, -4, 5])
    d4 = sparse.encode(w, "delta4")
    # segment 0: steps 0, 15 (filler), 1, then 238 = 15 * 15 fillers + 13, padded to 20 entries
    steps = np.stack([d4["positions"] & 15, d4["positions"] >> 4], axis=1).reshape(-1)
    np.testing.assert_array_equal(d4["counts"], [10, 2, 0, 0])
    np.testing.assert_array_equal(steps[:20], [0, 15, 1] + [15] * 15 + [13, 0])
    np.testing.assert_array_equal(steps[20:], [0, 15, 15, 14])  # column 0, fillers, 44
    assert d4["values"][:20][np.nonzero(steps[:20] != 15)[0][1:3]].tolist() == [-2, 3]
    conv = np.zeros((1, 2, 1, 2), np.int8)
    conv[0, 1, 0, 0], conv[0, 0, 0, 1] = 7, 9  # tap-major: tap 0 holds channel 1, tap 1 channel 0
    np.testing.assert_array_equal(sparse.encode(conv, "index8")["counts"], [1, 1])  # a tap a segment
    np.testing.assert_array_equal(sparse.encode(conv, "index8")["positions"], [1, 0])
    np.testing.assert_array_equal(sparse.encode(conv, "index8-span")["counts"], [2])  # both taps in one
    np.testing.assert_array_equal(sparse.encode(conv, "index8-span")["positions"], [1, 2])
    wide = np.zeros((1, 100, 1, 5), np.int8)  # two taps a segment: taps {0, 1}, {2, 3}, {4}
    wide[0, [3, 99, 0, 50], 0, [0, 1, 2, 4]] = [1, 2, 3, 4]
    assert sparse.conv_span(100, 5) == 2
    np.testing.assert_array_equal(sparse.encode(wide, "index8-span")["counts"], [2, 1, 1])
    np.testing.assert_array_equal(sparse.encode(wide, "index8-span")["positions"], [3, 199, 0, 50])
    assert sparse.conv_span(128, 9) == 1 and sparse.conv_span(127, 9) == 2 and sparse.conv_span(8, 1) == 1
    assert sparse.encodings(np.zeros((1, 128, 3, 3), np.int8), "conv") == sparse.ENCODINGS
    with pytest.raises(CompileError, match="convolution weights"):
        sparse.encode(w, "delta4-span")


def test_bytes_per_nonzero():
    rng = np.random.default_rng(3)
    w = sparse_weights(rng, (64, 256), 0.75)
    nnz = np.count_nonzero(w)
    segments = 64 * 2
    assert sparse.encoded_bytes(w, "index8") == segments + 2 * nnz
    assert sparse.encoded_bytes(w, "delta4") <= segments + 1.5 * nnz * 1.05 + segments
    assert sparse.encoded_bytes(w, "delta4") <= 0.45 * w.size  # the flash bound at 75%


def test_bad_input_is_one_line():
    for bad in (np.zeros((2, 3), np.float32), np.zeros((0, 4), np.int8), np.zeros(5, np.int8)):
        with pytest.raises(CompileError) as err:
            sparse.encode(bad, "index8")
        assert "\n" not in str(err.value)
    with pytest.raises(CompileError, match="unknown sparse encoding 'csr'"):
        sparse.encode(np.ones((2, 2), np.int8), "csr")


def test_sparsity():
    assert sparse.sparsity(np.array([[0, 1], [0, 0]], np.int8)) == 0.75
    assert sparse.sparsity(np.zeros((3, 3), np.int8)) == 1.0


def test_kernels_on_host():
    def host(files, api, x):
        return HostModel(files, api).run([x])[0]

    check(run_folder(host, ()))


def test_depthwise_padding_wider_than_the_windows():
    """Left padding that covers every window (nothing of the input is read): the sparse
    kernel's padded copy holds no input column."""
    rng = np.random.default_rng(4)
    layers = [conv_layer(rng, (1, 2, 3, 1), 0, (1, 1), s, stride=(1, 5), pads=(0, 2, 0, 0), depthwise=True)
              for s in (0.0, 0.5)]
    for encoding in sparse.ENCODINGS:
        files, api = bench.layer_folder([(layer, encoding) for layer, _ in layers], name="dw_wide_pad")
        out = HostModel(files, api).run([np.concatenate([x for _, x in layers])])[0]
        want = np.concatenate([reference_s8(layer, x) for layer, x in layers])
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
def test_kernels_on_target(target):
    need(target)
    spec = load_target(target)
    features = tuple(sorted(k for k, on in spec.get("features", {}).items() if on))

    def emulated(files, api, x):
        return cross.run_samples(files, api, [{"in": x}], target)[0][0]

    check(run_folder(emulated, features))


# ---- the cost model ----

def _rule_cases():
    rng = np.random.default_rng(11)
    fc = dict(rows=1)
    conv = dict(batch=1, in_channels=16, in_h=12, in_w=12, out_channels=24, out_h=12, out_w=12, groups=1, kernel_h=3,
                kernel_w=3, stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=1, pad_left=1)
    dw = dict(conv, out_channels=16, groups=16)
    for s in (0.0, 0.3, 0.5, 0.6, 0.75, 0.85, 0.9, 0.97, 1.0):
        yield "fc", sparse_weights(rng, (48, 300), s), fc
        yield "conv", sparse_weights(rng, (24, 16, 3, 3), s), conv
        yield "dw", sparse_weights(rng, (16, 9), s), dw


@pytest.mark.parametrize("features", [(), ("dsp", "fpu")], ids=["base", "dsp"])
def test_choose_follows_its_rule(features):
    for kind, w, geometry in _rule_cases():
        choice = sparse.choose(w, kind, features, geometry)
        dense_bytes, est_dense = w.size, sparse.estimate(w, kind, "dense", features, geometry)
        assert (choice.dense_bytes, choice.est_dense, choice.sparsity) == (dense_bytes, est_dense, sparse.sparsity(w))
        assert "\n" not in choice.reason and choice.reason.startswith(choice.encoding)
        ratios = {e: (sparse.encoded_bytes(w, e) / dense_bytes,
                      sparse.estimate(w, kind, e, features, geometry) / est_dense) for e in sparse.encodings(w, kind)}
        qualify = {e for e, (b, i) in ratios.items()
                   if (b <= 1 and i <= 1) or (b <= sparse.CLEAR and i <= sparse.LITTLE)
                   or (i <= sparse.CLEAR and b <= sparse.LITTLE)}
        if choice.encoding == "dense":
            assert not qualify and choice.bytes == dense_bytes
        else:
            assert choice.encoding == min(qualify, key=lambda e: ratios[e][0] * ratios[e][1])
            assert choice.bytes == sparse.encoded_bytes(w, choice.encoding)
            assert choice.est_sparse == sparse.estimate(w, kind, choice.encoding, features, geometry)


def test_choose_on_the_benchmark_layers():
    """The decisions the measured table supports (python -m benchmarks.sparse table)."""
    dsp = ("dsp", "fpu")
    picks = {}
    for s in (0.0, 0.5, 0.75, 0.9, 1.0):
        for kind, shape in bench.BENCHMARKS.values():
            layer, _ = bench.bench_layer(kind, s, **shape)
            geometry = layer.params if kind == "fc" else layer.params["g"]
            picks[(kind, s)] = sparse.choose(layer.encoded_weight(), kind, dsp, geometry).encoding
    assert [picks[("fc", s)] for s in (0.0, 0.5, 0.75, 0.9)] == ["dense", "dense", "delta4", "index8"]
    assert [picks[("conv", s)] for s in (0.0, 0.5, 0.75, 0.9)] == ["dense", "dense", "dense", "index8"]
    assert picks[("fc", 1.0)] != "dense" and picks[("conv", 1.0)] != "dense"


def test_estimates_match_the_emulated_cortex_m4():
    """COSTS still describes the kernels: estimates within 12% of the counted instructions
    (segments of several taps: 35%, their worst fit)."""
    need("cortex-m4")
    layers = [("fc", 0.75, dict(in_features=256, out_features=256)),
              ("fc", 0.9, dict(in_features=300, out_features=40, rows=2)),
              ("conv", 0.9, dict(x_shape=(1, 64, 16, 16), out_channels=64)),
              ("conv", 0.75, dict(x_shape=(1, 24, 12, 12), out_channels=16, kernel=(3, 3), pads=(1, 1, 1, 1))),
              ("conv", 0.75, dict(x_shape=(1, 8, 10, 10), out_channels=16, kernel=(3, 3), pads=(1, 1, 1, 1))),
              ("dw", 0.75, dict(x_shape=(1, 32, 12, 12), kernel=(3, 3), pads=(1, 1, 1, 1)))]
    for kind, s, shape in layers:
        layer, x = bench.bench_layer(kind, s, seed=5, **shape)
        geometry = layer.params if kind == "fc" else layer.params["g"]
        for encoding in ("dense", *sparse.encodings(layer.encoded_weight(), kind)):
            counted = bench.count_instructions(layer, x, encoding, "cortex-m4")
            estimated = sparse.estimate(layer.encoded_weight(), kind, encoding, ("dsp", "fpu"), geometry)
            bound = 0.35 if encoding in sparse.SPAN_ENCODINGS else 0.12
            assert abs(estimated / counted - 1) <= bound, (kind, s, encoding, estimated, counted)
