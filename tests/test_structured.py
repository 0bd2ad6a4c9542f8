"""Structured pruning (codegen/passes/structured.py): whole channels leave the graph, the kept
computation is untouched (the pruned graph equals the original with the removed channels'
weights and biases zeroed), residual producers lose the same channels, depthwise convs and
per-channel constants shrink along, what channels cannot pass leaves the group whole, and the
pruned graph quantizes and runs bit-exact in C."""

import copy
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import CompiledModel, compile_model, quantize_inputs
from codegen.emit import emit_model
from codegen.frontend import import_model
from codegen.ir import Tensor
from codegen.ops import get_op
from codegen.passes import calibrate, encode, plan_memory, quantize
from codegen.passes.prune import PruneOptions
from codegen.passes.structured import prune_channels
from codegen.reference import run_float, run_int8
from codegen.samples import load_samples
from codegen.verify import verify
from conftest import make_model, random_feeds
from test_prune import check_exact

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"
OPSET = 13
INT8_STEPS = 6  # output steps between the int8 and the float run of a pruned test model (seen: 3)


def weights(rng, *shape) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else 4)).astype(np.float32)


def node(graph, name):
    return next(n for n in graph.nodes if n.name == name)


def macs(graph) -> dict[str, int]:
    return {n.name: get_op(n.op_type).macs(n, graph) for n in graph.nodes}


def channel_rows(graph, name) -> np.ndarray:
    """A layer's weights as [output channel, ...]."""
    n = node(graph, name)
    w = graph.const(n.inputs[1])
    if n.op_type == "Conv":
        return w.reshape(w.shape[0], -1)
    return w if n.attrs.get("transB", 0) else w.T


def zeroed(graph, removed: dict[str, list[int]]):
    """A copy of `graph` where each listed node's constants are zero on the listed channels: the
    weights and bias of a Conv/Gemm/MatMul, the operand of an Add (each node gets its own copy)."""
    graph = copy.deepcopy(graph)
    for name, channels in removed.items():
        n = node(graph, name)
        for k, tensor in enumerate(n.inputs):
            if not tensor or graph.const(tensor) is None:
                continue
            value = np.array(graph.const(tensor), copy=True)
            if n.op_type == "Conv" or (k == 1 and n.attrs.get("transB", 0)):
                value[channels] = 0  # Conv W [C, ...] and bias [C]; Gemm B transposed [N, K]
            else:
                value[..., channels] = 0  # B [K, N], a bias or operand per feature [N]
            fresh = f"{tensor}_zeroed_{name}"
            graph.tensors[fresh] = Tensor(fresh, value.shape, str(value.dtype), value)
            n.inputs[k] = fresh
    return graph


def removed_by_layer(groups: list[dict]) -> dict[str, list[int]]:
    return {name: g["removed"] for g in groups for name in g["layers"] if g["removed"]}


def assert_same_outputs(pruned, reference, samples, tol=1e-5):
    for feeds in samples:
        got, want = run_float(pruned, feeds), run_float(reference, feeds)
        for name in pruned.outputs:
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=tol * max(1.0, np.abs(want[name]).max()))


def assert_smallest_removed(scores: np.ndarray, group: dict):
    removed = np.asarray(group["removed"], int)
    kept = np.setdiff1d(np.arange(group["channels"]), removed)
    assert scores[removed].max() <= scores[kept].min(), f"{group['layers']}: a removed channel outweighs a kept one"


# ---- models ----

def digits_like(rng):
    """Conv 1->8 3x3 pad 1, Relu, Conv 8->16 3x3 pad 1, Relu, MaxPool 2, Flatten, Gemm 256->10."""
    inits = {"w1": weights(rng, 8, 1, 3, 3), "b1": weights(rng, 8), "w2": weights(rng, 16, 8, 3, 3),
             "b2": weights(rng, 16), "wf": weights(rng, 10, 256), "bf": weights(rng, 10)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, [("x", [1, 1, 8, 8])], [("y", [1, 10])], inits, opset=OPSET)


