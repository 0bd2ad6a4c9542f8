"""Reconstruction (codegen/passes/reconstruct.py): AdaRound beats round-to-nearest on rows it
never saw, the least-squares re-fit reaches the direct solve's optimum, bias correction centres
the error, and every reconstructed model's C equals the int8 reference byte for byte."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.options import CompileOptions
from codegen.passes import reconstruct
from codegen.passes.prune import PruneOptions
from codegen.qparams import weight_scales
from codegen.reference import run_float, run_int8
from codegen.samples import load_samples
from conftest import make_model

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"


def correlated_rows(rng, mixing: np.ndarray, count: int) -> np.ndarray:
    """Rows of a layer input as networks make them: correlated features, after a Relu."""
    return np.maximum(rng.standard_normal((count, mixing.shape[0])) @ mixing, 0.0)


def test_adaround_beats_round_to_nearest_on_held_back_rows():
    rng = np.random.default_rng(7)
    k, n = 64, 16
    mixing = rng.standard_normal((k, k)) / np.sqrt(k) + 0.3 * np.eye(k)
    seen, held = correlated_rows(rng, mixing, 512), correlated_rows(rng, mixing, 2048)
    w = rng.standard_normal((n, k)) / np.sqrt(k)
    s = weight_scales(w).astype(np.float64)

    def mse(q, x):
        return float(np.mean((x @ (q * s[:, None]).T - x @ w.T) ** 2))

    nearest = np.clip(np.rint(w / s[:, None]), -127, 127)
    rounded = reconstruct.adaround(seen[None], w[None], s[None], (seen @ w.T)[None])[0].astype(np.float64)
    assert rounded.min() >= -127 and rounded.max() <= 127
    assert np.all(np.abs(rounded - w / s[:, None]) < 1.0)  # up or down, never further
    assert mse(rounded, held) < 0.85 * mse(nearest, held)  # measured 0.70 of round-to-nearest's error


def test_refit_reaches_the_least_squares_optimum():
    rng = np.random.default_rng(3)
    groups, rows, k, n = 2, 300, 24, 5
    x = rng.standard_normal((groups, rows, k)) @ (rng.standard_normal((k, k)) / np.sqrt(k) + np.eye(k))
    y = x @ rng.standard_normal((groups, k, n)) + rng.standard_normal((groups, rows, n)) + 0.5
    keep = rng.random((groups, n, k)) < 0.3
    w, b = reconstruct.refit(x, y, keep, damping=0.0)
    for g in range(groups):
        for o in range(n):
            sel = np.flatnonzero(keep[g, o])
            a = np.concatenate([x[g][:, sel], np.ones((rows, 1))], axis=1)
            best = np.linalg.lstsq(a, y[g][:, o], rcond=None)[0]
            got = np.concatenate([w[g, o, sel], [b[g, o]]])
            assert np.abs(got - best).max() <= 1e-6 * np.abs(best).max()
            assert not np.any(w[g, o, ~keep[g, o]])  # the pruned weights stay zero
    # dampening shrinks the kept weights, never the bias's freedom: the residual's mean stays 0
    wd, bd = reconstruct.refit(x, y, keep, damping=0.1)
    assert np.linalg.norm(wd) < np.linalg.norm(w)
    residual = y - (x @ np.swapaxes(wd, 1, 2) + bd[:, None, :])
    np.testing.assert_allclose(residual.mean(axis=1), 0.0, atol=1e-9)
    # damped towards given weights (a whole layer's own), a strong damping stays at them
    centre = rng.standard_normal(keep.shape) * keep
    wc, _ = reconstruct.refit(x, y, keep, damping=1e6, centre=centre)
    np.testing.assert_allclose(wc, centre, atol=1e-4)


def test_the_solver_chooses_masks_nearer_the_best_subset_than_magnitude():
    """Per output row, keep 3 of 10 inputs: against every one of the 120 subsets, the mask Optimal
    Brain Surgeon chooses (then re-fitted) leaves less error than the largest weights do."""
    rng = np.random.default_rng(11)
    k, n, rows, kept = 10, 12, 400, 3
    x = rng.standard_normal((1, rows, k)) @ (rng.standard_normal((k, k)) / np.sqrt(k) + 0.5 * np.eye(k))
    w, b = rng.standard_normal((1, n, k)), rng.standard_normal((1, n))
    y = x @ np.swapaxes(w, 1, 2) + b[:, None]
    largest = np.zeros((1, n, k), bool)
    for o in range(n):
        largest[0, o, np.argsort(-np.abs(w[0, o]))[:kept]] = True
    chosen = reconstruct.choose_mask(x, w, b, largest, damping=0.0)
    assert np.array_equal(chosen.sum(axis=2), largest.sum(axis=2))  # as many kept per row

    def error(keep):
        wf, bf = reconstruct.refit(x, y, keep, damping=0.0)
        return ((x @ np.swapaxes(wf, 1, 2) + bf[:, None] - y) ** 2).mean(axis=1)[0]

    best = np.full(n, np.inf)
    for subset in itertools.combinations(range(k), kept):
        keep = np.zeros((1, n, k), bool)
        keep[0, :, list(subset)] = True
        best = np.minimum(best, error(keep))
    ours, magnitude = error(chosen).sum() / best.sum(), error(largest).sum() / best.sum()
    assert ours < 0.8 * magnitude  # measured 1.59 and 2.22 times the best


def test_channel_ratio_undoes_an_equalization_factor_through_pruning():
    rng = np.random.default_rng(5)
    teacher = rng.standard_normal((1, 6, 20))
    factor = rng.uniform(0.2, 5.0, 6)
    student = teacher / factor[None, :, None] * (rng.random(teacher.shape) < 0.4)
    np.testing.assert_allclose(reconstruct.channel_ratio(student, teacher), 1.0 / factor[None], rtol=1e-12)
    np.testing.assert_array_equal(reconstruct.channel_ratio(teacher, teacher), 1.0)


def cnn(rng):
    """Conv 3->12 3x3 + Relu, depthwise 3x3 + Relu, Conv 1x1 12->24 + Relu, GlobalAveragePool,
    Flatten, Gemm 24->16 + Relu (transB), Gemm 16->5 without bias (weight [K, N])."""
    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {"w1": w(12, 3, 3, 3), "b1": w(12) * 0.1, "w2": w(12, 1, 3, 3), "b2": w(12) * 0.1,
             "w3": w(24, 12, 1, 1), "b3": w(24) * 0.1, "w4": w(16, 24), "b4": w(16) * 0.1, "w5": w(16, 5)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", group=12, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="pw"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["rh"], name="relu4"),
        helper.make_node("Gemm", ["rh", "w5"], ["y"], name="fc2"),
    ]
    return make_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 5])], inits)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(14)
    model = cnn(rng)
    feeds = [{"x": (rng.standard_normal((1, 3, 8, 8)) + 0.5).astype(np.float32)} for _ in range(96)]
    return model, feeds[:48], feeds[48:]  # calibration, held back


def output_error(compiled, feeds) -> tuple[float, np.ndarray]:
    """SQNR (dB) of the int8 output against the float model's (unpruned), and the mean error per output."""
    g = compiled.graph
    out = g.tensors[g.outputs[0]].quant
    teacher = compile_model(compiled.model, "net").graph
    errors, signal = [], 0.0
    for f in feeds:
        ref = run_float(teacher, f)[g.outputs[0]]
        got = out.dequantize(run_int8(g, quantize_inputs(g, f))[g.outputs[0]])
        errors.append(got.astype(np.float64) - ref)
        signal += float(np.sum(ref.astype(np.float64) ** 2))
    errors = np.concatenate(errors)
    return 10 * np.log10(signal / np.sum(errors ** 2)), errors.mean(axis=0)


