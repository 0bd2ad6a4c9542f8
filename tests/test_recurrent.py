"""LSTM and GRU: float32 and int8 against onnx.reference, the C against the NumPy twins (float
bit for bit with the C library's expf and tanhf in the twin, int8 always bit for bit), the int8
kernels on the emulated Cortex-M4 and M0+, the gate tables, and the rejections."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import codegen.ops.recurrent as recurrent
from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.paths import RUNTIME_DIR
from codegen.reference import run_float, run_int8
from codegen.verify import verify
from conftest import check_fixture, check_float_model, make_model, random_feeds
from test_targets import need

S, B, I, H = 5, 2, 3, 4  # sequence, batch, input and hidden sizes of the per-op cases


def rnn_model(rng, kind, direction="forward", layout=0, outputs=("Y", "Y_h", "Y_c"), lbr=0, init=False,
              cell_scale=1.0, lens=False, zero_p=False, attrs=None, seq=S, batch=B, inp=I, hidden=H):
    """One LSTM or GRU node on input X; returns (model, X shape)."""
    d = 2 if direction == "bidirectional" else 1
    g = recurrent.GATES[kind]
    inits = {"W": (rng.standard_normal((d, g * hidden, inp)) * 0.5).astype(np.float32),
             "R": (rng.standard_normal((d, g * hidden, hidden)) * 0.5).astype(np.float32),
             "B": (rng.standard_normal((d, 2 * g * hidden)) * 0.3).astype(np.float32)}
    ins = ["X", "W", "R", "B", ""]
    if lens:
        inits["L"] = np.full(batch, seq, np.int32)
        ins[4] = "L"
    state = (batch, d, hidden) if layout else (d, batch, hidden)
    if init:
        inits["h0"] = np.tanh(rng.standard_normal(state)).astype(np.float32)
        ins.append("h0")
        if kind == "LSTM":
            inits["c0"] = (rng.standard_normal(state) * cell_scale).astype(np.float32)
            ins.append("c0")
    if zero_p:
        inits["P"] = np.zeros((d, 3 * hidden), np.float32)
        ins += [""] * (7 - len(ins)) + ["P"]
    while ins[-1] == "":
        ins.pop()
    node_attrs = {"hidden_size": hidden, "direction": direction, **(attrs or {})}
    if layout:
        node_attrs["layout"] = 1
    if kind == "GRU":
        node_attrs["linear_before_reset"] = lbr
    x_shape = (batch, seq, inp) if layout else (seq, batch, inp)
    node = helper.make_node(kind, ins, list(outputs), **node_attrs)
    model = make_model([node], [("X", x_shape)], [(o, None) for o in outputs if o], inits, opset=14)
    return model, x_shape


CASES = {
    "lstm-forward-lens-peepholes": dict(kind="LSTM", lens=True, zero_p=True),
    "lstm-reverse-large-cell": dict(kind="LSTM", direction="reverse", init=True, cell_scale=12.0, outputs=("", "Y_h")),
    "lstm-bidirectional-layout1-init": dict(kind="LSTM", direction="bidirectional", layout=1, init=True,
                                            outputs=("Y", "", "Y_c")),
    "gru-forward": dict(kind="GRU", outputs=("Y", "Y_h")),
    "gru-reverse-lbr-init": dict(kind="GRU", direction="reverse", lbr=1, init=True, outputs=("Y", "Y_h")),
    "gru-bidirectional-layout1": dict(kind="GRU", direction="bidirectional", layout=1, outputs=("", "Y_h")),
}


@pytest.fixture
def libm_functions(monkeypatch):
    """The float twin with the host C library's expf and tanhf, as the C calls them."""
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    for name, attr in (("expf", "exp_f32"), ("tanhf", "tanh_f32")):
        fn = getattr(libm, name)
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        each = np.vectorize(lambda v, fn=fn: fn(float(v)), otypes=[np.float32])
        monkeypatch.setattr(recurrent, attr, lambda x, each=each: each(np.asarray(x, np.float32)).astype(np.float32))


@pytest.mark.parametrize("case", sorted(CASES))
def test_float(rng, case, libm_functions):
    model, x_shape = rnn_model(rng, **CASES[case])
    feeds = random_feeds(rng, {"X": x_shape}, count=2)
    compiled = check_float_model(model, feeds[0])  # C ~ twin ~ onnx.reference
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        want = run_float(compiled.graph, f, kernel_order=True)
        for got, name in zip(host.run([f["X"]]), compiled.graph.outputs):
            np.testing.assert_array_equal(got, want[name], err_msg=f"float C differs from the twin on '{name}'")


def sqnr_db(signal: np.ndarray, approx: np.ndarray) -> float:
    noise = np.sum((np.asarray(signal, np.float64) - approx) ** 2)
    return float(10 * np.log10(np.sum(np.asarray(signal, np.float64) ** 2) / max(noise, 1e-30)))


