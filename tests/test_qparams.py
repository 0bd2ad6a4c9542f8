"""Weight and bias quantization: a dead channel (weights ~0, bias not) keeps the model int8."""

import numpy as np
import pytest
from onnx import helper

from codegen.build import HostModel
from codegen.compiler import quantize_inputs
from codegen.qparams import BIAS_HEADROOM, floor_for_bias, quantize_bias, weight_scales
from conftest import check_int8_model, make_model, random_feeds

# the first layer of a trained scikit-learn MLP: its bias is 729,000 times its largest weight
BIAS_RATIO = 729_000.0
DEAD = 3


def _dead_channel_weights(rng, shape):
    w = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    w[DEAD] = rng.uniform(-2e-7, 2e-7, shape[1:])
    b = rng.uniform(-1.0, 1.0, shape[0]).astype(np.float32)
    b[DEAD] = BIAS_RATIO * np.abs(np.delete(w, DEAD, axis=0)).max()
    return w, b


def _check_dead_channel(model, rng, shapes, bias):
    calib = random_feeds(rng, shapes, count=8)
    compiled = check_int8_model(model, calib, steps=1.0)  # C == reference exactly, within 1 step of float
    node = compiled.graph.nodes[0]
    q = node.attrs["q"]
    assert np.all(q["weight"][DEAD] == 0)  # its weights round to 0 at the floored scale
    assert np.abs(q["bias"].astype(np.int64)).max() <= BIAS_HEADROOM + 2**15
    # the dead channel's output is its bias, to within one output step
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    out = graph.outputs[0]
    qp = graph.tensors[out].quant
    for feeds in calib:
        c = host.run([quantize_inputs(graph, feeds)[n] for n in graph.inputs])[0]
        got = qp.dequantize(np.take(c, DEAD, axis=1)).astype(np.float64)
        assert np.all(np.abs(got - bias) <= qp.scale)
    return compiled


def test_gemm_dead_channel_compiles_int8(rng):
    w, b = _dead_channel_weights(rng, (8, 16))
    nodes = [helper.make_node("Gemm", ["X", "W", "B"], ["G"], transB=1), helper.make_node("Relu", ["G"], ["Y"])]
    model = make_model(nodes, [("X", (1, 16))], [("Y", None)], {"W": w, "B": b})
    _check_dead_channel(model, rng, {"X": (1, 16)}, float(b[DEAD]))


def test_conv_dead_channel_compiles_int8(rng):
    w, b = _dead_channel_weights(rng, (6, 3, 3, 3))
    nodes = [helper.make_node("Conv", ["X", "W", "B"], ["Y"], pads=[1, 1, 1, 1])]
    model = make_model(nodes, [("X", (1, 3, 6, 6))], [("Y", None)], {"W": w, "B": b})
    _check_dead_channel(model, rng, {"X": (1, 3, 6, 6)}, float(b[DEAD]))


@pytest.mark.parametrize("seed", range(5))
def test_floor_for_bias_keeps_the_bias_within_headroom(seed):
    r = np.random.default_rng(seed)
    w = r.standard_normal((32, 9)) * 10.0 ** r.uniform(-9, 1, (32, 1))
    b = r.standard_normal(32) * 10.0 ** r.uniform(-3, 6, 32)
    in_scale = float(10.0 ** r.uniform(-4, 0))
    plain = weight_scales(w)
    floored = floor_for_bias(plain, b, in_scale)
    assert floored.dtype == np.float32 and np.all(floored >= plain)
    # a channel is only touched where its bias needs it
    fits = np.abs(b) / (in_scale * plain.astype(np.float64)) <= BIAS_HEADROOM
    assert np.array_equal(floored[fits], plain[fits])
    assert np.abs(quantize_bias(b, in_scale, floored).astype(np.int64)).max() <= BIAS_HEADROOM
