"""Pruning (codegen/passes/prune.py) and sparse weights end to end: the patterns hit their
sparsity exactly, the default exclusions hold, bias correction centres the error, weights
already sparse in the file are found without a flag, and every pruned or sparse model's C equals
the int8 reference byte for byte (on the host; on the emulated Cortex-M4 in test_targets)."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from codegen import sparse
from codegen.build import HostModel
from codegen.cli import main
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.frontend import import_model
from codegen.ops import get_op
from codegen.passes import prune
from codegen.passes.prune import PruneOptions
from codegen.reference import run_float, run_int8
from codegen.samples import load_samples
from codegen.verify import verify
from conftest import make_model, random_feeds
from test_targets import need

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"


def cnn(rng, zeros: float = 0.0, bias: bool = True) -> onnx.ModelProto:
    """Conv 3->16 3x3, Relu, depthwise 3x3, Conv 1x1 16->64, Relu, GlobalAveragePool, Flatten,
    Gemm 64->10 (transB) and Gemm 10->6 (weight [K, N]); `zeros` of every weight set to zero."""
    def w(*shape):
        a = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
        a[rng.random(shape) < zeros] = 0
        return a

    inits = {"w1": w(16, 3, 3, 3), "w2": w(16, 1, 3, 3), "w3": w(64, 16, 1, 1), "w4": w(10, 64), "w5": w(10, 6)}
    if bias:
        inits.update(b1=w(16) * 0.1, b2=w(16) * 0.1, b3=w(64) * 0.1, b4=w(10) * 0.1, b5=w(6) * 0.1)
    b = (lambda n: [n]) if bias else (lambda n: [])
    nodes = [
        helper.make_node("Conv", ["x", "w1", *b("b1")], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", *b("b2")], ["c2"], name="dw", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c2", "w3", *b("b3")], ["c3"], name="pw"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w4", *b("b4")], ["h"], name="fc1", transB=1),
        helper.make_node("Gemm", ["h", "w5", *b("b5")], ["y"], name="fc2"),
    ]
    return make_model(nodes, [("x", [1, 3, 10, 10])], [("y", [1, 6])], inits)


def weights(graph, name: str) -> np.ndarray:
    node = next(n for n in graph.nodes if n.name == name)
    return graph.tensors[node.inputs[prune.weight_input(node, graph)]].data


def check_exact(compiled, feeds: list[dict]) -> None:
    """The C equals the int8 reference on every sample, byte for byte."""
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(graph, f)
        for c, name in zip(host.run([q[n] for n in graph.inputs]), graph.outputs):
            np.testing.assert_array_equal(c, run_int8(graph, q)[name])


# ---- the patterns ----

def test_unstructured_per_layer_hits_the_sparsity_and_keeps_the_largest(rng):
    graph = import_model(cnn(rng))
    before = {n.name: weights(graph, n.name).copy() for n in prune.prunable(graph)}
    section = prune.run(graph, PruneOptions(sparsity=0.6, per_layer={"fc2": 0.5}, bias_correction=False))
    layers = {e["name"]: e for e in section["layers"]}
    # conv1 (first) and dw (tiny) stay whole, with their reasons; fc2 (tiny) is pruned by its override
    assert layers["conv1"]["kept_because"].startswith("first layer (19%") and "sparsity_after" in layers["conv1"]
    assert layers["dw"]["kept_because"].startswith("tiny")
    for name, s in (("pw", 0.6), ("fc1", 0.6), ("fc2", 0.5)):
        w, w0 = weights(graph, name), before[name]
        assert np.count_nonzero(w == 0) == round(s * w.size), name
        kept = np.abs(w0[w != 0])
        assert np.abs(w0[w == 0]).max() <= kept.min(), f"{name}: a pruned weight outweighs a kept one"
        np.testing.assert_array_equal(w[w != 0], w0[w != 0])
    np.testing.assert_array_equal(weights(graph, "conv1"), before["conv1"])


def test_first_and_last_layers_are_excluded_unless_they_hold_the_weights():
    graph = import_model(EXAMPLE / "digits.onnx")
    skip = prune.exclusions(graph, prune.prunable(graph), PruneOptions(sparsity=0.5))
    assert skip == {"/features/features.0/Conv": "tiny (72 weights < 256)"}  # the classifier holds 68%
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", [f"h{i}", f"w{i}"], [f"h{i + 1}"], name=f"fc{i}") for i in range(5)]
    inits = {f"w{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(5)}
    model = make_model(nodes, [("h0", [1, 32])], [("h5", [1, 32])], inits)
    graph = import_model(model)
    skip = prune.exclusions(graph, prune.prunable(graph), PruneOptions(sparsity=0.5))
    assert set(skip) == {"fc0", "fc4"} and skip["fc0"].startswith("first") and skip["fc4"].startswith("last")
    skip = prune.exclusions(graph, prune.prunable(graph), PruneOptions(sparsity=0.5, per_layer={"fc0": 0.3}))
    assert set(skip) == {"fc4"}


def test_global_scope_uses_one_threshold(rng):
    graph = import_model(cnn(rng))
    before = {n: weights(graph, n).copy() for n in ("pw", "fc1")}
    prune.run(graph, PruneOptions(sparsity=0.7, scope="global", bias_correction=False))
    pruned = np.concatenate([np.abs(before[n][weights(graph, n) == 0]) for n in before])
    kept = np.concatenate([np.abs(before[n][weights(graph, n) != 0]) for n in before])
    assert pruned.size == round(0.7 * (pruned.size + kept.size))
    assert pruned.max() <= kept.min()
    # the layers end up with different sparsities: one threshold, not one fraction per layer
    assert len({round(prune.zero_fraction(weights(graph, n)), 3) for n in before}) == 2


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 8)])
def test_n_of_m_keeps_n_largest_of_every_m_along_the_reduction(rng, n, m):
    graph = import_model(cnn(rng))
    before = {x.name: weights(graph, x.name).copy() for x in prune.prunable(graph)}
    prune.run(graph, PruneOptions(pattern=f"{n}:{m}", bias_correction=False))
    for node in prune.prunable(graph):
        if node.name in ("conv1", "dw", "fc2"):  # excluded: first, tiny, tiny
            np.testing.assert_array_equal(weights(graph, node.name), before[node.name])
            continue
        k = prune.weight_input(node, graph)
        rows, _ = prune._rows(node, graph, weights(graph, node.name), k)
        rows0, _ = prune._rows(node, graph, before[node.name], k)
        cols = rows.shape[1]
        for start in range(0, cols, m):
            got, was = rows[:, start:start + m], rows0[:, start:start + m]
            assert (np.count_nonzero(got, axis=1) == min(n, got.shape[1])).all(), node.name
            smallest_kept = np.where(got != 0, np.abs(was), np.inf).min(axis=1)
            largest_pruned = np.where(got == 0, np.abs(was), -np.inf).max(axis=1)
            assert (largest_pruned <= smallest_kept).all(), node.name


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_activation_criterion_weighs_each_weight_by_its_input(rng, pattern):
    """With calibration samples a weight's score is |w| times the RMS of the input feature it
    multiplies; every pruned weight scores no higher than any kept one in its comparison group."""
    model = cnn(rng)
    graph = import_model(model)
    samples = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=6)
    layers = prune.prunable(graph)
    before = {n.name: weights(graph, n.name).copy() for n in layers}
    values = [run_float(graph, s, keep_all=True) for s in samples]
    options = PruneOptions(sparsity=0.6 if pattern == "unstructured" else None, pattern=pattern, bias_correction=False)
    section = prune.run(graph, options, samples)
    assert section["criterion"] == "activation" and "fallback" not in section
    for node in prune.prunable(graph):
        if node.name in ("conv1", "dw", "fc2"):  # excluded
            continue
        x = np.stack([np.asarray(v[node.inputs[0]], np.float64) for v in values])
        if node.op_type == "Conv":  # per input channel, over samples and positions
            rms = np.sqrt((np.moveaxis(x, 2, 0) ** 2).reshape(x.shape[2], -1).mean(axis=1))
            scale = rms[None, :, None, None]
        else:
            rms = np.sqrt((x.reshape(-1, x.shape[-1]) ** 2).mean(axis=0))
            scale = rms[None, :] if node.attrs.get("transB", 0) else rms[:, None]
        w, score = weights(graph, node.name), np.abs(before[node.name].astype(np.float64)) * scale
        if pattern == "unstructured":
            assert np.count_nonzero(w == 0) == round(0.6 * w.size)
            assert score[w == 0].max() <= score[w != 0].min() * (1 + 1e-12), node.name
        else:
            k = prune.weight_input(node, graph)
            rows, _ = prune._rows(node, graph, w, k)
            srows, _ = prune._rows(node, graph, np.broadcast_to(score, w.shape), k)
            for start in range(0, rows.shape[1], 4):
                got, s = rows[:, start:start + 4], srows[:, start:start + 4]
                assert (np.where(got == 0, s, -np.inf).max(axis=1) <= np.where(got != 0, s, np.inf).min(axis=1)).all()
    magnitude = import_model(model)
    prune.run(magnitude, PruneOptions(sparsity=0.6, criterion="magnitude", bias_correction=False), samples)
    changed = [n for n in ("pw", "fc1") if not np.array_equal(weights(magnitude, n) == 0, weights(graph, n) == 0)]
    assert pattern != "unstructured" or changed, "the activation criterion chose the magnitude mask"
    fallback = prune.run(import_model(model), PruneOptions(sparsity=0.6, bias_correction=False))
    assert fallback["criterion"].startswith("magnitude")


def test_bad_options_are_one_line_errors():
    for kwargs, words in ((dict(sparsity=1.0), "[0, 1)"), (dict(pattern="4:4"), "N:M"),
                          (dict(pattern="2:4", sparsity=0.5), "does not apply"),
                          (dict(pattern="structured", scope="global"), "unstructured")):
        with pytest.raises(CompileError, match=".*") as err:
            PruneOptions(**kwargs)
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CompileError, match="no prunable layer named nope"):
        compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz",
                      prune=PruneOptions(per_layer={"nope": 0.5}))
    assert prune.parse_per_layer("a=0.5, b/c=0.25") == {"a": 0.5, "b/c": 0.25}
    with pytest.raises(CompileError, match="not NAME=S"):
        prune.parse_per_layer("a0.5")


# ---- bias correction ----

def pre_activation(graph, name, feeds_list):
    node = next(n for n in graph.nodes if n.name == name)
    bare = prune._pre_activation(node)
    out = []
    for feeds in feeds_list:
        values = run_float(graph, feeds, keep_all=True)
        ins = [None if not i else (values[i] if i in values else graph.tensors[i].data) for i in node.inputs]
        out.append(get_op(node.op_type).reference(bare, graph, ins)[0])
    return np.stack(out)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_bias_correction_centres_each_channel(rng, bias):
    model = cnn(rng, bias=bias)
    samples = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=24)
    original = import_model(model)
    corrected, plain = import_model(model), import_model(model)
    section = prune.run(corrected, PruneOptions(sparsity=0.8), samples)
    prune.run(plain, PruneOptions(sparsity=0.8, bias_correction=False), samples)
    assert [e["name"] for e in section["layers"] if e["bias_corrected"]] == ["pw", "fc1", "fc2"]
    ref = pre_activation(original, "pw", samples)
    err_fixed = (ref - pre_activation(corrected, "pw", samples)).mean(axis=(0, 1, 3, 4))
    err_plain = (ref - pre_activation(plain, "pw", samples)).mean(axis=(0, 1, 3, 4))
    assert np.abs(err_fixed).max() < 1e-4 * np.abs(ref).max()
    assert np.abs(err_plain).max() > 100 * np.abs(err_fixed).max()
    # the weights are the same: only the biases moved
    np.testing.assert_array_equal(weights(corrected, "pw"), weights(plain, "pw"))


# ---- weights already sparse, encodings, end to end ----

def test_weights_sparse_in_the_file_are_found_without_a_flag(rng):
    model = cnn(rng, zeros=0.85)
    calib = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=12)
    auto = compile_model(model, "net", mode="int8", calib=calib, target="cortex-m4")
    dense = compile_model(model, "net", mode="int8", calib=calib, target="cortex-m4", encoding="dense")
    layers = {l["name"]: l for l in auto.report["layers"]}
    w4 = next(onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "w4")
    assert layers["fc1"]["sparsity"] >= round(prune.zero_fraction(w4), 4) > 0.75  # int8 rounding may add zeros
    assert layers["fc1"]["encoding"] in ("index8", "delta4")
    assert layers["fc1"]["weight_bytes_encoded"] < layers["fc1"]["weight_bytes_dense"]
    assert auto.report["weights_bytes"] < dense.report["weights_bytes"]
    assert all(l.get("encoding", "dense") == "dense" for l in dense.report["layers"])
    assert "pruning" not in auto.report
    check_exact(auto, calib)


@pytest.mark.parametrize("encoding", ["sparse", "auto"])
def test_pruned_models_are_bit_exact(rng, encoding):
    model = cnn(rng)
    calib = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=12)
    options = PruneOptions(sparsity=0.7, per_layer={"conv1": 0.5, "dw": 0.6, "fc2": 0.5})
    compiled = compile_model(model, "net", mode="int8", calib=calib, prune=options, encoding=encoding)
    kinds = {l["name"]: l["encoding"] for l in compiled.report["layers"] if "encoding" in l}
    if encoding == "sparse":
        assert set(kinds.values()) <= set(sparse.ENCODING_IDS) and len(kinds) == 5
        assert {k for l in compiled.report["layers"] for k in l["kernels"]} >= {
            "nn_conv_sparse_s8", "nn_conv_dw_sparse_s8", "nn_fc_sparse_s8"}
    check_exact(compiled, calib)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_sparse_model_is_identical_on_target(rng, target):
    """Every sparse kernel in one model, on a DSP core and on the smallest one."""
    need(target)
    calib = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=6)
    options = PruneOptions(sparsity=0.7, per_layer={"conv1": 0.5, "dw": 0.6, "fc2": 0.5})
    compiled = compile_model(cnn(rng), "net", mode="int8", calib=calib, prune=options, encoding="sparse",
                             target=target)
    assert {"nn_conv_sparse_s8", "nn_conv_dw_sparse_s8", "nn_fc_sparse_s8"} <= {
        k for l in compiled.report["layers"] for k in l["kernels"]}
    result = verify(compiled, calib, target=target)
    assert result["bit_exact"] and result["target_equal"]


def test_example_at_75_percent(tmp_path):
    """The bundled example pruned to 75%: smaller, bit-exact, and accurate (the figures of the README)."""
    calib, data = EXAMPLE / "calib.npz", EXAMPLE / "test.npz"
    dense = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=calib)
    compiled = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=calib,
                             prune=PruneOptions(sparsity=0.75), encoding="sparse")
    samples, labels = load_samples(data, compiled.graph)
    result = verify(compiled, samples, labels)
    assert result["bit_exact"]
    # the figures: int8 within 2 points of float, weight bytes at most 0.45x of dense int8
    assert result["accuracy_pruned"] is not None and result["accuracy_quantized"] >= result["accuracy_float"] - 0.02
    def weight_bytes(model):  # the weight tables alone
        return sum(layer.get("weight_bytes_encoded", 0) for layer in model.report["layers"])

    assert weight_bytes(compiled) <= 0.45 * weight_bytes(dense)
    assert compiled.report["weights_bytes"] < 0.46 * dense.report["weights_bytes"]  # with biases, requantization


def test_cli_prunes_and_reports(tmp_path, capsys):
    out = tmp_path / "digits"
    args = [str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"), "--sparsity", "0.75",
            "--encoding", "sparse"]
    assert main(["compile", *args, "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["pruning"]["sparsity"] == 0.75 and report["options"]["prune"]["pattern"] == "unstructured"
    gemm = report["layers"][-1]
    assert gemm["encoding"] in ("index8", "delta4") and gemm["sparsity"] >= 0.75 and gemm["encoding_reason"]
    assert main(["inspect", *args]) == 0
    text = capsys.readouterr().out
    assert "pruning: pattern unstructured" in text and "kept: tiny" in text and "weight encodings:" in text
    assert main(["verify", *args, "--data", str(EXAMPLE / "test.npz")]) == 0
    assert ", pruned " in capsys.readouterr().out
    assert main(["compile", *args, "--sparsity", "2", "-o", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("onnx2mcu: error: --sparsity 2.0") and "\n" not in err


def test_float_pruning_compiles_and_matches_the_pruned_reference(rng):
    model = cnn(rng)
    calib = random_feeds(rng, {"x": (1, 3, 10, 10)}, count=6)
    compiled = compile_model(model, "net", calib=calib, prune=PruneOptions(sparsity=0.5))
    result = verify(compiled, calib)
    assert result["bit_exact"] and compiled.report["pruning"]["layers"][2]["sparsity_after"] == 0.5
