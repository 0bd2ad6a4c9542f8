"""LayerNormalization and InstanceNormalization in float32 and int8, and the fixed-point inverse
square root of their int8 rule against its C twin."""

from pathlib import Path

import numpy as np
import pytest
from cffi import FFI
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen import fixedpoint as fp
from codegen.build import HostModel, compile_shared
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.paths import RUNTIME_DIR
from codegen.reference import run_int8
from codegen.verify import verify
from conftest import check_fixture, check_float_model, make_model, onnxruntime_oracle, random_feeds

MIN_SQNR_DB = 30.0


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    reference = np.asarray(reference, np.float64)
    noise = np.sum((reference - np.asarray(approx, np.float64)) ** 2)
    return float(10 * np.log10(np.sum(reference**2) / max(noise, 1e-30)))


def check_int8_sqnr(model, feeds: list[dict], min_db: float = MIN_SQNR_DB, oracle=None):
    """int8: C == NumPy int8 reference exactly on every sample, and the dequantized outputs of all
    samples together at least `min_db` SQNR against the float model. Returns (compiled, SQNR)."""
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    evaluator = oracle or ReferenceEvaluator(model)
    got, want = [], []
    for f in feeds:
        q = quantize_inputs(graph, f)
        c_out = host.run([q[n] for n in graph.inputs])
        ref = run_int8(graph, q)
        expected = evaluator.run(None, f)
        for c, name, e in zip(c_out, graph.outputs, expected):
            np.testing.assert_array_equal(c, ref[name], err_msg=f"C differs from the int8 reference on '{name}'")
            got.append(graph.tensors[name].quant.dequantize(c).reshape(-1))
            want.append(np.asarray(e, np.float64).reshape(-1))
    db = sqnr_db(np.concatenate(want), np.concatenate(got))
    assert db >= min_db, f"int8 SQNR {db:.1f} dB is below {min_db} dB"
    return compiled, db


# ---- the inverse square root ----------------------------------------------------------

TWIN_C = r"""
#include "nn_norm.h"
void twin_inv_sqrt(const int64_t *t, int32_t *y, int32_t *e, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) y[i] = nn_inv_sqrt(t[i], &e[i]); }
"""


def test_inverse_sqrt_twins_and_precision(rng):
    ffi = FFI()
    ffi.cdef("void twin_inv_sqrt(const int64_t *, int32_t *, int32_t *, int32_t);")
    lib = ffi.dlopen(str(compile_shared({"twin.c": TWIN_C,
                                          "nn_norm.h": (RUNTIME_DIR / "include" / "nn_norm.h").read_text()})))
    edges = [1, 2, 3, 4, 5, 2**28 - 1, 2**28, 2**30 - 1, 2**30, 2**31, 2**62 - 1]
    powers = np.concatenate([4 ** np.arange(31, dtype=np.int64), 4 ** np.arange(1, 31, dtype=np.int64) - 1,
                             2 * 4 ** np.arange(30, dtype=np.int64)])
    t = np.concatenate([np.array(edges, np.int64), powers, np.arange(1, 5000, dtype=np.int64),
                        rng.integers(1, 2**62, 100_000, dtype=np.int64),
                        rng.integers(1, 2**34, 100_000, dtype=np.int64)])
    y_c, e_c = np.empty(t.size, np.int32), np.empty(t.size, np.int32)
    lib.twin_inv_sqrt(ffi.cast("int64_t *", ffi.from_buffer(t)), ffi.cast("int32_t *", ffi.from_buffer(y_c)),
                      ffi.cast("int32_t *", ffi.from_buffer(e_c)), t.size)
    y, e = fp.inverse_sqrt(t)
    np.testing.assert_array_equal(y_c, y)
    np.testing.assert_array_equal(e_c, e)
    assert y.min() >= 2**29 and y.max() <= 2**30
    rel = np.abs(y * np.exp2(-e.astype(np.float64)) * np.sqrt(t.astype(np.float64)) - 1)
    assert rel.max() < 2.0**-27


# ---- LayerNormalization -----------------------------------------------------------------

