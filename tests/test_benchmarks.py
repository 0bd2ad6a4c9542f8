"""The performance suite runs, and its instruction counts are exact and repeatable.

Needs valgrind (host counts) and the Cortex-M toolchain and QEMU: without them these tests
skip with what to install; under CI=true (.ci/run installs them) a missing tool fails.
"""

import json
import os
import shutil

import numpy as np
import pytest

from benchmarks import models
from benchmarks.__main__ import main
from benchmarks.icount import count_instructions
from codegen import cross
from codegen.compiler import compile_model, quantize_inputs
from codegen.targets import load_target
from conftest import onnxruntime_oracle


def need_tools():
    problems = [cross.missing_tools(load_target("cortex-m4"))]
    if shutil.which("valgrind") is None:
        problems.append("valgrind not found; install with: apt-get install valgrind")
    problems = [p for p in problems if p]
    if problems:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


def _nops(count: int) -> tuple[dict, dict]:
    """A folder whose invoke runs `count` NOPs: the counted difference of two is exact."""
    files = {
        "k.h": "#include <stdint.h>\nint k_invoke(const int8_t *x, int8_t *y);\n",
        "k.c": '#include "k.h"\nint k_invoke(const int8_t *x, int8_t *y)\n{\n    y[0] = x[0];\n'
               f'    __asm__ __volatile__(".rept {count}\\n\\tnop\\n\\t.endr");\n    return 0;\n}}\n',
    }
    spec = {"name": "x", "dtype": "int8", "ctype": "int8_t", "size": 1, "shape": [1]}
    return files, {"invoke": "k_invoke", "inputs": [spec], "outputs": [{**spec, "name": "y"}]}


@pytest.mark.parametrize("target", ["cortex-m4", "host"])
def test_counts_are_exact(target):
    need_tools()
    sample = {"x": np.array([3], np.int8)}
    counts = [count_instructions(*_nops(n), sample, target) for n in (100, 350)]
    assert counts[1] - counts[0] == 250


def test_example_counts_repeat_and_scale():
    need_tools()
    compiled = compile_model(models.ROOT / "examples" / "digits" / "digits.onnx", mode="int8",
                             calib=models.ROOT / "examples" / "digits" / "calib.npz", target="cortex-m4")
    sample = quantize_inputs(compiled.graph, models.calibration_for("digits", 1, 0)[0])
    macs = compiled.report["macs"]
    for target, files in (("cortex-m4", compiled.emitted.files), ("host", compiled.host_files)):
        first = count_instructions(files, compiled.report["api"], sample, target)
        assert first == count_instructions(files, compiled.report["api"], sample, target)
        assert macs / 4 <= first <= 50 * macs


def test_suite_runs_on_one_model(tmp_path, capsys):
    need_tools()
    out = tmp_path / "results.json"
    assert main(["--models", "digits", "--modes", "int8", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [(r["target"], r["mode"]) for r in rows] == [("host", "int8"), ("cortex-m4", "int8")]
    for row in rows:
        assert row["instructions"] > row["macs"] / 4 and row["arena_bytes"] >= row["arena_lower_bound"] > 0
        assert row["code_bytes"] > 0 and row["const_bytes"] >= row["weights_bytes"]
        assert f"| digits | int8 | {row['target']} | 0.0 | {row['macs']:,} |" in table
    assert main(["--models", "nonsense"]) == 2


@pytest.mark.parametrize("name", [n for n in models.MODELS if n != "digits"])
def test_generated_models_compile_and_match_onnxruntime(name):
    """Each MLPerf Tiny model: valid ONNX, the imported float graph agrees with onnxruntime,
    and its convolution and dense MACs are the architecture's."""
    model = models.MODELS[name]()
    sample = models.calibration(model, 1, 0)[0]
    compiled = compile_model(model, name)
    session = onnxruntime_oracle(model)
    expected = session.run(None, sample)[0]
    from codegen.reference import run_float

    got = run_float(compiled.graph, sample)[compiled.graph.outputs[0]]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)
    weighted = sum(layer["macs"] for layer in compiled.report["layers"] if layer["op"] in ("Conv", "Gemm"))
    assert weighted == models.reference_macs(name)
