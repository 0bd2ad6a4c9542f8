"""Classic machine learning (ai.onnx.ml, codegen/ops/ml.py): each operator against onnxruntime
(the reference for this domain), the C against the NumPy reference, and the scikit-learn
fixtures of tests/fixtures/make_ml.py end to end: labels equal to scikit-learn's predictions."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.ops import ml
from codegen.qparams import QParams
from codegen.reference import run_float, run_int8
from codegen.verify import within_tolerance
from conftest import FIXTURES, onnxruntime_oracle
from test_targets import need

ML = "ai.onnx.ml"
FIXTURE_NAMES = ["ml_logreg", "ml_linear_svc", "ml_rbf_svc", "ml_random_forest", "ml_gradient_boosting",
                 "ml_tree_regressor", "ml_pipeline", "ml_svc_multiclass"]
CLASSIFIER_OPS = ("LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier")


def ml_model(op_type, features, rows=1, outputs=None, **attrs) -> onnx.ModelProto:
    """One ai.onnx.ml node on X [rows, features]; a classifier has outputs label (int64) and scores."""
    classifier = op_type in CLASSIFIER_OPS
    names = ["label", "scores"] if classifier else ["Y"]
    node = helper.make_node(op_type, ["X"], names, domain=ML, **attrs)
    outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [rows]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [rows, None])] if classifier else \
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, outputs)]
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [rows, features])],
                              outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)])
    model.ir_version = 8
    return model


def ort_outputs(session, x) -> list[np.ndarray]:
    """onnxruntime's outputs, a ZipMap's list of dicts as a [rows, classes] array."""
    outs = []
    for o in session.run(None, {session.get_inputs()[0].name: x}):
        if isinstance(o, list):
            o = np.array([[d[k] for k in sorted(d)] for d in o], np.float32)
        outs.append(np.asarray(o))
    return outs


def check_float(model, xs, rel=1e-5):
    """C == NumPy reference (exactly for labels, within `rel` for scores) == onnxruntime."""
    compiled = compile_model(model, "net")
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    session = onnxruntime_oracle(model)
    for x in xs:
        c_out = host.run([x])
        ref = run_float(compiled.graph, {"X": x})
        for c, name, e in zip(c_out, compiled.graph.outputs, ort_outputs(session, x)):
            r = ref[name]
            e = e.reshape(c.shape)
            if c.dtype.kind == "i":
                np.testing.assert_array_equal(c, r, err_msg=f"C label differs from the reference on '{name}'")
                np.testing.assert_array_equal(r, e, err_msg=f"reference label differs from onnxruntime on '{name}'")
            else:
                assert within_tolerance(r, e, rel), f"reference differs from onnxruntime on '{name}': {r} {e}"
                assert within_tolerance(c, r, rel), f"C differs from the reference on '{name}': {c} {r}"
    return compiled


def rows(rng, n, features, scale=2.0):
    return [(rng.standard_normal((1, features)) * scale).astype(np.float32) for _ in range(n)]


# ---- preprocessing ----------------------------------------------------------------------------

PREPROCESSING = [
    ("Scaler", {"offset": [0.5, -1.0, 2.0, 0.0, 1.5], "scale": [2.0, 0.5, -1.0, 3.0, 0.0]}),
    ("Scaler", {"offset": [1.0], "scale": [0.5]}),
    ("Normalizer", {"norm": "MAX"}),
    ("Normalizer", {"norm": "L1"}),
    ("Normalizer", {"norm": "L2"}),
    ("Binarizer", {"threshold": 0.25}),
]


def preprocessing_model(features=5) -> onnx.ModelProto:
    """Every preprocessing case on the same input, one output each."""
    nodes = [helper.make_node(op, ["X"], [f"Y{i}"], domain=ML, **attrs) for i, (op, attrs) in enumerate(PREPROCESSING)]
    graph = helper.make_graph(nodes, "pre", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, features])],
                              [helper.make_tensor_value_info(f"Y{i}", TensorProto.FLOAT, [1, features])
                               for i in range(len(nodes))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)])
    model.ir_version = 8
    return model


def test_preprocessing(rng):
    xs = rows(rng, 3, 5) + [np.zeros((1, 5), np.float32)]
    check_float(preprocessing_model(), xs)


def test_array_feature_extractor(rng):
    node = helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["Y"], domain=ML)
    graph = helper.make_graph([node], "afe", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])],
                              [onnx.numpy_helper.from_array(np.array([4, 0, 4], np.int64), "idx")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)])
    model.ir_version = 8
    xs = [rng.standard_normal((2, 6)).astype(np.float32)]
    check_float(model, xs)
    calib = [{"X": rng.standard_normal((2, 6)).astype(np.float32)} for _ in range(4)]
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    q = quantize_inputs(compiled.graph, calib[0])
    out = host.run([q["X"]])[0]
    np.testing.assert_array_equal(out, q["X"][:, [4, 0, 4]])


# ---- linear models ----------------------------------------------------------------------------

@pytest.mark.parametrize("targets,labels,post", [
    (3, [0, 1, 2], "NONE"), (3, [5, 7, 9], "SOFTMAX"), (4, [0, 1, 2, 3], "LOGISTIC"),
    (3, [0, 1, 2], "SOFTMAX_ZERO"), (1, [3, 8], "NONE"), (1, [3, 8], "LOGISTIC"),
])
def test_linear_classifier(rng, targets, labels, post):
    features = 4
    model = ml_model("LinearClassifier", features, coefficients=rng.standard_normal(targets * features).tolist(),
                     intercepts=rng.standard_normal(targets).tolist(), classlabels_ints=labels, post_transform=post)
    check_float(model, rows(rng, 6, features))


def test_linear_regressor(rng):
    model = ml_model("LinearRegressor", 5, outputs=[1, 2], coefficients=rng.standard_normal(10).tolist(),
                     intercepts=[0.5, -1.0], targets=2)
    check_float(model, rows(rng, 4, 5))


# ---- trees ------------------------------------------------------------------------------------

def random_forest_attrs(rng, trees, depth, features, outputs, modes, prefix, leaf_targets="all",
                        missing=False):
    """Random full trees of `depth` levels: nodes_* and {prefix}_* attributes (leaf weights for
    every output, or one output per tree with leaf_targets="one")."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "nodes_hitrates")}
    w = {f"{prefix}_{k}": [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t in range(trees):
        count = 2 ** (depth + 1) - 1
        ids = rng.permutation(count)  # node ids in no particular order
        for pos in range(count):
            leaf = pos >= 2 ** depth - 1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(int(ids[pos]))
            a["nodes_featureids"].append(0 if leaf else int(rng.integers(features)))
            a["nodes_values"].append(0.0 if leaf else float(np.round(rng.standard_normal(), 1)))
            a["nodes_modes"].append("LEAF" if leaf else str(rng.choice(modes)))
            a["nodes_truenodeids"].append(0 if leaf else int(ids[2 * pos + 1]))
            a["nodes_falsenodeids"].append(0 if leaf else int(ids[2 * pos + 2]))
            a["nodes_missing_value_tracks_true"].append(int(missing and rng.integers(2)))
            a["nodes_hitrates"].append(1.0)
            if leaf:
                targets = range(outputs) if leaf_targets == "all" else [t % outputs]
                for k in targets:
                    w[f"{prefix}_treeids"].append(t)
                    w[f"{prefix}_nodeids"].append(int(ids[pos]))
                    w[f"{prefix}_ids"].append(k)
                    w[f"{prefix}_weights"].append(float(rng.standard_normal()))
    return {**a, **w}


def tree_inputs(rng, n, features, nan=False):
    """Rows of values on the thresholds' 0.1 grid (so EQ, LT and GT branches all happen), some NaN."""
    xs = [(np.round(rng.standard_normal((1, features)), 1)).astype(np.float32) for _ in range(n)]
    if nan:
        for x in xs[::2]:
            x[0, rng.integers(features)] = np.nan
    return xs


ALL_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


@pytest.mark.parametrize("aggregate,targets,modes,missing", [
    ("SUM", 1, ALL_MODES, True), ("AVERAGE", 2, ["BRANCH_LEQ", "BRANCH_GT"], False),
    ("MIN", 2, ["BRANCH_LT", "BRANCH_GTE"], False), ("MAX", 1, ["BRANCH_LEQ"], True),
])
def test_tree_ensemble_regressor(rng, aggregate, targets, modes, missing):
    attrs = random_forest_attrs(rng, 4, 3, 5, targets, modes, "target", missing=missing)
    model = ml_model("TreeEnsembleRegressor", 5, rows=1, outputs=[1, targets], n_targets=targets,
                     aggregate_function=aggregate, base_values=rng.standard_normal(targets).tolist(), **attrs)
    check_float(model, tree_inputs(rng, 12, 5, nan=True))


@pytest.mark.parametrize("classes,leaf_targets,post,base", [
    (3, "all", "NONE", False), (3, "one", "SOFTMAX", True), (4, "all", "SOFTMAX_ZERO", False),
    (4, "one", "LOGISTIC", True),
])
def test_tree_ensemble_classifier(rng, classes, leaf_targets, post, base):
    attrs = random_forest_attrs(rng, 2 * classes, 2, 4, classes, ["BRANCH_LEQ", "BRANCH_GT"], "class", leaf_targets)
    if base:
        attrs["base_values"] = rng.standard_normal(classes).tolist()
    model = ml_model("TreeEnsembleClassifier", 4, classlabels_int64s=list(range(10, 10 + classes)),
                     post_transform=post, **attrs)
    check_float(model, tree_inputs(rng, 10, 4))


@pytest.mark.parametrize("positive,post,base", [(True, "NONE", False), (False, "LOGISTIC", True),
                                                (False, "NONE", False)])
def test_tree_ensemble_binary(rng, positive, post, base):
    """onnxruntime's one-score binary case: the weights of class 0 only, (1 - s, s) when they are
    all positive (label: s > 0.5), else (-s, s) or their logistic (label: s > 0)."""
    attrs = random_forest_attrs(rng, 3, 2, 4, 1, ["BRANCH_LEQ"], "class")
    if positive:
        attrs["class_weights"] = np.abs(attrs["class_weights"]).tolist()
    if base:
        attrs["base_values"] = [0.3]
    model = ml_model("TreeEnsembleClassifier", 4, classlabels_int64s=[4, 9], post_transform=post, **attrs)
    check_float(model, tree_inputs(rng, 10, 4))


def test_tree_refusals(rng):
    attrs = random_forest_attrs(rng, 2, 2, 4, 1, ["BRANCH_LEQ"], "class")
    bad = ml_model("TreeEnsembleClassifier", 4, classlabels_int64s=[0, 1], post_transform="PROBIT", **attrs)
    with pytest.raises(CompileError, match=r"TreeEnsembleClassifier node .*post_transform PROBIT is not supported"):
        compile_model(bad, "net")


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_string_labels(rng, mode):
    """String class labels: the label output holds the class index, and NAME.h declares the labels
    (UTF-8, every byte a C string can hold, escaped) as net_label_names."""
    from cffi import FFI

    names = ["setosa", 'a"b?\\*/', "\u00e9t\u00e9", "??=x\n"]
    model = ml_model("LinearClassifier", 3, coefficients=rng.standard_normal(12).tolist(),
                     intercepts=rng.standard_normal(4).tolist(), classlabels_strings=names, post_transform="SOFTMAX")
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.STRING
    xs = rows(rng, 6, 3)
    compiled = compile_model(model, "net", mode=mode, calib=[{"X": x} for x in xs] if mode == "int8" else None)
    assert "#define NET_OUTPUT_LABEL_CLASSES 4" in compiled.emitted.files["net.h"]
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    ffi = FFI()
    ffi.cdef("extern const char *const net_label_names[4];")
    lib = ffi.dlopen(str(host.path))
    assert [ffi.string(lib.net_label_names[i]).decode() for i in range(4)] == names
    session = onnxruntime_oracle(model)
    for x in xs:
        feed = x if mode == "float32" else compiled.graph.tensors["X"].quant.dequantize(
            quantize_inputs(compiled.graph, {"X": x})["X"])
        c = host.run([feed if mode == "float32" else quantize_inputs(compiled.graph, {"X": x})["X"]])
        assert names[int(c[0][0])] == session.run(None, {"X": feed})[0][0]


# ---- support vector machines ------------------------------------------------------------------

@pytest.mark.parametrize("kernel,classes", [("RBF", 3), ("POLY", 2), ("SIGMOID", 3), ("LINEAR", 4)])
def test_svm_classifier(rng, kernel, classes):
    features, per_class = 3, [2, 3, 1, 2][:classes]
    v = sum(per_class)
    model = ml_model("SVMClassifier", features, classlabels_ints=list(range(classes)), kernel_type=kernel,
                     kernel_params=[0.3, 0.5, 2.0], vectors_per_class=per_class,
                     support_vectors=rng.standard_normal(v * features).tolist(),
                     coefficients=rng.standard_normal((classes - 1) * v).tolist(),
                     rho=rng.standard_normal(classes * (classes - 1) // 2).tolist())
    check_float(model, rows(rng, 6, features, 1.0))


@pytest.mark.parametrize("kernel,one_class", [("RBF", 0), ("POLY", 0), ("LINEAR", 0), ("RBF", 1)])
def test_svm_regressor(rng, kernel, one_class):
    model = ml_model("SVMRegressor", 3, outputs=[1, 1], kernel_type=kernel, kernel_params=[0.3, 0.5, 2.0],
                     n_supports=4, support_vectors=rng.standard_normal(12).tolist(),
                     coefficients=rng.standard_normal(4).tolist(), rho=[0.25], one_class=one_class)
    check_float(model, rows(rng, 8, 3, 1.0))


# ---- the scikit-learn fixtures ----------------------------------------------------------------

def fixture(name):
    data = np.load(FIXTURES / f"{name}.npz")
    return FIXTURES / f"{name}.onnx", data


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_float(name):
    """float32: the C's labels are scikit-learn's predictions; scores within 1e-5 of onnxruntime."""
    path, data = fixture(name)
    model = onnx.load(str(path))
    compiled = check_float(model, list(data["X"][::4]))
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    got = np.array([host.run([x])[0].reshape(-1)[0] for x in data["X"]])
    if "y" in data:
        np.testing.assert_array_equal(got, data["predict"])
        assert compiled.report["api"]["outputs"][0]["dtype"] == "int32"
    else:
        np.testing.assert_allclose(got, data["predict"], rtol=1e-5)
    if any(n.op_type == "ZipMap" for n in model.graph.node):  # the scores keep ZipMap's output name
        assert compiled.graph.outputs == [o.name for o in model.graph.output]


# ---- int8 -------------------------------------------------------------------------------------

def test_int8_thresholds_take_the_float_branch(rng):
    """For every branch of a forest with every mode and every int8 input level, the int8 comparison
    with the moved threshold takes the branch the float comparison takes on the dequantized level."""
    attrs = random_forest_attrs(rng, 6, 3, 3, 1, ALL_MODES, "target")
    attrs["nodes_values"] = [float(v) * 0.37 for v in attrs["nodes_values"]]
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, n_targets=1, **attrs)
    from codegen.frontend.importer import _attr_value  # the attributes as the importer reads them
    from codegen.ir import Node
    forest = ml.build_forest(Node("TreeEnsembleRegressor", "t", ["X"], ["Y"],
                                  {a.name: _attr_value(a) for a in node.attribute}), 3, "target", 1)
    for qp in (QParams(0.0123, -7), QParams(0.37, 0), QParams(0.1, 100)):
        levels = np.arange(-128, 128)
        xq = np.stack([levels, np.roll(levels, 85), np.roll(levels, 170)], axis=1).astype(np.int16)
        thresholds = ml.int8_thresholds(forest, qp)
        got = ml._forest_leaves_s8(forest, thresholds, xq)
        want = ml.forest_leaves(forest, qp.dequantize(xq))
        np.testing.assert_array_equal(got, want)
        branches = forest.feature != ml.LEAF
        for f, t, tq in zip(forest.feature[branches], forest.threshold[branches], thresholds[branches]):
            real = qp.dequantize(levels)
            if f & ml.EQ_FLAG:
                np.testing.assert_array_equal(levels == tq, real == t)
            else:
                np.testing.assert_array_equal(levels <= tq, real <= t)


def int8_tree_cases():
    rng = np.random.default_rng(13)
    reg = random_forest_attrs(rng, 5, 3, 4, 2, ALL_MODES, "target")
    cls = random_forest_attrs(rng, 6, 3, 4, 3, ["BRANCH_LEQ", "BRANCH_GT", "BRANCH_EQ"], "class", "one")
    binary = random_forest_attrs(rng, 4, 3, 4, 1, ["BRANCH_LEQ", "BRANCH_LT"], "class")
    return {
        "regressor": ml_model("TreeEnsembleRegressor", 4, outputs=[1, 2], n_targets=2, aggregate_function="AVERAGE",
                              base_values=[0.5, -0.5], **reg),
        "binary-3-rows": ml_model("TreeEnsembleClassifier", 4, rows=3, classlabels_int64s=[0, 1],
                                  post_transform="LOGISTIC", base_values=[0.3], **binary),
        "classifier": ml_model("TreeEnsembleClassifier", 4, classlabels_int64s=[3, 4, 5], post_transform="NONE",
                               base_values=[0.1, 0.2, 0.3], **cls),
    }


INT8_TREES = int8_tree_cases()


@pytest.mark.parametrize("case", sorted(INT8_TREES))
def test_tree_ensemble_int8(rng, case):
    """int8: C == the integer reference byte for byte, labels included; on the dequantized input
    the labels are the float model's and the scores (no transform) within one output step."""
    model = INT8_TREES[case]
    n = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    calib = [{"X": np.concatenate(tree_inputs(rng, n, 4))} for _ in range(16)]
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    fgraph = compile_model(model, "net").graph
    transform = any(a.name == "post_transform" and a.s not in (b"", b"NONE") for a in model.graph.node[0].attribute)
    for feeds in calib:
        q = quantize_inputs(graph, feeds)
        c_out = host.run([q["X"]])
        ref = run_int8(graph, q)
        flt = run_float(fgraph, {"X": graph.tensors["X"].quant.dequantize(q["X"])})
        for c, name in zip(c_out, graph.outputs):
            np.testing.assert_array_equal(c, ref[name])
            if c.dtype != np.int8:
                np.testing.assert_array_equal(c, flt[name])
            elif not transform:
                qp = graph.tensors[name].quant
                assert np.abs(qp.dequantize(c) - flt[name]).max() <= qp.scale * 1.01


INT8_AGREEMENT = {"ml_logreg": 40, "ml_linear_svc": 40, "ml_random_forest": 15, "ml_gradient_boosting": 38,
                  "ml_pipeline": 28}  # of 40 rows; measured 40, 40, 19, 39, 30


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if "svc" not in n or n == "ml_linear_svc"])
def test_fixture_int8(name):
    """The fixtures in int8: C == the integer reference on every test row; the labels' agreement
    with scikit-learn is reported (the raw wine features of the forest and the pipeline span 0.1 to
    1680 under one input scale, so most of their small features quantize to a few levels)."""
    path, data = fixture(name)
    calib = [{"X": x} for x in data["X"]]
    compiled = compile_model(path, name, mode="int8", calib=calib)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    hits = 0
    for i, feeds in enumerate(calib):
        q = quantize_inputs(compiled.graph, feeds)
        c_out = host.run([q["X"]])
        if i % 4 == 0:  # the NumPy twin on every fourth row (its tree walks are slow)
            ref = run_int8(compiled.graph, q)
            for c, n in zip(c_out, compiled.graph.outputs):
                np.testing.assert_array_equal(c, ref[n])
        if "y" in data:
            hits += int(c_out[0].reshape(-1)[0] == data["predict"][i])
    if "y" in data:
        print(f"{name}: int8 labels equal scikit-learn's on {hits}/{len(calib)} rows")
        assert hits >= INT8_AGREEMENT[name]


def test_rbf_svc_int8_is_refused():
    path, data = fixture("ml_rbf_svc")
    with pytest.raises(CompileError, match=r"cannot quantize to int8: SVMClassifier node .*: no int8 rule"):
        compile_model(path, "svc", mode="int8", calib=[{"X": x} for x in data["X"][:4]])


def int8_kernels_model() -> onnx.ModelProto:
    """Every int8 kernel of the family on one input X [1, 4]: the preprocessing operators,
    ArrayFeatureExtractor, two linear classifiers (SOFTMAX; one score with LOGISTIC) and the
    tree classifier of INT8_TREES."""
    rng = np.random.default_rng(19)
    tree = onnx.NodeProto()
    tree.CopyFrom(INT8_TREES["classifier"].graph.node[0])
    del tree.output[:]
    tree.output.extend(["tree_label", "tree_scores"])
    nodes = [
        helper.make_node("Scaler", ["X"], ["scaled"], domain=ML, offset=[0.5, -1.0, 2.0, 0.0], scale=[2.0, 0.5, -1.0, 3.0]),
        helper.make_node("Normalizer", ["X"], ["l2"], domain=ML, norm="L2"),
        helper.make_node("Normalizer", ["X"], ["l1"], domain=ML, norm="L1"),
        helper.make_node("Normalizer", ["X"], ["vmax"], domain=ML, norm="MAX"),
        helper.make_node("Binarizer", ["X"], ["bin"], domain=ML, threshold=0.1),
        helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["picked"], domain=ML),
        helper.make_node("LinearClassifier", ["X"], ["lin_label", "lin_scores"], domain=ML,
                         coefficients=rng.standard_normal(12).tolist(), intercepts=[0.1, -0.2, 0.3],
                         classlabels_ints=[0, 1, 2], post_transform="SOFTMAX"),
        helper.make_node("LinearClassifier", ["X"], ["bin_label", "bin_scores"], domain=ML,
                         coefficients=rng.standard_normal(4).tolist(), intercepts=[0.2], classlabels_ints=[4, 7],
                         post_transform="LOGISTIC"),
        tree,
    ]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2 if n == "picked" else 4])
            for n in ("scaled", "l2", "l1", "vmax", "bin", "picked")]
    for prefix in ("lin", "bin", "tree"):
        outs += [helper.make_tensor_value_info(f"{prefix}_label", TensorProto.INT64, [1]),
                 helper.make_tensor_value_info(f"{prefix}_scores", TensorProto.FLOAT, [1, None])]
    graph = helper.make_graph(nodes, "kernels", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])], outs,
                              [onnx.numpy_helper.from_array(np.array([3, 1], np.int64), "idx")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_kernels_on_cortex_m(target):
    """Every int8 kernel of the family (and, on the core without an FPU, the float forest) on the
    emulated cores: the host's bytes."""
    need(target)
    rng = np.random.default_rng(17)
    model = int8_kernels_model()
    feeds = [{"X": x} for x in tree_inputs(rng, 6, 4)]
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    want = [host.run([s["X"]]) for s in q]
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for g, h in zip(got, want):
        for a, b in zip(g, h):
            np.testing.assert_array_equal(a, b)
    if target != "cortex-m0plus":
        return
    path, data = fixture("ml_random_forest")  # float, on the core without an FPU
    compiled = compile_model(path, "forest", target=target)
    samples = [{"X": x} for x in data["X"][:8]]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], samples, target)
    for g, s in zip(got, samples):
        for a, b in zip(g, host.run([s["X"]])):
            np.testing.assert_array_equal(a, b)