LAYERNORM_CASES = [  # (shape, axis, scale shape (None: the normalised shape), with B)
    ((2, 5, 16), -1, None, True),  # a transformer's tokens
    ((1, 7, 32), 2, None, False),  # no B
    ((2, 3, 4, 5), 1, None, True),  # several normalised axes
    ((3, 4, 6), -2, (1, 6), True),  # a broadcast scale
    ((4, 24), 0, None, True),  # everything in one group
    ((2, 1, 3), -1, None, True),  # groups of three
]


def layernorm_model(rng, shape, axis, scale_shape, with_b, epsilon=None, opset=17):
    inner = shape[axis % len(shape):]
    inits = {"S": (1.0 + 0.5 * rng.standard_normal(scale_shape or inner)).astype(np.float32)}
    inputs = ["X", "S"]
    if with_b:
        inits["B"] = (0.3 * rng.standard_normal(inner)).astype(np.float32)
        inputs.append("B")
    attrs = {"axis": axis} if axis != -1 else {}
    if epsilon is not None:
        attrs["epsilon"] = epsilon
    return make_model([helper.make_node("LayerNormalization", inputs, ["Y"], **attrs)], [("X", shape)],
                      [("Y", shape)], inits, opset=opset)


@pytest.mark.parametrize("shape,axis,scale_shape,with_b", LAYERNORM_CASES)
def test_layernorm_float(rng, shape, axis, scale_shape, with_b):
    model = layernorm_model(rng, shape, axis, scale_shape, with_b)
    compiled = check_float_model(model, random_feeds(rng, {"X": shape})[0])
    assert compiled.report["layers"][0]["kernels"] == ["nn_norm_f32"]


@pytest.mark.parametrize("shape,axis,scale_shape,with_b", LAYERNORM_CASES)
def test_layernorm_int8(rng, shape, axis, scale_shape, with_b):
    model = layernorm_model(rng, shape, axis, scale_shape, with_b)
    compiled, _ = check_int8_sqnr(model, random_feeds(rng, {"X": shape}))
    assert compiled.report["layers"][0]["kernels"] == ["nn_norm_s8"]


@pytest.mark.parametrize("epsilon", [0.0, 1e-12, 0.5, 4.0])
def test_layernorm_epsilon_and_constant_rows(rng, epsilon):
    """Constant groups (variance 0: only epsilon remains) and epsilons from none to dominant."""
    shape = (3, 8)
    model = layernorm_model(rng, shape, -1, None, True, epsilon=epsilon)
    feeds = random_feeds(rng, {"X": shape})
    if epsilon > 0:  # without epsilon a constant group is 0 / 0
        feeds[0]["X"][1] = 0.75
    check_float_model(model, feeds[0])
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(compiled.graph, f)
        np.testing.assert_array_equal(host.run([q["X"]])[0], run_int8(compiled.graph, q)["Y"])


def test_layernorm_int8_extremes(rng):
    """Inputs at -128 and 127 in wide groups: the sums and the accumulator at their largest."""
    shape = (2, 4096)
    model = layernorm_model(rng, shape, -1, None, True)
    feeds = [{"X": np.where(rng.random(shape) < 0.5, -30.0, 30.0).astype(np.float32)},
             {"X": rng.uniform(-30, 30, shape).astype(np.float32)}]
    feeds[0]["X"][1, :] = np.float32(-30.0)
    feeds[0]["X"][1, 7] = np.float32(30.0)  # one outlier: |z| close to sqrt(n)
    check_int8_sqnr(model, feeds, min_db=-np.inf)  # bit-exactness is the point (the outlier sets the scale)


@pytest.mark.parametrize("attrs,inputs,outputs,message", [
    ({"stash_type": 10}, ["X", "S"], ["Y"], "stash_type 10"),
    ({}, ["X", "S"], ["Y", "M"], "Mean and InvStdDev outputs"),
    ({}, ["X", "T"], ["Y"], "Scale must be a constant"),
    ({"axis": 3}, ["X", "S"], ["Y"], "axis 3 out of range"),
])
def test_layernorm_rejections(attrs, inputs, outputs, message):
    node = helper.make_node("LayerNormalization", inputs, outputs, name="ln", **attrs)
    model = make_model([node], [("X", (2, 3, 4)), ("T", (4,))], [(o, None) for o in outputs],
                       {"S": np.ones(4, np.float32)}, opset=17)
    with pytest.raises(CompileError, match=f"LayerNormalization node 'ln': .*{message}"):
        compile_model(model)