def check_int8(model, x_shape, rng, min_sqnr: float, count: int = 8):
    """C == int8 twin on every sample; each output's SQNR against onnx.reference at least min_sqnr."""
    feeds = random_feeds(rng, {"X": x_shape}, count=count)
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    oracle = ReferenceEvaluator(model)
    produced = {n: [] for n in graph.outputs}
    expected = {n: [] for n in graph.outputs}
    for f in feeds:
        q = quantize_inputs(graph, f)
        ref = run_int8(graph, q)
        for got, name, e in zip(host.run([q["X"]]), graph.outputs, oracle.run(graph.outputs, f)):
            np.testing.assert_array_equal(got, ref[name], err_msg=f"int8 C differs from the twin on '{name}'")
            produced[name].append(graph.tensors[name].quant.dequantize(got))
            expected[name].append(e)
    sqnrs = {n: sqnr_db(np.stack(expected[n]), np.stack(produced[n])) for n in graph.outputs}
    print("SQNR dB:", {n: round(v, 1) for n, v in sqnrs.items()})
    for name, value in sqnrs.items():
        assert value >= min_sqnr, f"'{name}': SQNR {value:.1f} dB < {min_sqnr} dB"
    return compiled


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8(rng, case):
    model, x_shape = rnn_model(rng, **CASES[case])
    compiled = check_int8(model, x_shape, rng, min_sqnr=25.0)
    kernel = f"nn_{CASES[case]['kind'].lower()}_s8"
    assert compiled.report["layers"][0]["kernels"] == [kernel]


def test_cell_format_follows_calibration(rng):
    """The cell state's fraction bits come from its calibrated range: a large initial cell
    leaves fewer (and the kernel's Q3.12 rescale then shifts left)."""
    small, x_shape = rnn_model(rng, "LSTM", init=True, cell_scale=0.1)
    large, _ = rnn_model(rng, "LSTM", init=True, cell_scale=40.0)
    feeds = random_feeds(rng, {"X": x_shape}, count=4)
    bits = [compile_model(m, "net", mode="int8", calib=feeds).graph.nodes[0].attrs["q"]["cell_frac"]
            for m in (small, large)]
    assert bits[0] >= 13 and bits[1] < 12


def test_unread_outputs_take_no_memory(rng):
    """Y, which torch's exports name but nothing reads, is not computed into the arena."""
    model, x_shape = rnn_model(rng, "GRU", outputs=("Y", "Y_h"), seq=20)
    del model.graph.output[0]  # Y: named, read by nothing
    compiled = check_float_model(model, random_feeds(rng, {"X": x_shape}, count=1)[0])
    node = compiled.graph.nodes[0]
    assert node.outputs == ["Y_h"] and node.attrs["output_slots"] == [1]
    assert compiled.report["arena_bytes"] < 20 * B * H * 4  # no room for Y


def _c_gate(kind: str, tmp_path) -> np.ndarray:
    """nn_gate_<kind>_s16 of every int16 input, from the runtime's C on the host."""
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "nn.h"\nint main(void) { long v;\n'
                    f'  for (v = -32768; v < 32768; ++v) printf("%d\\n", nn_gate_{kind}_s16((int16_t)v));\n'
                    '  return 0; }\n')
    exe = tmp_path / "gate"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(RUNTIME_DIR / "include"),
                    str(main), str(RUNTIME_DIR / "src" / "recurrent" / f"nn_gate_{kind}_s16.c"), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return np.array(out.split(), np.int64)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_gate_functions(kind, tmp_path):
    """The C tables are the ones the compiler computes; the C equals the twin on all 65536
    inputs; the interpolated function is within 4 steps of Q0.15 of the exact one."""
    text = (RUNTIME_DIR / "src" / "recurrent" / f"nn_gate_{kind}_s16.c").read_text()
    table = np.array(re.search(r"table\[513\] = \{([^}]*)\}", text).group(1).replace(",", " ").split(), np.int64)
    np.testing.assert_array_equal(table, recurrent.GATE_TABLES[kind])
    x = np.arange(-32768, 32768)
    twin = recurrent.gate_s16(kind, x)
    np.testing.assert_array_equal(_c_gate(kind, tmp_path), twin)
    real = x / 4096.0
    exact = 1 / (1 + np.exp(-real)) if kind == "sigmoid" else np.tanh(real)
    assert np.abs(twin / 32768.0 - exact).max() <= 4 / 32768


REJECTED = [
    ("LSTM", {"clip": 3.0}, "clip is not supported"),
    ("LSTM", {"input_forget": 1}, "input_forget is not supported"),
    ("LSTM", {"activations": ["Sigmoid", "Relu", "Tanh"]}, "activations"),
    ("GRU", {"activations": ["HardSigmoid", "Tanh"]}, "activations"),
]


@pytest.mark.parametrize("kind,attrs,why", REJECTED, ids=lambda v: str(v) if not isinstance(v, dict) else
                         "-".join(v))
