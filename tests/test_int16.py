"""int16 activations with int8 weights (TFLite's 16x8 scheme): the fixed-point twins, the
Requantize kernels between precisions, the int16 Conv and Gemm kernels against their NumPy
twins (host and emulated Cortex-M), and --precision."""

import numpy as np
import pytest
from cffi import FFI

from codegen import fixedpoint as fp
from codegen.build import compile_shared
from codegen.paths import RUNTIME_DIR
from codegen.qparams import QParams, from_range

TWIN_C = r"""
#include "requant.h"
#include "nn.h"
void twin_requantize64(const int64_t *acc, const int32_t *m0, const int32_t *shift, int32_t *out, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) out[i] = nn_requantize64(acc[i], m0[i], shift[i]); }
"""


def _runtime_files(*sources):
    files = {p.name: p.read_text() for p in (RUNTIME_DIR / "include").glob("*.h")}
    for s in sources:
        files[s.split("/")[-1]] = (RUNTIME_DIR / s).read_text()
    return files


@pytest.fixture(scope="module")
def lib():
    ffi = FFI()
    ffi.cdef("""
        void twin_requantize64(const int64_t *, const int32_t *, const int32_t *, int32_t *, int32_t);
        typedef struct { int32_t size; int32_t input_offset; int32_t output_offset; int32_t multiplier;
                         int32_t shift; } nn_requantize_params;
        void nn_requantize_s8_s16(const nn_requantize_params *p, const int8_t *in, int16_t *out);
        void nn_requantize_s16_s8(const nn_requantize_params *p, const int16_t *in, int8_t *out);
    """)
    files = _runtime_files("src/quantize/nn_requantize_s8_s16.c", "src/quantize/nn_requantize_s16_s8.c")
    files["twin.c"] = TWIN_C
    return ffi, ffi.dlopen(str(compile_shared(files)))