# ---- InstanceNormalization --------------------------------------------------------------

@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("shape", [(1, 3, 5, 5), (2, 4, 7), (1, 2, 3, 2, 2)])
def test_instancenorm(rng, mode, shape):
    channels = shape[1]
    inits = {"S": (1.0 + 0.5 * rng.standard_normal(channels)).astype(np.float32),
             "B": (0.3 * rng.standard_normal(channels)).astype(np.float32)}
    model = make_model([helper.make_node("InstanceNormalization", ["X", "S", "B"], ["Y"], epsilon=1e-3)],
                       [("X", shape)], [("Y", shape)], inits, opset=13)
    feeds = random_feeds(rng, {"X": shape})
    if mode == "float32":
        compiled = check_float_model(model, feeds[0])
    else:
        compiled, _ = check_int8_sqnr(model, feeds)
    assert compiled.report["layers"][0]["kernels"] == ["nn_norm_f32" if mode == "float32" else "nn_norm_s8"]


def test_instancenorm_rejections():
    node = helper.make_node("InstanceNormalization", ["X", "S", "B"], ["Y"], name="in")
    model = make_model([node], [("X", (2, 3))], [("Y", None)],
                       {"S": np.ones(3, np.float32), "B": np.zeros(3, np.float32)}, opset=13)
    with pytest.raises(CompileError, match="InstanceNormalization node 'in': input rank 2"):
        compile_model(model)


# ---- the int8 kernels on the emulated Cortex-M ------------------------------------------

def cortex_m_model(rng):
    """Every int8 kernel of the normalisations, LogSoftmax and the new reductions in one model (one
    firmware per target)."""
    x = [("X", (1, 4, 3, 5))]
    inits = {"S": (1 + 0.5 * rng.standard_normal(4)).astype(np.float32),
             "B": (0.3 * rng.standard_normal(4)).astype(np.float32),
             "G": (1 + 0.5 * rng.standard_normal(5)).astype(np.float32),
             "C": (0.3 * rng.standard_normal(5)).astype(np.float32)}
    nodes = [helper.make_node("InstanceNormalization", ["X", "S", "B"], ["I"]),
             helper.make_node("LayerNormalization", ["I", "G", "C"], ["L"]),
             helper.make_node("LogSoftmax", ["L"], ["Y"], axis=1),
             helper.make_node("LpNormalization", ["X"], ["P2"], axis=1),
             helper.make_node("LpNormalization", ["X"], ["P1"], p=1),
             helper.make_node("ReduceMin", ["X"], ["Rmin"], axes=[2, 3]),
             helper.make_node("ReduceL1", ["X"], ["Rl1"], axes=[1]),
             helper.make_node("ReduceL2", ["X"], ["Rl2"], axes=[3]),
             helper.make_node("ReduceSumSquare", ["X"], ["Rss"], axes=[2], keepdims=0),
             helper.make_node("ReduceLogSumExp", ["X"], ["Rlse"], axes=[1, 3])]
    outputs = [("Y", None), ("P2", None), ("P1", None), ("Rmin", None), ("Rl1", None), ("Rl2", None),
               ("Rss", None), ("Rlse", None)]
    return make_model(nodes, x, outputs, inits, opset=17), x


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_int8_kernels_on_cortex_m(target):
    from codegen import cross
    from test_targets import need

    need(target)
    rng = np.random.default_rng(13)
    model, inputs = cortex_m_model(rng)
    feeds = random_feeds(rng, dict(inputs), count=4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    kernels = {k for layer in compiled.report["layers"] for k in layer["kernels"]}
    assert kernels == {"nn_norm_s8", "nn_logsoftmax_s8", "nn_lpnorm_s8", "nn_reduce_s8", "nn_reduce_logsumexp_s8"}
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for g, s in zip(got, q):
        ref = run_int8(compiled.graph, s)
        assert len(g) == len(compiled.graph.outputs) == 8
        for a, name in zip(g, compiled.graph.outputs):
            np.testing.assert_array_equal(a, ref[name])


# ---- torch's exports end to end ---------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("name,fused", [("norm_tokens_opset13", "LayerNormalization"),
                                        ("norm_tokens_opset17", "LayerNormalization"),
                                        ("norm_tokens_dynamo", "LayerNormalization"),
                                        ("norm_embed_opset13", "LpNormalization"),
                                        ("norm_embed_dynamo", "LpNormalization")])
