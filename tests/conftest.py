"""Shared test helpers: build a model with onnx.helper, compile it, compare the C with the references."""

from __future__ import annotations

import collections
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.reference import run_float, run_int8
from codegen.verify import within_tolerance
from oracles import onnxruntime_oracle  # noqa: F401  (the tests import it from here)


def make_model(nodes, inputs, outputs, initializers=(), opset=18, name="case") -> onnx.ModelProto:
    """inputs/outputs: list of (name, shape) of float tensors, or (name, shape, elem_type) with an
    onnx.TensorProto type (INT64, BOOL...); an output shape None is inferred.
    initializers: dict name -> array."""

    def info(spec):
        name, shape, elem_type = (*spec, onnx.TensorProto.FLOAT)[:3]
        return helper.make_tensor_value_info(name, elem_type, shape)

    graph = helper.make_graph(
        nodes,
        name,
        [info(spec) for spec in inputs],
        [info(spec) for spec in outputs],
        [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    if any(spec[1] is None for spec in outputs):  # let ONNX fill in the output shapes
        inferred = onnx.shape_inference.infer_shapes(model)
        known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        for out in model.graph.output:
            if out.name in known and known[out.name].type.tensor_type.HasField("shape"):
                out.type.CopyFrom(known[out.name].type)
    return model


def check_float_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], rel: float = 1e-4, oracle=None):
    """Compile, run the C, and require C == NumPy reference == onnx.reference (float tolerance).

    Returns the CompiledModel for further checks."""
    compiled = compile_model(model, "net")
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    c_out = host.run([feeds[n] for n in compiled.graph.inputs])
    ref = run_float(compiled.graph, feeds)
    expected = (oracle or ReferenceEvaluator(model)).run(None, feeds)
    for c, name, e in zip(c_out, compiled.graph.outputs, expected):
        e = np.asarray(e, np.float32)
        assert within_tolerance(ref[name], e, rel), f"NumPy reference differs from onnx.reference on '{name}'"
        assert within_tolerance(c, ref[name], rel), f"C differs from the NumPy reference on '{name}'"
    return compiled


def check_int8_model(model: onnx.ModelProto, calib: list[dict[str, np.ndarray]], steps: float,
                     tests: list[dict[str, np.ndarray]] | None = None, oracle=None, in_steps: float = 0.0):
    """Compile to int8 with `calib`, run the C on `tests` (default: the calibration samples) and require
    C == NumPy int8 reference exactly, and the dequantized output within the per-op bound of
    onnx.reference on the float model: `steps` output quantization steps plus `in_steps` steps of
    the coarsest input (what the input's own rounding can move the output by). Returns the
    CompiledModel. The ranges are min/max (the bound holds for values inside them; clipping
    calibration methods are tested in test_calibrate.py)."""
    compiled = compile_model(model, "net", mode="int8", calib=calib, calibration="minmax")
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    evaluator = oracle or ReferenceEvaluator(model)
    for feeds in tests or calib:
        q_feeds = quantize_inputs(graph, feeds)
        c_out = host.run([q_feeds[n] for n in graph.inputs])
        ref = run_int8(graph, q_feeds)
        expected = evaluator.run(None, feeds)
        for c, name, e in zip(c_out, graph.outputs, expected):
            assert c.dtype == np.int8
            np.testing.assert_array_equal(c, ref[name], err_msg=f"C differs from the int8 reference on '{name}'")
            qp = graph.tensors[name].quant
            err = np.abs(qp.dequantize(c).astype(np.float64) - np.asarray(e, np.float64).reshape(c.shape))
            in_scale = max(graph.tensors[n].quant.scale for n in graph.inputs)
            bound = steps * qp.scale + in_steps * in_scale
            assert err.max(initial=0) <= bound * (1 + 1e-6), \
                f"int8 '{name}' is {err.max() / qp.scale:.2f} output steps from the float model " \
                f"(bound {steps} + {in_steps} input steps = {bound / qp.scale:.2f})"
    return compiled