def test_bias_correction_centres_each_output_on_the_calibration_samples(case):
    model, calib, _ = case
    before = compile_model(model, "net", mode="int8", calib=calib, reconstruct="none")
    after = compile_model(model, "net", mode="int8", calib=calib, reconstruct="bias")
    scale = after.graph.tensors[after.graph.outputs[0]].quant.scale
    _, mean_before = output_error(before, calib)
    _, mean_after = output_error(after, calib)
    # the int8 output's own rounding is left (a fraction of a step); the layers' bias is gone
    assert np.abs(mean_after).max() < 0.25 * scale < np.abs(mean_before).max()
    section = after.report["reconstruction"]
    assert [e["name"] for e in section["layers"]] == ["conv1", "dw", "pw", "fc1", "fc2"]
    fc2 = section["layers"][-1]
    assert fc2["bias_corrected"] and fc2["mse_after"] < fc2["mse_before"]  # fc2 had no bias: one was made
    # report.json holds no timings (the folder is byte-identical): the solvers' multiply-adds instead
    assert all("seconds" not in e and e["multiply_adds"] == 0 for e in section["layers"])  # bias: no solver


def check_exact(compiled, feeds) -> None:
    g = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(g, f)
        for c, name in zip(host.run([q[n] for n in g.inputs]), g.outputs):
            np.testing.assert_array_equal(c, run_int8(g, q)[name])


def test_adaround_model_is_bit_exact(case):
    model, calib, held = case
    rounded = compile_model(model, "net", mode="int8", calib=calib, reconstruct="adaround", calibration="minmax")
    section = rounded.report["reconstruction"]
    assert section["kept"] and any(e.get("adaround") for e in section["layers"])
    assert all(e["mse_after"] <= e["mse_before"] for e in section["layers"])
    assert all(e["multiply_adds"] > 0 for e in section["layers"] if "adaround" in e)
    check_exact(rounded, held[:8])


def test_whole_layers_after_a_pruned_one_are_refitted_where_it_pays_and_stay_bit_exact(case):
    model, calib, held = case
    full = compile_model(model, "net", mode="int8", calib=calib, per_layer={"pw": {"sparsity": 0.75}})
    layers = {e["name"]: e for e in full.report["reconstruction"]["layers"]}
    assert full.report["reconstruction"]["mode"] == "full" and layers["pw"]["refit"] is True
    assert "refit" not in layers["conv1"] and "refit" not in layers["dw"]  # before the pruned layer: AdaRound only
    for name in ("fc1", "fc2"):  # after it: re-fitted, or left when the rows it did not fit say no
        assert layers[name]["refit"] is True or layers[name]["refit"].startswith("not kept")
    check_exact(full, held[:8])