def check_int8(model, xs, steps=None):
    """int8: C == the integer reference byte for byte (labels too); with `steps`, every score
    within that many output steps of onnxruntime run on the dequantized input (the kernel's own
    arithmetic, without the input's rounding). Returns (compiled, label agreement with onnxruntime)."""
    calib = [{"X": x} for x in xs]
    compiled = compile_model(model, "net", mode="int8", calib=calib)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    session = onnxruntime_oracle(model)
    agree = 0
    for feeds in calib:
        q = quantize_inputs(graph, feeds)
        c_out = host.run([q["X"]])
        ref = run_int8(graph, q)
        expected = ort_outputs(session, graph.tensors["X"].quant.dequantize(q["X"]))
        for c, name, e in zip(c_out, graph.outputs, expected):
            np.testing.assert_array_equal(c, ref[name], err_msg=f"C differs from the int8 reference on '{name}'")
            if c.dtype != np.int8:
                agree += int(np.array_equal(c, e.reshape(c.shape)))
            elif steps is not None:
                qp = graph.tensors[name].quant
                err = np.abs(qp.dequantize(c).astype(np.float64) - e.reshape(c.shape)) / qp.scale
                assert err.max() <= steps, f"'{name}' is {err.max():.2f} steps from onnxruntime (bound {steps})"
    return compiled, agree