def check_fixture(path, data):
    """A fixture model end to end on its samples `data` (.npz): the float32 C within 1e-4 of the
    largest output of onnxruntime on every output (integer outputs equal), then the int8 C
    compiled with `data` as calibration and verified. Returns (the float32 CompiledModel, the
    int8 verify result); the caller asserts its SQNR bound and bit-exactness."""
    from codegen.samples import load_samples
    from codegen.verify import verify

    compiled = compile_model(path, "net")
    samples, _ = load_samples(data, compiled.graph)
    session = onnxruntime_oracle(compiled.model)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    types = compiled.graph.meta["onnx_types"]
    names = [i.name for i in session.get_inputs()]
    for s in samples:
        feeds = {n: np.asarray(s[n]).astype(types[n]).reshape(compiled.graph.tensors[n].shape) for n in names}
        for got, want in zip(host.run([s[n] for n in compiled.graph.inputs]), session.run(None, feeds)):
            want = np.asarray(want).reshape(got.shape)
            if got.dtype.kind != "f":
                np.testing.assert_array_equal(got, want)
                continue
            assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want)), "C differs from onnxruntime"
    return compiled, verify(compile_model(path, "net", mode="int8", calib=data), samples)


def assert_same_on_cortex_m(compiled, feeds: list[dict[str, np.ndarray]], expected: list[list[np.ndarray]]) -> None:
    """The C on the emulated Cortex-M4 and M0+ gives `expected` (the host's outputs per sample) for
    the C API's inputs `feeds`. Without a target's tools: a skip, or a failure under CI=true."""
    import os

    from codegen import cross
    from codegen.targets import load_target

    for target in ("cortex-m4", "cortex-m0plus"):
        problem = cross.missing_tools(load_target(target))
        if problem:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{target}: {problem}")
            pytest.skip(f"{target}: {problem}")
        got = cross.run_samples(compiled.emitted.files, compiled.report["api"], feeds, target)
        for g, h in zip(got, expected):
            for a, b in zip(g, h):
                np.testing.assert_array_equal(a, b, err_msg=f"{target} differs from the host")


def random_feeds(rng, shapes: dict, count: int = 6, offset: bool = True) -> list[dict[str, np.ndarray]]:
    """Seeded inputs; each input gets its own random spread and (with `offset`) centre, so
    int8 zero points land all over [-128, 127]."""
    spec = {n: (rng.uniform(0.5, 3.0), rng.uniform(-2.0, 2.0) if offset else 0.0) for n in shapes}
    return [{n: (rng.standard_normal(s) * spec[n][0] + spec[n][1]).astype(np.float32) for n, s in shapes.items()}
            for _ in range(count)]


def check_op(model: onnx.ModelProto, shapes: dict, mode: str, rng, steps: float = 1.0, offset: bool = True,
             oracle=None, in_steps: float = 0.0):
    """One per-op configuration in one mode: float32 (C == NumPy == onnx.reference) or int8
    (C == int8 reference exactly, within `steps` output steps of the float model).
    `oracle` replaces onnx.reference where it is known to be wrong (it needs `run(None, feeds)`)."""
    feeds = random_feeds(rng, shapes, offset=offset)
    if mode == "float32":
        return check_float_model(model, feeds[0], oracle=oracle)
    return check_int8_model(model, feeds, steps, oracle=oracle, in_steps=in_steps)


ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_MODELS = {  # the example and the fixtures: name -> (model, calibration data or None for a QDQ model's own scales)
    "digits": (EXAMPLE / "digits.onnx", EXAMPLE / "calib.npz"),
    "torch_resnetish": (FIXTURES / "torch_resnetish.onnx", FIXTURES / "torch_resnetish.npz"),
    "torch_dynamo_mlp": (FIXTURES / "torch_dynamo_mlp.onnx", FIXTURES / "torch_dynamo_mlp.npz"),
    "skl_mlp": (FIXTURES / "skl_mlp.onnx", FIXTURES / "skl_mlp.npz"),
    "qdq_convnet": (FIXTURES / "qdq_convnet.onnx", None),
}

MODES = ["float32", "int8"]


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id, so every case reproduces alone."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


BACKEND_RESULTS: "collections.Counter[str]" = collections.Counter()


def pytest_terminal_summary(terminalreporter):
    if BACKEND_RESULTS:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(BACKEND_RESULTS.items()))
        terminalreporter.write_line(f"ONNX backend cases: {counts}")
