"""Run the generated C on test inputs and compare it with the references.

- C against codegen/reference.py: in float mode the outputs must agree within
  FLOAT_TOLERANCE relative to the output's largest magnitude (float sums are not
  associative, so the C and NumPy orders of accumulation may differ in the last bits).
- C against the original model run by onnx.reference: max error, relative error, SQNR,
  top-1 agreement and, with labels, accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import version_converter
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import CompiledModel, quantize_inputs
from codegen.errors import CompileError
from codegen.frontend.load import default_opset
from codegen.reference import run_float, run_int8

FLOAT_TOLERANCE = 1e-4


def within_tolerance(actual: np.ndarray, expected: np.ndarray, rel: float = FLOAT_TOLERANCE) -> bool:
    """|actual - expected| <= rel * max(1, max|expected|), elementwise; NaN only where expected is NaN."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape or not np.array_equal(np.isnan(a), np.isnan(e)):
        return False
    finite = np.isfinite(e)
    if not np.array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)]):
        return False
    scale = max(1.0, float(np.max(np.abs(e[finite]), initial=0.0)))
    return bool(np.all(np.abs(a[finite] - e[finite]) <= rel * scale))


def _sqnr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    p_signal, p_noise = float(np.sum(signal.astype(np.float64) ** 2)), float(np.sum(noise.astype(np.float64) ** 2))
    if p_noise == 0.0:
        return math.inf
    if p_signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_signal / p_noise)


def onnx_reference(model: onnx.ModelProto) -> ReferenceEvaluator:
    """onnx.reference for the original model (it implements QuantizeLinear and
    DequantizeLinear from opset 19 only, so a QDQ model of an older opset is converted)."""
    qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    if qdq and default_opset(model) < 19:
        model = version_converter.convert_version(model, 19)
    return ReferenceEvaluator(model)


def verify(compiled: CompiledModel, samples: list[dict[str, np.ndarray]],
           labels: np.ndarray | None = None, host: HostModel | None = None, target: str = "host") -> dict:
    """Run the C on every sample and compare.

    float32: `bit_exact` means C == NumPy float reference within FLOAT_TOLERANCE.
    int8: `bit_exact` means C == NumPy int8 reference, every byte; the dequantized outputs
    are then compared with the float model run by onnx.reference.
    With a `target` other than host the same C also runs on the emulated target and must give
    the host's bytes (int8) or agree within FLOAT_TOLERANCE (float32: libm differs)."""
    graph = compiled.graph
    int8 = compiled.mode == "int8"
    host = host or HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    onnx_ref = onnx_reference(compiled.model)
    onnx_inputs = [i.name for i in compiled.model.graph.input if i.name in graph.inputs]
    exact = True
    max_abs_diff = 0.0
    c_all, o_all, top1_same, top1_c, top1_o = [], [], 0, [], []
    fed, host_outputs = [], []
    for feeds in samples:
        if int8:
            q_feeds = quantize_inputs(graph, feeds)
            c_raw = host.run([q_feeds[n] for n in graph.inputs])
            fed.append(q_feeds)
            host_outputs.append(c_raw)
            ref = run_int8(graph, q_feeds)
            exact &= all(np.array_equal(c, ref[name]) for c, name in zip(c_raw, graph.outputs))
            c_out = [graph.tensors[name].quant.dequantize(c) for c, name in zip(c_raw, graph.outputs)]
        else:
            c_out = host.run([feeds[n] for n in graph.inputs])
            fed.append(feeds)
            host_outputs.append(c_out)
            ref = run_float(graph, feeds)
            exact &= all(within_tolerance(c, ref[name]) for c, name in zip(c_out, graph.outputs))
        o_out = onnx_ref.run(None, {n: feeds[n] for n in onnx_inputs})
        for c, o in zip(c_out, o_out):
            o = np.asarray(o, np.float32).reshape(c.shape)
            max_abs_diff = max(max_abs_diff, float(np.max(np.abs(c.astype(np.float64) - o), initial=0.0)))
            c_all.append(c.reshape(-1))
            o_all.append(o.reshape(-1))
        first_c, first_o = c_out[0].reshape(-1), np.asarray(o_out[0]).reshape(-1)
        top1_same += int(np.argmax(first_c) == np.argmax(first_o))
        top1_c.append(int(np.argmax(first_c)))
        top1_o.append(int(np.argmax(first_o)))
    c_cat, o_cat = np.concatenate(c_all), np.concatenate(o_all)
    scale = float(np.max(np.abs(o_cat), initial=0.0))
    result = {
        "mode": compiled.mode,
        "bit_exact": bool(exact),
        "samples": len(samples),
        "max_abs_diff": max_abs_diff,
        "max_rel_diff": max_abs_diff / scale if scale else max_abs_diff,
        "float_top1_agreement": top1_same / len(samples),
        "sqnr_db": _sqnr_db(o_cat, c_cat.astype(np.float64) - o_cat),
        "accuracy_float": None,
        "accuracy_pruned": None,
        "accuracy_quantized": None,
    }
    if labels is not None:
        result["accuracy_float"] = float(np.mean(np.array(top1_o) == labels))
        if int8:
            result["accuracy_quantized"] = float(np.mean(np.array(top1_c) == labels))
        if "pruning" in compiled.report:  # the pruned float model, before quantization
            pruned = [int(np.argmax(run_float(compiled.float_graph, feeds)[graph.outputs[0]])) for feeds in samples]
            result["accuracy_pruned"] = float(np.mean(np.array(pruned) == labels))
    if target != "host":
        from codegen.cross import run_samples

        on_target = run_samples(compiled.emitted.files, compiled.report["api"], fed, target)
        same = all((np.array_equal(a, b) if int8 else within_tolerance(a, b)) for got, want in
                   zip(on_target, host_outputs) for a, b in zip(got, want))
        result.update(target=target, target_equal=bool(same))
        result["bit_exact"] = result["bit_exact"] and bool(same)
    result.update({k: compiled.report[k] for k in ("flash_bytes", "ram_bytes", "weights_bytes", "arena_bytes",
                                                   "macs") if k in compiled.report})
    return result