def residual(rng):
    """stem -> Relu = r; a, Relu, b; Add(r, b) -> Relu = h (identity shortcut: stem and b join);
    c, Relu, d; shortcut conv e of h; Add(d, e) -> Relu (d and e join); GlobalAveragePool,
    Flatten, Gemm."""
    inits = {"ws": weights(rng, 8, 4, 3, 3), "bs": weights(rng, 8), "wa": weights(rng, 8, 8, 3, 3),
             "ba": weights(rng, 8), "wb": weights(rng, 8, 8, 3, 3), "bb": weights(rng, 8),
             "wc": weights(rng, 12, 8, 3, 3), "bc": weights(rng, 12), "wd": weights(rng, 12, 12, 1, 1),
             "bd": weights(rng, 12), "we": weights(rng, 12, 8, 1, 1), "wf": weights(rng, 12, 5), "bf": weights(rng, 5)}
    pad = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "ws", "bs"], ["s"], name="stem", **pad),
        helper.make_node("Relu", ["s"], ["r"], name="relu_s"),
        helper.make_node("Conv", ["r", "wa", "ba"], ["a"], name="a", **pad),
        helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["ra", "wb", "bb"], ["b"], name="b", **pad),
        helper.make_node("Add", ["r", "b"], ["sum1"], name="add1"),
        helper.make_node("Relu", ["sum1"], ["h"], name="relu_1"),
        helper.make_node("Conv", ["h", "wc", "bc"], ["c"], name="c", **pad),
        helper.make_node("Relu", ["c"], ["rc"], name="relu_c"),
        helper.make_node("Conv", ["rc", "wd", "bd"], ["d"], name="d"),
        helper.make_node("Conv", ["h", "we"], ["e"], name="e"),
        helper.make_node("Add", ["d", "e"], ["sum2"], name="add2"),
        helper.make_node("Relu", ["sum2"], ["h2"], name="relu_2"),
        helper.make_node("GlobalAveragePool", ["h2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc"),
    ]
    return make_model(nodes, [("x", [1, 4, 6, 6])], [("y", [1, 5])], inits, opset=OPSET)


def mobilenet_like(rng):
    """expand Conv 3->8, Relu, Mul by a per-channel constant, depthwise 3x3 (bias), Relu,
    project Conv 1x1 8->6, GlobalAveragePool, Reshape to [1, 6], Gemm 6->4."""
    inits = {"we": weights(rng, 8, 3, 3, 3), "be": weights(rng, 8), "scale": rng.uniform(0.5, 2, (8, 1, 1)),
             "wdw": weights(rng, 8, 1, 3, 3), "bdw": weights(rng, 8), "wp": weights(rng, 6, 8, 1, 1),
             "bp": weights(rng, 6), "shape": np.array([1, 6], np.int64), "wf": weights(rng, 4, 6)}
    inits["scale"] = inits["scale"].astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "we", "be"], ["e"], name="expand"),
        helper.make_node("Relu", ["e"], ["re"], name="relu_e"),
        helper.make_node("Mul", ["re", "scale"], ["m"], name="scale"),
        helper.make_node("Conv", ["m", "wdw", "bdw"], ["dw"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["dw"], ["rdw"], name="relu_dw"),
        helper.make_node("Conv", ["rdw", "wp", "bp"], ["p"], name="project"),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Reshape", ["g", "shape"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, [("x", [1, 3, 7, 7])], [("y", [1, 4])], inits, opset=OPSET)


def shared_weight_mlp(rng):
    """MatMul x @ W, Add a per-feature bias, Relu, Gemm h @ W + c: W [16, 16] is read by both (the
    import folds the Add into fc1, a Gemm with the bias as C)."""
    inits = {"w": weights(rng, 16, 16), "b": weights(rng, 16), "c": weights(rng, 16)}
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="fc1"),
        helper.make_node("Add", ["m", "b"], ["mb"], name="bias1"),
        helper.make_node("Relu", ["mb"], ["h"], name="relu"),
        helper.make_node("Gemm", ["h", "w", "c"], ["y"], name="fc2"),
    ]
    return make_model(nodes, [("x", [1, 16])], [("y", [1, 16])], inits, opset=OPSET)


# ---- 1. a chain, and the bundled example ----

