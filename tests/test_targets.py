"""The generated C on every ARM target, under emulation: the same bytes as the host.

Without a target's toolchain or emulator these tests skip with what to install; under
CI=true (where .ci/run installs them) a missing tool is a failure.
"""

import os
import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen import cross
from codegen.build import HostModel
from codegen.cli import main
from codegen.compiler import compile_model, quantize_inputs
from codegen.targets import load_target, target_names
from codegen.samples import load_samples
from codegen.verify import verify
from conftest import make_model, random_feeds
from test_conv import conv_chain_model
from test_end_to_end import EXAMPLE

TARGETS = [t for t in target_names() if t != "host"]


def need(target: str) -> None:
    problem = cross.missing_tools(load_target(target))
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{target}: {problem}")
        pytest.skip(f"{target}: {problem}")


@pytest.mark.parametrize("target", TARGETS)
def test_example_is_identical_on_target(target):
    need(target)
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz", measure=True,
                             target=target)
    samples, labels = load_samples(EXAMPLE / "test.npz", compiled.graph)
    result = verify(compiled, samples[:40], labels[:40], target=target)
    assert result["target_equal"] and result["bit_exact"]
    sizes = compiled.report["sizes"]
    assert sizes["target"] == target and sizes["const_bytes"] >= compiled.report["weights_bytes"]
    assert sizes["bss_bytes"] >= compiled.report["arena_bytes"] and sizes["stack_bytes"] > 0


@pytest.mark.parametrize("target", ["cortex-m4", "armv7-linux", "aarch64-linux"])
def test_float_example_on_target(target):
    need(target)
    compiled = compile_model(EXAMPLE / "digits.onnx")
    samples, _ = load_samples(EXAMPLE / "test.npz", compiled.graph)
    assert verify(compiled, samples[:10], target=target)["target_equal"]


