"""Small architectures around one kind of head or activation, as torch's classic (opset 13)
and dynamo (opset 18) exporters write them (tests/fixtures/make_heads.py): each compiles in
float32 and int8 and verifies: float within 1e-4 relative of onnxruntime, int8 equal to its
reference byte for byte (its SQNR against the float model is printed)."""

import numpy as np
import pytest

from codegen.build import HostModel
from codegen.compiler import compile_model
from codegen.samples import load_samples
from codegen.verify import verify, within_tolerance
from conftest import FIXTURES, onnxruntime_oracle

HEADS = ["prelu_elu_cnn", "l2_embedding", "logsoftmax_head", "argmax_head", "masked_pooling"]
CASES = [(name, exporter) for name in HEADS for exporter in ("opset13", "dynamo")]


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("name,exporter", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_head_architecture(name, exporter, mode):
    path, data = FIXTURES / f"{name}_{exporter}.onnx", FIXTURES / f"{name}.npz"
    compiled = compile_model(path, "net", mode=mode, calib=data if mode == "int8" else None)
    samples, _ = load_samples(data, compiled.graph)
    result = verify(compiled, samples)
    assert result["passed"] and result["bit_exact"], result
    if mode == "int8":
        print(f"{name} ({exporter}) int8: SQNR {result['sqnr_db']:.1f} dB against the float model")
        assert result["sqnr_db"] > 30
        return
    assert result["reference_agrees"]
    oracle = onnxruntime_oracle(compiled.model)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    names = [i.name for i in oracle.get_inputs()]
    onnx_types = compiled.graph.meta["onnx_types"]
    for s in samples:
        got = host.run([s[n] for n in compiled.graph.inputs])
        want = oracle.run(None, {n: s[n].astype(onnx_types[n])[None].reshape(compiled.graph.tensors[n].shape)
                                 for n in names})
        for g, w in zip(got, want):
            w = np.asarray(w).reshape(g.shape)
            assert within_tolerance(g, w, 1e-4) if g.dtype.kind == "f" else np.array_equal(g, w)