def test_rejected_attributes(rng, kind, attrs, why):
    model, _ = rnn_model(rng, kind, attrs=attrs, outputs=("Y",))
    with pytest.raises(CompileError) as e:
        compile_model(model, "net")
    assert f"{kind} node" in str(e.value) and why in str(e.value) and "\n" not in str(e.value)


def test_rejected_inputs(rng):
    """Peepholes that are not zero, sequence lengths shorter than the sequence, run-time weights."""
    model, _ = rnn_model(rng, "LSTM", zero_p=True, lens=True, outputs=("Y",))
    inits = {t.name: t for t in model.graph.initializer}
    inits["P"].float_data[:] = []
    inits["P"].raw_data = np.full((1, 3 * H), 0.5, np.float32).tobytes()
    inits["L"].raw_data = np.array([S, S - 1], np.int32).tobytes()
    with pytest.raises(CompileError) as e:
        compile_model(model, "net")
    message = str(e.value)
    assert "peepholes" in message or "sequence_lens" in message
    assert "\n" not in message


def layers_model(rng):
    """An LSTM (bidirectional, a cell format below Q3.12 in int8, Y_c) and two GRUs
    (bidirectional with linear_before_reset 0; reverse with 1 and an initial state) on one input."""
    nodes, inits, outputs = [], {}, []
    for prefix, spec in (("a", dict(kind="LSTM", direction="bidirectional", init=True, cell_scale=30.0)),
                         ("b", dict(kind="GRU", direction="bidirectional", outputs=("Y", "Y_h"))),
                         ("c", dict(kind="GRU", direction="reverse", lbr=1, init=True, outputs=("Y", "Y_h")))):
        model, _ = rnn_model(rng, **spec)
        node = model.graph.node[0]
        rename = {n: f"{prefix}_{n}" for n in list(node.input) + list(node.output) if n and n != "X"}
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
        nodes.append(node)
        inits.update({rename[t.name]: np.frombuffer(t.raw_data, np.float32 if t.data_type == 1 else np.int32)
                      .reshape(tuple(t.dims)) for t in model.graph.initializer})
        outputs += [(o, None) for o in node.output]
    return make_model(nodes, [("X", (S, B, I))], outputs, inits, opset=14)


@pytest.mark.parametrize("w_shape,r_shape,why", [((1, 0, I), (1, 0, 0), "hidden size must be at least 1"),
                                                  ((1, 3 * H, I + 1), (1, 3 * H, H), "does not fit"),
                                                  ((1, 3 * H, I), (1, 3 * H, H + 1), "R of shape")])
def test_rejected_shapes(rng, w_shape, r_shape, why):
    inits = {"W": rng.standard_normal(w_shape).astype(np.float32), "R": rng.standard_normal(r_shape).astype(np.float32)}
    model = make_model([helper.make_node("GRU", ["X", "W", "R"], ["Y"])], [("X", (S, B, I))], [("Y", [1])], inits,
                       opset=14)
    with pytest.raises(CompileError) as e:
        compile_model(model, "net")
    assert "GRU node" in str(e.value) and why in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_int8_kernels_on_cortex_m(target):
    """Both int8 kernels in one firmware: the same bytes as the host."""
    need(target)
    rng = np.random.default_rng(13)
    feeds = random_feeds(rng, {"X": (S, B, I)}, count=4)
    compiled = compile_model(layers_model(rng), "net", mode="int8", calib=feeds, target=target)
    assert min(n.attrs["q"]["cell_frac"] for n in compiled.graph.nodes if n.op_type == "LSTM") < 12
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for sample, outs in zip(q, got):
        for a, b in zip(outs, host.run([sample["X"]])):
            np.testing.assert_array_equal(a, b)


def test_float_kernels_on_cortex_m4():
    """The float kernels link against newlib's expf and tanhf and agree with the host."""
    need("cortex-m4")
    rng = np.random.default_rng(17)
    compiled = compile_model(layers_model(rng), "net")
    assert verify(compiled, random_feeds(rng, {"X": (S, B, I)}, count=3), target="cortex-m4")["target_equal"]


# ---- torch's exports end to end ---------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPOTTERS = {"kws_gru_opset13": "GRU", "kws_gru_dynamo": "GRU", "kws_lstm_opset13": "LSTM", "kws_lstm_dynamo": "LSTM"}


@pytest.mark.parametrize("name", sorted(SPOTTERS))
def test_keyword_spotter(name):
    """The GRU (bidirectional) and LSTM (two layers) keyword spotters of both exporters: float32
    within 1e-4 of onnxruntime, int8 bit-exact with the reference and at least 25 dB from float."""
    compiled, result = check_fixture(FIXTURES / f"{name}.onnx", FIXTURES / f"{name}.npz")
    assert SPOTTERS[name] in [layer["op"] for layer in compiled.report["layers"]]
    print(f"{name}: int8 SQNR {result['sqnr_db']:.1f} dB")
    assert result["bit_exact"] and result["sqnr_db"] >= 25.0, result["sqnr_db"]
