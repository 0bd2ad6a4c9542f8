"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer.

The example and every fixture, in each mode (int8 with the --float-io wrapper, float32,
sparse kernels at 75%, 2:4, structured), are built with gcc
`-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all` into a standalone
program (tests/sanitizer_driver.c as its main) and run on extreme and seeded random inputs:
int8 all -128, all 127, alternating, the zero point, random; float NaN, +-Inf, +-3.4e38,
denormals, +-0, mixtures and random values. Every run must exit 0 with nothing on stderr
(no sanitizer report), and the outputs must be the references' own:
- int8: equal, every byte, to codegen/reference.py run_int8 on the same inputs;
- --float-io: equal, every bit, to the int8 reference run on the inputs quantized as
  NAME_invoke_float quantizes them (io_quantize below, NaN -> the zero point) and dequantized;
- float32: within verify.FLOAT_TOLERANCE of run_float for finite inputs of moderate size;
  inputs of NaN, Inf or near FLT_MAX (whose sums overflow in an order of accumulation that
  C and NumPy need not share) must only run clean.
float-cast-overflow is not part of -fsanitize=undefined; it is added because converting a NaN
or out-of-range float to an integer is undefined behaviour in C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.compiler import compile_model, write_folder
from codegen.passes.prune import PruneOptions
from codegen.reference import run_float, run_int8
from codegen.verify import FLOAT_TOLERANCE, within_tolerance

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "digits"
FIXTURES = HERE / "fixtures"
DRIVER = HERE / "sanitizer_driver.c"

CC = "gcc"
SANITIZE = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined,float-cast-overflow",
            "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-Wall", "-Wextra", "-Werror", "-pedantic"]
