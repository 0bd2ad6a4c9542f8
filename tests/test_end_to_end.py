"""Whole models: the bundled example and the exported fixtures, compiled, built and verified,
in float32 and int8; the QDQ fixture against onnxruntime's own run of it."""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, write_folder
from codegen.samples import load_samples
from codegen.verify import verify
from conftest import onnxruntime_oracle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

MODELS = [  # (model, calibration data, test data)
    pytest.param(EXAMPLE / "digits.onnx", EXAMPLE / "calib.npz", EXAMPLE / "test.npz", id="digits"),
    pytest.param(FIXTURES / "torch_resnetish.onnx", FIXTURES / "torch_resnetish.npz",
                 FIXTURES / "torch_resnetish.npz", id="torch_resnetish"),
    pytest.param(FIXTURES / "torch_dynamo_mlp.onnx", FIXTURES / "torch_dynamo_mlp.npz",
                 FIXTURES / "torch_dynamo_mlp.npz", id="torch_dynamo_mlp"),
    pytest.param(FIXTURES / "skl_mlp.onnx", FIXTURES / "skl_mlp.npz", FIXTURES / "skl_mlp.npz", id="skl_mlp"),
]


@pytest.mark.parametrize("model,calib,data", MODELS)
def test_float_matches_onnx_reference(model, calib, data):
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


@pytest.mark.parametrize("model,calib,data", MODELS)
def test_int8_is_bit_exact(model, calib, data):
    compiled = compile_model(model, mode="int8", calib=calib)
    samples, labels = load_samples(data, compiled.graph)
    result = verify(compiled, samples, labels)
    assert result["bit_exact"], "int8 C differs from the int8 NumPy reference"
    assert result["sqnr_db"] > 25
    assert all(layer["sqnr_db"] is None or layer["sqnr_db"] > 20 for layer in compiled.report["layers"])


def test_example_float_accuracy_and_shape_of_graph():
    compiled = compile_model(EXAMPLE / "digits.onnx")
    samples, labels = load_samples(EXAMPLE / "test.npz", compiled.graph)
    result = verify(compiled, samples, labels)
    assert result["accuracy_float"] >= 0.9
    assert result["float_top1_agreement"] == 1.0
    ops = [n.op_type for n in compiled.graph.nodes]
    assert "BatchNormalization" not in ops and "Relu" not in ops  # folded and fused
    assert ops.count("Conv") == 2


def test_example_int8_targets():
    """int8 accuracy within 1 point of float; arena at most a quarter of float's + 64 B; weights
    at most 0.27x of float's."""
    float_model = compile_model(EXAMPLE / "digits.onnx")
    int8_model = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz")
    samples, labels = load_samples(EXAMPLE / "test.npz", int8_model.graph)
    result = verify(int8_model, samples, labels)
    assert result["bit_exact"]
    assert result["accuracy_quantized"] >= result["accuracy_float"] - 0.01
    assert int8_model.report["arena_bytes"] <= float_model.report["arena_bytes"] / 4 + 64
    assert int8_model.report["weights_bytes"] <= 0.27 * float_model.report["weights_bytes"]


def test_qdq_model_agrees_with_onnxruntime():
    """The QDQ fixture keeps onnxruntime's scales (no --calib) and lands within one output
    step of onnxruntime's run of the same QDQ model on every element. onnxruntime runs with
    its graph optimizations off (conftest.onnxruntime_oracle), which is exact on any CPU."""
    compiled = compile_model(FIXTURES / "qdq_convnet.onnx", mode="int8")
    assert compiled.report["options"]["quantization"] == "qdq"
    samples, _ = load_samples(FIXTURES / "qdq_convnet.npz", compiled.graph)
    assert verify(compiled, samples)["bit_exact"]
    session = onnxruntime_oracle(FIXTURES / "qdq_convnet.onnx")
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    out = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    within, total = 0, 0
    for feeds in samples:
        q = {n: compiled.graph.tensors[n].quant.quantize(feeds[n]) for n in compiled.graph.inputs}
        ours = out.dequantize(host.run([q[n] for n in compiled.graph.inputs])[0])
        theirs = session.run(None, feeds)[0].reshape(ours.shape)
        within += int(np.sum(np.abs(ours - theirs) <= out.scale * 1.001))
        total += ours.size
    assert within == total, f"{within} of {total} elements within one output step of onnxruntime"


EMULATED_ORACLE = """
import sys
import numpy as np
from oracles import onnxruntime_oracle
data = np.load(sys.argv[1])
session = onnxruntime_oracle(sys.argv[2])
name = session.get_inputs()[0].name
theirs = np.stack([session.run(None, {name: x})[0].reshape(data["ours"].shape[1:]) for x in data["inputs"]])
print(int(np.sum(np.abs(data["ours"] - theirs) <= data["scale"] * 1.001)), theirs.size)
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates an x86-64 CPU for this machine's x86-64 Python")
def test_qdq_oracle_is_exact_on_a_cpu_without_avx512_vnni(tmp_path):
    """The QDQ comparison above on an x86-64 CPU with AVX2 and without AVX-512 (qemu-x86_64
    -cpu Haswell), where onnxruntime's default optimizations put 8 of 48 elements within one
    step (17 steps off): the oracle, optimizations off, puts every element within one step."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        message = "qemu-x86_64 not found: apt-get install qemu-user"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    compiled = compile_model(FIXTURES / "qdq_convnet.onnx", mode="int8")
    samples, _ = load_samples(FIXTURES / "qdq_convnet.npz", compiled.graph)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    out = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    name = compiled.graph.inputs[0]
    ours = [out.dequantize(host.run([compiled.graph.tensors[name].quant.quantize(f[name])])[0]) for f in samples]
    np.savez(tmp_path / "ours.npz", ours=np.stack(ours), inputs=np.stack([f[name] for f in samples]), scale=out.scale)
    proc = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, "-c", EMULATED_ORACLE, str(tmp_path / "ours.npz"),
                           str(FIXTURES / "qdq_convnet.onnx")], cwd=Path(__file__).parent, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    within, total = map(int, proc.stdout.split())
    assert within == total == 48


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("cc", [c for c in ("gcc", "clang") if shutil.which(c)])
@pytest.mark.parametrize("model,calib,data", MODELS)
def test_folder_builds_alone(model, calib, data, cc, mode, tmp_path):
    out = write_folder(compile_model(model, mode=mode, calib=calib).emitted, tmp_path / "out")
    sources = sorted(p.name for p in out.glob("*.c"))
    proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", *sources],
                          cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