def test_torch_export(name, fused):
    """Both exporters' LayerNorm (the opset-13 chain fused) and F.normalize (ReduceL2, Clip, Expand,
    Div fused) with a log_softmax head, in float32 and int8: float within 1e-4 of onnxruntime, int8
    bit-exact with the reference and 30 dB from float."""
    compiled, result = check_fixture(FIXTURES / f"{name}.onnx", FIXTURES / f"{name}.npz")
    ops = [layer["op"] for layer in compiled.report["layers"]]
    assert fused in ops and "Div" not in ops and "ReduceMean" not in ops, ops
    assert result["bit_exact"] and result["sqnr_db"] >= MIN_SQNR_DB, result["sqnr_db"]


def pattern_model(rng, square="Pow", axes=(-1,), extra_output=None, opset=13, eps=1e-5, affine=True):
    """torch's classic layer norm chain on a [2, 3, 8] input."""
    shape = (2, 3, 8)
    inner = shape[len(shape) - len(axes):]
    inits = {"two": np.float32(2.0), "eps": np.float32(eps),
             "g": (1 + 0.3 * rng.standard_normal(inner)).astype(np.float32),
             "b": (0.2 * rng.standard_normal(inner)).astype(np.float32)}
    mean_kw = {"axes": list(axes)} if opset < 18 else {}
    mean_in = [] if opset < 18 else ["axes"]
    if opset >= 18:
        inits["axes"] = np.array(axes, np.int64)
    nodes = [helper.make_node("ReduceMean", ["X", *mean_in], ["m"], **mean_kw),
             helper.make_node("Sub", ["X", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["s"]) if square == "Pow" else
             helper.make_node("Mul", ["d", "d"], ["s"]),
             helper.make_node("ReduceMean", ["s", *mean_in], ["v"], **mean_kw),
             helper.make_node("Add", ["v", "eps"], ["e"]),
             helper.make_node("Sqrt", ["e"], ["r"]),
             helper.make_node("Div", ["d", "r"], ["n" if affine else "Y"])]
    if affine:
        nodes += [helper.make_node("Mul", ["n", "g"], ["a"]), helper.make_node("Add", ["a", "b"], ["Y"])]
    outputs = [("Y", shape)] + ([(extra_output, None)] if extra_output else [])
    return make_model(nodes, [("X", shape)], outputs, inits, opset=opset), shape


@pytest.mark.parametrize("square,axes,opset,affine", [("Pow", (-1,), 13, True), ("Mul", (-1,), 13, False),
                                                      ("Pow", (1, 2), 18, True)])
def test_layernorm_pattern_is_fused(rng, square, axes, opset, affine):
    model, shape = pattern_model(rng, square, axes, opset=opset, affine=affine)
    compiled = check_float_model(model, random_feeds(rng, {"X": shape})[0])
    assert [layer["op"] for layer in compiled.report["layers"]] == ["LayerNormalization"]


@pytest.mark.parametrize("extra_output,axes", [("d", (-1,)), ("v", (-1,)), (None, (1,))])
def test_layernorm_pattern_left_alone(rng, extra_output, axes):
    """An intermediate read outside the chain, or axes that are not the last ones: no fusion."""
    model, shape = pattern_model(rng, axes=axes, extra_output=extra_output)
    compiled = check_float_model(model, random_feeds(rng, {"X": shape})[0])
    assert "LayerNormalization" not in [layer["op"] for layer in compiled.report["layers"]]


# ---- LpNormalization --------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("shape,axis,p", [((1, 16), -1, 2), ((2, 3, 4), 1, 1), ((2, 3, 4), 0, 2),
                                          ((1, 4, 3, 3), 1, 2), ((3, 5), -1, 1), ((2, 6), None, None)])