def test_requantize64_twins(lib, rng):
    """nn_requantize64 == fixedpoint.requantize64 on random and edge accumulators, multipliers, shifts."""
    ffi, c = lib
    n = 400_000
    acc = np.concatenate([rng.integers(-(2**62), 2**62, n // 4), rng.integers(-(2**48), 2**48, n // 4),
                          rng.integers(-(2**36), 2**36, n // 4), rng.integers(-(2**20), 2**20, n - 3 * (n // 4)),
                          [-(2**63), 2**63 - 1, -(2**47), 2**47, 0, 1, -1]]).astype(np.int64)
    m0 = rng.integers(2**30, 2**31, acc.size).astype(np.int32)
    m0[-7:] = [2**31 - 1, 2**30, 2**31 - 1, 2**30, 2**31 - 1, 2**30, 2**31 - 1]
    shift = rng.integers(-31, 31, acc.size).astype(np.int32)
    shift[-7:] = [30, -31, 0, 15, 16, 14, -31]
    out = np.empty(acc.size, np.int32)
    c.twin_requantize64(ffi.from_buffer("int64_t[]", acc), ffi.from_buffer("int32_t[]", m0),
                        ffi.from_buffer("int32_t[]", shift), ffi.from_buffer("int32_t[]", out), acc.size)
    np.testing.assert_array_equal(out, fp.requantize64(acc, m0, shift))


def test_requantize64_rounds_like_the_real_product(rng):
    """Within the accumulator limit the result is the real product acc * M rounded, up to the
    16-bit mantissa's relative error 2^-15 (plus the half step of rounding)."""
    acc = rng.integers(-(2**46), 2**46, 10_000)
    real = rng.uniform(2.0**-40, 2.0**-20, acc.size)
    pairs = [fp.quantize_multiplier(r) for r in real]
    m0 = np.array([p[0] for p in pairs], np.int64)
    shift = np.array([p[1] for p in pairs], np.int64)
    exact = acc * (m0 * 2.0 ** (shift - 31))
    got = fp.requantize64(acc, m0, shift).astype(np.float64)
    assert np.all(np.abs(got - exact) <= np.abs(exact) * 2.0**-15 + 0.5 + 1e-9)


def test_int16_qparams():
    q = from_range(-1.0, 3.0, bits=16)
    assert (q.zero_point, q.bits, q.qmin, q.qmax, q.dtype) == (0, 16, -32768, 32767, "int16")
    assert q.scale == np.float32(3.0 / 32767)
    assert q.quantize(np.array([3.0, -3.0, 10.0, -10.0])).tolist() == [32767, -32767, 32767, -32768]
    assert q.quantize(np.zeros(1)).dtype == np.int16
    assert q.clamp_range(0.0, np.inf) == (0, 32767)
    assert QParams(0.5, 3).qmin == -128 and from_range(-1.0, 3.0).bits == 8


@pytest.mark.parametrize("src, dst", [("int8", "int16"), ("int16", "int8")])
def test_requantize_kernels(lib, rng, src, dst):
    """nn_requantize_s8_s16 / _s16_s8 == the Requantize node's NumPy twin, every value of the
    source type, including the saturating ends."""
    from codegen.ir import Graph, Node, Tensor
    from codegen.ops import get_op

    ffi, c = lib
    x = np.arange(-128, 128, dtype=np.int8) if src == "int8" else np.arange(-32768, 32768, dtype=np.int16)
    qin = QParams(np.float32(0.05), 17) if src == "int8" else from_range(-3.0, 2.0, bits=16)
    # the output range is narrower than the input's: the ends saturate
    qout = from_range(-4.0, 4.0, bits=16) if dst == "int16" else from_range(-1.0, 2.5)
    g = Graph("g", {"x": Tensor("x", x.shape, src, quant=qin), "y": Tensor("y", x.shape, dst, quant=qout)},
              [], ["x"], ["y"], 18)
    node = Node("Requantize", "r", ["x"], ["y"])
    op = get_op("Requantize")
    node.attrs["q"] = op.quantize(node, g)
    want = op.reference_s8(node, g, [x])[0]
    assert want.dtype == np.dtype(dst)
    p = ffi.new("nn_requantize_params *", {"size": x.size, **node.attrs["q"]})
    out = np.empty(x.size, dst)
    fn = c.nn_requantize_s8_s16 if src == "int8" else c.nn_requantize_s16_s8
    fn(p, ffi.from_buffer(f"{src}_t[]", x), ffi.from_buffer(f"{dst}_t[]", out))
    np.testing.assert_array_equal(out, want)
    real_in = qin.dequantize(x).astype(np.float64)
    inside = (real_in > qout.scale * (qout.qmin - qout.zero_point)) & (real_in < qout.scale * (qout.qmax - qout.zero_point))
    # half a step, plus the doubling high multiply's own rounding before the final shift (2^shift steps)
    bound = 0.5 + 2.0 ** min(node.attrs["q"]["shift"], 0) + 1e-6
    assert np.all(np.abs(qout.dequantize(want)[inside] - real_in[inside]) <= qout.scale * bound)
    assert want.min() == qout.qmin and want.max() == qout.qmax


# ---- int16 Conv and Gemm: host C == NumPy twin, bit for bit ---------------------------------

import onnx  # noqa: E402
from onnx import helper  # noqa: E402

from codegen.build import HostModel  # noqa: E402
from codegen.compiler import compile_model, quantize_inputs  # noqa: E402
from codegen.reference import run_float, run_int8  # noqa: E402
from conftest import make_model  # noqa: E402


def _conv_model(rng, cin, cout, hw, k, group=1, stride=1, pad=0, dilation=1, relu=False, scale=0.3):
    w = (rng.standard_normal((cout, cin // group, k, k)) * scale).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=group, strides=[stride, stride],
                              pads=[pad] * 4, dilations=[dilation, dilation])]
    nodes.append(helper.make_node("Relu", ["c"], ["y"]) if relu else helper.make_node("Identity", ["c"], ["y"]))
    return make_model(nodes, [("x", [1, cin, hw, hw])], [("y", None)], {"w": w, "b": b})


def _gemm_model(rng, k, n, rows=2, relu=False, weight_scale=0.2):
    w = (rng.standard_normal((k, n)) * weight_scale).astype(np.float32)
    b = (rng.standard_normal(n) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"])]
    nodes.append(helper.make_node("Relu", ["g"], ["y"]) if relu else helper.make_node("Identity", ["g"], ["y"]))
    return make_model(nodes, [("x", [rows, k])], [("y", None)], {"w": w, "b": b})


def _feeds(rng, model, count=4):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return [{"x": (rng.standard_normal(shape) * 1.5).astype(np.float32)} for _ in range(count)]


def check_int16(model, calib, tests=None, **options):
    """Compile with int16 activations; C == NumPy int16 reference on every sample; returns
    (compiled, host outputs per sample, int16 feeds)."""
    compiled = compile_model(model, "net", mode="int8", calib=calib, **{"precision": "int16", **options})
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    outs, fed = [], []
    for feeds in tests or calib:
        q = quantize_inputs(graph, feeds)
        c = host.run([q[n] for n in graph.inputs])
        ref = run_int8(graph, q)
        for got, name in zip(c, graph.outputs):
            np.testing.assert_array_equal(got, ref[name])
        outs.append(c)
        fed.append(q)
    return compiled, outs, fed


CONV_CASES = [  # (cin, cout, hw, k, group, stride, pad, dilation)
    (3, 5, 7, 3, 1, 1, 1, 1),  # general, padded
    (4, 6, 8, 3, 2, 2, 1, 1),  # grouped, strided
    (6, 6, 6, 3, 6, 1, 1, 1),  # depthwise
    (5, 7, 5, 1, 1, 1, 0, 1),  # pointwise 1x1
    (3, 4, 9, 3, 1, 1, 2, 2),  # dilated
]


@pytest.mark.parametrize("case", CONV_CASES, ids=["general", "grouped", "depthwise", "pointwise", "dilated"])
def test_conv_int16_host(rng, case):
    cin, cout, hw, k, group, stride, pad, dilation = case
    model = _conv_model(rng, cin, cout, hw, k, group, stride, pad, dilation, relu=bool(stride % 2))
    compiled, _, _ = check_int16(model, _feeds(rng, model))
    graph = compiled.graph
    conv = next(n for n in graph.nodes if n.op_type == "Conv")
    assert graph.tensors[conv.inputs[0]].dtype == "int16" and graph.tensors[conv.outputs[0]].dtype == "int16"
    assert not any(n.op_type == "Requantize" for n in graph.nodes)
    layer = compiled.report["layers"][graph.nodes.index(conv)]
    assert layer["precision"] == "int16" and layer["kernels"] == ["nn_conv_s16"]


@pytest.mark.parametrize("relu", [False, True])
def test_gemm_int16_host(rng, relu):
    model = _gemm_model(rng, 37, 11, rows=4, relu=relu)
    compiled, _, _ = check_int16(model, _feeds(rng, model), float_io=True)  # NAME_io.c builds strict too
    assert "_quantize_value16(" in next(t for n, t in compiled.emitted.files.items() if n.endswith("_io.c"))
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_s16"]
    assert compiled.report["api"]["inputs"][0]["ctype"] == "int16_t"


def _extremes(rng, wq: np.ndarray, size: int) -> list[np.ndarray]:
    """int16 inputs at the ends of the range: all -32768, all 32767, the signs of the first
    weight row at full scale (the largest accumulator), alternating ends, and random."""
    first = np.resize(np.where(wq.reshape(len(wq), -1)[0] >= 0, 32767, -32768), size)
    return [np.full(size, -32768, np.int16), np.full(size, 32767, np.int16), first.astype(np.int16),
            np.resize(np.array([32767, -32768], np.int16), size),
            rng.integers(-32768, 32768, size).astype(np.int16)]


def _run_extremes(rng, compiled, layer_op):
    graph = compiled.graph
    node = next(n for n in graph.nodes if n.op_type == layer_op)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    name = graph.inputs[0]
    feeds, outs = [], []
    for x in _extremes(rng, node.attrs["q"]["weight"], graph.tensors[name].size):
        x = x.reshape(graph.tensors[name].shape)
        got = host.run([x])
        np.testing.assert_array_equal(got[0], run_int8(graph, {name: x})[graph.outputs[0]])
        feeds.append({name: x})
        outs.append(got)
    return node, feeds, outs


def test_gemm_int16_extremes_and_int64_accumulator(rng):
    """A layer whose int32 accumulator could overflow takes nn_fc_acc64_s16, and does overflow
    int32 on the extreme inputs: C == NumPy there (and on the emulated M4 and M0+)."""
    k = 1200
    w = rng.uniform(-1, 1, (k, 3)).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [("x", [1, k])], [("y", None)],
                       {"w": w, "b": np.float32([0.5, -0.25, 0.0])})
    compiled, _, _ = check_int16(model, _feeds(rng, model, 3))
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_acc64_s16"]
    node, feeds, outs = _run_extremes(rng, compiled, "Gemm")
    q = node.attrs["q"]
    largest = max(np.abs(f["x"].astype(np.int64).reshape(1, -1) @ q["weight"].astype(np.int64).T + q["bias"]).max()
                  for f in feeds)
    assert largest >= 2**31  # an int32 accumulator would have wrapped
    small = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [("x", [1, 40])], [("y", None)],
                       {"w": w[:40], "b": np.float32([0.5, -0.25, 0.0])})
    compiled_small, _, _ = check_int16(small, _feeds(rng, small, 3))
    assert compiled_small.report["layers"][0]["kernels"] == ["nn_fc_s16"]
    _run_extremes(rng, compiled_small, "Gemm")


def test_conv_int16_int64_accumulator(rng):
    cin = 136
    w = rng.uniform(-1, 1, (2, cin, 3, 3)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", [1, cin, 3, 3])],
                       [("y", None)], {"w": w})
    compiled, _, _ = check_int16(model, _feeds(rng, model, 3))
    assert compiled.report["layers"][0]["kernels"] == ["nn_conv_acc64_s16"]
    node, feeds, _ = _run_extremes(rng, compiled, "Conv")
    bound = 32767 * np.abs(node.attrs["q"]["weight"].astype(np.int64)).reshape(2, -1).sum(axis=1)
    assert bound.max() >= 2**31


def _mixed_model(rng):
    """Conv 3x3 -> Relu -> depthwise 3x3 -> Relu -> pointwise 1x1 -> Flatten -> Gemm."""
    init = {"w1": (rng.standard_normal((6, 2, 3, 3)) * 0.4).astype(np.float32),
            "b1": (rng.standard_normal(6) * 0.1).astype(np.float32),
            "w2": (rng.standard_normal((6, 1, 3, 3)) * 0.4).astype(np.float32),
            "w3": (rng.standard_normal((4, 6, 1, 1)) * 0.4).astype(np.float32),
            "w4": (rng.standard_normal((4 * 5 * 5, 3)) * 0.2).astype(np.float32),
            "b4": (rng.standard_normal(3) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], group=6, pads=[0, 0, 0, 0], name="dw"),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3"], ["c3"], name="pw"),
             helper.make_node("Flatten", ["c3"], ["f"]),
             helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], name="fc")]
    return make_model(nodes, [("x", [1, 2, 7, 7])], [("y", None)], init)


