"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer.

The example, every fixture and a model with the kernel families they leave out, in each mode
(int8 with the --float-io wrapper and --arena extern, float32, sparse kernels at 75%, 2:4,
structured, the DSP kernels of a Cortex-M4 build), are built with gcc
`-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all` into a
standalone program (tests/sanitizer_driver.c as its main) and run on extreme and seeded
random inputs: int8 all -128, all 127, alternating, the zero point, random; float NaN,
+-Inf, +-3.4e38, denormals, +-0, mixtures and random values. Every run must exit 0 with
nothing on stderr (no sanitizer report), and the outputs must be the references' own:
- int8: equal, every byte, to codegen/reference.py run_int8 on the same inputs;
- --float-io: equal, every bit, to the int8 reference run on the inputs quantized as
  NAME_invoke_float quantizes them (io_quantize below, NaN -> the zero point) and dequantized;
- float32: within verify.FLOAT_TOLERANCE of run_float for finite inputs of moderate size;
  inputs of NaN, Inf or near FLT_MAX (whose sums overflow in an order of accumulation that
  C and NumPy need not share) must only run clean.
float-cast-overflow is not part of -fsanitize=undefined; it is added because converting a NaN
or out-of-range float to an integer is undefined behaviour in C.
Layers whose requantization saturates (test_saturated_requantization_is_defined_and_exact) and
requant.h on the edges of every parameter (test_requantization_edges_are_defined_and_exact)
are checked the same way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURE_MODELS
from test_sampling import sampling_model
from codegen.compiler import compile_model, write_folder
from codegen.passes.prune import PruneOptions
from codegen.reference import run_float, run_int8
from codegen.verify import FLOAT_TOLERANCE, within_tolerance

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "sanitizer_driver.c"

CC = "gcc" if shutil.which("gcc") or not shutil.which("clang") else "clang"  # same flags on both
SANITIZE = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined,float-cast-overflow",
            "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]  # warnings: the strict-flag tests