def test_preprocessing_int8(rng):
    """Scaler, Normalizer and Binarizer in int8: within one output step of onnxruntime on the
    dequantized input (Binarizer exactly: its threshold moved into the input's int8 domain)."""
    xs = [x + np.float32(0.5) for x in rows(rng, 8, 5)] + [np.zeros((1, 5), np.float32)]
    compiled, _ = check_int8(preprocessing_model(), xs, 1.01)
    assert [layer["kernels"] for layer in compiled.report["layers"]] == \
        [[f"nn_{op.lower()}_s8"] for op, _ in PREPROCESSING]


@pytest.mark.parametrize("targets,labels,post", [
    (3, [0, 1, 2], "NONE"), (3, [5, 7, 9], "SOFTMAX"), (4, [0, 1, 2, 3], "LOGISTIC"), (1, [3, 8], "NONE"),
    (1, [3, 8], "LOGISTIC"),
])
def test_linear_classifier_int8(rng, targets, labels, post):
    """The label comes from the int32 scores: it is onnxruntime's on the dequantized input unless two
    scores lie within the weights' rounding of each other."""
    model = ml_model("LinearClassifier", 4, coefficients=rng.standard_normal(targets * 4).tolist(),
                     intercepts=rng.standard_normal(targets).tolist(), classlabels_ints=labels, post_transform=post)
    xs = rows(rng, 12, 4)
    _, agree = check_int8(model, xs, 2.0 if post == "NONE" and targets > 1 else None)
    assert agree >= 11