def test_adaround_brings_the_example_nearer_the_float_model_on_its_test_images():
    calib = str(EXAMPLE / "calib.npz")
    plain = compile_model(EXAMPLE / "digits.onnx", "net", mode="int8", calib=calib, reconstruct="none")
    rounded = compile_model(EXAMPLE / "digits.onnx", "net", mode="int8", calib=calib, reconstruct="adaround")
    held, _ = load_samples(EXAMPLE / "test.npz", plain.graph, 100)
    assert output_error(rounded, held)[0] > output_error(plain, held)[0] + 0.7  # measured 40.2 against 38.8 dB


def test_a_reconstruction_that_does_not_lower_the_output_error_is_undone(case, monkeypatch):
    """Every layer's rounding turned upside down stands for a fit that made the model worse: the
    final check restores the quantized model as it came, byte for byte."""
    from codegen.ops import get_op

    model, calib, _ = case

    def upside_down(graph, node, *args):
        node.attrs["weight_q"] = -node.attrs["q"]["weight"]
        node.attrs["q"] = get_op(node.op_type).quantize(node, graph)
        return {}

    plain = compile_model(model, "net", mode="int8", calib=calib, reconstruct="none")
    monkeypatch.setattr(reconstruct, "_layer", upside_down)
    tried = compile_model(model, "net", mode="int8", calib=calib, reconstruct="bias")
    section = tried.report["reconstruction"]
    assert not section["kept"] and section["output_mse_after"] > 10 * section["output_mse_before"]
    assert tried.emitted.files == plain.emitted.files


def test_full_reconstruction_of_a_pruned_model_is_bit_exact_and_recovers_the_error():
    """The example at 75% sparsity: the re-fit against the teacher beats pruning's bias correction
    on test images that neither calibration nor the fit saw."""
    calib = str(EXAMPLE / "calib.npz")
    prune = PruneOptions(sparsity=0.75)
    corrected = compile_model(EXAMPLE / "digits.onnx", "net", mode="int8", calib=calib, prune=prune,
                              reconstruct="none")  # pruning's own bias correction
    full = compile_model(EXAMPLE / "digits.onnx", "net", mode="int8", calib=calib, prune=prune)  # auto: full
    assert full.report["reconstruction"]["mode"] == "full"
    assert full.report["pruning"]["bias_correction"] is False  # the re-fit stands in for it
    refit = {e["name"] for e in full.report["reconstruction"]["layers"] if e.get("refit") is True}
    pruned = {e["name"] for e in full.report["pruning"]["layers"] if e.get("sparsity_after", 0) > 0.5}
    assert pruned and refit == pruned
    floats = {n.name: n for n in full.float_graph.nodes}
    for node in full.graph.nodes:  # the zeros stay zeros in the int8 tables (the sparse encodings keep paying)
        if node.name in pruned:
            assert np.mean(node.attrs["q"]["weight"] == 0) >= 0.75
            # the float model the int8 one approximates is the re-fitted one (verify's "pruned" figures)
            for name in node.inputs[1:]:
                np.testing.assert_array_equal(full.float_graph.tensors[name].data, full.graph.tensors[name].data)
            assert floats[node.name].inputs == node.inputs
    held, _ = load_samples(EXAMPLE / "test.npz", full.graph, 100)
    assert output_error(full, held)[0] > output_error(corrected, held)[0] + 3.0  # measured 12.2 against 6.7 dB
    check_exact(full, held[:8])
    again = compile_model(EXAMPLE / "digits.onnx", "net", mode="int8", calib=calib, prune=prune)
    assert again.emitted.files == full.emitted.files  # byte-identical


def test_auto_is_full_for_a_pruned_model_and_bias_otherwise_and_a_typo_is_refused_by_name():
    assert CompileOptions(mode="int8").reconstruction == "bias"
    assert CompileOptions(mode="int8", prune=PruneOptions(sparsity=0.5)).reconstruction == "full"
    assert CompileOptions(mode="int8", per_layer={"fc1": {"sparsity": 0.5}}).reconstruction == "full"
    assert CompileOptions(mode="int8", prune=PruneOptions(sparsity=0.5), reconstruct="none").reconstruction == "none"
    with pytest.raises(CompileError, match="reconstruction 'adaroun'"):
        CompileOptions(mode="int8", reconstruct="adaroun")


def test_the_command_line_option_reaches_the_report(tmp_path):
    from codegen.cli import main

    calib = str(EXAMPLE / "calib.npz")
    for mode in ("none", "adaround"):
        out = tmp_path / mode
        assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", calib, "-o", str(out),
                     "--reconstruct", mode]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report.get("reconstruction", {}).get("mode") == (None if mode == "none" else mode)