ENV = {"ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=1",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


@functools.lru_cache(maxsize=None)
def run_prefix() -> tuple[str, ...]:
    """Run sanitized programs with address randomization off where the system allows it
    (`setarch -R`): gcc 12's AddressSanitizer cannot map its shadow memory on kernels that
    randomize with 32 bits (vm.mmap_rnd_bits = 32, the default of recent distributions)."""
    setarch = shutil.which("setarch")
    if setarch is None:
        return ()
    prefix = (setarch, platform.machine(), "-R")
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return prefix if ok else ()


MODELS = dict(FIXTURE_MODELS, operators=(lambda: operators_model(), None))  # built below, with its own samples
MODELS["sampling"] = (lambda: sampling_model(), None)  # ConvTranspose, nearest and bilinear Resize (test_sampling)
MODES = {  # name: compile_model keyword arguments; int8, sparse and dsp with the arena the caller defines
    "int8": dict(mode="int8", float_io=True, arena="extern"),
    "float32": dict(mode="float32"),
    "sparse": dict(mode="int8", prune=PruneOptions(sparsity=0.75), encoding="sparse", arena="extern"),
    "2:4": dict(mode="int8", prune=PruneOptions(pattern="2:4")),
    "structured": dict(mode="int8", prune=PruneOptions(pattern="structured")),
    # the Cortex-M DSP kernels (runtime_c/opt/dsp) with their C in place of the instructions
    "dsp": dict(mode="int8", target="cortex-m4", arena="extern"),
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


def driver_header(report: dict, header: str) -> str:
    """sanitizer_model.h for the model whose NAME.h is `header`; an arena that NAME.h declares
    extern (--arena extern) is defined here, as firmware would, and the driver fills it with
    0xA5 before every inference (a kernel that reads arena bytes it has not written in the same
    inference then gives outputs other than the reference's)."""
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
    for m in re.finditer(r"^extern (int32_t (\w+)\[\w+\]);", header, re.M):
        lines += [f"{m.group(1)};", f"#define DRIVER_ARENA {m.group(2)}"]
    if api.get("invoke_float"):
        lines += ["#define DRIVER_HAS_FLOAT 1", invoke("invoke_float", "float")]
    return "\n".join(lines) + "\n"


_INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)


def _sources_key(source: Path, seen: set[str] | None = None) -> str:
    """The text of a C file and of every local header it includes, recursively."""
    seen = set() if seen is None else seen
    text = source.read_text()
    parts = [source.name, text]
    for name in _INCLUDE.findall(text):
        if name not in seen and (source.parent / name).is_file():
            seen.add(name)
            parts.append(_sources_key(source.parent / name, seen))
    return "\0".join(parts)


@pytest.fixture(scope="session")
def objects(tmp_path_factory) -> Path:
    """Sanitized object files shared by the tests, keyed by their sources: the runtime kernels
    of every model compiled under the same name are the same files, built once."""
    return tmp_path_factory.mktemp("sanitizer_objects")


class SanitizedModel:
    """A generated folder built with the sanitizers around tests/sanitizer_driver.c."""

    def __init__(self, compiled, tmp: Path, objects: Path):
        folder = write_folder(compiled.emitted, tmp / "model")
        harness = tmp / "harness"
        harness.mkdir()
        header = (folder / f"{compiled.report['model']}.h").read_text()
        (harness / "sanitizer_model.h").write_text(driver_header(compiled.report, header))
        self.exe = tmp / "driver"
        with ThreadPoolExecutor(max_workers=2) as pool:
            built = list(pool.map(lambda source: self._object(source, folder, harness, objects),
                                  sorted(folder.glob("*.c")) + [DRIVER]))
        proc = subprocess.run([CC, *SANITIZE, *map(str, built), "-o", str(self.exe), "-lm"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        self.api = compiled.report["api"]

    @staticmethod
    def _object(source: Path, folder: Path, harness: Path, objects: Path) -> Path:
        if source == DRIVER:  # depends on the model's header: never shared
            obj = harness / "driver.o"
        else:
            key = hashlib.sha256("\0".join([CC, *SANITIZE, _sources_key(source)]).encode()).hexdigest()[:32]
            obj = objects / f"{key}.o"
            if obj.is_file():
                return obj
        staged = obj.with_suffix(f".{threading.get_ident()}.tmp")
        proc = subprocess.run([CC, *SANITIZE, f"-I{folder}", f"-I{harness}", "-c", str(source), "-o", str(staged)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        os.replace(staged, obj)
        return obj

    def run(self, function: str, cases: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """Run every case (one array per model input) in one process; the outputs per case."""
        dtype = np.float32 if function == "invoke_float" else np.dtype(self.api["inputs"][0]["dtype"])
        stdin = b"".join(np.ascontiguousarray(x, dtype).tobytes() for case in cases for x in case)
        proc = subprocess.run([*run_prefix(), str(self.exe), function], input=stdin, capture_output=True, timeout=300,
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


def operators_model():
    """Every int8 and float32 kernel family the fixtures leave out, in one two-input,
    four-output model: dilated and 1-D convolutions, depthwise with stride 1 and 2, pointwise
    convolutions over 8 and 5 channels, MaxPool with padding, AveragePool, GlobalMaxPool,
    GlobalAveragePool, Add/Mul/Sub/Div with broadcasting, fused and unfused Clip,
    HardSigmoid, HardSwish, Transpose, Pad, ReduceMax, ReduceSum, Concat of differently scaled
    inputs, Gemm, Softmax, Sigmoid, Elu, Selu, Erf, Softplus, Mish, Gelu (both), Neg, Abs, Exp, Log,
    Sqrt, Reciprocal, an output copied from an input, MatMul of two activations followed by
    Softmax over axis 1, and Slice (negative step), Split, Expand, Tile, Gather, DepthToSpace and
    SpaceToDepth in a chain, LSTM and GRU, InstanceNormalization, LayerNormalization,
    LpNormalization (p 1 and 2), LogSoftmax, ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare,
    ReduceLogSumExp, PRelu, Max, Min, Sum, Mean, Pow and LRN. Returns (model, calibration samples)."""
    from conftest import make_model
    from onnx import helper

    rng = np.random.default_rng(7)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    inits = {"w1": f(8, 4, 3, 3) * 0.3, "b1": f(8) * 0.1, "wd": f(8, 1, 3, 3) * 0.5, "cm": f(1, 8, 1, 1),
             "three": np.array(3.0, np.float32), "lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32),
             "pads": np.array([0, 1, 0, 0, 0, 0, 1, 0], np.int64), "ax3": np.array([3], np.int64),
             "ax12": np.array([1, 2], np.int64), "w3": f(2, 3, 3) * 0.4, "wg": f(10, 43) * 0.2, "bg": f(10) * 0.1,
             "wd1": f(8, 1, 3, 3) * 0.5, "wp": f(5, 8, 1, 1) * 0.4, "wq": f(3, 5, 1, 1) * 0.4}
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="dilated", dilations=[2, 2], pads=[2, 2, 2, 2]),
        N("Relu", ["c1"], ["c1r"], name="relu"),
        N("MaxPool", ["c1r"], ["p1"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        N("Conv", ["c1r", "wd"], ["d1"], name="depthwise", group=8, strides=[2, 2], pads=[1, 1, 1, 1]),
        N("Add", ["p1", "d1"], ["a1"], name="add"),
        N("Mul", ["a1", "cm"], ["m1"], name="mul"),
        N("Sub", ["m1", "p1"], ["s1"], name="sub"),
        N("Div", ["s1", "three"], ["dv"], name="div"),
        N("Clip", ["dv", "lo", "hi"], ["cl"], name="clip"),
        N("HardSigmoid", ["cl"], ["hs"], name="hardsigmoid"),
        N("Transpose", ["hs"], ["t1"], name="transpose", perm=[0, 2, 3, 1]),
        N("Clip", ["t1", "lo", "hi"], ["tc"], name="clip_unfused"),
        N("HardSwish", ["tc"], ["th"], name="hardswish"),
        N("Pad", ["th", "pads"], ["pd"], name="pad"),
        N("ReduceMax", ["pd", "ax3"], ["rm"], name="reducemax", keepdims=1),
        N("ReduceSum", ["pd", "ax12"], ["rs"], name="reducesum", keepdims=0),
        N("GlobalMaxPool", ["c1r"], ["g1"], name="globalmax"),
        N("Flatten", ["g1"], ["gf"], name="flat_g"),
        N("Conv", ["z", "w3"], ["q1"], name="conv1d"),
        N("Flatten", ["q1"], ["qf"], name="flat_q"),
        N("AveragePool", ["q1"], ["aq"], name="avgpool", kernel_shape=[2], strides=[2]),
        N("Flatten", ["aq"], ["af"], name="flat_a"),
        N("Conv", ["c1r", "wd1"], ["e1"], name="depthwise_s1", group=8, pads=[1, 1, 1, 1]),
        N("Conv", ["e1", "wp"], ["e2"], name="pointwise"),
        N("Conv", ["e2", "wq"], ["e3"], name="pointwise_odd"),  # 5 input channels: not a multiple of 4
        N("GlobalAveragePool", ["e3"], ["e4"], name="globalavg"),
        N("Flatten", ["e4"], ["ef"], name="flat_e"),
        N("Concat", ["rs", "gf", "qf", "af", "ef"], ["cat"], name="concat", axis=1),
        N("Gemm", ["cat", "wg", "bg"], ["g2"], name="gemm", transB=1),
        N("Softmax", ["g2"], ["probs"], name="softmax", axis=-1),
        # the unary functions in one chain, each one's input inside the next one's domain
        N("Elu", ["rm"], ["u1"], name="elu", alpha=0.5),
        N("Selu", ["u1"], ["u2"], name="selu"),
        N("Erf", ["u2"], ["u3"], name="erf"),
        N("Softplus", ["u3"], ["u4"], name="softplus"),
        N("Mish", ["u4"], ["u5"], name="mish"),
        N("Gelu", ["u5"], ["u6"], name="gelu"),
        N("Gelu", ["u6"], ["u7"], name="gelu_tanh", approximate="tanh"),
        N("Neg", ["u7"], ["u8"], name="neg"),
        N("Abs", ["u8"], ["u9"], name="abs"),
        N("Exp", ["u9"], ["u10"], name="exp"),
        N("Log", ["u10"], ["u11"], name="log"),
        N("Sqrt", ["u11"], ["u12"], name="sqrt"),
        N("Reciprocal", ["u10"], ["u13"], name="reciprocal"),
        N("Add", ["u12", "u13"], ["u14"], name="add_unary"),
        N("Sigmoid", ["u14"], ["gate"], name="sigmoid"),
        N("Flatten", ["z"], ["z_flat"], name="flat_z"),  # an output copied from an input
        # a product of two activations (attention scores) normalized over a middle axis
        N("Transpose", ["z"], ["zt"], name="z_transposed", perm=[0, 2, 1]),
        N("MatMul", ["z", "zt"], ["zz"], name="matmul_runtime"),
        N("Softmax", ["zz"], ["scores"], name="softmax_axis1", axis=1),
        # views (negative, zero and repeated strides) and a row gather
        N("Slice", ["z", "sl_s", "sl_e", "sl_a", "sl_st"], ["zs"], name="slice_reversed"),
        N("Split", ["zs"], ["za", "zb"], name="split", axis=1, num_outputs=2),
        N("Expand", ["zb", "ex"], ["ze"], name="expand"),
        N("Concat", ["za", "ze"], ["zc"], name="concat_views", axis=2),
        N("Tile", ["zc", "reps"], ["zr"], name="tile"),
        N("Gather", ["zr", "gi"], ["zg"], name="gather", axis=2),
        N("Reshape", ["zg", "sq"], ["zq"], name="square"),
        N("DepthToSpace", ["zq"], ["zd"], name="depth_to_space", blocksize=2, mode="CRD"),
        N("SpaceToDepth", ["zd"], ["moved"], name="space_to_depth", blocksize=2),
        # recurrent layers over z's 3 steps of 10 (layout 1): a bidirectional LSTM, a GRU
        N("LSTM", ["z", "lw", "lr", "lb"], ["", "", "lstm_c"], name="lstm", hidden_size=4, layout=1,
          direction="bidirectional"),
        N("GRU", ["z", "gw", "gr"], ["gru_y"], name="gru", hidden_size=5, layout=1, linear_before_reset=1),
        # normalisations over z's rows and channels, and the reductions of z's last axis side by side
        N("InstanceNormalization", ["z", "in_s", "in_b"], ["zi"], name="instancenorm"),
        N("LayerNormalization", ["zi", "ln_s", "ln_b"], ["zl"], name="layernorm"),
        N("LpNormalization", ["zl"], ["zp1"], name="l1norm", axis=1, p=1),
        N("LpNormalization", ["zp1"], ["zp2"], name="l2norm"),
        N("LogSoftmax", ["zp2"], ["zls"], name="logsoftmax"),
        N("ReduceMin", ["z", "ax_last"], ["r_min"], name="reducemin"),
        N("ReduceL1", ["z", "ax_last"], ["r_l1"], name="reducel1"),
        N("ReduceL2", ["z", "ax_last"], ["r_l2"], name="reducel2"),
        N("ReduceSumSquare", ["z", "ax_last"], ["r_ss"], name="reducesumsquare"),
        N("ReduceLogSumExp", ["z", "ax_last"], ["r_lse"], name="reducelogsumexp"),
        N("Concat", ["r_min", "r_l1", "r_l2", "r_ss", "r_lse"], ["reductions"], name="concat_reductions", axis=2),
        # PRelu, the variadic Max, Min, Sum (two and three inputs), Mean and Pow over z
        N("PRelu", ["z", "pr_s"], ["zpr"], name="prelu"),
        N("Max", ["zpr", "z", "pr_k"], ["zmx"], name="max3"),
        N("Min", ["zmx", "zpr"], ["zmn"], name="min"),
        N("Sum", ["zmn", "z", "zpr"], ["zsm"], name="sum3"),
        N("Mean", ["zsm", "z"], ["zmean"], name="mean"),
        N("Pow", ["zmean", "pw"], ["zpw"], name="pow"),
        N("Sum", ["zpw", "zmn"], ["variadic"], name="sum2"),
        N("LRN", ["x"], ["lrn"], name="lrn", size=3, alpha=0.5),
    ]
    inits.update({"pr_s": np.array([[0.05], [-0.3], [0.0]], np.float32), "pr_k": f(10),
                  "pw": np.array(2.0, np.float32)})
    inits.update({"in_s": f(3) * 0.3 + 1, "in_b": f(3) * 0.2, "ln_s": f(10) * 0.3 + 1, "ln_b": f(10) * 0.2,
                  "ax_last": np.array([2], np.int64)})
    inits.update({"lw": f(2, 16, 10) * 0.4, "lr": f(2, 16, 4) * 0.4, "lb": f(2, 32) * 0.2, "gw": f(1, 15, 10) * 0.4,
                  "gr": f(1, 15, 5) * 0.4})
    inits.update({"sl_s": np.array([-1], np.int64), "sl_e": np.array([-(2**63)], np.int64),
                  "sl_a": np.array([2], np.int64), "sl_st": np.array([-2], np.int64),
                  "ex": np.array([1, 2, 5], np.int64), "reps": np.array([1, 2, 1], np.int64),
                  "gi": np.array([9, 0, -1, 3], np.int64), "sq": np.array([1, 4, 2, 2], np.int64)})
    model = make_model(nodes, [("x", [1, 4, 6, 6]), ("z", [1, 3, 10])],
                       [("probs", None), ("gate", None), ("z_flat", None), ("scores", None), ("moved", None),
                        ("lstm_c", None), ("gru_y", None), ("zls", None), ("reductions", None), ("variadic", None),
                        ("lrn", None)], inits,
                       opset=20, name="operators")
    calib = [{"x": f(1, 4, 6, 6), "z": f(1, 3, 10)} for _ in range(16)]
    return model, calib


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("model", list(MODELS))
def test_generated_c_runs_clean_under_sanitizers(model, mode, tmp_path, objects):
    """The model's C in one mode on the extreme and random inputs: clean, and the references' outputs."""
    path, calib = MODELS[model]
    if callable(path):
        path, calib = path()
    options = dict(MODES[mode])
    compiled = compile_model(path, "model", calib=calib, **options)  # one name: shared kernel objects
    if "prune" in options:  # the pruned weights must reach the C
        assert compiled.report["pruning"], "nothing was pruned"
    if mode == "sparse":
        assert any(layer.get("encoding", "dense") != "dense" for layer in compiled.report["layers"])
    if mode == "dsp":
        assert compiled.report["optimized_kernels"], "no DSP kernel in the folder"
    if options.get("arena") == "extern" and compiled.report["arena_bytes"]:
        assert re.search(r"^extern int32_t \w+_arena\[", compiled.emitted.files[f"{compiled.report['model']}.h"], re.M)
    sanitized = SanitizedModel(compiled, tmp_path, objects)
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


def unseen_direction_model():
    """A model whose calibration data leaves one input channel at about 1e-9: the layers that
    read only that channel get output scales near 4e-12 and requantization multipliers near
    1e7 (shift 24), with zero points near 124. Extreme int8 inputs then drive those channels'
    requantized values to the int32 limits, where adding the zero point must not overflow.
    Covers the dense and sparse convolution, depthwise convolution and fully connected kernels."""
    from conftest import make_model
    from onnx import helper

    rng = np.random.default_rng(12)
    pick = np.zeros((8, 2, 1, 1), np.float32)
    pick[:4, 0] = rng.uniform(-1, 1, (4, 1, 1))
    pick[4:, 1, 0, 0] = [1.0, 0.5, 0.25, 2.0]  # channels 4..7 see only the unseen channel
    depthwise = rng.uniform(0.5, 1.0, (8, 1, 3, 3)).astype(np.float32)
    fc = np.zeros((4, 8 * 16), np.float32)
    fc[:, 64:] = rng.uniform(0.5, 1.0, (4, 64))  # reads only channels 4..7 of the depthwise output
    nodes = [helper.make_node("Conv", ["x", "pick"], ["a"], name="pick"),
             helper.make_node("Conv", ["a", "dw"], ["b"], name="dw", group=8, pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["b"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]
    model = make_model(nodes, [("x", [1, 2, 4, 4])], [("y", [1, 4])], {"pick": pick, "dw": depthwise, "fc": fc})
    calib = []
    for _ in range(16):
        x = np.empty((1, 2, 4, 4), np.float32)
        x[:, 0] = rng.uniform(-1, 1, (1, 4, 4))
        x[:, 1] = rng.uniform(-1e-9, 1e-11, (1, 4, 4))
        calib.append({"x": x})
    return model, calib


def near_limit_model():
    """Requantization multipliers of 2^30 * (1 - 2^-24) (m0 = 2^31 - 126, shift 30) in a 1x1
    convolution and a Gemm with output zero point 127: the calibration sees one input channel
    at 0 and 1.000007 (input scale 1.000007 / 255) and a constant output of -7.3e-12 (the
    bias), values found by searching float32 scales for a mantissa this close to 1. An int8
    input of 127 saturates the requantization at m0, 126 below INT32_MAX, where adding the zero
    point 127 would overflow."""
    from conftest import make_model
    from onnx import helper

    r, b = 1.000007152557373, -7.333301500767053e-12
    w = np.array([[1.0, 0.0]], np.float32)
    nodes = [helper.make_node("Conv", ["x", "wc", "b"], ["y_conv"], name="conv"),
             helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wf", "b"], ["y_fc"], name="fc", transB=1)]
    model = make_model(nodes, [("x", [1, 2, 1, 1])], [("y_conv", [1, 1, 1, 1]), ("y_fc", [1, 1])],
                       {"wc": w.reshape(1, 2, 1, 1), "wf": w, "b": np.array([b], np.float32)})
    calib = [{"x": np.array([0.0, v], np.float32).reshape(1, 2, 1, 1)} for v in (0.0, r)]
    return model, calib


@pytest.mark.parametrize("variant", ["dense", "sparse", "dsp"])
@pytest.mark.parametrize("build,min_shift", [(unseen_direction_model, 16), (near_limit_model, 30)],
                         ids=["unseen_direction", "near_limit"])
def test_saturated_requantization_is_defined_and_exact(build, min_shift, variant, tmp_path, objects):
    """Extreme int8 inputs through layers whose multipliers saturate the requantization (dense,
    sparse and DSP kernels): clean under UBSan, every output byte equal to run_int8."""
    model, calib = build()
    options = dict(target="cortex-m4") if variant == "dsp" else dict(encoding=variant)
    compiled = compile_model(model, "model", mode="int8", calib=calib, **options)
    shifts = [s for layer in compiled.graph.nodes for s in np.ravel(layer.attrs.get("q", {}).get("shift", []))]
    assert max(shifts) >= min_shift  # multipliers large enough to saturate
    sanitized = SanitizedModel(compiled, tmp_path, objects)
    graph = compiled.graph
    t = graph.tensors[graph.inputs[0]]
    cases = [[c] for c in int8_cases(t.shape, t.quant.zero_point, np.random.default_rng(5))]
    for case, got in zip(cases, sanitized.run("invoke", cases)):
        ref = run_int8(graph, {graph.inputs[0]: case[0]})
        for name, c in zip(graph.outputs, got):
            assert np.array_equal(c, ref[name]), name


REQUANT_PROGRAM = r"""
#include <stdio.h>
#include "requant.h"
#include "requant_dsp.h"

/* stdin: records of six int32 (acc, m0, shift, offset, lo, hi); stdout: per record the int32
 * nn_requantize(acc, m0, shift), the int32 value of nn_output_s8(acc, m0, shift, offset, lo, hi)
 * and, where nn_requant_dsp_fits(|acc|, shift, offset), the DSP kernels' form of it (C in place
 * of SMMLAR), clamped to [lo, hi]; elsewhere -1000. */
int main(void)
{
    int32_t r[6];
    while (fread(r, sizeof r[0], 6, stdin) == 6) {
        const int64_t magnitude = r[0] < 0 ? -(int64_t)r[0] : (int64_t)r[0];
        int32_t out[3];
        out[0] = nn_requantize(r[0], r[1], r[2]);
        out[1] = nn_output_s8(r[0], r[1], r[2], r[3], r[4], r[5]);
        out[2] = -1000;
        if (nn_requant_dsp_fits(magnitude, r[2], r[3])) {
            const int32_t c = nn_requant_dsp_c(r[2], r[3]);
            out[2] = nn_clamp_s32(nn_requant_dsp(r[0], r[1], -r[2], c), r[4], r[5]);
        }
        if (fwrite(out, sizeof out[0], 3, stdout) != 3) {
            return 2;
        }
    }
    return 0;
}
"""


def test_requantization_edges_are_defined_and_exact(tmp_path):
    """requant.h at the extremes of every parameter (acc at the int32 limits, m0 up to 2^31 - 1,
    shift -31..30, output offsets and clamps of the int8 range) under UBSan, equal to its twin
    codegen/fixedpoint.py (requantize, output_s8); requant_dsp.h's form, wherever it applies,
    equal to them too."""
    from codegen.fixedpoint import INT32_MAX, INT32_MIN, output_s8, requantize

    rng = np.random.default_rng(31)
    accs = [INT32_MIN, INT32_MIN + 1, -2**30, -65536, -255, -1, 0, 1, 255, 65536, 2**30, INT32_MAX - 1, INT32_MAX]
    m0s = [0, 1, 2**30, 2**30 + 1, 2**31 - 128, 2**31 - 127, 2**31 - 2, 2**31 - 1]
    shifts = [-31, -30, -1, 0, 1, 2, 15, 30]
    offsets = [-128, -1, 0, 1, 127]
    clamps = [(-128, 127), (0, 127), (-128, -128), (127, 127), (5, 6)]
    grid = np.array([(a, m, s, o, lo, hi) for a in accs for m in m0s for s in shifts for o in offsets
                     for lo, hi in clamps], np.int64)
    count = 200_000
    lo = rng.integers(-128, 128, count)
    random = np.stack([rng.integers(INT32_MIN, INT32_MAX, count, endpoint=True), rng.integers(2**30, 2**31, count),
                       rng.integers(-31, 31, count), rng.integers(-128, 128, count), lo,
                       rng.integers(lo, 128)], axis=1)
    half = count // 2
    lo = rng.integers(-128, 128, half)
    dsp_range = np.stack([rng.integers(-2**29, 2**29, half, endpoint=True), rng.integers(2**30, 2**31, half),
                          rng.integers(-31, 0, half), rng.integers(-128, 128, half), lo,
                          rng.integers(lo, 128)], axis=1)  # where the DSP form applies
    records = np.concatenate([grid, random, dsp_range]).astype(np.int32)
    (tmp_path / "requant_edges.c").write_text(REQUANT_PROGRAM)
    exe = tmp_path / "requant_edges"
    include = HERE.parent / "runtime_c" / "include"
    proc = subprocess.run([CC, *SANITIZE, f"-I{include}", str(tmp_path / "requant_edges.c"), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*run_prefix(), str(exe)], input=records.tobytes(), capture_output=True, timeout=120,
                          env={**os.environ, **ENV})
    report = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0 and not report, report
    got = np.frombuffer(proc.stdout, np.int32).reshape(-1, 3)
    acc, m0, shift, offset, lo, hi = records.astype(np.int64).T
    expected = requantize(acc, m0, shift)
    assert np.array_equal(got[:, 0], expected)
    out = output_s8(acc, m0, shift, offset, lo, hi)
    assert np.array_equal(got[:, 1], out)
    dsp = got[:, 2] != -1000
    assert dsp.sum() > 90_000
    assert np.array_equal(got[dsp, 2], out[dsp])
