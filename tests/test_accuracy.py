"""Accuracy on the trained models of the suite (benchmarks/accuracy.py TUNED: the example and
tests/fixtures/trained, made by make_trained.py there; the held-back model is measured by the
benchmark only), each claim a bound on figures measured on test samples that neither training
nor calibration saw. The NumPy int8 reference stands for the C (its bit-exact twin, tested
elsewhere); the float outputs come from onnxruntime.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from benchmarks import accuracy
from benchmarks.accuracy import MODELS, TUNED

TUNED_NAMES = [m.name for m in TUNED]


def test_test_splits_are_unseen_by_calibration():
    """No test sample of any model of the suite is among its calibration samples."""
    for model in MODELS:
        calib, test = np.load(model.calib), np.load(model.test)
        key = [k for k in calib.files if k != "y"][0]
        seen = {row.tobytes() for row in calib[key].reshape(len(calib[key]), -1)}
        rows = test[key].reshape(len(test[key]), -1)
        assert len(rows) >= 100 and "y" in test.files
        assert not any(row.tobytes() in seen for row in rows), model.name


def test_activation_criterion_prunes_1d_convolutions_by_weight_times_input_rms():
    """Pruning by the activation criterion on a 1-D CNN: in each pruned Conv1d, the zeros are the
    weights of lowest |w| * rms(input channel) (recomputed here from the float activations)."""
    from codegen.frontend import import_model
    from codegen.frontend.load import load_model
    from codegen.passes import prune
    from codegen.reference import run_float
    from codegen.samples import load_samples

    model = accuracy._fixture("digits_seq1d")
    onnx_model, label = load_model(str(model.onnx))
    graph = import_model(onnx_model, label=label)
    samples, _ = load_samples(model.calib, graph, limit=32)
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    weights = {n.name: graph.const(n.inputs[1]).copy() for n in convs}
    rms = {}
    for node in convs:
        values = [run_float(graph, s, keep_all=True)[node.inputs[0]] for s in samples]
        x = np.stack(values).astype(np.float64)  # [samples, 1, channels, length]
        rms[node.name] = np.sqrt(np.mean(x ** 2, axis=(0, 1, 3)))
    prune.run(graph, prune.PruneOptions(sparsity=0.5, bias_correction=False), samples)
    pruned = 0
    for node in convs:
        w = graph.const(node.inputs[1])
        if not np.any(w == 0):
            continue  # kept whole (the first layer)
        pruned += 1
        score = np.abs(weights[node.name]) * rms[node.name][None, :, None]
        k = int(round(0.5 * w.size))
        lowest = np.zeros(w.size, bool)
        lowest[np.argsort(score.reshape(-1), kind="stable")[:k]] = True
        assert np.array_equal(w.reshape(-1) == 0, lowest), node.name
    assert pruned >= 2


def test_benchmark_numpy_figures_are_the_c_figures():
    """benchmarks.accuracy's --numpy figures (what the tests below use) are those of the C built
    and run through codegen.verify: the C equals the NumPy int8 reference byte for byte, hence
    the same accuracy, and the SQNR differs only by the float oracle (onnxruntime against
    onnx.reference, float32 rounding)."""
    model = accuracy._fixture("cancer_mlp")
    samples, labels = accuracy.load_test(model, limit=60)
    reference = accuracy.float_outputs(model, samples)
    numpy_figures = accuracy.evaluate(model, "minmax", samples, labels, reference, build=False)
    c_figures = accuracy.evaluate(model, "minmax", samples, labels, build=True)
    assert c_figures["exact"] is True
    assert c_figures["accuracy"] == numpy_figures["accuracy"]
    assert c_figures["accuracy_float"] == numpy_figures["accuracy_float"]
    assert abs(c_figures["sqnr_db"] - numpy_figures["sqnr_db"]) < 0.01


def test_benchmark_command_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "accuracy.json"
    assert accuracy.main(["--numpy", "--models", "cancer_mlp", "--configs", "minmax", "--limit", "20",
                          "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())["trained models"]["cancer_mlp"]
    assert figures["samples"] == 20 and "held back" not in json.loads(out.read_text())
    assert f"| cancer_mlp | 20 | {100 * figures['accuracy_float']:.1f}% | " in printed
    assert f"{figures['minmax']['sqnr_db']:.1f} dB, {100 * figures['minmax']['accuracy']:.1f}%" in printed


@functools.lru_cache(maxsize=None)
def _test_split(name: str):
    """(model, the whole test split, its labels, the float model's outputs on it)."""
    model = next(m for m in TUNED if m.name == name)
    samples, labels = accuracy.load_test(model)
    return model, samples, labels, accuracy.float_outputs(model, samples)


@functools.lru_cache(maxsize=None)
def figures(name: str, config: str) -> dict:
    """benchmarks.accuracy's figures of one configuration on the model's whole test split."""
    model, samples, labels, reference = _test_split(name)
    return accuracy.evaluate(model, config, samples, labels, reference, build=False)


@pytest.mark.parametrize("name", TUNED_NAMES)
def test_default_int8_sqnr_beats_minmax(name):
    """The default options (calibration auto, equalization, reconstruction) give a higher int8
    SQNR against the float model than min/max calibration alone, and no lower accuracy."""
    default, minmax = figures(name, "default"), figures(name, "minmax")
    assert default["sqnr_db"] > minmax["sqnr_db"]
    assert default["accuracy"] >= minmax["accuracy"]


@pytest.mark.parametrize("name", TUNED_NAMES)
def test_75_percent_sparsity_stays_within_2_points_of_float(name):
    """--sparsity 0.75 with the default options: int8 accuracy on the whole test split within 2
    points of the float model's (the unpruned one)."""
    sparse = figures(name, "sparse75")
    assert sparse["accuracy_float"] - sparse["accuracy"] <= 0.02 + 1e-12