ENV = {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

MODELS = {  # name: (model, calibration data or None for a QDQ model's own scales)
    "digits": (EXAMPLE / "digits.onnx", EXAMPLE / "calib.npz"),
    "torch_resnetish": (FIXTURES / "torch_resnetish.onnx", FIXTURES / "torch_resnetish.npz"),
    "torch_dynamo_mlp": (FIXTURES / "torch_dynamo_mlp.onnx", FIXTURES / "torch_dynamo_mlp.npz"),
    "skl_mlp": (FIXTURES / "skl_mlp.onnx", FIXTURES / "skl_mlp.npz"),
    "qdq_convnet": (FIXTURES / "qdq_convnet.onnx", None),
}
MODES = {  # name: compile_model keyword arguments
    "int8": dict(mode="int8", float_io=True),
    "float32": dict(mode="float32"),
    "sparse": dict(mode="int8", prune=PruneOptions(sparsity=0.75), encoding="sparse"),
    "2:4": dict(mode="int8", prune=PruneOptions(pattern="2:4")),
    "structured": dict(mode="int8", prune=PruneOptions(pattern="structured")),
}

F32 = np.finfo(np.float32)


def int8_cases(shape: tuple[int, ...], zero_point: int, rng: np.random.Generator) -> list[np.ndarray]:
    n = int(np.prod(shape))
    alternating = np.where(np.arange(n) % 2 == 0, -128, 127)
    cases = [np.full(n, -128), np.full(n, 127), alternating, -1 - alternating, np.full(n, zero_point),
             rng.choice([-128, 127], n)]
    cases += [rng.integers(-128, 128, n) for _ in range(4)]
    return [c.astype(np.int8).reshape(shape) for c in cases]


SPECIAL = np.array([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, F32.max, F32.smallest_subnormal,
                    -F32.smallest_subnormal, 1e-39, 0.0, -0.0, 1.0], np.float32)


def float_cases(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[np.ndarray, bool]]:
    """(input, comparable): comparable inputs are finite and of moderate size."""
    n = int(np.prod(shape))
    extreme = [np.full(n, v, np.float32) for v in SPECIAL[:9]]
    extreme += [np.where(np.arange(n) % 2 == 0, 3.4e38, -3.4e38).astype(np.float32),
                rng.choice(SPECIAL, n).astype(np.float32)]
    moderate = [np.zeros(n, np.float32), np.full(n, -0.0, np.float32), np.full(n, 1e-39, np.float32),
                rng.choice([F32.smallest_subnormal, -F32.smallest_subnormal, 1e-39, 0.0], n).astype(np.float32)]
    moderate += [rng.standard_normal(n).astype(np.float32) * s for s in (1.0, 1.0, 1.0, 30.0)]
    return [(c.reshape(shape), False) for c in extreme] + [(c.reshape(shape), True) for c in moderate]


def io_quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """NumPy twin of NAME_invoke_float's quantizer (codegen/emit/templates/model_io.c.j2), in
    float32 as the C computes it: v = x / scale; NaN -> 0; clamp to [-512, 512]; round half away
    from zero; add the zero point; saturate to int8."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = np.asarray(x, np.float32) / np.float32(scale)
    v = np.where(np.isnan(v), np.float32(0), v)
    v = np.clip(v, np.float32(-512), np.float32(512))
    q = np.trunc(v)
    rest = v - q
    q = q + np.where(rest >= 0.5, 1, np.where(rest <= -0.5, -1, 0))
    return np.clip(q.astype(np.int32) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The float wrapper's output: SCALE * (float)(q - ZERO_POINT), in float32."""
    return np.float32(scale) * (q.astype(np.int32) - zero_point).astype(np.float32)


def driver_header(report: dict) -> str:
    api = report["api"]
    prefix = report["model"]

    def invoke(function: str, ctype: str) -> str:
        args = [f"(const {ctype} *)in[{i}]" for i in range(len(api["inputs"]))]
        args += [f"({ctype} *)out[{i}]" for i in range(len(api["outputs"]))]
        return (f"static int driver_{function}(void *const *in, void *const *out)\n"
                f"{{\n    return {api[function]}({', '.join(args)});\n}}\n")

    ctype = api["inputs"][0]["ctype"]
    lines = [f'#include "{prefix}.h"', "#include <stddef.h>",
             f"#define DRIVER_INPUTS {len(api['inputs'])}",
             f"#define DRIVER_OUTPUTS {len(api['outputs'])}",
             f"#define DRIVER_INVOKE_ELEMENT sizeof({ctype})",
             "static const size_t driver_input_sizes[] = {" + ", ".join(str(t["size"]) for t in api["inputs"]) + "};",
             "static const size_t driver_output_sizes[] = {" + ", ".join(str(t["size"]) for t in api["outputs"]) + "};",
             invoke("invoke", ctype)]
    if api.get("invoke_float"):
        lines += ["#define DRIVER_HAS_FLOAT 1", invoke("invoke_float", "float")]
    return "\n".join(lines) + "\n"


class SanitizedModel:
    """A generated folder built with the sanitizers around tests/sanitizer_driver.c."""

    def __init__(self, compiled, tmp: Path):
        folder = write_folder(compiled.emitted, tmp / "model")
        harness = tmp / "harness"
        harness.mkdir()
        (harness / "sanitizer_model.h").write_text(driver_header(compiled.report))
        self.exe = tmp / "driver"
        sources = sorted(str(p) for p in folder.glob("*.c"))
        proc = subprocess.run([CC, *SANITIZE, f"-I{folder}", f"-I{harness}", *sources, str(DRIVER),
                               "-o", str(self.exe), "-lm"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        self.api = compiled.report["api"]

    def run(self, function: str, cases: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """Run every case (one array per model input) in one process; the outputs per case."""
        dtype = np.float32 if function == "invoke_float" else np.dtype(self.api["inputs"][0]["dtype"])
        stdin = b"".join(np.ascontiguousarray(x, dtype).tobytes() for case in cases for x in case)
        proc = subprocess.run([str(self.exe), function], input=stdin, capture_output=True, timeout=300,
                              env={**os.environ, **ENV})
        report = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0 and not report, f"{function} exited {proc.returncode}:\n{report}"
        flat = np.frombuffer(proc.stdout, dtype)
        sizes = [t["size"] for t in self.api["outputs"]]
        assert flat.size == len(cases) * sum(sizes)
        results, at = [], 0
        for _ in cases:
            outs = []
            for spec in self.api["outputs"]:
                outs.append(flat[at:at + spec["size"]].reshape(spec["shape"]))
                at += spec["size"]
            results.append(outs)
        return results


@pytest.mark.skipif(shutil.which(CC) is None, reason="gcc is needed to build with the sanitizers")
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("model", list(MODELS))
def test_generated_c_runs_clean_under_sanitizers(model, mode, tmp_path):
    path, calib = MODELS[model]
    options = dict(MODES[mode])
    compiled = compile_model(path, calib=calib, **options)
    if "prune" in options:  # the pruned weights must reach the C
        assert compiled.report["pruning"], "nothing was pruned"
    if mode == "sparse":
        assert any(layer.get("encoding", "dense") != "dense" for layer in compiled.report["layers"])
    sanitized = SanitizedModel(compiled, tmp_path)
    graph = compiled.graph
    inputs = [graph.tensors[n] for n in graph.inputs]
    rng = np.random.default_rng(sum(map(ord, model + mode)))

    if compiled.mode == "float32":
        per_input = [float_cases(t.shape, rng) for t in inputs]
        cases = [[c[k][0] for c in per_input] for k in range(len(per_input[0]))]
        comparable = [all(c[k][1] for c in per_input) for k in range(len(per_input[0]))]
        for case, ok, got in zip(cases, comparable, sanitized.run("invoke", cases)):
            if ok:
                ref = run_float(graph, dict(zip(graph.inputs, case)))
                for name, c in zip(graph.outputs, got):
                    assert within_tolerance(c, ref[name], FLOAT_TOLERANCE), f"{name} differs from run_float"
        return

    per_input = [int8_cases(t.shape, t.quant.zero_point, rng) for t in inputs]
    cases = [[c[k] for c in per_input] for k in range(len(per_input[0]))]
    for case, got in zip(cases, sanitized.run("invoke", cases)):
        ref = run_int8(graph, dict(zip(graph.inputs, case)))
        for name, c in zip(graph.outputs, got):
            assert np.array_equal(c, ref[name]), f"{name} differs from run_int8 on {case[0].reshape(-1)[:4]}..."

    if compiled.report["api"].get("invoke_float"):
        per_input = [float_cases(t.shape, rng) for t in inputs]
        cases = [[c[k][0] for c in per_input] for k in range(len(per_input[0]))]
        for case, got in zip(cases, sanitized.run("invoke_float", cases)):
            feeds = {n: io_quantize(x, graph.tensors[n].quant.scale, graph.tensors[n].quant.zero_point)
                     for n, x in zip(graph.inputs, case)}
            ref = run_int8(graph, feeds)
            for name, c in zip(graph.outputs, got):
                q = graph.tensors[name].quant
                assert np.array_equal(c, dequantize(ref[name], q.scale, q.zero_point)), \
                    f"{name} differs from the int8 reference of the quantized input"