def test_linear_regressor_int8(rng):
    model = ml_model("LinearRegressor", 5, outputs=[1, 2], coefficients=rng.standard_normal(10).tolist(),
                     intercepts=[0.5, -1.0], targets=2)
    compiled, _ = check_int8(model, rows(rng, 8, 5), 2.0)
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_s8"]


def test_svm_has_no_int8_rule(rng):
    model = ml_model("SVMRegressor", 3, outputs=[1, 1], kernel_type="RBF", kernel_params=[0.3, 0.5, 2.0],
                     n_supports=2, support_vectors=rng.standard_normal(6).tolist(),
                     coefficients=[1.0, -1.0], rho=[0.25])
    with pytest.raises(CompileError, match=r"SVMRegressor node .*no int8 rule"):
        compile_model(model, "net", mode="int8", calib=[{"X": x} for x in rows(rng, 3, 3)])


def test_verify_runs_onnxruntime_for_ml_models():
    """`verify` on a model of ai.onnx.ml operators (ZipMap included): onnxruntime is the reference;
    int8 bit-exact, the accuracy on the fixture's labels."""
    from codegen.verify import verify

    path, data = fixture("ml_gradient_boosting")
    samples = [{"X": x} for x in data["X"][:12]]
    compiled = compile_model(path, "gb", mode="int8", calib=samples)
    result = verify(compiled, samples, data["y"][:12])
    assert result["bit_exact"] and result["passed"] and result["accuracy_float"] >= 0.9