def test_mixed_precision_requantizes_where_layers_meet(rng):
    """int16 everywhere but the pointwise layer: Requantize nodes before and after it, the C
    equal to the NumPy reference, and the output closer to the float model than all-int8."""
    model = _mixed_model(rng)
    calib = _feeds(rng, model, 8)
    compiled, _, _ = check_int16(model, calib, per_layer={"pw": {"precision": "int8"}})
    graph = compiled.graph
    kinds = [(n.op_type, graph.tensors[n.outputs[0]].dtype) for n in graph.nodes]
    pw = [n.name for n in graph.nodes].index("pw")
    assert kinds[pw - 1] == ("Requantize", "int8") and kinds[pw] == ("Conv", "int8")
    assert ("Requantize", "int16") in kinds[pw + 1:]
    assert compiled.report["precision"]["int16"] == ["conv1", "dw", "fc"]
    int8 = compile_model(model, "net", mode="int8", calib=calib)
    int16 = compile_model(model, "net", mode="int8", calib=calib, precision="int16")

    def sqnr(c):
        signal = noise = 0.0
        for feeds in calib:
            want = run_float(c.float_graph, feeds)[c.graph.outputs[0]].astype(np.float64)
            q = run_int8(c.graph, quantize_inputs(c.graph, feeds))[c.graph.outputs[0]]
            got = c.graph.tensors[c.graph.outputs[0]].quant.dequantize(q)
            signal, noise = signal + np.sum(want ** 2), noise + np.sum((got - want) ** 2)
        return 10 * np.log10(signal / noise)

    assert sqnr(int16) > sqnr(compiled) > sqnr(int8) and sqnr(int16) >= sqnr(int8) + 3