def test_chain_shrinks_and_keeps_the_kept_computation(rng):
    original = import_model(digits_like(rng))
    graph = copy.deepcopy(original)
    excluded = {"conv1": "first layer", "fc": "last layer"}
    groups = prune_channels(graph, 0.5, excluded=excluded)
    assert [(g["layers"], g["channels"], g["kept"], g["reason"]) for g in groups] == [
        (["conv1"], 8, 8, "first layer"), (["conv2"], 16, 8, ""), (["fc"], 10, 10, "last layer")]
    assert groups[0]["removed"] == [] and len(groups[1]["removed"]) == 8
    assert_smallest_removed(np.square(channel_rows(original, "conv2")).sum(axis=1), groups[1])
    kept = np.setdiff1d(np.arange(16), groups[1]["removed"])
    np.testing.assert_array_equal(graph.const(node(graph, "conv2").inputs[1]),
                                  original.const("w2")[kept])
    np.testing.assert_array_equal(graph.const(node(graph, "conv2").inputs[2]), original.const("b2")[kept])
    features = (kept[:, None] * 16 + np.arange(16)).reshape(-1)  # 4x4 after the pool
    np.testing.assert_array_equal(graph.const(node(graph, "fc").inputs[1]), original.const("wf")[:, features])
    assert graph.const(node(graph, "fc").inputs[1]).shape == (10, 128)
    assert graph.tensors["r2"].shape == (1, 8, 8, 8) and graph.tensors["f"].shape == (1, 128)
    np.testing.assert_array_equal(graph.const(node(graph, "conv1").inputs[1]), original.const("w1"))
    samples = random_feeds(rng, {"x": (1, 1, 8, 8)}, count=4)
    assert_same_outputs(graph, zeroed(original, {"conv2": groups[1]["removed"]}), samples)
    before, after = macs(original), macs(graph)
    assert after == {**before, "conv2": before["conv2"] // 2, "pool": before["pool"] // 2, "fc": before["fc"] // 2}


def test_example_loses_at_least_40_percent_of_its_macs():
    original = import_model(EXAMPLE / "digits.onnx")
    graph = copy.deepcopy(original)
    first = original.nodes[0].name
    groups = prune_channels(graph, 0.5, excluded={first: "first layer"})
    assert [g["kept"] for g in groups] == [8, 8, 10]
    assert [g["reason"] for g in groups] == ["first layer", "", "feeds a graph output"]
    before, after = sum(macs(original).values()), sum(macs(graph).values())
    assert (before, after) == (81920, 43264) and after <= 0.6 * before
    samples, _ = load_samples(EXAMPLE / "test.npz", original)
    assert_same_outputs(graph, zeroed(original, removed_by_layer(groups)), samples[:20])


# ---- 2. residual blocks ----

def test_residual_producers_lose_the_same_channels(rng):
    original = import_model(residual(rng))
    graph = copy.deepcopy(original)
    groups = prune_channels(graph, 0.5, per_layer={"d": 0.75, "e": 0.25})
    assert [g["layers"] for g in groups] == [["stem", "b"], ["a"], ["c"], ["d", "e"], ["fc"]]
    assert [(g["channels"], g["kept"]) for g in groups] == [(8, 4), (8, 4), (12, 6), (12, 9), (5, 5)]
    assert groups[-1]["reason"] == "feeds a graph output"
    for g, names in ((groups[0], ("stem", "b")), (groups[3], ("d", "e"))):
        # the group's score: the sum over its producers of each channel's squared norm
        assert_smallest_removed(sum(np.square(channel_rows(original, n)).sum(axis=1) for n in names), g)
    sb, a, c, de = (np.setdiff1d(np.arange(g["channels"]), g["removed"]) for g in groups[:4])
    # every conv keeps its group's output channels and its input's group's input channels
    for name, out, inp in (("stem", sb, slice(None)), ("a", a, sb), ("b", sb, a), ("c", c, sb), ("d", de, c),
                           ("e", de, sb)):
        n, n0 = node(graph, name), node(original, name)
        np.testing.assert_array_equal(graph.const(n.inputs[1]), original.const(n0.inputs[1])[out][:, inp], name)
        if len(n0.inputs) > 2:
            np.testing.assert_array_equal(graph.const(n.inputs[2]), original.const(n0.inputs[2])[out], name)
    np.testing.assert_array_equal(graph.const(node(graph, "fc").inputs[1]), original.const("wf")[de])
    assert graph.tensors["h"].shape == (1, 4, 6, 6) and graph.tensors["h2"].shape == (1, 9, 6, 6)
    samples = random_feeds(rng, {"x": (1, 4, 6, 6)}, count=4)
    assert_same_outputs(graph, zeroed(original, removed_by_layer(groups)), samples)


# ---- 3. depthwise convs and per-channel constants ----

def test_depthwise_and_per_channel_constants_shrink_along(rng):
    original = import_model(mobilenet_like(rng))
    graph = copy.deepcopy(original)
    groups = prune_channels(graph, 0.5, per_layer={"dw": 0.25})  # dw's override rules expand's group
    assert [(g["layers"], g["kept"], g["reason"]) for g in groups] == [
        (["expand"], 6, ""), (["project"], 3, ""), (["fc"], 4, "feeds a graph output")]
    kept = np.setdiff1d(np.arange(8), groups[0]["removed"])
    dw = node(graph, "dw")
    assert dw.attrs["group"] == 6 and graph.tensors["rdw"].shape == (1, 6, 5, 5)
    np.testing.assert_array_equal(graph.const(dw.inputs[1]), original.const("wdw")[kept])
    np.testing.assert_array_equal(graph.const(dw.inputs[2]), original.const("bdw")[kept])
    np.testing.assert_array_equal(graph.const(node(graph, "scale").inputs[1]), original.const("scale")[kept])
    kept_p = np.setdiff1d(np.arange(6), groups[1]["removed"])
    np.testing.assert_array_equal(graph.const(node(graph, "project").inputs[1]),
                                  original.const("wp")[kept_p][:, kept])
    np.testing.assert_array_equal(graph.const(node(graph, "fc").inputs[1]), original.const("wf")[:, kept_p])
    assert graph.const(node(graph, "reshape").inputs[1]).tolist() == [1, 3]
    removed = {**removed_by_layer(groups), "dw": groups[0]["removed"]}
    samples = random_feeds(rng, {"x": (1, 3, 7, 7)}, count=4)
    assert_same_outputs(graph, zeroed(original, removed), samples)


def test_a_shared_weight_is_copied_before_it_is_sliced(rng):
    original = import_model(shared_weight_mlp(rng))
    graph = copy.deepcopy(original)
    groups = prune_channels(graph, 0.25)
    assert [(g["layers"], g["kept"]) for g in groups] == [(["fc1"], 12), (["fc2"], 16)]
    kept = np.setdiff1d(np.arange(16), groups[0]["removed"])
    fc1, fc2 = node(graph, "fc1"), node(graph, "fc2")
    assert fc1.inputs[1] != fc2.inputs[1]
    np.testing.assert_array_equal(graph.const(fc1.inputs[1]), original.const("w")[:, kept])
    np.testing.assert_array_equal(graph.const(fc2.inputs[1]), original.const("w")[kept])
    assert fc1.op_type == "Gemm" and not any(n.op_type == "Add" for n in graph.nodes)
    np.testing.assert_array_equal(graph.const(fc1.inputs[2]), original.const(node(original, "fc1").inputs[2])[kept])
    samples = random_feeds(rng, {"x": (1, 16)}, count=4)
    removed = groups[0]["removed"]
    assert_same_outputs(graph, zeroed(original, {"fc1": removed}), samples)


# ---- 4. what stops a group ----

def blocked_models(rng):
    w = {"w1": weights(rng, 6, 3, 3, 3), "w2": weights(rng, 6, 3, 3, 3), "w3": weights(rng, 4, 12, 1, 1),
         "w4": weights(rng, 3, 3, 1, 1), "w5": weights(rng, 4, 6, 1, 1)}
    concat = make_model([
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["x", "w2"], ["c2"], name="conv2"),
        helper.make_node("Concat", ["r1", "c2"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["y"], name="conv3"),
    ], [("x", [1, 3, 6, 6])], [("y", None)], {k: w[k] for k in ("w1", "w2", "w3")}, opset=OPSET)
    input_residual = make_model([
        helper.make_node("Conv", ["x", "w4"], ["c"], name="conv1"),
        helper.make_node("Add", ["x", "c"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "w4"], ["y"], name="conv2"),
    ], [("x", [1, 3, 6, 6])], [("y", None)], {"w4": w["w4"]}, opset=OPSET)

    def between(op: str, **attrs):  # conv1, op, conv2
        return make_model([
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
            helper.make_node(op, ["c1"], ["t"], name="mid", **attrs),
            helper.make_node("Conv", ["t", "w5"], ["y"], name="conv2"),
        ], [("x", [1, 3, 6, 6])], [("y", None)], {"w1": w["w1"], "w5": w["w5"]}, opset=OPSET)

    return {"concat": concat, "input_residual": input_residual, "softmax": between("Softmax", axis=1),
            "transpose": between("Transpose", perm=[0, 1, 3, 2]), "sigmoid": between("Sigmoid")}


@pytest.mark.parametrize("case,ratio,excluded,expected", [
    ("concat", 0.5, None, [(["conv1"], "meets a Concat"), (["conv2"], "meets a Concat"),
                           (["conv3"], "feeds a graph output")]),
    ("input_residual", 0.5, None, [(["conv1"], "reaches Add node add, which channels cannot pass"),
                                   (["conv2"], "feeds a graph output")]),
    ("softmax", 0.5, None, [(["conv1"], "reaches Softmax node mid, which channels cannot pass"),
                            (["conv2"], "feeds a graph output")]),
    ("transpose", 0.5, None, [(["conv1"], "reaches Transpose node mid, which channels cannot pass"),
                              (["conv2"], "feeds a graph output")]),
    ("softmax", 0.5, {"conv1": "first layer"}, [(["conv1"], "first layer"), (["conv2"], "feeds a graph output")]),
    ("sigmoid", 0.1, {}, [(["conv1"], "ratio removes no channel"), (["conv2"], "feeds a graph output")]),
])
def test_what_channels_cannot_pass_leaves_the_group_whole(rng, case, ratio, excluded, expected):
    original = import_model(blocked_models(rng)[case])
    graph = copy.deepcopy(original)
    groups = prune_channels(graph, ratio, excluded=excluded)
    assert [(g["layers"], g["reason"]) for g in groups] == expected
    assert all(g["kept"] == g["channels"] and g["removed"] == [] for g in groups)
    for name, tensor in original.tensors.items():
        assert graph.tensors[name].shape == tensor.shape
        if tensor.is_const:
            np.testing.assert_array_equal(graph.tensors[name].data, tensor.data)


def test_the_same_chain_without_the_blocking_op_is_pruned(rng):
    """conv1, Sigmoid, conv2 at ratio 0.5: the Softmax and the Transpose alone stopped conv1."""
    graph = import_model(blocked_models(rng)["sigmoid"])
    groups = prune_channels(graph, 0.5)
    assert [(g["layers"], g["kept"], g["reason"]) for g in groups] == [
        (["conv1"], 3, ""), (["conv2"], 4, "feeds a graph output")]
    assert graph.const(node(graph, "conv2").inputs[1]).shape == (4, 3, 1, 1)


# ---- 5. the pruned graph quantizes and runs bit-exact ----

@pytest.mark.parametrize("build,shape", [(residual, (1, 4, 6, 6)), (mobilenet_like, (1, 3, 7, 7))],
                         ids=["residual", "mobilenet"])
def test_pruned_graph_quantizes_and_the_c_is_bit_exact(rng, build, shape):
    """The compiler's int8 pipeline (calibrate, quantize, encode, plan_memory, emit) on the
    pruned graph: the C equals the int8 reference byte for byte, and the int8 graph computes
    the pruned float graph."""
    model = build(rng)
    graph = import_model(model)
    groups = prune_channels(graph, 0.5)
    assert sum(len(g["removed"]) for g in groups) >= 7
    float_graph = copy.deepcopy(graph)
    samples = random_feeds(rng, {"x": shape}, count=8)
    quantize.run(graph, calibrate.run(graph, samples, progress=False))
    encode.run(graph)
    plan = plan_memory.run(graph)
    emitted = emit_model(graph, plan, "net", {"mode": "int8", "quantization": "calibrated"})
    compiled = CompiledModel(model, graph, plan, emitted, float_graph)
    check_exact(compiled, samples)
    q = graph.tensors["y"].quant
    for feeds in samples:
        want = run_float(float_graph, feeds)["y"]
        got = q.dequantize(run_int8(graph, quantize_inputs(graph, feeds))["y"])
        assert np.abs(got - want).max() <= INT8_STEPS * q.scale


def test_compiler_prunes_channels_end_to_end(rng):
    """`--prune structured` through compile_model (default exclusions, bias correction): the
    groups the report lists, fewer MACs, and C == the int8 reference."""
    model = residual(rng)
    samples = random_feeds(rng, {"x": (1, 4, 6, 6)}, count=8)
    dense = compile_model(model, "net", mode="int8", calib=samples)
    compiled = compile_model(model, "net", mode="int8", calib=samples,
                             prune=PruneOptions(pattern="structured", sparsity=0.5))
    groups = compiled.report["pruning"]["channel_groups"]
    assert [(g["layers"], g["kept"]) for g in groups if g["removed"]] == [(["a"], 4), (["c"], 6)]
    reasons = {tuple(g["layers"]): g["reason"] for g in groups}
    assert reasons[("stem", "b")].startswith("first layer") and reasons[("d", "e")].startswith("tiny")
    assert compiled.report["macs"] < 0.6 * dense.report["macs"]
    assert verify(compiled, samples)["bit_exact"]