def _op_models():
    """One small model per int8 kernel (and kernel variant), seeded."""
    rng = np.random.default_rng(7)
    w = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    x4 = [("X", (1, 4, 6, 6))]
    return {
        "conv": (make_model([helper.make_node("Conv", ["X", "W", "B"], ["Y"], pads=[1, 0, 2, 1], strides=[2, 1],
                                              dilations=[1, 2])], x4, [("Y", None)], {"W": w(6, 4, 3, 2), "B": w(6)}), x4),
        "conv-depthwise-relu6": (make_model([helper.make_node("Conv", ["X", "W"], ["C"], group=4, pads=[1, 1, 1, 1]),
                                             helper.make_node("Clip", ["C", "lo", "hi"], ["Y"])], x4, [("Y", None)],
                                            {"W": w(4, 1, 3, 3), "lo": np.float32(0), "hi": np.float32(6)}), x4),
        "conv-depthwise-wide": (make_model([helper.make_node("Conv", ["X", "W", "B"], ["C"], group=3, pads=[1, 0, 0, 2]),
                                            helper.make_node("Conv", ["C", "V"], ["Y"], group=3, strides=[2, 2],
                                                             pads=[1, 1, 1, 1])],
                                           [("X", (1, 3, 4, 71))], [("Y", None)],
                                           {"W": w(3, 1, 3, 3), "B": w(3), "V": w(3, 1, 3, 3)}), [("X", (1, 3, 4, 71))]),
        "conv-1x1": (make_model([helper.make_node("Conv", ["X", "W"], ["Y"])], x4, [("Y", None)], {"W": w(8, 4, 1, 1)}),
                     x4),
        "conv-chain-in-place": (conv_chain_model(rng, (1, 3, 7, 5)), [("X", (1, 3, 7, 5))]),
        "conv-grouped": (make_model([helper.make_node("Conv", ["X", "W"], ["Y"], group=2, pads=[1, 1, 1, 1])], x4,
                                    [("Y", None)], {"W": w(6, 2, 3, 3)}), x4),
        "gemm": (make_model([helper.make_node("Gemm", ["A", "W", "B"], ["Y"], transB=1)], [("A", (2, 20))],
                            [("Y", None)], {"W": w(7, 20), "B": w(7)}), [("A", (2, 20))]),
        "gemm-odd-k-relu": (make_model([helper.make_node("Gemm", ["A", "W"], ["G"]), helper.make_node("Relu", ["G"], ["Y"])],
                                       [("A", (3, 37))], [("Y", None)], {"W": w(37, 5)}), [("A", (3, 37))]),
        "matmul-const-left": (make_model([helper.make_node("MatMul", ["W", "A"], ["Y"])], [("A", (12, 3))],
                                         [("Y", None)], {"W": w(5, 12)}), [("A", (12, 3))]),
        "add-broadcast": (make_model([helper.make_node("Add", ["X", "K"], ["Y"])], x4, [("Y", None)], {"K": w(4, 1, 1)}),
                          x4),
        "sub-residual": (make_model([helper.make_node("Sub", ["X", "Z"], ["Y"])], x4 + [("Z", (1, 4, 6, 6))],
                                    [("Y", None)]), x4 + [("Z", (1, 4, 6, 6))]),
        "mul": (make_model([helper.make_node("Mul", ["X", "K"], ["Y"])], x4, [("Y", None)], {"K": w(6)}), x4),
        "div-activations": (make_model([helper.make_node("Div", ["X", "Z"], ["Y"])], x4 + [("Z", (4, 1, 6))],
                                       [("Y", None)]), x4 + [("Z", (4, 1, 6))]),
        "pools": (make_model([helper.make_node("AveragePool", ["X"], ["P"], kernel_shape=[3, 3], strides=[2, 2],
                                               ceil_mode=1, pads=[1, 1, 1, 1]),
                              helper.make_node("MaxPool", ["P"], ["Y"], kernel_shape=[2, 2])], x4, [("Y", None)]), x4),
        "lut-softmax": (make_model([helper.make_node("Tanh", ["A"], ["T"]), helper.make_node("Softmax", ["T"], ["Y"])],
                                   [("A", (2, 9))], [("Y", None)]), [("A", (2, 9))]),
        "reduce-concat-transpose-pad": (make_model(
            [helper.make_node("ReduceMean", ["X"], ["R"], axes=[2, 3]), helper.make_node("ReduceMax", ["X"], ["M"], axes=[2, 3]),
             helper.make_node("Concat", ["R", "M"], ["C"], axis=1), helper.make_node("Transpose", ["C"], ["T"], perm=[0, 2, 3, 1]),
             helper.make_node("Pad", ["T", "p"], ["Y"])], x4, [("Y", None)], {"p": np.array([0, 1, 0, 0, 0, 0, 1, 2])},
            opset=13), x4),
    }


