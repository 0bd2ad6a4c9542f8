"""The transformer fixtures end to end (tests/fixtures/make_transformer.py made them): a tiny
two-layer encoder from both torch exporters, and one attention block that uses only the
product, softmax and data movement operators.

float32: the C equals the NumPy reference within the float tolerance, and both are within a
relative 1e-4 of onnxruntime (graph optimizations off). int8: the C equals the NumPy int8
reference byte for byte; its SQNR against onnxruntime's float outputs is printed and must
clear a floor well below what the models reach."""

import numpy as np
import pytest

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.reference import run_float, run_int8
from codegen.samples import load_samples
from codegen.verify import within_tolerance
from conftest import FIXTURES, onnxruntime_oracle

MODELS = ["transformer_classic", "transformer_dynamo", "attention_block"]
CALIB = FIXTURES / "transformer.npz"


def sqnr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(np.square(signal, dtype=np.float64)) / max(np.sum(np.square(noise, dtype=np.float64)), 1e-30)))


def _samples(compiled):
    samples, _ = load_samples(CALIB, compiled.graph)
    return samples


def _onnxruntime(name, samples):
    session = onnxruntime_oracle(FIXTURES / f"{name}.onnx")
    return [session.run(None, s)[0] for s in samples]


@pytest.mark.parametrize("name", MODELS)
def test_float32(name):
    compiled = compile_model(FIXTURES / f"{name}.onnx", "net")
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    samples = _samples(compiled)
    expected = _onnxruntime(name, samples)
    out = compiled.graph.outputs[0]
    for s, e in zip(samples, expected):
        c = host.run([s[n] for n in compiled.graph.inputs])[0]
        ref = run_float(compiled.graph, s)[out]
        assert within_tolerance(ref, e.reshape(ref.shape), 1e-4), "NumPy reference differs from onnxruntime"
        assert within_tolerance(c, ref, 1e-4), "C differs from the NumPy reference"
    if name == "attention_block":
        assert {layer["op"] for layer in compiled.report["layers"]} <= {"MatMul", "Gemm", "Add", "Mul", "Reshape",
                                                                        "Transpose", "Softmax"}


@pytest.mark.parametrize("name", MODELS)
def test_int8(name):
    compiled = compile_model(FIXTURES / f"{name}.onnx", "net", mode="int8", calib=CALIB)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    samples = _samples(compiled)
    expected = _onnxruntime(name, samples)
    out = graph.outputs[0]
    got = []
    for s in samples:
        q = quantize_inputs(graph, s)
        c = host.run([q[n] for n in graph.inputs])[0]
        np.testing.assert_array_equal(c, run_int8(graph, q)[out])
        got.append(graph.tensors[out].quant.dequantize(c))
    want = np.stack([e.reshape(g.shape) for e, g in zip(expected, got)])
    sqnr = sqnr_db(want, np.stack(got) - want)
    print(f"{name}: int8 SQNR {sqnr:.1f} dB against onnxruntime's float outputs")
    assert sqnr > 20.0
    assert "nn_matmul_s8" in {k for layer in compiled.report["layers"] for k in layer["kernels"]}
