"""Small architectures around one kind of head or activation, as torch's classic (opset 13)
and dynamo (opset 18) exporters write them (tests/fixtures/make_heads.py): each compiles in
float32 and int8 and verifies: float within 1e-4 relative of onnxruntime, int8 equal to its
reference byte for byte (its SQNR against the float model is printed)."""

import pytest

from codegen.samples import load_samples
from codegen.verify import verify
from conftest import FIXTURES, check_fixture

HEADS = ["prelu_elu_cnn", "l2_embedding", "logsoftmax_head", "argmax_head", "masked_pooling"]
CASES = [(name, exporter) for name in HEADS for exporter in ("opset13", "dynamo")]


@pytest.mark.parametrize("name,exporter", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_head_architecture(name, exporter):
    compiled, int8 = check_fixture(FIXTURES / f"{name}_{exporter}.onnx", FIXTURES / f"{name}.npz")
    samples, _ = load_samples(FIXTURES / f"{name}.npz", compiled.graph)
    float32 = verify(compiled, samples)
    assert float32["passed"] and float32["bit_exact"] and float32["reference_agrees"], float32
    print(f"{name} ({exporter}) int8: SQNR {int8['sqnr_db']:.1f} dB against the float model")
    assert int8["passed"] and int8["bit_exact"] and int8["sqnr_db"] > 30, int8