def test_int16_on_cortex_m(rng):
    """The mixed model and an int64-accumulator layer on the emulated Cortex-M4 (DSP kernels)
    and M0+ (portable): the host's bytes."""
    from conftest import assert_same_on_cortex_m

    model = _mixed_model(rng)
    compiled, outs, fed = check_int16(model, _feeds(rng, model, 3), per_layer={"pw": {"precision": "int8"}})
    cin = 136
    wide = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", [1, cin, 3, 3])],
                      [("y", None)], {"w": rng.uniform(-1, 1, (3, cin, 3, 3)).astype(np.float32)})
    compiled_wide, _, _ = check_int16(wide, _feeds(rng, wide, 2))
    _, wide_feeds, wide_outs = _run_extremes(rng, compiled_wide, "Conv")
    fc = make_model([helper.make_node("Gemm", ["x", "w"], ["y"])], [("x", [1, 1201])], [("y", None)],
                    {"w": rng.uniform(-1, 1, (1201, 3)).astype(np.float32)})
    compiled_fc, _, _ = check_int16(fc, _feeds(rng, fc, 2))
    assert compiled_fc.report["layers"][0]["kernels"] == ["nn_fc_acc64_s16"]
    _, fc_feeds, fc_outs = _run_extremes(rng, compiled_fc, "Gemm")
    assert_same_on_cortex_m(compiled, fed, outs)
    assert_same_on_cortex_m(compiled_wide, wide_feeds, wide_outs)
    assert_same_on_cortex_m(compiled_fc, fc_feeds, fc_outs)


