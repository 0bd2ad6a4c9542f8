"""Run the generated C on test inputs and compare it with the references.

- C against codegen/reference.py: in float mode the outputs must agree within
  FLOAT_TOLERANCE relative to the output's largest magnitude (float sums are not
  associative, so the C and NumPy orders of accumulation may differ in the last bits).
- C against the original model run by onnx.reference: max error, relative error, SQNR,
  top-1 agreement and, with labels, accuracy. A pruned model is also compared with its
  pruned float model (`sqnr_db_pruned`, `accuracy_pruned`).
- float mode: the NumPy float reference itself against onnx.reference on the same samples
  (`reference_max_rel_diff`, within REFERENCE_TOLERANCE), so a wrong reference cannot make
  the C look right.
- Integer outputs (indices, labels) and bool outputs must equal the reference exactly; the
  error figures (max error, SQNR) are over the real-valued outputs, and a classifier whose
  first output is one integer label counts that label as its top-1.
- `Thresholds` the user sets (--min-accuracy, --max-drop, --min-sqnr): each missed one is
  a line naming the figure, its value and the threshold; `passed` needs all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import version_converter
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import CompiledModel, quantize_inputs
from codegen.errors import CompileError
from codegen.frontend.load import default_opset
from codegen.progress import Progress
from codegen.reference_corrections import CORRECTED_OPS
from codegen.reference import as_input, run_float, run_int8

FLOAT_TOLERANCE = 1e-4
# float mode: the NumPy reference's largest difference from onnx.reference, relative to the
# largest magnitude of onnx.reference's outputs over all samples
REFERENCE_TOLERANCE = 1e-3
# a QDQ model's FakeQuantize input within this many quantization steps of a rounding tie may
# round either way (float sums in another order); there the NumPy reference takes
# onnx.reference's step before the comparison (counted in `reference_ties`)
TIE_STEPS = 1e-3


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


def _agree(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Float outputs within FLOAT_TOLERANCE; integer and bool outputs equal."""
    if np.asarray(expected).dtype.kind in "iub":
        return bool(np.array_equal(actual, expected))
    return within_tolerance(actual, expected)


def _top1(output: np.ndarray) -> int:
    """A classifier's answer: the label itself when the output is one integer, else the argmax."""
    output = np.asarray(output)
    if output.dtype.kind in "iu" and output.size == 1:
        return int(output.reshape(-1)[0])
    return int(np.argmax(output))


def _sqnr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    p_signal, p_noise = float(np.sum(signal.astype(np.float64) ** 2)), float(np.sum(noise.astype(np.float64) ** 2))
    if p_noise == 0.0:
        return math.inf
    if p_signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_signal / p_noise)


class MlReference:
    """The reference for a model of ai.onnx.ml operators: onnxruntime with its graph
    optimizations off (onnx.reference has no ZipMap and other rules for the binary
    classifiers), its outputs as the C gives them: a ZipMap's list of {label: score} as a float
    [N, classes] array, string labels as class indices."""

    def __init__(self, model: onnx.ModelProto):
        try:
            import onnxruntime
        except ImportError:
            raise CompileError("verifying a model of ai.onnx.ml operators needs onnxruntime, their reference "
                               "(pip install onnxruntime)") from None
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                    providers=["CPUExecutionProvider"])
        self.strings = [a.strings for n in model.graph.node for a in n.attribute if a.name == "classlabels_strings"]

    def run(self, names, feeds, intermediate=False):
        outputs = []
        for o in self.session.run(names, feeds):
            if isinstance(o, list):  # ZipMap
                o = np.array([list(d.values()) for d in o], np.float32)
            o = np.asarray(o)
            if o.dtype.kind in "OUS" and self.strings:
                labels = [v.decode("utf-8", "replace") for v in self.strings[0]]
                o = np.array([labels.index(v) for v in o.reshape(-1)], np.int64).reshape(o.shape)
            outputs.append(o)
        return outputs


def onnx_reference(model: onnx.ModelProto) -> ReferenceEvaluator | MlReference:
    """onnx.reference for the original model (it implements QuantizeLinear and
    DequantizeLinear from opset 19 only, so a QDQ model of an older opset is converted), with
    the corrections of codegen/reference_corrections.py; onnxruntime for ai.onnx.ml (MlReference)."""
    if any(n.domain == "ai.onnx.ml" for n in model.graph.node):
        return MlReference(model)
    qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    if qdq and default_opset(model) < 19:
        model = version_converter.convert_version(model, 19)
    return ReferenceEvaluator(model, new_ops=CORRECTED_OPS)