def test_lpnormalization(rng, mode, shape, axis, p):
    attrs = {k: v for k, v in (("axis", axis), ("p", p)) if v is not None}
    model = make_model([helper.make_node("LpNormalization", ["X"], ["Y"], **attrs)], [("X", shape)],
                       [("Y", shape)], opset=13)
    feeds = random_feeds(rng, {"X": shape})
    oracle = onnxruntime_oracle(model)  # onnx.reference sums x, not |x|, for p = 1
    if mode == "float32":
        compiled = check_float_model(model, feeds[0], oracle=oracle)
    else:
        compiled, _ = check_int8_sqnr(model, feeds, oracle=oracle)
        q = compiled.graph.tensors["Y"].quant
        assert (q.scale, q.zero_point) == (1 / 128, 0)
    assert compiled.report["layers"][0]["kernels"] == ["nn_lpnorm_f32" if mode == "float32" else "nn_lpnorm_s8"]


def test_lpnormalization_int8_zero_group_and_rejections(rng):
    """A group of zeros is zeros in int8 as in float; p = 3 is a one-line error."""
    shape = (3, 8)
    model = make_model([helper.make_node("LpNormalization", ["X"], ["Y"], axis=1)], [("X", shape)],
                       [("Y", shape)], opset=13)
    feeds = random_feeds(rng, {"X": shape}, offset=False)
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    x = feeds[0]["X"].copy()
    x[1] = 0.0
    q = quantize_inputs(compiled.graph, {"X": x})
    y = HostModel(compiled.emitted.files, compiled.report["api"]).run([q["X"]])[0]
    np.testing.assert_array_equal(y, run_int8(compiled.graph, q)["Y"])
    assert not y[1].any() and y[0].any()
    bad = make_model([helper.make_node("LpNormalization", ["X"], ["Y"], p=3, name="lp")], [("X", shape)],
                     [("Y", shape)], opset=13)
    with pytest.raises(CompileError, match="LpNormalization node 'lp': p = 3"):
        compile_model(bad)


def test_float_kernels_on_cortex_m4():
    """The float kernels that call libm (sqrtf, expf, logf) link and agree on the emulated core."""
    from test_targets import need

    need("cortex-m4")
    rng = np.random.default_rng(17)
    model, inputs = cortex_m_model(rng)
    compiled = compile_model(model, "net")
    assert verify(compiled, random_feeds(rng, dict(inputs), count=3), target="cortex-m4")["target_equal"]


@pytest.mark.parametrize("upper,fused", [(None, True), (5.0, False)])
def test_l2_normalize_pattern(rng, upper, fused):
    """ReduceL2 -> Clip(eps) -> Div fused into LpNormalization (a group of zeros stays zeros); a Clip
    with an upper bound too is another function and stays as it is."""
    shape = (3, 6)
    inits = {"axes": np.array([1], np.int64), "eps": np.float32(1e-12)}
    clip_in = ["n", "eps"]
    if upper is not None:
        inits["hi"] = np.float32(upper)
        clip_in.append("hi")
    nodes = [helper.make_node("ReduceL2", ["X", "axes"], ["n"]), helper.make_node("Clip", clip_in, ["c"]),
             helper.make_node("Div", ["X", "c"], ["Y"])]
    model = make_model(nodes, [("X", shape)], [("Y", shape)], inits, opset=18)
    x = rng.standard_normal(shape).astype(np.float32)
    x[1] = 0.0
    compiled = check_float_model(model, {"X": x})
    assert ("LpNormalization" in [layer["op"] for layer in compiled.report["layers"]]) == fused


def test_layernorm_unread_statistics_are_dropped(rng):
    """Mean and InvStdDev named but read by nothing: compiled (Y only); read by a node: refused."""
    shape = (2, 3, 4)
    inits = {"S": np.ones(4, np.float32), "B": np.zeros(4, np.float32)}
    node = helper.make_node("LayerNormalization", ["X", "S", "B"], ["L", "M", "R"], name="ln")
    model = make_model([node, helper.make_node("Relu", ["L"], ["Y"])], [("X", shape)], [("Y", shape)], inits,
                       opset=17)
    compiled = check_float_model(model, random_feeds(rng, {"X": shape})[0])
    assert [layer["op"] for layer in compiled.report["layers"]] == ["LayerNormalization", "Relu"]
    read = make_model([node, helper.make_node("Add", ["L", "M"], ["Y"])], [("X", shape)], [("Y", shape)], inits,
                      opset=17)
    with pytest.raises(CompileError, match="LayerNormalization node 'ln': the Mean and InvStdDev outputs"):
        compile_model(read)