@pytest.mark.parametrize("case", CONV_CASES[:4], ids=["general", "grouped", "depthwise", "pointwise"])
def test_dsp_kernels_on_the_host(rng, case):
    """The DSP kernels (runtime_c/opt/dsp), built on the host with C in place of the
    instructions, == the NumPy twin: the column layout and the loads, without an emulator.
    Odd K and an input row not on a word boundary reach the scalar and halfword paths."""
    cin, cout, hw, k, group, stride, pad, dilation = case
    conv = _conv_model(rng, cin, cout, hw, k, group, stride, pad, dilation)
    gemm = make_model([helper.make_node("Gemm", ["x", "w"], ["y"])], [("x", [3, cin * hw + 1])],
                      [("y", None)], {"w": rng.standard_normal((cin * hw + 1, 5)).astype(np.float32)})
    for model, kernel in ((conv, "nn_conv_s16"), (gemm, "nn_fc_s16")):
        compiled = compile_model(model, "net", mode="int8", calib=_feeds(rng, model, 2), precision="int16",
                                 target="cortex-m4")
        source = next(text for name, text in compiled.emitted.files.items() if name.endswith(f"{kernel}.c"))
        assert "SMLAD" in source  # the DSP kernel's file
        host = HostModel(compiled.emitted.files, compiled.report["api"])
        for feeds in _feeds(rng, model, 2):
            q = quantize_inputs(compiled.graph, feeds)
            np.testing.assert_array_equal(host.run([q["x"]])[0], run_int8(compiled.graph, q)[compiled.graph.outputs[0]])