SANITIZED_RUN = r"""
import sys
import numpy as np
from cffi import FFI
sys.path.insert(0, sys.argv[1])
from codegen.build import compile_shared
from codegen.compiler import compile_model
from codegen.reference import run_float, run_int8
from codegen.verify import within_tolerance
from test_ml import int8_kernels_model, fixture

F = np.finfo(np.float32)
extremes = [np.float32(v) for v in (np.nan, np.inf, -np.inf, F.max, -F.max, F.tiny / 4, 0.0, -1.5, 2.5)]
rng = np.random.default_rng(23)
models = [("kernels", int8_kernels_model()), ("forest", str(fixture("ml_random_forest")[0])),
          ("svc", str(fixture("ml_rbf_svc")[0]))]
for name, model in models:
    features = {"forest": 13, "svc": 6}.get(name, 4)
    rows = [rng.choice(extremes, (1, features)).astype(np.float32) for _ in range(16)]
    for mode in ("float32", "int8") if name == "kernels" else ("float32",):
        calib = [{"X": rng.standard_normal((1, features)).astype(np.float32)} for _ in range(8)]
        c = compile_model(model, "net", mode=mode, calib=calib if mode == "int8" else None)
        flags = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")
        lib_path = compile_shared(c.emitted.files, extra_flags=flags)
        api = c.report["api"]
        ffi = FFI()
        args = ", ".join([f"const {t['ctype']} *" for t in api["inputs"]] + [f"{t['ctype']} *" for t in api["outputs"]])
        ffi.cdef(f"int {api['invoke']}({args});")
        lib = ffi.dlopen(str(lib_path))
        for x in rows:
            feed = x
            if mode == "int8":  # -128 and 127 in every combination the rows draw
                feed = np.where(rng.random(x.shape) < 0.5, np.int8(-128), np.int8(127)).astype(np.int8)
            outs = [np.zeros(t["size"], t["dtype"]) for t in api["outputs"]]
            ptrs = [ffi.from_buffer(f"{t['ctype']}[]", a) for t, a in zip(api["inputs"] + api["outputs"], [feed] + outs)]
            getattr(lib, api["invoke"])(*ptrs)
            ref = run_int8(c.graph, {"X": feed}) if mode == "int8" else run_float(c.graph, {"X": x})
            for o, n in zip(outs, c.graph.outputs):
                r = np.asarray(ref[n]).reshape(-1)
                assert (np.array_equal(o, r) if o.dtype.kind != "f" else within_tolerance(o, r)), (name, mode, n, x)
print("clean")
"""


