"""LRN in float32 and int8 (integer square sums, a tabulated fixed-point power), on the host
and on the emulated Cortex-M cores.

onnx.reference (onnx 1.23) is not an oracle for LRN: its loop runs over the batch dimension
instead of the channels, so only the first N channels are normalized. onnxruntime is
(ORT_DISABLE_ALL), for 4-D inputs; other ranks run through it as a 4-D view [N, C, inner, 1],
which is the same computation.
"""

import numpy as np
import pytest
from onnx import helper

from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.targets import load_target, target_names
from codegen.verify import verify
from conftest import check_float_model, check_int8_model, make_model, onnxruntime_oracle, random_feeds

# (shape, attributes): the window odd and even, wider than the channels, AlexNet's, ranks 3 to 5
CASES = [
    ((2, 7, 3, 4), {"size": 5, "alpha": 0.5, "beta": 0.75, "bias": 1.0}),
    ((1, 4, 5, 5), {"size": 3, "alpha": 2.0, "beta": 0.5, "bias": 2.0}),
    ((1, 6, 3, 3), {"size": 4, "alpha": 1.0, "beta": 1.2, "bias": 0.5}),
    ((1, 3, 2, 5), {"size": 9, "alpha": 0.3}),
    ((1, 10, 4, 4), {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}),
    ((2, 5, 7), {"size": 2, "alpha": 0.8, "beta": 0.9, "bias": 1.5}),
    ((1, 4, 2, 3, 2), {"size": 3, "alpha": 1.5, "beta": 0.6}),
]


class FourDimensionalOracle:
    """onnxruntime's LRN (4-D and odd sizes only) on the input viewed as [N, C, inner, 1]; an
    even size by the spec's formula, written out here in float64."""

    def __init__(self, attrs):
        self.attrs = attrs

    def run(self, _, feeds):
        x = feeds["X"]
        if self.attrs["size"] % 2 == 0:
            return [self._spec(x.astype(np.float64)).astype(np.float32)]
        view = (x.shape[0], x.shape[1], int(np.prod(x.shape[2:])), 1)
        model = make_model([helper.make_node("LRN", ["X"], ["Y"], **self.attrs)], [("X", view)], [("Y", view)],
                           opset=13)
        return [onnxruntime_oracle(model).run(None, {"X": x.reshape(view)})[0].reshape(x.shape)]

    def _spec(self, x):
        size = self.attrs["size"]
        alpha, beta, bias = (self.attrs.get(k, d) for k, d in (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))
        square_sum = np.zeros_like(x)
        for c in range(x.shape[1]):
            lo, hi = max(0, c - int(np.floor((size - 1) / 2))), min(x.shape[1] - 1, c + int(np.ceil((size - 1) / 2)))
            square_sum[:, c] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        return x / (bias + alpha / size * square_sum) ** beta


def _model(shape, attrs):
    return make_model([helper.make_node("LRN", ["X"], ["Y"], **attrs)], [("X", shape)], [("Y", None)], opset=13)


def _slope(attrs) -> float:
    """The largest |dy/dx| of y = x (bias + k x^2 + ...)^-beta: at most bias^-beta * max(1, 2 beta - 1)."""
    beta, bias = attrs.get("beta", 0.75), attrs.get("bias", 1.0)
    return bias ** -beta * max(1.0, 2 * beta - 1)


@pytest.mark.parametrize("shape,attrs", CASES, ids=[f"{len(s)}d-size{a['size']}" for s, a in CASES])
def test_lrn_float32(rng, shape, attrs):
    feeds = random_feeds(rng, {"X": shape}, count=1)[0]
    compiled = check_float_model(_model(shape, attrs), feeds, oracle=FourDimensionalOracle(attrs))
    assert compiled.report["layers"][-1]["kernels"] == ["nn_lrn_f32"]


@pytest.mark.parametrize("shape,attrs", CASES, ids=[f"{len(s)}d-size{a['size']}" for s, a in CASES])
def test_lrn_int8(rng, shape, attrs):
    """C == the int8 twin bit for bit; within 0.6 output steps (rounding and the table's
    interpolation) plus the input's own rounding of the float model."""
    feeds = random_feeds(rng, {"X": shape}, count=5)
    compiled = check_int8_model(_model(shape, attrs), feeds, 0.6, oracle=FourDimensionalOracle(attrs),
                                in_steps=0.5 * _slope(attrs) * 1.05)
    assert compiled.report["layers"][-1]["kernels"] == ["nn_lrn_s8"]