# ---- --precision auto ----------------------------------------------------------------------


def _output_sqnr(compiled, samples):
    graph, signal, noise = compiled.graph, 0.0, 0.0
    for feeds in samples:
        want = run_float(compiled.float_graph, feeds)[graph.outputs[0]].astype(np.float64)
        got = graph.tensors[graph.outputs[0]].quant.dequantize(
            run_int8(graph, quantize_inputs(graph, feeds))[graph.outputs[0]])
        signal, noise = signal + np.sum(want ** 2), noise + np.sum((got - want) ** 2)
    return 10 * np.log10(signal / noise)


def test_auto_precision_promotes_the_most_sensitive_layers(rng):
    """Each layer's sensitivity is the SQNR lost when it alone is int8 (recomputed here by
    compiling that choice); auto promotes in that order and stops at the first choice that
    reaches the target (1 dB below all-int16), whose SQNR it reports (measured before the
    reconstruct pass, which the compiles compared here leave out)."""
    from codegen.passes.precision import AUTO_SAMPLES

    model = _mixed_model(rng)
    calib = _feeds(rng, model, 6)
    assert len(calib) <= AUTO_SAMPLES
    compiled, _, _ = check_int16(model, calib, precision="auto", reconstruct="none")
    summary = compiled.report["precision"]
    found = summary["auto"]
    layers = ["conv1", "dw", "pw", "fc"]
    assert found["candidates"] == 4 and set(found["sensitivity_db"]) == set(layers)
    all16 = _output_sqnr(compile_model(model, "net", mode="int8", calib=calib, precision="int16", reconstruct="none"), calib)
    all8 = _output_sqnr(compile_model(model, "net", mode="int8", calib=calib, reconstruct="none"), calib)
    assert found["sqnr_db_int16"] == pytest.approx(all16, abs=0.01)
    assert found["sqnr_db_int8"] == pytest.approx(all8, abs=0.01)
    for name in ("conv1", "fc"):
        alone = compile_model(model, "net", mode="int8", calib=calib, precision="int16", reconstruct="none",
                              per_layer={name: {"precision": "int8"}})
        assert found["sensitivity_db"][name] == pytest.approx(all16 - _output_sqnr(alone, calib), abs=0.01)
    order = sorted(layers, key=lambda n: (-found["sensitivity_db"][n], layers.index(n)))
    promoted = [s["node"] for s in found["steps"]]
    assert promoted == order[:len(promoted)]
    assert [n for n in summary["int16"] if n in layers] == [n for n in layers if n in promoted]
    assert found["target_sqnr_db"] == pytest.approx(found["sqnr_db_int16"] - 1.0, abs=0.01)
    assert found["reached"] and found["sqnr_db"] >= found["target_sqnr_db"]
    assert all(s["sqnr_db"] < found["target_sqnr_db"] for s in found["steps"][:-1])  # the first that reaches it
    assert found["sqnr_db"] == pytest.approx(_output_sqnr(compiled, calib), abs=0.01)
    assert compiled.report["layers"][[n.name for n in compiled.graph.nodes].index(promoted[0])]["precision"] == "int16"


