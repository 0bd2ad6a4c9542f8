"""Whole models: the bundled example and the torch-exported fixtures, compiled, built and verified."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, write_folder
from codegen.verify import load_samples, verify

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

MODELS = [
    pytest.param(EXAMPLE / "digits.onnx", EXAMPLE / "test.npz", id="digits"),
    pytest.param(FIXTURES / "torch_resnetish.onnx", FIXTURES / "torch_resnetish.npz", id="torch_resnetish"),
    pytest.param(FIXTURES / "torch_dynamo_mlp.onnx", FIXTURES / "torch_dynamo_mlp.npz", id="torch_dynamo_mlp"),
]


@pytest.mark.parametrize("model,data", MODELS)
def test_model_matches_onnx_reference(model, data):
    compiled = compile_model(model)
    samples, labels = load_samples(data, compiled.graph)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    result = verify(compiled, samples, labels, host=host)
    assert result["bit_exact"], "C differs from the NumPy reference"
    # every test input: relative error against onnx.reference within 1e-4
    onnx_ref = ReferenceEvaluator(compiled.model)
    for feeds in samples:
        c_out = host.run([feeds[n] for n in compiled.graph.inputs])
        expected = onnx_ref.run(None, feeds)
        for c, e in zip(c_out, expected):
            e = np.asarray(e, np.float32).reshape(c.shape)
            assert np.max(np.abs(c - e)) <= 1e-4 * np.max(np.abs(e))
    assert compiled.report["arena_bytes"] <= 1.1 * compiled.report["arena_lower_bound"]


def test_example_accuracy_and_shape_of_graph():
    compiled = compile_model(EXAMPLE / "digits.onnx")
    samples, labels = load_samples(EXAMPLE / "test.npz", compiled.graph)
    result = verify(compiled, samples, labels)
    assert result["accuracy_float"] >= 0.9
    assert result["float_top1_agreement"] == 1.0
    ops = [n.op_type for n in compiled.graph.nodes]
    assert "BatchNormalization" not in ops and "Relu" not in ops  # folded and fused
    assert ops.count("Conv") == 2


@pytest.mark.parametrize("cc", [c for c in ("gcc", "clang") if shutil.which(c)])
@pytest.mark.parametrize("model,data", MODELS)
def test_folder_builds_alone(model, data, cc, tmp_path):
    out = write_folder(compile_model(model).emitted, tmp_path / "out")
    sources = sorted(p.name for p in out.glob("*.c"))
    proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", *sources],
                          cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