OP_MODELS = _op_models()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", sorted(OP_MODELS))
def test_int8_kernels_are_identical_on_target(target, case):
    need(target)
    model, inputs = OP_MODELS[case]
    rng = np.random.default_rng(11)
    feeds = random_feeds(rng, dict(inputs), count=4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    if load_target(target)["features"]["dsp"] and case.startswith("gemm"):
        assert "opt/dsp/nn_fc_s8.c" in compiled.report["optimized_kernels"]
    if load_target(target)["features"]["dsp"] and case.startswith("conv"):
        kernel = "nn_conv_dw_s8" if "depthwise" in case else "nn_conv_s8"
        assert f"opt/dsp/{kernel}.c" in compiled.report["optimized_kernels"]
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    # the host runs the portable kernels; the target its own (DSP ones where it has the extension)
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    want = [host.run([s[n] for n in compiled.graph.inputs]) for s in q]
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for g, h in zip(got, want):
        for a, b in zip(g, h):
            np.testing.assert_array_equal(a, b)


def test_over_budget_names_both_numbers(tmp_path, capsys):
    need("cortex-m0plus")
    rng = np.random.default_rng(5)
    model = make_model([helper.make_node("Gemm", ["x", "W"], ["y"])], [("x", (1, 600))], [("y", None)],
                       {"W": rng.standard_normal((600, 600)).astype(np.float32)})
    path = tmp_path / "big.onnx"
    onnx.save(model, str(path))
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((4, 600)).astype(np.float32))
    args = ["compile", str(path), "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "out"), "--target",
            "cortex-m0plus"]
    assert main(args) == 2
    err = capsys.readouterr().err
    # refused from the weight tables alone, before any C compiler runs
    assert "360000 B" in err and "flash budget of 262144 B" in err and not (tmp_path / "out").exists()
    # the tables fit, the measured build (tables and code) does not
    assert main(args + ["--flash-budget", "365600"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"flash \d+ B exceeds the cortex-m0plus budget of 365600 B", err) and not (tmp_path / "out").exists()
    assert main(args + ["--flash-budget", "1000000"]) == 0


def test_float_softmax_on_cortex_m():
    """A float kernel that calls libm (expf) links and agrees on the emulated core."""
    need("cortex-m4")
    model, inputs = OP_MODELS["lut-softmax"]
    compiled = compile_model(model, "net")
    feeds = random_feeds(np.random.default_rng(3), dict(inputs), count=3)
    assert verify(compiled, feeds, target="cortex-m4")["target_equal"]


def test_float_unary_functions_on_cortex_m():
    """The float unary kernels that call libm (expf, logf, sqrtf, erff, log1pf, tanhf) link and
    agree on the emulated core, each one's input inside the next one's domain."""
    need("cortex-m4")
    chain = [("Elu", {}), ("Selu", {}), ("Erf", {}), ("Softplus", {}), ("Mish", {}), ("Gelu", {}),
             ("Gelu", {"approximate": "tanh"}), ("Neg", {}), ("Abs", {}), ("Exp", {}), ("Log", {}), ("Sqrt", {}),
             ("Reciprocal", {})]
    names = ["A"] + [f"t{i}" for i in range(len(chain) - 1)] + ["Y"]
    nodes = [helper.make_node(op, [names[i]], [names[i + 1]], **attrs) for i, (op, attrs) in enumerate(chain)]
    compiled = compile_model(make_model(nodes, [("A", (2, 9))], [("Y", None)], opset=20), "net")
    feeds = random_feeds(np.random.default_rng(5), {"A": (2, 9)}, count=3)
    assert verify(compiled, feeds, target="cortex-m4")["target_equal"]


CORTEX_M = [t for t in TARGETS if load_target(t)["run"]["kind"] == "semihosting"]
TRAP_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>

static volatile uint32_t words[2] = {0x01020304u, 0x05060708u};
static volatile int32_t divisor = %(divisor)d;

int main(void)
{
    uint32_t v = 0;
    printf("before %%d\n", (int)(100 / divisor));
#if %(unaligned)d
    /* an LDR at an odd address */
    __asm__ volatile("ldr %%0, [%%1]" : "=r"(v) : "r"((const volatile uint8_t *)words + 1) : "memory");
#endif
    printf("after %%lu\n", (unsigned long)v);
    return 0;
}
"""


def run_trap_program(target: str, tmp_path, unaligned: bool, divisor: int):
    source = TRAP_PROGRAM % {"unaligned": int(unaligned), "divisor": divisor}
    tmp_path.mkdir()
    image = cross.build_image({}, source, target, tmp_path)
    proc = subprocess.run(cross.emulator_command(target, image), cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]})
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", CORTEX_M)
def test_harness_traps_unaligned_access_and_division_by_zero(target, tmp_path):
    """The test images run with unaligned-access and divide-by-zero traps on (ARMv6-M has no
    divide instruction and always traps unaligned accesses), and a fault is a failed run that
    says what happened, never a hang: so every emulated test proves the C makes neither."""
    need(target)
    status, out = run_trap_program(target, tmp_path / "clean", False, 4)
    assert status == 0 and "before 25" in out and "after 0" in out, out
    status, out = run_trap_program(target, tmp_path / "unaligned", True, 4)
    assert status == 1 and "before 25" in out and "after" not in out, out
    assert "fault: " in out and (" pc=0x" in out), out
    v6m = any(f.startswith("-mcpu=cortex-m0") for f in load_target(target)["cflags"])  # ARMv6-M
    if not v6m:
        assert "(unaligned access)" in out, out
        status, out = run_trap_program(target, tmp_path / "divide", False, 0)
        assert status == 1 and "(divide by zero)" in out and "before" not in out, out