def test_auto_precision_target_and_ram_budget(rng):
    model = _mixed_model(rng)
    calib = _feeds(rng, model, 6)
    low = compile_model(model, "net", mode="int8", calib=calib, precision="auto", min_sqnr=0.0)
    assert low.report["precision"]["int16"] == [] and low.report["precision"]["auto"]["steps"] == []
    arena8 = compile_model(model, "net", mode="int8", calib=calib).plan.arena_bytes
    arena16 = compile_model(model, "net", mode="int8", calib=calib, precision="int16").plan.arena_bytes
    assert arena16 > arena8
    budget = (arena8 + arena16) // 2
    capped = compile_model(model, "net", mode="int8", calib=calib, precision="auto", min_sqnr=200.0,
                           ram_budget=budget)
    found = capped.report["precision"]["auto"]
    assert not found["reached"] and capped.plan.arena_bytes <= budget
    assert any(not s["promoted"] and s["arena_bytes"] > budget for s in found["steps"])
    assert all(s["arena_bytes"] <= budget for s in found["steps"] if s["promoted"])
    from codegen.errors import CompileError

    with pytest.raises(CompileError, match="ram-budget"):
        compile_model(model, "net", mode="int8", calib=calib, precision="auto", ram_budget=arena8 - 4)


def test_precision_on_the_command_line(rng, tmp_path, capsys):
    """compile/inspect: --precision and --min-sqnr (auto's target; refused without auto),
    report.json and inspect name each layer's precision."""
    import json

    from codegen.cli import main

    model = _mixed_model(rng)
    onnx.save(model, tmp_path / "m.onnx")
    calib = _feeds(rng, model, 4)
    np.savez(tmp_path / "c.npz", x=np.stack([f["x"] for f in calib]))
    args = [str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "c.npz")]
    assert main(["compile", *args, "-o", str(tmp_path / "out"), "--precision", "auto", "--min-sqnr", "1"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["precision"]["default"] == "auto" and report["precision"]["auto"]["target_sqnr_db"] == 1.0
    assert {layer["precision"] for layer in report["layers"]} == {"int8"}
    assert main(["compile", *args, "-o", str(tmp_path / "o2"), "--min-sqnr", "30"]) == 2
    assert "--precision auto" in capsys.readouterr().err
    assert main(["inspect", *args, "--precision", "int16", "--sparsity-per-layer", "pw=0.5"]) == 0
    table = capsys.readouterr().out
    assert "precision" in table.splitlines()[0] and "int16 layers: 5" in table  # with the Flatten
    assert main(["verify", *args, "--precision", "int16", "--samples", "2", "--json", str(tmp_path / "v.json")]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["int16_layers"] == ["conv1", "dw", "pw", "Flatten_5", "fc"]
    assert main(["compile", *args, "-o", str(tmp_path / "o3"), "--precision", "int16"]) == 0
    assert "int16_t" in (tmp_path / "o3" / "m.h").read_text()


def test_per_layer_precision_refusals(rng):
    from codegen.errors import CompileError

    model = _mixed_model(rng)
    calib = _feeds(rng, model, 2)
    with pytest.raises(CompileError, match="node 'nope': the model has no such node"):
        compile_model(model, "net", mode="int8", calib=calib, per_layer={"nope": {"precision": "int16"}})
    with pytest.raises(CompileError, match="node 'fc'.*int4"):
        compile_model(model, "net", mode="int8", calib=calib, per_layer={"fc": {"precision": "int4"}})
    with pytest.raises(CompileError, match="precision"):
        compile_model(model, "net", mode="int8", calib=calib, precision="int12")


def test_gemm_bias_equal_rows_is_one_layer():
    """A bias repeated over three rows is a per-feature bias: nn_fc takes the Gemm (its float32
    standard deviation over the rows is not 0, an exact comparison is)."""
    from codegen.ops.gemm import _varies

    c = np.broadcast_to(np.float32([0.94708097, 0.5]), (3, 2))
    assert c.std(axis=0).any() and not _varies(c, 0) and _varies(np.float32([[1, 2], [1, 3]]), 0)
    model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [("x", [3, 4])], [("y", None)],
                       {"w": np.ones((4, 2), np.float32), "b": np.float32([0.94708097, 0.5])})
    compiled = compile_model(model, "net")
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_f32"]


def test_qdq_model_keeps_its_int8():
    """A QDQ model's Q/DQ pairs state int8 (their clamp may stand for a Relu the file dropped):
    --precision int16 keeps those layers int8, says why, and computes what int8 computes."""
    from conftest import FIXTURES

    path = FIXTURES / "qdq_convnet.onnx"
    wide = compile_model(path, mode="int8", precision="int16")
    int8 = compile_model(path, mode="int8")
    kept = wide.report["precision"]["kept_int8"]
    assert wide.report["precision"]["int16"] == [] and len(kept) == 4
    assert all(k["reason"] == "the QDQ model quantizes its output to int8" for k in kept)
    rng = np.random.default_rng(5)
    x = wide.graph.inputs[0]
    feeds = {x: rng.uniform(0, 1, wide.graph.tensors[x].shape).astype(np.float32)}
    q = quantize_inputs(wide.graph, feeds)
    np.testing.assert_array_equal(run_int8(wide.graph, q)[wide.graph.outputs[0]],
                                  run_int8(int8.graph, q)[int8.graph.outputs[0]])


def test_auto_measures_the_model_the_compile_ends_with(rng):
    """With the reconstruct pass on (the default), auto measures each candidate after it: the
    SQNR it reports is the compiled model's against the float model on the same samples."""
    model = _mixed_model(rng)
    calib = _feeds(rng, model, 6)
    compiled = compile_model(model, "net", mode="int8", calib=calib, precision="auto")
    assert compiled.report["reconstruction"]["mode"] != "none"
    found = compiled.report["precision"]["auto"]
    reference = compile_model(model, "net").graph  # float32: the float model's function
    g, signal, noise = compiled.graph, 0.0, 0.0
    for feeds in calib:
        want = run_float(reference, feeds)[reference.outputs[0]].astype(np.float64)
        got = g.tensors[g.outputs[0]].quant.dequantize(run_int8(g, quantize_inputs(g, feeds))[g.outputs[0]])
        signal, noise = signal + np.sum(want ** 2), noise + np.sum((got - want) ** 2)
    assert found["sqnr_db"] == pytest.approx(10 * np.log10(signal / noise), abs=0.02)


def test_graph_input_read_through_a_reshape(rng):
    """A graph input read by a node that keeps its parameters (Flatten) is int16 when the layers
    behind that node are: auto's all-int16 candidate is the --precision int16 model."""
    init = {"w1": (rng.standard_normal((12, 7)) * 0.4).astype(np.float32),
            "w2": (rng.standard_normal((7, 3)) * 0.4).astype(np.float32)}
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    model = make_model(nodes, [("x", [1, 3, 4])], [("y", None)], init)
    calib = _feeds(rng, model, 6)
    int16 = compile_model(model, "net", mode="int8", calib=calib, precision="int16", reconstruct="none")
    assert int16.graph.tensors["x"].dtype == "int16" and not any(n.op_type == "Requantize" for n in int16.graph.nodes)
    found = compile_model(model, "net", mode="int8", calib=calib, precision="auto",
                          reconstruct="none").report["precision"]["auto"]
    assert found["sqnr_db_int16"] == pytest.approx(_output_sqnr(int16, calib), abs=0.01)
    mixed = compile_model(model, "net", mode="int8", calib=calib, per_layer={"fc1": {"precision": "int16"}})
    assert mixed.graph.tensors["x"].dtype == "int16"  # its only layer behind the Flatten is int16


def test_auto_choice_reproduces_through_per_layer(rng):
    """auto's per_layer entry, given back as per-layer options, compiles the same C."""
    model = _mixed_model(rng)
    calib = _feeds(rng, model, 6)
    auto = compile_model(model, "net", mode="int8", calib=calib, precision="auto", min_sqnr=38.0)
    chosen = auto.report["precision"]["auto"]["per_layer"]
    assert {v["precision"] for v in chosen.values()} == {"int8", "int16"}  # a mixed choice
    again = compile_model(model, "net", mode="int8", calib=calib, per_layer=chosen)

    def body(files):  # past the provenance line, which names the options
        return {n: t.split("\n", 1)[1] for n, t in files.items()}

    assert body(again.emitted.files) == body(auto.emitted.files)