def test_int8_table_is_exact_at_its_points():
    """The interpolated multiplier equals the float multiplier at the table's points within
    Q31 rounding, and between points within the interpolation bound beta (beta + 1) / 8192."""
    from codegen.ir import Graph, Node, Tensor
    from codegen.ops.lrn import LRN, SEGMENT_BITS
    from codegen.qparams import QParams

    attrs = {"size": 5, "alpha": 0.7, "beta": 0.75, "bias": 1.0}
    x, y = QParams(0.03, -5), QParams(0.02, 3)
    tensors = {"X": Tensor("X", (1, 8, 1, 1), "int8", quant=x), "Y": Tensor("Y", (1, 8, 1, 1), "int8", quant=y)}
    node = Node("LRN", "lrn", ["X"], ["Y"], attrs)
    graph = Graph("g", tensors, [node], ["X"], ["Y"], 13)
    q = LRN().quantize(node, graph)
    per_octave = (1 << SEGMENT_BITS) + 1
    table, shifts = q["table"].astype(np.float64), q["shifts"]
    for e in range(len(shifts)):
        s = 2.0**e * (1 + np.arange(per_octave) / (per_octave - 1))
        exact = (x.scale / y.scale) * (1 + 0.7 / 5 * x.scale**2 * s) ** -0.75
        got = table[e * per_octave:(e + 1) * per_octave] * 2.0 ** (shifts[e] - 31)
        np.testing.assert_allclose(got, exact, rtol=2**-29)
    assert len(shifts) == (5 * 123**2).bit_length()  # the window's largest integer square sum sets the octaves


@pytest.mark.parametrize("shape,attrs,why", [
    ((1, 4), {"size": 3}, "input rank 2 is not supported"),
    ((1, 4, 3, 3), {"size": 0}, "size must be at least 1"),
])
def test_unsupported_lrn_is_a_one_line_error(shape, attrs, why):
    model = make_model([helper.make_node("LRN", ["X"], ["Y"], name="norm", **attrs)], [("X", shape)],
                       [("Y", shape)], opset=13)
    with pytest.raises(CompileError, match=f"LRN node 'norm': {why}") as info:
        compile_model(model)
    assert "\n" not in str(info.value)


CORTEX_M = [t for t in target_names() if t in ("cortex-m4", "cortex-m0plus")]


def _two_lrns():
    """Two LRN layers (odd and even windows, 4-D and 3-D) in one model, so one firmware runs both."""
    shape = (1, 6, 3, 4)
    nodes = [helper.make_node("LRN", ["X"], ["A"], size=5, alpha=0.6, beta=0.75, bias=1.0),
             helper.make_node("Reshape", ["A", "s"], ["R"]),
             helper.make_node("LRN", ["R"], ["Y"], size=2, alpha=1.3, beta=1.1, bias=0.7)]
    return make_model(nodes, [("X", shape)], [("Y", None)], {"s": np.array([1, 6, 12])}, opset=13), shape


@pytest.mark.parametrize("target", CORTEX_M)
def test_int8_lrn_is_identical_on_cortex_m(target):
    from test_targets import need

    need(target)
    model, shape = _two_lrns()
    feeds = random_feeds(np.random.default_rng(21), {"X": shape}, count=4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    assert load_target(target)["run"]["kind"] == "semihosting"
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for sample, outputs in zip(q, got):
        want = host.run([sample[n] for n in compiled.graph.inputs])
        for a, b in zip(outputs, want):
            np.testing.assert_array_equal(a, b)


def test_float_lrn_on_cortex_m4():
    """The float kernel's powf links against newlib's libm and agrees on the emulated core."""
    from test_targets import need

    need("cortex-m4")
    model, shape = _two_lrns()
    compiled = compile_model(model, "net")
    feeds = random_feeds(np.random.default_rng(22), {"X": shape}, count=3)
    assert verify(compiled, feeds, target="cortex-m4")["target_equal"]