def test_kernels_run_clean_under_sanitizers():
    """The family's kernels under AddressSanitizer and UndefinedBehaviorSanitizer (in a child
    process that preloads libasan) on extreme inputs, float NaN, +-Inf, +-3.4e38 and denormals
    (the float trees, SVM, finalizer, preprocessing), int8 -128 and 127 (every int8 kernel): no
    report, and the references' outputs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("gcc has no libasan.so")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0",
               PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    proc = subprocess.run([sys.executable, "-c", SANITIZED_RUN, str(root / "tests")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean"), proc.stderr[-3000:]


def tree_ensemble_v5_model(rng, trees=3, depth=3, features=4, targets=2, aggregate=1):
    """ai.onnx.ml opset 5's TreeEnsemble: full trees, every mode but set membership, leaves shared
    by no two branches, float splits and weights."""
    a = {k: [] for k in ("nodes_featureids", "nodes_splits", "nodes_modes", "nodes_truenodeids", "nodes_trueleafs",
                         "nodes_falsenodeids", "nodes_falseleafs", "nodes_missing_value_tracks_true",
                         "leaf_targetids", "leaf_weights", "tree_roots")}
    inner = 2 ** depth - 1
    for _ in range(trees):
        base, leaf_base = len(a["nodes_featureids"]), len(a["leaf_weights"])
        a["tree_roots"].append(base)
        for i in range(inner):
            a["nodes_featureids"].append(int(rng.integers(features)))
            a["nodes_splits"].append(float(np.round(rng.standard_normal(), 1)))
            a["nodes_modes"].append(int(rng.integers(6)))
            a["nodes_missing_value_tracks_true"].append(int(rng.integers(2)))
            for side, child in (("true", 2 * i + 1), ("false", 2 * i + 2)):
                leaf = child >= inner
                a[f"nodes_{side}nodeids"].append(leaf_base + child - inner if leaf else base + child)
                a[f"nodes_{side}leafs"].append(int(leaf))
        for _ in range(inner + 1):
            a["leaf_targetids"].append(int(rng.integers(targets)))
            a["leaf_weights"].append(float(rng.standard_normal()))
    attrs = {k: v for k, v in a.items() if k not in ("nodes_splits", "nodes_modes", "leaf_weights")}
    attrs["nodes_splits"] = onnx.numpy_helper.from_array(np.float32(a["nodes_splits"]), "nodes_splits")
    attrs["nodes_modes"] = onnx.numpy_helper.from_array(np.uint8(a["nodes_modes"]), "nodes_modes")
    attrs["leaf_weights"] = onnx.numpy_helper.from_array(np.float32(a["leaf_weights"]), "leaf_weights")
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML, n_targets=targets, aggregate_function=aggregate,
                            post_transform=0, **attrs)
    graph = helper.make_graph([node], "v5", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, features])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, targets])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(ML, 5)])
    model.ir_version = 10
    return model


def test_tree_ensemble_opset5(rng):
    """TreeEnsemble (ai.onnx.ml 5) compiles to the same tables: float against onnxruntime, NaN
    features included; int8 bit-exact with its twin."""
    model = tree_ensemble_v5_model(rng)
    xs = tree_inputs(rng, 10, 4, nan=True)
    check_float(model, xs)
    check_int8(model, tree_inputs(rng, 10, 4))