class _Oracle:
    """The float oracle whose refusal of the model is the user's one-line error: onnx.reference
    and onnxruntime hold the file to ONNX's type rules, which the compiler does not need (an
    int32 input compared with an int64 constant, a bool initializer as a MatMul weight, a
    ZipMap's labels)."""

    def __init__(self, model: onnx.ModelProto):
        self.reference = self._call(onnx_reference, model)

    @staticmethod
    def _call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (CompileError, MemoryError):
            raise
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise CompileError(f"the float oracle cannot run this model ({type(e).__name__}: {first})") from None

    def run(self, *args, **kwargs):
        return self._call(self.reference.run, *args, **kwargs)


@dataclass
class Thresholds:
    """What `verify` must also reach to pass (None: not checked). Accuracies are fractions."""

    min_accuracy: float | None = None  # the C's accuracy on the labels
    max_drop: float | None = None  # float model's accuracy minus the C's
    min_sqnr_db: float | None = None  # the C's outputs against the original model's

    def __post_init__(self):
        for option, value in (("--min-accuracy", self.min_accuracy), ("--max-drop", self.max_drop)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise CompileError(f"{option} is a fraction in [0, 1] (e.g. 0.95 for 95%), got {value:g}")
        if self.min_sqnr_db is not None and math.isnan(self.min_sqnr_db):
            raise CompileError("--min-sqnr must be a number of dB")

    @property
    def need_labels(self) -> bool:
        return self.min_accuracy is not None or self.max_drop is not None

    def check(self, result: dict) -> list[dict]:
        """One entry per threshold set: figure, value, threshold, passed and a message."""
        checks = []
        if self.min_accuracy is not None:
            value = result["accuracy"]
            checks.append(_check("--min-accuracy", "accuracy", value, self.min_accuracy, value >= self.min_accuracy,
                                 f"accuracy {_pct(value)} is below --min-accuracy {self.min_accuracy:g} "
                                 f"({_pct(self.min_accuracy)})"))
        if self.max_drop is not None:
            drop = result["accuracy_float"] - result["accuracy"]
            checks.append(_check("--max-drop", "accuracy_drop", drop, self.max_drop, drop <= self.max_drop + 1e-12,
                                 f"accuracy drop {100 * drop:.1f} points (float {_pct(result['accuracy_float'])}, "
                                 f"C {_pct(result['accuracy'])}) exceeds --max-drop {self.max_drop:g} "
                                 f"({100 * self.max_drop:.1f} points)"))
        if self.min_sqnr_db is not None:
            value = result["sqnr_db"]
            checks.append(_check("--min-sqnr", "sqnr_db", value, self.min_sqnr_db, value >= self.min_sqnr_db,
                                 f"SQNR {value:.1f} dB is below --min-sqnr {self.min_sqnr_db:g} dB"))
        return checks


def _check(option: str, figure: str, value: float, threshold: float, passed: bool, message: str) -> dict:
    return {"option": option, "figure": figure, "value": value, "threshold": threshold, "passed": bool(passed),
            "message": None if passed else message}


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def verify(compiled: CompiledModel, samples: list[dict[str, np.ndarray]],
           labels: np.ndarray | None = None, host: HostModel | None = None, target: str = "host",
           thresholds: Thresholds | None = None) -> dict:
    """Run the C on every sample and compare.

    float32: `bit_exact` means C == NumPy float reference within FLOAT_TOLERANCE, and
    `reference_agrees` that the NumPy float reference is within REFERENCE_TOLERANCE of
    onnx.reference.
    int8: `bit_exact` means C == NumPy int8 reference, every byte; the dequantized outputs
    are then compared with the float model run by onnx.reference.
    With a `target` other than host the same C also runs on the emulated target and must give
    the host's bytes (int8) or agree within FLOAT_TOLERANCE (float32: libm differs).
    `passed`: all of these, and every one of `thresholds` (listed in `thresholds`)."""
    graph = compiled.graph
    int8 = compiled.mode == "int8"
    thresholds = thresholds or Thresholds()
    if thresholds.need_labels and labels is None:
        raise CompileError("--min-accuracy and --max-drop need labels: a --data file with an array 'y'")
    host = host or HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    onnx_ref = _Oracle(compiled.model)
    onnx_inputs = [i.name for i in compiled.model.graph.input if i.name in graph.inputs]
    pruned = "pruning" in compiled.report and compiled.float_graph is not None
    # float mode checks the NumPy reference of the model as the ONNX file states it: a pruned
    # model's own graph differs by design, so its unpruned import is checked instead
    reference_graph = None
    if not int8:
        reference_graph = graph if not pruned else _unpruned_graph(compiled)
    onnx_types = graph.meta.get("onnx_types", {})
    exact = integers_agree = True
    max_abs_diff = ref_abs_diff = 0.0
    reference_ties = 0
    # a FakeQuantize turns a last-bit difference at a rounding tie into a whole step: the
    # reference then sums in the kernels' order, as the C does
    fake_quantized = any(n.op_type == "FakeQuantize" for n in graph.nodes)
    c_all, o_all, p_all, top1_same, top1_c, top1_o, top1_p = [], [], [], 0, [], [], []
    fed, host_outputs = [], []
    with Progress("verify: sample", len(samples)) as progress:  # erased on the way out, errors too
        for count, feeds in enumerate(samples, 1):
            if int8:
                q_feeds = quantize_inputs(graph, feeds)
                c_raw = host.run([q_feeds[n] for n in graph.inputs])
                fed.append(q_feeds)
                host_outputs.append(c_raw)
                ref = run_int8(graph, q_feeds)
                exact &= all(np.array_equal(c, ref[name]) for c, name in zip(c_raw, graph.outputs))
                c_out = [graph.tensors[name].quant.dequantize(c) if graph.tensors[name].quant is not None else c
                         for c, name in zip(c_raw, graph.outputs)]
            else:
                c_out = host.run([feeds[n] for n in graph.inputs])
                fed.append(feeds)
                host_outputs.append(c_out)
                ref = run_float(graph, feeds, kernel_order=fake_quantized)
                exact &= all(_agree(c, ref[name]) for c, name in zip(c_out, graph.outputs))
            onnx_feeds = {n: np.asarray(feeds[n]).astype(onnx_types.get(n, np.float32)) for n in onnx_inputs}
            o_out = onnx_ref.run(None, onnx_feeds)
            if reference_graph is not None:
                numpy_out = ref if reference_graph is graph else run_float(reference_graph, feeds)
                if any(n.op_type == "FakeQuantize" for n in reference_graph.nodes):
                    onnx_values = onnx_ref.run(None, onnx_feeds, intermediate=True)
                    numpy_out, ties = _float_with_onnx_ties(reference_graph, feeds, onnx_values)
                    reference_ties += ties
                for name, o in zip(reference_graph.outputs, o_out):
                    o = np.asarray(o, np.float64).reshape(numpy_out[name].shape)
                    if reference_graph.tensors[name].dtype != "float32":
                        integers_agree &= bool(np.array_equal(numpy_out[name], o))
                        continue
                    ref_abs_diff = max(ref_abs_diff, float(np.max(np.abs(numpy_out[name] - o), initial=0.0)))
            if pruned:
                p_out = run_float(compiled.float_graph, feeds)
                p_all.extend(p_out[name].reshape(-1) for name in compiled.float_graph.outputs)
                top1_p.append(_top1(p_out[compiled.float_graph.outputs[0]]))
            for c, o, name in zip(c_out, o_out, graph.outputs):
                if graph.tensors[name].dtype in ("int32", "uint8"):  # labels, indices, masks: no error figures
                    continue
                o = np.asarray(o, np.float32).reshape(c.shape)
                max_abs_diff = max(max_abs_diff, float(np.max(np.abs(c.astype(np.float64) - o), initial=0.0)))
                c_all.append(c.reshape(-1))
                o_all.append(o.reshape(-1))
            top1_c.append(_top1(c_out[0]))
            top1_o.append(_top1(np.asarray(o_out[0])))
            top1_same += int(top1_c[-1] == top1_o[-1])
            progress.update(count)
    c_cat, o_cat = np.concatenate(c_all or [np.zeros(0)]), np.concatenate(o_all or [np.zeros(0)])
    scale = float(np.max(np.abs(o_cat), initial=0.0))
    result = {
        "mode": compiled.mode,
        "bit_exact": bool(exact),
        "samples": len(samples),
        "max_abs_diff": max_abs_diff,
        "max_rel_diff": max_abs_diff / scale if scale else max_abs_diff,
        "float_top1_agreement": top1_same / len(samples),
        "sqnr_db": _sqnr_db(o_cat, c_cat.astype(np.float64) - o_cat),
        "sqnr_db_pruned": None,
        "reference_max_rel_diff": None,
        "reference_tolerance": None,
        "reference_agrees": None,
        "reference_ties": None,
        "accuracy": None,
        "accuracy_float": None,
        "accuracy_pruned": None,
        "accuracy_quantized": None,
    }
    if reference_graph is not None:
        rel = ref_abs_diff / scale if scale else ref_abs_diff
        result.update(reference_max_rel_diff=rel, reference_tolerance=REFERENCE_TOLERANCE,
                      reference_agrees=bool(rel <= REFERENCE_TOLERANCE and integers_agree),
                      reference_ties=reference_ties)
    if pruned:
        p_cat = np.concatenate(p_all).astype(np.float64)
        result["sqnr_db_pruned"] = _sqnr_db(p_cat, c_cat.astype(np.float64) - p_cat)
    if labels is not None:
        result["accuracy"] = float(np.mean(np.array(top1_c) == labels))
        result["accuracy_float"] = float(np.mean(np.array(top1_o) == labels))
        if int8:
            result["accuracy_quantized"] = result["accuracy"]
        if pruned:  # the pruned float model, before quantization
            result["accuracy_pruned"] = float(np.mean(np.array(top1_p) == labels))
    if target != "host":
        from codegen.cross import run_samples

        with Progress(f"verify: running {len(fed)} samples on {target} (emulated)"):
            on_target = run_samples(compiled.emitted.files, compiled.report["api"], fed, target)
        same = all((np.array_equal(a, b) if int8 else _agree(a, b)) for got, want in
                   zip(on_target, host_outputs) for a, b in zip(got, want))
        result.update(target=target, target_equal=bool(same))
        result["bit_exact"] = result["bit_exact"] and bool(same)
    result.update({k: compiled.report[k] for k in ("flash_bytes", "ram_bytes", "weights_bytes", "arena_bytes",
                                                   "macs") if k in compiled.report})
    if "precision" in compiled.report:  # the layers with int16 activations (--precision)
        result["int16_layers"] = list(compiled.report["precision"]["int16"])
    checks = thresholds.check(result)
    result["thresholds"] = checks
    result["passed"] = bool(result["bit_exact"] and result["reference_agrees"] is not False
                            and all(c["passed"] for c in checks))
    return result


def failures(result: dict) -> list[str]:
    """Why `result` did not pass, one line each (empty when it passed)."""
    lines = []
    if not result["bit_exact"]:
        what = "equal to" if result["mode"] == "int8" else f"within {FLOAT_TOLERANCE:g} of"
        lines.append(f"the C is not {what} the NumPy reference")
    if result.get("target_equal") is False:
        lines.append(f"the C on {result['target']} differs from the host")
    if result["reference_agrees"] is False:
        lines.append(f"the NumPy float reference differs from onnx.reference: max rel diff "
                     f"{result['reference_max_rel_diff']:.3g} > {result['reference_tolerance']:g}")
    lines += [c["message"] for c in result["thresholds"] if not c["passed"]]
    return lines


def _float_with_onnx_ties(graph, feeds: dict, onnx_values: dict) -> tuple[dict[str, np.ndarray], int]:
    """run_float, except that at each FakeQuantize the elements within TIE_STEPS of a rounding
    tie take onnx.reference's value of the node's output: the outputs, and how many did."""
    from codegen.ops import get_op
    from codegen.ops.quantize import near_tie

    values = {n: as_input(feeds[n], graph.tensors[n].dtype).reshape(graph.tensors[n].shape) for n in graph.inputs}
    ties = 0
    for node in graph.nodes:
        inputs = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        outputs = get_op(node.op_type).reference(node, graph, inputs)
        theirs = onnx_values.get(node.outputs[0]) if node.op_type == "FakeQuantize" else None
        if theirs is not None:
            near = near_tie(node, graph, inputs[0], TIE_STEPS)
            theirs = np.asarray(theirs, np.float32).reshape(near.shape)
            ties += int(np.count_nonzero(near & (theirs != outputs[0])))
            outputs = [np.where(near, theirs, outputs[0])]
        for name, value in zip(node.outputs, outputs):
            values[name] = np.asarray(value, graph.tensors[name].dtype).reshape(graph.tensors[name].shape)
    return {name: values[name] for name in graph.outputs}, ties


def _unpruned_graph(compiled: CompiledModel):
    from codegen.frontend import import_model

    return import_model(compiled.model, label=compiled.graph.meta.get("source", "model"), name=compiled.graph.name)
