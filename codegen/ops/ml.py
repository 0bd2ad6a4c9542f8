"""Classic machine learning, the ai.onnx.ml operators as skl2onnx writes them: Scaler,
Normalizer, Binarizer, ArrayFeatureExtractor, LinearRegressor, LinearClassifier,
TreeEnsembleRegressor, TreeEnsembleClassifier (opsets 1 and 3), TreeEnsemble (opset 5, without
set membership: converted to the opset-3 regressor), SVMRegressor and SVMClassifier.

onnxruntime is the reference for this domain (onnx.reference's ml operators differ in the
corners: the binary classifiers' second column, SVM sums in float64); the rules below follow
its behaviour:

1. Inputs are [N, C] feature rows (a 1-D [C] input is one row). Classifiers have two outputs:
   the label (ONNX int64, here int32: one per row) and the scores [N, classes].
2. Labels: `classlabels_ints`/`classlabels_int64s` values, emitted as an int32 table the label
   kernel indexes; with `classlabels_strings` the label output holds the class index and
   NAME.h declares the strings (`class_names`).
3. Scores of a classifier go through one finalizer, `nn_classify_f32`, from raw scores
   [N, raw]: label = labels[first argmax] or a threshold on one column (binary models),
   then the second column of a one-score binary model (1 - s or -s), then post_transform
   (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO; PROBIT is refused) as onnxruntime applies them.
4. Trees: every tree is laid out in preorder, so a branch's true child is the next node and
   only the false child's distance is stored; each branch compares x[feature] <= threshold
   (BRANCH_LT, GT and GTE become <= on the neighbouring float32 threshold with the children
   swapped; EQ and NEQ compare ==), and a NaN feature takes the branch its
   missing_value_tracks_true flag (and the swap) names. Leaves index a float table of leaf
   values, one row per leaf (or one value and a per-tree target when each tree votes for
   one target, as gradient boosting does). Aggregation: SUM, AVERAGE, MIN, MAX, then
   base_values.
5. int8: trees compare the int8 input with thresholds moved into the input's int8 domain
   (q <= T exactly when dequantize(q) <= t: the same branch as the float comparison on the
   dequantized input), sum int32 leaves at one fine scale (the largest possible sum at 2^29)
   and requantize the sums as the linear classifier does (`scores_rule`): no float on the
   int8 path.
   Scaler is a per-column fixed-point affine map; Normalizer divides integers (the input
   scale cancels in x / max, x / sum|x| and x / sqrt(sum x^2)); Binarizer moves its threshold
   as the trees do; ArrayFeatureExtractor moves bytes. LinearRegressor is nn_fc_s8;
   LinearClassifier keeps int32 scores at one weight scale for the label (they order as the
   real scores do) and requantizes them for the scores output, through tables (LOGISTIC, the
   one-score expansions) or into an int8 middle and nn_softmax_s8 (SOFTMAX; SOFTMAX_ZERO has
   no int8 rule). SVMs have no int8 rule: their kernels (exp of a squared distance, powers,
   tanh of a dot product) over support vectors of any range would need a fixed-point
   function per kernel and a scale per sum; their float model runs instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codegen.errors import Unsupported
from codegen.fixedpoint import output_s8, quantize_multiplier
from codegen.ir import Graph, Node
from codegen.ops.base import Const, KernelCall, Op, Scratch, qparams, register, shape_of
from codegen.ops.softmax import OUTPUT_QPARAMS as SOFTMAX_QPARAMS
from codegen.qparams import fold_input_offset, from_range, multipliers, quantize_bias, quantize_weights

POST = {"NONE": 0, "LOGISTIC": 1, "SOFTMAX": 2, "SOFTMAX_ZERO": 3}
AGGREGATE = {"SUM": 0, "AVERAGE": 1, "MIN": 2, "MAX": 3}
KERNEL = {"LINEAR": 0, "POLY": 1, "RBF": 2, "SIGMOID": 3}
LEAF = 0xFFFF
EQ_FLAG, NAN_FLAG = 0x4000, 0x8000
MAX_FEATURE = 0x3FFF
F32 = np.float32


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _floats(node: Node, name: str) -> np.ndarray | None:
    """A float attribute list, or its `_as_tensor` double twin (as float32), or None."""
    value = node.attrs.get(name)
    if value is None:
        value = node.attrs.get(name + "_as_tensor")
    if value is None:
        return None
    return np.asarray(value, np.float64).reshape(-1)


def _ints(node: Node, name: str) -> list[int]:
    return [int(v) for v in node.attrs.get(name, [])]


def _rows_cols(graph: Graph, node: Node) -> tuple[int, int]:
    shape = shape_of(graph, node.inputs[0])
    if len(shape) == 1:
        return 1, shape[0]
    if len(shape) == 2:
        return shape
    raise Unsupported(f"input of rank {len(shape)}: [N, C] feature rows (or [C]) are supported")


def _is_int8(graph: Graph, node: Node) -> bool:
    """Whether the quantize pass made the node's scores (its last output) int8."""
    return graph.tensors[node.outputs[-1]].dtype == "int8"


def _post(node: Node) -> int:
    name = _text(node.attrs.get("post_transform"), "NONE")
    if name not in POST:
        raise Unsupported(f"post_transform {name} is not supported (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO)")
    return POST[name]


def _labels(node: Node, key: str) -> np.ndarray:
    """The int32 label of each class: the integer labels, or with string labels the class index
    (the strings go to NAME.h through `class_names`)."""
    strings = node.attrs.get("classlabels_strings")
    if strings:
        return np.arange(len(strings), dtype=np.int32)
    labels = _ints(node, key)
    if any(not -2**31 <= v < 2**31 for v in labels):
        raise Unsupported("a class label does not fit int32")
    return np.asarray(labels, np.int32)


def _class_names(node: Node) -> dict[str, list[str]]:
    strings = node.attrs.get("classlabels_strings")
    if node.op_type in ("LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier") and strings:
        return {node.outputs[0]: [_text(v, "") for v in strings]}
    return {}


# ---- the NumPy twins of the float kernels ------------------------------------------------

def logistic(v: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-|v|)), mirrored for negative v (onnxruntime's form: no overflow)."""
    v = np.asarray(v, F32)
    with np.errstate(all="ignore"):
        p = F32(1) / (F32(1) + np.exp(-np.abs(v)))
    return np.where(v < 0, F32(1) - p, p).astype(F32)


def post_transform(raw: np.ndarray, post: int) -> np.ndarray:
    """post_transform over each row of raw scores [N, K], in the kernel's order of operations."""
    raw = np.asarray(raw, F32)
    if post == POST["NONE"]:
        return raw.copy()
    if post == POST["LOGISTIC"]:
        return logistic(raw)
    out = np.empty_like(raw)
    for r in range(raw.shape[0]):
        row = raw[r]
        vmax = F32(-np.finfo(F32).max)
        for v in row:
            vmax = v if v > vmax else vmax
        total = F32(0)
        e = np.empty_like(row)
        zero = post == POST["SOFTMAX_ZERO"]
        with np.errstate(all="ignore"):
            for k, v in enumerate(row):
                if zero and not (v > F32(1e-7) or v < F32(-1e-7)):
                    e[k] = v * np.exp(-vmax)
                else:
                    e[k] = np.exp(v - vmax)
                    total = F32(total + e[k])
            out[r] = e / total
    return out


@dataclass
class Finalizer:
    """How nn_classify_f32 turns raw scores [N, raw] into a label and scores [N, classes]."""

    raw: int
    classes: int
    labels: np.ndarray  # int32
    rule: int  # 0: labels[first argmax]; 1: raw[col] > threshold ? labels[1] : labels[0]
    col: int = 0
    threshold: float = 0.0
    expand: int = 0  # one raw score to two: 0 none, 1 (1 - s, s), 2 (-s, s), 3 (1 - logistic(s), logistic(s))
    post: int = 0

    def params(self, rows: int) -> dict:
        return {"rows": rows, "raw": self.raw, "classes": self.classes, "rule": self.rule, "col": self.col,
                "threshold": float(self.threshold), "expand": self.expand, "post": self.post}

    def run(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = np.asarray(raw, F32).reshape(-1, self.raw)
        if self.rule == 0:  # the first maximum, as the kernel's strict > scan (NaN never wins)
            index = np.zeros(raw.shape[0], np.int64)
            for k in range(1, raw.shape[1]):
                index = np.where(raw[:, k] > raw[np.arange(raw.shape[0]), index], k, index)
        else:
            index = (raw[:, self.col] > F32(self.threshold)).astype(np.int64)
        label = self.labels[index].astype(np.int32)
        scores = raw
        if self.expand == 1:
            scores = np.stack([F32(1) - raw[:, 0], raw[:, 0]], axis=1)
        elif self.expand == 2:
            scores = np.stack([-raw[:, 0], raw[:, 0]], axis=1)
        elif self.expand == 3:
            s = logistic(raw[:, 0])
            scores = np.stack([F32(1) - s, s], axis=1)
        return label, post_transform(scores, self.post)


def classify_call(fin: Finalizer, rows: int, raw, label_out: str, scores_out: str) -> KernelCall:
    return KernelCall("nn_classify_f32", ("src/ml/nn_classify_f32.c",), "nn_classify_params", fin.params(rows),
                      [raw, Const(fin.labels, "labels"), label_out, scores_out])


# ---- trees ---------------------------------------------------------------------------------

@dataclass
class Forest:
    feature: np.ndarray  # uint16 per node: feature index | EQ_FLAG | NAN_FLAG, LEAF for leaves
    threshold: np.ndarray  # float32 per node
    jump: np.ndarray  # uint16 per node: branch: distance to the false child; leaf: leaf index in its tree
    roots: np.ndarray  # int32 per tree: first node
    leaf_base: np.ndarray  # int32 per tree: first row of its leaves in `leaves`
    leaves: np.ndarray  # float32 [leaves, width]
    tree_target: np.ndarray | None  # int16 per tree when width is 1 and there are several targets
    outputs: int
    aggregate: int
    base: np.ndarray  # float32 [outputs] (zeros when there are none)
    always_scored: list[bool]  # per output: some tree gives every one of its leaves a value for it
    features: int


def _float32_at_most(t: float, strict: bool) -> float:
    """The largest float32 f with f <= t (f < t when `strict`)."""
    f = F32(t)
    if float(f) > t or (strict and float(f) >= t):
        f = np.nextafter(f, F32(-np.inf))
    return float(f)


def build_forest(node: Node, features: int, prefix: str, outputs: int) -> Forest:
    """The compact tables of a TreeEnsemble node (`prefix`: "target" or "class")."""
    tree_ids = _ints(node, "nodes_treeids")
    node_ids = _ints(node, "nodes_nodeids")
    feats = _ints(node, "nodes_featureids")
    modes = [_text(m, "") for m in node.attrs.get("nodes_modes", [])]
    values = _floats(node, "nodes_values")
    values = np.zeros(len(tree_ids)) if values is None else values
    true_ids = _ints(node, "nodes_truenodeids")
    false_ids = _ints(node, "nodes_falsenodeids")
    missing = _ints(node, "nodes_missing_value_tracks_true") or [0] * len(tree_ids)
    n = len(tree_ids)
    if not n or any(len(a) != n for a in (node_ids, feats, modes, values, true_ids, false_ids, missing)):
        raise Unsupported("the nodes_* attributes must be non-empty and of one length")
    w_tree, w_node, w_id = _ints(node, f"{prefix}_treeids"), _ints(node, f"{prefix}_nodeids"), _ints(node, f"{prefix}_ids")
    weights = _floats(node, f"{prefix}_weights")
    if weights is None or not (len(w_tree) == len(w_node) == len(w_id) == len(weights)):
        raise Unsupported(f"the {prefix}_* attributes must be of one length")
    index = {}
    for i, key in enumerate(zip(tree_ids, node_ids)):
        if key in index:
            raise Unsupported(f"node {key[1]} of tree {key[0]} is defined twice")
        index[key] = i
    votes: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for t, nd, k, w in zip(w_tree, w_node, w_id, weights):
        if (t, nd) not in index or modes[index[(t, nd)]] != "LEAF":
            raise Unsupported(f"a {prefix} weight names node {nd} of tree {t}, which is not a leaf")
        if not 0 <= k < outputs:
            raise Unsupported(f"{prefix} id {k} is outside [0, {outputs})")
        votes.setdefault((t, nd), []).append((k, float(w)))
    trees = sorted(set(tree_ids))
    targets_of_tree = {t: {k for (tt, _), vs in votes.items() if tt == t for k, _ in vs} for t in trees}
    single = outputs > 1 and all(len(s) <= 1 for s in targets_of_tree.values())
    width = 1 if (outputs == 1 or single) else outputs
    feature, threshold, jump, roots, leaf_base, rows, tree_target = [], [], [], [], [], [], []
    covered = [False] * outputs
    for t in trees:
        ids = [nd for (tt, nd) in index if tt == t]
        children = {c for nd in ids if modes[index[(t, nd)]] != "LEAF"
                    for c in (true_ids[index[(t, nd)]], false_ids[index[(t, nd)]])}
        root = [nd for nd in ids if nd not in children]
        if len(root) != 1:
            raise Unsupported(f"tree {t} does not have exactly one root")
        roots.append(len(feature))
        leaf_base.append(len(rows))
        leaves_here, tree_votes = 0, []
        stack = [(root[0], None)]  # (node id, index of the branch whose false child it is)
        seen = set()
        while stack:
            nd, parent = stack.pop()
            if (t, nd) not in index:
                raise Unsupported(f"tree {t} refers to node {nd}, which it does not define")
            if nd in seen:
                raise Unsupported(f"tree {t} is not a tree (node {nd} is reached twice)")
            seen.add(nd)
            pos = len(feature)
            if parent is not None:
                distance = pos - parent
                if distance > 0xFFFF:
                    raise Unsupported(f"tree {t} has more than 65535 nodes")
                jump[parent] = distance
            i = index[(t, nd)]
            mode = modes[i]
            if mode == "LEAF":
                vs = votes.get((t, nd), [])
                tree_votes.append({k for k, _ in vs})
                row = np.zeros(width, np.float64)
                agg = _text(node.attrs.get("aggregate_function"), "SUM")
                if agg in ("MIN", "MAX") and len({k for k, _ in vs}) != len(vs):
                    raise Unsupported("a leaf with two values for one target under MIN or MAX")
                for k, w in vs:
                    row[0 if width == 1 else k] += w
                rows.append(row)
                feature.append(LEAF)
                threshold.append(0.0)
                jump.append(leaves_here)
                leaves_here += 1
                if leaves_here > 0xFFFF:
                    raise Unsupported(f"tree {t} has more than 65535 leaves")
                continue
            f = feats[i]
            if not 0 <= f < features:
                raise Unsupported(f"feature id {f} is outside the input's {features} features")
            if f > MAX_FEATURE:
                raise Unsupported(f"feature id {f} is beyond {MAX_FEATURE}")
            v = float(values[i])
            nan_true = bool(missing[i]) or mode == "BRANCH_NEQ"
            if mode in ("BRANCH_LEQ", "BRANCH_GT"):
                thr, swap, eq = _float32_at_most(v, False), mode == "BRANCH_GT", False
            elif mode in ("BRANCH_LT", "BRANCH_GTE"):
                thr, swap, eq = _float32_at_most(v, True), mode == "BRANCH_GTE", False
            elif mode in ("BRANCH_EQ", "BRANCH_NEQ"):
                thr = float(F32(v)) if float(F32(v)) == v else math.nan  # a float never equals it
                swap, eq = mode == "BRANCH_NEQ", True
            else:
                raise Unsupported(f"node mode {mode} is not supported")
            yes, no = (false_ids[i], true_ids[i]) if swap else (true_ids[i], false_ids[i])
            feature.append(f | (EQ_FLAG if eq else 0) | (NAN_FLAG if nan_true != swap else 0))
            threshold.append(thr)
            jump.append(0)
            stack.append((no, pos))  # popped after the whole true subtree
            stack.append((yes, None))
        if len(seen) != len(ids):
            raise Unsupported(f"tree {t} has nodes its root does not reach")
        tt = sorted(targets_of_tree[t])
        tree_target.append(tt[0] if tt else 0)
        for k in range(outputs):
            if all((k in s) if width > 1 or single else bool(s) for s in tree_votes) and \
                    (width > 1 or (tt and tt[0] == k) or outputs == 1):
                covered[k] = True
    base = _floats(node, "base_values")
    return Forest(np.asarray(feature, np.uint16), np.asarray(threshold, F32), np.asarray(jump, np.uint16),
                  np.asarray(roots, np.int32), np.asarray(leaf_base, np.int32),
                  np.asarray(rows, F32).reshape(-1, width),
                  np.asarray(tree_target, np.int16) if single else None, outputs,
                  AGGREGATE[_text(node.attrs.get("aggregate_function"), "SUM")],
                  np.zeros(outputs, F32) if base is None else base.astype(F32), covered, features)


def forest_leaves(forest: Forest, x: np.ndarray) -> np.ndarray:
    """The leaf row each tree reaches for each row of float features x [N, C]: [N, trees]."""
    x = np.asarray(x, F32)
    out = np.empty((x.shape[0], len(forest.roots)), np.int64)
    for r in range(x.shape[0]):
        for t, root in enumerate(forest.roots):
            i = int(root)
            while forest.feature[i] != LEAF:
                f = int(forest.feature[i])
                v = x[r, f & MAX_FEATURE]
                go = (v == forest.threshold[i]) if f & EQ_FLAG else (v <= forest.threshold[i])
                go = go or (bool(f & NAN_FLAG) and v != v)
                i = i + 1 if go else i + int(forest.jump[i])
            out[r, t] = forest.leaf_base[t] + forest.jump[i]
    return out


def forest_scores(forest: Forest, leaves: np.ndarray) -> np.ndarray:
    """Aggregated raw scores [N, outputs] from the leaves reached, in the kernel's order."""
    n_trees = len(forest.roots)
    out = np.empty((leaves.shape[0], forest.outputs), F32)
    for r in range(leaves.shape[0]):
        big = np.finfo(F32).max
        start = big if forest.aggregate == AGGREGATE["MIN"] else -big if forest.aggregate == AGGREGATE["MAX"] else F32(0)
        acc = np.full(forest.outputs, start, F32)
        for t in range(n_trees):
            row = forest.leaves[leaves[r, t]]
            if forest.leaves.shape[1] == 1:
                targets = [int(forest.tree_target[t]) if forest.tree_target is not None else 0]
            else:
                targets = range(forest.outputs)
            for j, k in enumerate(targets):
                v = row[j if forest.leaves.shape[1] > 1 else 0]
                if forest.aggregate in (AGGREGATE["SUM"], AGGREGATE["AVERAGE"]):
                    acc[k] = F32(acc[k] + v)
                elif forest.aggregate == AGGREGATE["MIN"]:
                    acc[k] = v if v < acc[k] else acc[k]
                else:
                    acc[k] = v if v > acc[k] else acc[k]
        if forest.aggregate == AGGREGATE["AVERAGE"]:
            acc = (acc / F32(n_trees)).astype(F32)
        out[r] = (acc + forest.base).astype(F32)
    return out


def _tree_features(graph: Graph, node: Node) -> int:
    return _rows_cols(graph, node)[1]


def tree_finalizer(node: Node, forest: Forest, labels: np.ndarray) -> Finalizer:
    """onnxruntime's classifier rules for the aggregated scores of a TreeEnsembleClassifier."""
    post = _post(node)
    n = len(labels)
    base = _floats(node, "base_values")
    nbase = 0 if base is None else base.size
    ids = sorted(set(_ints(node, "class_ids")))
    if ids and (ids[0] < 0 or ids[-1] >= n):
        raise Unsupported(f"class_ids {ids[0]}..{ids[-1]} for {n} class labels")
    if n > 2:
        if nbase not in (0, n):
            raise Unsupported(f"{nbase} base_values for {n} classes")
        if nbase == 0 and not all(forest.always_scored):
            raise Unsupported("a class that some paths give no score (its argmax would skip it); add base_values")
        return Finalizer(n, n, labels, 0, post=post)
    if n != 2:
        raise Unsupported("a classifier needs at least two class labels")
    if len(ids) == 1:  # onnxruntime's binary case: one score, for the positive class
        if ids[0] != 0 or nbase not in (0, 1):
            raise Unsupported("a binary tree classifier whose weights are for class 1, or with two base_values")
        positive = all(w >= 0 for w in _floats(node, "class_weights"))
        if positive:
            return Finalizer(1, 2, labels, 1, 0, 0.5, expand=1, post=0)
        return Finalizer(1, 2, labels, 1, 0, 0.0, expand=2, post=post if post == POST["LOGISTIC"] else 0)
    if nbase or not all(forest.always_scored):
        raise Unsupported("a two-class tree classifier with base_values or a class some paths give no score")
    return Finalizer(2, 2, np.asarray([0, 1], np.int32), 1, 1, 0.0, post=post)


V5_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
V5_AGGREGATE = ["AVERAGE", "SUM", "MIN", "MAX"]
V5_POST = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]


def tree_ensemble_v3(node: Node) -> Node:
    """ai.onnx.ml opset 5's TreeEnsemble as the TreeEnsembleRegressor of opset 3 that computes the
    same: every branch and every leaf reference becomes a node of its tree (a leaf two branches
    name becomes two nodes with one value each)."""
    a = node.attrs
    feats, splits = _ints(node, "nodes_featureids"), _floats(node, "nodes_splits")
    modes = [int(m) for m in np.asarray(a.get("nodes_modes", [])).reshape(-1)]
    true_ids, true_leaf = _ints(node, "nodes_truenodeids"), _ints(node, "nodes_trueleafs")
    false_ids, false_leaf = _ints(node, "nodes_falsenodeids"), _ints(node, "nodes_falseleafs")
    missing = _ints(node, "nodes_missing_value_tracks_true") or [0] * len(feats)
    leaf_targets, leaf_weights = _ints(node, "leaf_targetids"), _floats(node, "leaf_weights")
    n = len(feats)
    if splits is None or leaf_weights is None or any(len(v) != n for v in (splits, modes, true_ids, true_leaf,
                                                                          false_ids, false_leaf, missing)):
        raise Unsupported("the nodes_* attributes must be present and of one length")
    if len(leaf_targets) != len(leaf_weights):
        raise Unsupported("leaf_targetids and leaf_weights differ in length")
    if any(m >= len(V5_MODES) for m in modes):
        raise Unsupported("set membership (BRANCH_MEMBER) is not supported")
    v3 = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                          "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                          "target_treeids", "target_nodeids", "target_ids", "target_weights")}
    for t, root in enumerate(_ints(node, "tree_roots")):
        count = 0
        pending = [(root, False, count)]  # (index, is a leaf, its node id in the tree)
        while pending:
            index, leaf, nid = pending.pop()
            limit = len(leaf_weights) if leaf else n
            if not 0 <= index < limit or count > 4 * n + len(leaf_weights):
                raise Unsupported(f"tree {t} refers to a missing {'leaf' if leaf else 'node'} {index} or is not a tree")
            v3["nodes_treeids"].append(t)
            v3["nodes_nodeids"].append(nid)
            v3["nodes_missing_value_tracks_true"].append(0 if leaf else missing[index])
            if leaf:
                v3["nodes_featureids"].append(0)
                v3["nodes_values"].append(0.0)
                v3["nodes_modes"].append("LEAF")
                v3["nodes_truenodeids"].append(0)
                v3["nodes_falsenodeids"].append(0)
                for k in ("target_treeids", "target_nodeids", "target_ids", "target_weights"):
                    v3[k].append({"target_treeids": t, "target_nodeids": nid, "target_ids": leaf_targets[index],
                                  "target_weights": float(leaf_weights[index])}[k])
                continue
            v3["nodes_featureids"].append(feats[index])
            v3["nodes_values"].append(float(splits[index]))
            v3["nodes_modes"].append(V5_MODES[modes[index]])
            v3["nodes_truenodeids"].append(count + 1)
            v3["nodes_falsenodeids"].append(count + 2)
            pending += [(false_ids[index], bool(false_leaf[index]), count + 2),
                        (true_ids[index], bool(true_leaf[index]), count + 1)]
            count += 2
    agg, post = int(a.get("aggregate_function", 1)), int(a.get("post_transform", 0))
    v3.update(n_targets=int(a.get("n_targets", 1)), aggregate_function=V5_AGGREGATE[agg] if 0 <= agg < 4 else "?",
              post_transform=V5_POST[post] if 0 <= post < 5 else "?")
    return Node("TreeEnsembleRegressor", node.name, node.inputs, node.outputs, v3)


@register("TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble")
class TreeEnsemble(Op):
    def class_names(self, node, graph):
        return _class_names(node)

    def _view(self, node: Node) -> Node:
        """The node as opset 3 writes it (opset 5's TreeEnsemble converted once)."""
        if node.op_type != "TreeEnsemble":
            return node
        if "_v3" not in node.attrs:
            node.attrs["_v3"] = tree_ensemble_v3(node)
        return node.attrs["_v3"]

    def forest(self, node: Node, graph: Graph) -> Forest:
        cached = node.attrs.get("_forest")
        if cached is None:
            features = _tree_features(graph, node)
            original, node = node, self._view(node)
            if node.op_type == "TreeEnsembleRegressor":
                outputs = int(node.attrs.get("n_targets", 1))
                cached = build_forest(node, features, "target", outputs)
            else:
                labels = _labels(node, "classlabels_int64s")
                ids = set(_ints(node, "class_ids"))
                outputs = len(labels) if len(labels) > 2 or len(ids) != 1 else 1
                cached = build_forest(node, features, "class", max(outputs, max(ids, default=0) + 1))
                if outputs == 1:
                    cached.outputs = 1
            original.attrs["_forest"] = cached
        return cached

    def finalizer(self, node, graph) -> Finalizer | None:
        if self._view(node).op_type == "TreeEnsembleRegressor":
            return None
        return tree_finalizer(node, self.forest(node, graph), _labels(node, "classlabels_int64s"))

    def check(self, node, graph):
        forest = self.forest(node, graph)
        node = self._view(node)
        agg = _text(node.attrs.get("aggregate_function"), "SUM")
        if agg not in AGGREGATE:
            raise Unsupported(f"aggregate_function {agg} is not supported")
        if node.op_type == "TreeEnsembleRegressor":
            if _post(node) != POST["NONE"]:
                raise Unsupported("post_transform on a regressor is not supported (NONE is)")
            base = _floats(node, "base_values")
            if base is not None and base.size != forest.outputs:
                raise Unsupported(f"{base.size} base_values for {forest.outputs} targets")
            if agg in ("MIN", "MAX") and not all(forest.always_scored):
                raise Unsupported("MIN or MAX over a target that some paths give no value")
        else:
            self.finalizer(node, graph)

    def infer_shapes(self, node, graph):
        rows, _ = _rows_cols(graph, node)
        if self._view(node).op_type == "TreeEnsembleRegressor":
            return [(rows, int(node.attrs.get("n_targets", 1)))]
        return [(rows,), (rows, len(_labels(node, "classlabels_int64s")))]

    def output_dtypes(self, node, graph):
        return ["float32"] if self._view(node).op_type == "TreeEnsembleRegressor" else ["int32", "float32"]

    def params_count(self, node, graph):
        forest = self.forest(node, graph)
        return forest.feature.size + forest.leaves.size

    def reference(self, node, graph, inputs):
        forest = self.forest(node, graph)
        x = np.asarray(inputs[0], F32).reshape(-1, forest.features)
        raw = forest_scores(forest, forest_leaves(forest, x))
        fin = self.finalizer(node, graph)
        if fin is None:
            return [raw]
        return list(fin.run(raw))

    def scratch_bytes(self, node, graph, in_place, features=()):
        rows, _ = _rows_cols(graph, node)
        forest = self.forest(node, graph)
        # the aggregated scores of all rows (classifier: before the finalizer; int8: before quantizing)
        if self._view(node).op_type == "TreeEnsembleRegressor" and not _is_int8(graph, node):
            return 0
        fin = self.finalizer(node, graph)
        return 4 * rows * max(forest.outputs, fin.classes if fin is not None else 0)

    def _tables(self, forest: Forest, thresholds) -> list:
        return [Const(forest.feature, "feat"), thresholds, Const(forest.jump, "jump"), Const(forest.roots, "root"),
                Const(forest.leaf_base, "lbase"), Const(forest.leaves, "leaf"),
                None if forest.tree_target is None else Const(forest.tree_target, "ttarget"),
                Const(forest.base, "base")]

    def _params(self, forest: Forest, rows: int) -> dict:
        return {"rows": rows, "features": forest.features, "trees": len(forest.roots), "outputs": forest.outputs,
                "width": forest.leaves.shape[1], "aggregate": forest.aggregate,
                "flags": int(any(int(f) != LEAF and int(f) & (EQ_FLAG | NAN_FLAG) for f in forest.feature))}

    def kernels(self, node, graph):
        forest = self.forest(node, graph)
        rows, _ = _rows_cols(graph, node)
        fin = self.finalizer(node, graph)
        if _is_int8(graph, node):
            # walk on int8 features, sum int32 leaves (scratch), then the int8 scores rule
            q = node.attrs["q"]
            acc = Scratch("int32_t")
            tables = [Const(forest.feature, "feat"), Const(q["thresholds"], "thr"), Const(forest.jump, "jump"),
                      Const(forest.roots, "root"), Const(forest.leaf_base, "lbase"), Const(q["leaves"], "leaf"),
                      None if forest.tree_target is None else Const(forest.tree_target, "ttarget"),
                      Const(q["base"], "base")]
            return [KernelCall("nn_tree_ensemble_s8", ("src/ml/nn_tree_ensemble_s8.c",), "nn_tree_ensemble_params",
                               self._params(forest, rows), [node.inputs[0], *tables, acc]),
                    *scores_calls(fin, q, rows, forest.outputs, acc, node.outputs)]
        tables = self._tables(forest, Const(forest.threshold, "thr"))
        params = self._params(forest, rows)
        if fin is None:
            return [KernelCall("nn_tree_ensemble_f32", ("src/ml/nn_tree_ensemble_f32.c",), "nn_tree_ensemble_params",
                               params, [node.inputs[0], *tables, node.outputs[0]])]
        raw = Scratch("float")
        return [KernelCall("nn_tree_ensemble_f32", ("src/ml/nn_tree_ensemble_f32.c",), "nn_tree_ensemble_params",
                           params, [node.inputs[0], *tables, raw]),
                classify_call(fin, rows, raw, node.outputs[0], node.outputs[1])]

    # int8: the same walk on int8 features with thresholds in the input's int8 domain
    def output_qparams(self, node, graph, choose):
        return [choose(name) for name in node.outputs]

    def quantize(self, node, graph):
        """Leaves as int32 at one scale for all outputs, fine enough that the largest possible sum
        takes 2^29 (AVERAGE: the sum of n trees against base * n, the 1/n in the multiplier)."""
        forest = self.forest(node, graph)
        x = qparams(graph, node.inputs[0])
        y = qparams(graph, node.outputs[-1])
        n = len(forest.roots) if forest.aggregate == AGGREGATE["AVERAGE"] else 1
        leaves = forest.leaves.astype(np.float64)
        per_tree = np.abs(leaves).max(axis=1) if leaves.size else np.zeros(0)
        tree_peak = [float(per_tree[forest.leaf_base[t]:(forest.leaf_base[t + 1] if t + 1 < len(forest.roots)
                                                         else len(per_tree))].max(initial=0.0))
                     for t in range(len(forest.roots))]
        peak = (sum(tree_peak) if forest.aggregate <= AGGREGATE["AVERAGE"] else max(tree_peak, default=0.0))
        peak += float(np.abs(forest.base).max(initial=0.0)) * n
        leaf_scale = peak / 2**29 if peak > 0 else 1.0
        acc_scale = leaf_scale / n
        bound = peak / n
        fin = self.finalizer(node, graph)
        q = scores_rule(fin, acc_scale, -bound, bound, y)
        q.update(thresholds=int8_thresholds(forest, x), leaves=np.rint(leaves / leaf_scale).astype(np.int32),
                 base=np.rint(forest.base.astype(np.float64) * n / leaf_scale).astype(np.int32))
        return q

    def reference_s8(self, node, graph, inputs):
        forest = self.forest(node, graph)
        q = node.attrs["q"]
        xq = np.asarray(inputs[0]).astype(np.int16).reshape(-1, forest.features)
        leaves = _forest_leaves_s8(forest, q["thresholds"], xq)
        acc = np.zeros((xq.shape[0], forest.outputs), np.int64)
        width = forest.leaves.shape[1]
        for r in range(xq.shape[0]):
            hit = np.zeros(forest.outputs, bool)
            for t in range(len(forest.roots)):
                row = q["leaves"][leaves[r, t]].astype(np.int64)
                targets = range(width) if width > 1 else \
                    [int(forest.tree_target[t]) if forest.tree_target is not None else 0]
                for j, k in enumerate(targets):
                    v = row[j]
                    if forest.aggregate <= AGGREGATE["AVERAGE"]:
                        acc[r, k] += v
                    elif not hit[k] or (v < acc[r, k] if forest.aggregate == AGGREGATE["MIN"] else v > acc[r, k]):
                        acc[r, k] = v
                    hit[k] = True
        acc += q["base"]
        return scores_s8(self.finalizer(node, graph), q, acc)


def int8_thresholds(forest: Forest, x) -> np.ndarray:
    """Each branch's threshold in the input's int8 domain, int16: for `<=` the largest level q
    with dequantize(q) <= t (-129 when none is); for `==` the level that dequantizes to t
    exactly, else 1000 (no int8 value equals it). The int8 comparison then takes the branch
    the float comparison takes on the dequantized input, for every input byte."""
    levels = x.dequantize(np.arange(-128, 128))  # float32, as the float reference dequantizes
    out = np.zeros(forest.threshold.shape, np.int16)
    for i, (f, t) in enumerate(zip(forest.feature, forest.threshold)):
        if f == LEAF:
            continue
        if int(f) & EQ_FLAG:
            hit = np.nonzero(levels == t)[0]
            out[i] = hit[0] - 128 if hit.size else 1000
        else:
            below = np.nonzero(levels <= t)[0]
            out[i] = below[-1] - 128 if below.size else -129
    return out


def _forest_leaves_s8(forest: Forest, thresholds: np.ndarray, xq: np.ndarray) -> np.ndarray:
    out = np.empty((xq.shape[0], len(forest.roots)), np.int64)
    for r in range(xq.shape[0]):
        for t, root in enumerate(forest.roots):
            i = int(root)
            while forest.feature[i] != LEAF:
                f = int(forest.feature[i])
                v = int(xq[r, f & MAX_FEATURE])
                go = (v == thresholds[i]) if f & EQ_FLAG else (v <= thresholds[i])
                i = i + 1 if go else i + int(forest.jump[i])
            out[r, t] = forest.leaf_base[t] + forest.jump[i]
    return out


def scores_rule(fin: Finalizer | None, acc_scale: float, lo: float, hi: float, y) -> dict:
    """int8 scores from int32 accumulators `acc` (real = acc_scale * acc, within [lo, hi]):
    nn_classify_s8's parameters. Without a transform, one requantization into the output; else
    a requantization into an int8 middle covering [lo, hi], then a table per score column
    (LOGISTIC, the one-score expansions) or nn_softmax_s8 with its exp table (SOFTMAX). The
    label threshold moves into the accumulator's units: acc > floor(t / acc_scale) exactly when
    acc_scale * acc > t."""
    q = {"lut": None, "exp_table": None, "threshold": 0}
    if fin is not None and fin.rule == 1:
        q["threshold"] = int(math.floor(fin.threshold / acc_scale))
    if fin is None or (fin.post == POST["NONE"] and fin.expand == 0):
        q["multiplier"], q["shift"] = quantize_multiplier(acc_scale / y.scale)
        q["output_offset"] = y.zero_point
        return q
    if fin.post == POST["SOFTMAX_ZERO"]:
        raise Unsupported("SOFTMAX_ZERO has no int8 rule (its float model runs)")
    mid = from_range(lo, hi)
    q["multiplier"], q["shift"] = quantize_multiplier(acc_scale / mid.scale)
    q["output_offset"] = mid.zero_point
    s = mid.dequantize(np.arange(-128, 128))
    if fin.post == POST["SOFTMAX"]:
        bits = min(21, 29 - math.ceil(math.log2(max(fin.classes, 1))))
        q["exp_table"] = np.floor(np.exp(-mid.scale * np.arange(256, dtype=np.float64)) * 2.0**bits
                                  + 0.5).astype(np.int32)
        return q
    if fin.expand == 0:
        tables = [logistic(s)]
    else:
        lg = logistic(s) if fin.expand == 3 else s
        first = -s if fin.expand == 2 else (F32(1) - lg).astype(F32)
        tables = [first, lg]
    q["lut"] = np.concatenate([y.quantize(t) for t in tables])
    return q


def scores_s8(fin: Finalizer | None, q: dict, acc: np.ndarray) -> list[np.ndarray]:
    """The NumPy twin of nn_classify_s8 (and nn_softmax_s8 after it): [label,] int8 scores."""
    acc = np.asarray(acc, np.int64)
    raw = acc.shape[1]
    classes = raw if fin is None else fin.classes
    cols = np.zeros(classes, np.int64) if raw == 1 and classes > 1 else np.arange(classes)
    v = output_s8(acc[:, cols], q["multiplier"], q["shift"], q["output_offset"]).astype(np.int64)
    if q["lut"] is not None:
        table = (np.arange(classes) if raw == 1 else np.zeros(classes, np.int64)) * 256
        v = q["lut"][table[None, :] + v + 128]
    elif q["exp_table"] is not None:
        e = q["exp_table"].astype(np.int64)[v.max(axis=1, keepdims=True) - v]
        total = e.sum(axis=1, keepdims=True)
        v = np.minimum((256 * e + total // 2) // total - 128, 127)
    if fin is None:
        return [v.astype(np.int8)]
    if fin.rule == 0:
        label = fin.labels[np.argmax(acc, axis=1)]
    else:
        label = np.where(acc[:, fin.col] > q["threshold"], fin.labels[1], fin.labels[0])
    return [label.astype(np.int32), v.astype(np.int8)]


def scores_calls(fin: Finalizer | None, q: dict, rows: int, raw: int, acc, outputs: list[str]) -> list[KernelCall]:
    classes = raw if fin is None else fin.classes
    params = {"rows": rows, "raw": raw, "classes": classes, "rule": 0 if fin is None else fin.rule,
              "col": 0 if fin is None else fin.col, "threshold": q["threshold"], "multiplier": q["multiplier"],
              "shift": q["shift"], "output_offset": q["output_offset"]}
    calls = [KernelCall("nn_classify_s8", ("src/ml/nn_classify_s8.c",), "nn_classify_s8_params", params,
                        [acc, None if fin is None else Const(fin.labels, "labels"),
                         None if q["lut"] is None else Const(q["lut"], "lut"),
                         None if fin is None else outputs[0], outputs[-1]])]
    if q["exp_table"] is not None:
        calls.append(KernelCall("nn_softmax_s8", ("src/softmax/nn_softmax_s8.c",), "nn_softmax_params",
                                {"outer": rows, "axis_size": classes, "inner": 1},
                                [outputs[-1], Const(q["exp_table"], "exp"), outputs[-1]]))
    return calls


# ---- elementwise preprocessing -------------------------------------------------------------

@register("Scaler", "Normalizer", "Binarizer")
class Preprocess(Op):
    def _scaler(self, node, graph) -> tuple[np.ndarray, np.ndarray]:
        _, cols = _rows_cols(graph, node)
        offset = _floats(node, "offset")
        scale = _floats(node, "scale")
        offset = np.zeros(1) if offset is None else offset
        scale = np.ones(1) if scale is None else scale
        for name, v in (("offset", offset), ("scale", scale)):
            if v.size not in (1, cols):
                raise Unsupported(f"{v.size} {name} values for {cols} features")
        return (np.broadcast_to(offset, (cols,)).astype(F32), np.broadcast_to(scale, (cols,)).astype(F32))

    def check(self, node, graph):
        if node.op_type == "Scaler":
            self._scaler(node, graph)
        if node.op_type == "Normalizer":
            _rows_cols(graph, node)
            norm = _text(node.attrs.get("norm"), "MAX")
            if norm not in ("MAX", "L1", "L2"):
                raise Unsupported(f"norm {norm} is not supported (MAX, L1, L2)")

    def infer_shapes(self, node, graph):
        return [shape_of(graph, node.inputs[0])]

    def inplace_input(self, node, graph):
        return 0

    def params_count(self, node, graph):
        return 2 * _rows_cols(graph, node)[1] if node.op_type == "Scaler" else 0

    def reference(self, node, graph, inputs):
        with np.errstate(all="ignore"):
            return self._reference(node, graph, inputs)

    def _reference(self, node, graph, inputs):
        x = np.asarray(inputs[0], F32)
        if node.op_type == "Binarizer":
            return [(x > F32(node.attrs.get("threshold", 0.0))).astype(F32)]
        rows, cols = _rows_cols(graph, node)
        x2 = x.reshape(rows, cols)
        if node.op_type == "Scaler":
            offset, scale = self._scaler(node, graph)
            return [((x2 - offset) * scale).astype(F32).reshape(x.shape)]
        norm = _text(node.attrs.get("norm"), "MAX")
        out = np.empty_like(x2)
        for r in range(rows):
            row = x2[r]
            if norm == "MAX":
                d = row[0]
                for v in row[1:]:
                    d = v if v > d else d
            else:
                d = F32(0)
                for v in row:
                    d = F32(d + (abs(v) if norm == "L1" else v * v))
                if norm == "L2":
                    d = np.sqrt(d)
            with np.errstate(all="ignore"):
                out[r] = row / d if d != 0 else row
        return [out.reshape(x.shape)]

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        if node.op_type == "Binarizer":
            below = np.nonzero(x.dequantize(np.arange(-128, 128)) <= F32(node.attrs.get("threshold", 0.0)))[0]
            return {"threshold": int(below[-1]) - 128 if below.size else -129,
                    "one": int(y.quantize(1.0)), "zero": int(y.quantize(0.0))}
        if node.op_type == "Scaler":
            offset, scale = self._scaler(node, graph)
            sign = np.sign(scale.astype(np.float64))
            weight = (256 * sign).astype(np.int32)
            bias = np.rint(-256 * sign * offset.astype(np.float64) / x.scale)
            if np.abs(bias).max(initial=0) + 256 * 255 >= 2**31:
                raise Unsupported("an offset beyond the int32 accumulator in input steps")
            m0, shift = multipliers(np.abs(scale.astype(np.float64)) * x.scale / (256 * y.scale))
            return {"weight": weight, "bias": bias.astype(np.int32), "multiplier": m0, "shift": shift}
        m0, shift = quantize_multiplier(2.0**-16 / y.scale)
        c0, cshift = quantize_multiplier(x.scale / y.scale)
        return {"multiplier": m0, "shift": shift, "copy_multiplier": c0, "copy_shift": cshift}

    def reference_s8(self, node, graph, inputs):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        q = node.attrs["q"]
        xq = np.asarray(inputs[0]).astype(np.int64)
        if node.op_type == "Binarizer":
            return [np.where(xq > q["threshold"], q["one"], q["zero"]).astype(np.int8)]
        rows, cols = _rows_cols(graph, node)
        d = xq.reshape(rows, cols) - x.zero_point
        if node.op_type == "Scaler":
            acc = q["weight"].astype(np.int64) * d + q["bias"]
            return [output_s8(acc, q["multiplier"], q["shift"], y.zero_point).reshape(xq.shape)]
        norm = _text(node.attrs.get("norm"), "MAX")
        out = np.empty((rows, cols), np.int8)
        for r in range(rows):
            row = [int(v) for v in d[r]]
            if norm == "MAX":
                den, bits = max(row), 16
            elif norm == "L1":
                den, bits = sum(abs(v) for v in row), 16
            else:
                den, bits = math.isqrt(sum(v * v for v in row) << 16), 24
            if den == 0:
                out[r] = output_s8(np.asarray(row), q["copy_multiplier"], q["copy_shift"], y.zero_point)
                continue
            ratio = [_round_div(v << bits, den) for v in row]
            out[r] = output_s8(np.asarray(ratio), q["multiplier"], q["shift"], y.zero_point)
        return [out.reshape(xq.shape)]

    def kernels(self, node, graph):
        size = graph.tensors[node.outputs[0]].size
        if _is_int8(graph, node):
            return self._kernels_s8(node, graph, size)
        if node.op_type == "Binarizer":
            return [KernelCall("nn_binarizer_f32", ("src/ml/nn_binarizer_f32.c",), "nn_binarizer_params",
                               {"size": size, "threshold": float(node.attrs.get("threshold", 0.0))},
                               [node.inputs[0], node.outputs[0]])]
        rows, cols = _rows_cols(graph, node)
        if node.op_type == "Scaler":
            offset, scale = self._scaler(node, graph)
            return [KernelCall("nn_scaler_f32", ("src/ml/nn_scaler_f32.c",), "nn_rows_params",
                               {"rows": rows, "cols": cols, "mode": 0},
                               [node.inputs[0], Const(offset, "off"), Const(scale, "scale"), node.outputs[0]])]
        norm = {"MAX": 0, "L1": 1, "L2": 2}[_text(node.attrs.get("norm"), "MAX")]
        return [KernelCall("nn_normalizer_f32", ("src/ml/nn_normalizer_f32.c",), "nn_rows_params",
                           {"rows": rows, "cols": cols, "mode": norm}, [node.inputs[0], node.outputs[0]])]


    def _kernels_s8(self, node, graph, size):
        q = node.attrs["q"]
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[0])
        if node.op_type == "Binarizer":
            return [KernelCall("nn_binarizer_s8", ("src/ml/nn_binarizer_s8.c",), "nn_binarizer_s8_params",
                               {"size": size, **q}, [node.inputs[0], node.outputs[0]])]
        rows, cols = _rows_cols(graph, node)
        if node.op_type == "Scaler":
            return [KernelCall("nn_scaler_s8", ("src/ml/nn_scaler_s8.c",), "nn_scaler_s8_params",
                               {"rows": rows, "cols": cols, "input_offset": -x.zero_point,
                                "output_offset": y.zero_point},
                               [node.inputs[0], Const(q["weight"], "w"), Const(q["bias"], "b"),
                                Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s"), node.outputs[0]])]
        norm = {"MAX": 0, "L1": 1, "L2": 2}[_text(node.attrs.get("norm"), "MAX")]
        return [KernelCall("nn_normalizer_s8", ("src/ml/nn_normalizer_s8.c",), "nn_normalizer_s8_params",
                           {"rows": rows, "cols": cols, "mode": norm, "input_offset": -x.zero_point,
                            "output_offset": y.zero_point, **q}, [node.inputs[0], node.outputs[0]])]


def _round_div(a: int, b: int) -> int:
    """round(a / b), half away from zero, for integers (b != 0), as nn_normalizer_s8 divides."""
    if b < 0:
        a, b = -a, -b
    return (a + b // 2) // b if a >= 0 else -((-a + b // 2) // b)


@register("ArrayFeatureExtractor")
class ArrayFeatureExtractor(Op):
    keeps_qparams = True

    def _indices(self, node, graph) -> np.ndarray:
        value = graph.const(node.inputs[1]) if len(node.inputs) > 1 else None
        if value is None:
            raise Unsupported("the indices must be a constant")
        x = shape_of(graph, node.inputs[0])
        if not x:
            raise Unsupported("a scalar input has no features to select")
        idx = np.asarray(value).reshape(-1).astype(np.int64)
        if idx.size == 0:
            raise Unsupported("no indices")
        if (idx < 0).any() or (idx >= x[-1]).any():
            raise Unsupported(f"an index is outside [0, {x[-1]})")
        return idx.astype(np.int32)

    def check(self, node, graph):
        self._indices(node, graph)

    def infer_shapes(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        n = len(self._indices(node, graph))
        return [(1, n) if len(x) == 1 else tuple(x[:-1]) + (n,)]

    def params_count(self, node, graph):
        return 0

    def reference(self, node, graph, inputs):
        x = np.asarray(inputs[0])
        idx = self._indices(node, graph)
        y = x[..., idx]
        return [y.reshape(self.infer_shapes(node, graph)[0])]

    def quantize(self, node, graph):
        return {}

    def reference_s8(self, node, graph, inputs):
        return self.reference(node, graph, inputs)

    def kernels(self, node, graph):
        x = shape_of(graph, node.inputs[0])
        idx = self._indices(node, graph)
        rows = int(np.prod(x[:-1], dtype=np.int64))
        size = np.dtype(graph.tensors[node.inputs[0]].dtype).itemsize
        return [KernelCall("nn_select_columns", ("src/ml/nn_select_columns.c",), "nn_select_columns_params",
                           {"rows": rows, "in_cols": x[-1], "out_cols": len(idx), "elem_size": size},
                           [node.inputs[0], Const(idx, "idx"), node.outputs[0]])]


# ---- linear models -------------------------------------------------------------------------

@register("LinearRegressor", "LinearClassifier")
class Linear(Op):
    def class_names(self, node, graph):
        return _class_names(node)

    def layout(self, node, graph) -> tuple[np.ndarray, np.ndarray]:
        """(weights [targets, features], intercepts [targets]) as float32."""
        _, cols = _rows_cols(graph, node)
        coef = _floats(node, "coefficients")
        if coef is None or coef.size == 0:
            raise Unsupported("no coefficients")
        inter = _floats(node, "intercepts")
        if node.op_type == "LinearRegressor":
            targets = int(node.attrs.get("targets", 1))
        else:
            targets = coef.size // cols if cols else 0
            if inter is not None and inter.size != targets:
                raise Unsupported(f"{inter.size} intercepts for {targets} classes")
        if coef.size != targets * cols:
            raise Unsupported(f"{coef.size} coefficients for {targets} targets of {cols} features")
        inter = np.zeros(targets) if inter is None else inter
        if inter.size != targets:
            raise Unsupported(f"{inter.size} intercepts for {targets} targets")
        return coef.reshape(targets, cols).astype(F32), inter.astype(F32)

    def finalizer(self, node, graph) -> Finalizer:
        """onnxruntime's LinearClassifier: argmax of the scores; a single score s (binary) gives
        labels[1] when s > 0 and the scores (1 - s, s), or (1 - logistic(s), logistic(s))."""
        labels = _labels(node, "classlabels_ints")
        post = _post(node)
        w, _ = self.layout(node, graph)
        targets = w.shape[0]
        if targets > 1:
            if len(labels) != targets:
                raise Unsupported(f"{len(labels)} class labels for {targets} score columns")
            return Finalizer(targets, targets, labels, 0, post=post)
        if len(labels) == 2:
            if post not in (POST["NONE"], POST["LOGISTIC"]):
                raise Unsupported("a one-score binary LinearClassifier takes post_transform NONE or LOGISTIC")
            return Finalizer(1, 2, labels, 1, 0, 0.0, expand=3 if post else 1, post=0)
        return Finalizer(1, 1, np.asarray([0, 1], np.int32), 1, 0, 0.0, post=post)

    def check(self, node, graph):
        self.layout(node, graph)
        if node.op_type == "LinearRegressor":
            if _post(node) != POST["NONE"]:
                raise Unsupported("post_transform on a regressor is not supported (NONE is)")
        else:
            self.finalizer(node, graph)

    def infer_shapes(self, node, graph):
        rows, _ = _rows_cols(graph, node)
        w, _ = self.layout(node, graph)
        if node.op_type == "LinearRegressor":
            return [(rows, w.shape[0])]
        return [(rows,), (rows, self.finalizer(node, graph).classes)]

    def output_dtypes(self, node, graph):
        return ["float32"] if node.op_type == "LinearRegressor" else ["int32", "float32"]

    def macs(self, node, graph):
        rows, cols = _rows_cols(graph, node)
        return rows * cols * self.layout(node, graph)[0].shape[0]

    def params_count(self, node, graph):
        w, b = self.layout(node, graph)
        return w.size + b.size

    def _scores(self, node, graph, x) -> np.ndarray:
        """As nn_fc_f32 sums: the intercept, then feature by feature."""
        w, b = self.layout(node, graph)
        x = np.asarray(x, F32).reshape(-1, w.shape[1])
        acc = np.broadcast_to(b, (x.shape[0], w.shape[0])).astype(F32).copy()
        with np.errstate(all="ignore"):
            for k in range(w.shape[1]):
                acc = (acc + x[:, k:k + 1] * w[None, :, k]).astype(F32)
        return acc

    def reference(self, node, graph, inputs):
        raw = self._scores(node, graph, inputs[0])
        if node.op_type == "LinearRegressor":
            return [raw]
        return list(self.finalizer(node, graph).run(raw))

    def scratch_bytes(self, node, graph, in_place, features=()):
        if node.op_type == "LinearRegressor":
            return 0
        rows, _ = _rows_cols(graph, node)
        return 4 * rows * self.layout(node, graph)[0].shape[0]

    # int8: the regressor is nn_fc_s8; the classifier keeps its int32 scores (one weight scale, so
    # they compare as the real scores do) for the label, then requantizes them into the scores
    # output, through a table for LOGISTIC and the one-score expansions, or into an int8 middle
    # (scale from the scores' bound over the input's range) and nn_softmax_s8 for SOFTMAX.
    def output_qparams(self, node, graph, choose):
        if node.op_type == "LinearClassifier":
            fin = self.finalizer(node, graph)
            if fin.post == POST["SOFTMAX"]:
                return [None, SOFTMAX_QPARAMS]
        return [choose(name) for name in node.outputs]

    def quantize(self, node, graph):
        x, y = qparams(graph, node.inputs[0]), qparams(graph, node.outputs[-1])
        w, b = self.layout(node, graph)
        if node.op_type == "LinearRegressor":
            from codegen.qparams import floor_for_bias, weight_scales
            wq, ws = quantize_weights(w, axis=0, scales=floor_for_bias(weight_scales(w, 0), b, x.scale))
            bias = fold_input_offset(quantize_bias(b, x.scale, ws), wq, x.zero_point)
            m0, shift = multipliers(x.scale * ws.astype(np.float64) / y.scale)
            return {"weight": wq, "bias": bias, "multiplier": m0, "shift": shift}
        fin = self.finalizer(node, graph)
        peak = float(np.abs(w).max(initial=0))
        ws = np.float32(peak / 127 if peak > 0 else 1.0)
        wq, _ = quantize_weights(w, axis=0, scales=np.full(w.shape[0], ws, np.float32))
        bias = fold_input_offset(quantize_bias(b, x.scale, np.full(w.shape[0], ws, np.float32)), wq, x.zero_point)
        lo_in, hi_in = (float(v) for v in x.dequantize(np.array([-128, 127])))
        lo = b.astype(np.float64) + np.minimum(w * lo_in, w * hi_in).sum(axis=1)
        hi = b.astype(np.float64) + np.maximum(w * lo_in, w * hi_in).sum(axis=1)
        q = scores_rule(fin, float(x.scale) * float(ws), float(lo.min()), float(hi.max()), y)
        q.update(weight=wq, bias=bias)
        return q

    def reference_s8(self, node, graph, inputs):
        q = node.attrs["q"]
        xq = np.asarray(inputs[0]).astype(np.int64).reshape(-1, q["weight"].shape[1])
        acc = xq @ q["weight"].astype(np.int64).T + q["bias"]
        if node.op_type == "LinearRegressor":
            y = qparams(graph, node.outputs[0])
            return [output_s8(acc, q["multiplier"], q["shift"], y.zero_point)]
        return scores_s8(self.finalizer(node, graph), q, acc)

    def kernels(self, node, graph):
        rows, cols = _rows_cols(graph, node)
        if _is_int8(graph, node):
            return self._kernels_s8(node, graph, rows, cols)
        w, b = self.layout(node, graph)
        n = w.shape[0]
        params = {"rows": rows, "in_features": cols, "out_features": n, "in_row_stride": cols, "in_col_stride": 1,
                  "out_row_stride": n, "out_col_stride": 1, "act_min": -math.inf, "act_max": math.inf}
        if node.op_type == "LinearRegressor":
            return [KernelCall("nn_fc_f32", ("src/fc/nn_fc_f32.c",), "nn_fc_f32_params", params,
                               [node.inputs[0], Const(w, "w"), Const(b, "b"), node.outputs[0]])]
        raw = Scratch("float")
        return [KernelCall("nn_fc_f32", ("src/fc/nn_fc_f32.c",), "nn_fc_f32_params", params,
                           [node.inputs[0], Const(w, "w"), Const(b, "b"), raw]),
                classify_call(self.finalizer(node, graph), rows, raw, node.outputs[0], node.outputs[1])]


    def _kernels_s8(self, node, graph, rows, cols):
        q = node.attrs["q"]
        n = q["weight"].shape[0]
        if node.op_type == "LinearRegressor":
            y = qparams(graph, node.outputs[0])
            params = {"rows": rows, "in_features": cols, "out_features": n, "in_row_stride": cols, "in_col_stride": 1,
                      "out_row_stride": n, "out_col_stride": 1, "output_offset": y.zero_point, "act_min": -128,
                      "act_max": 127}
            return [KernelCall("nn_fc_s8", ("src/fc/nn_fc_s8.c",), "nn_fc_s8_params", params,
                               [node.inputs[0], Const(q["weight"], "w"), Const(q["bias"], "b"),
                                Const(q["multiplier"], "m"), Const(q["shift"].astype(np.int8), "s"), node.outputs[0]])]
        fin = self.finalizer(node, graph)
        acc = Scratch("int32_t")
        return [KernelCall("nn_linear_scores_s8", ("src/ml/nn_linear_scores_s8.c",), "nn_linear_scores_s8_params",
                           {"rows": rows, "features": cols, "outputs": n},
                           [node.inputs[0], Const(q["weight"], "w"), Const(q["bias"], "b"), acc]),
                *scores_calls(fin, q, rows, n, acc, node.outputs)]


# ---- support vector machines ---------------------------------------------------------------

@dataclass
class Svm:
    vectors: np.ndarray  # float32 [V, C] (support vectors; for the linear form, the coefficient rows)
    coef: np.ndarray  # float32: classifier [classes - 1, V]; regressor [V]
    rho: np.ndarray  # float32
    kernel: int
    gamma: float
    coef0: float
    degree: float
    starts: np.ndarray  # int32 [classes + 1]: first support vector of each class, then V
    classes: int


def _svm(node: Node, graph: Graph) -> Svm:
    _, cols = _rows_cols(graph, node)
    kernel = _text(node.attrs.get("kernel_type"), "LINEAR")
    if kernel not in KERNEL:
        raise Unsupported(f"kernel_type {kernel} is not supported")
    params = _floats(node, "kernel_params")
    gamma, coef0, degree = (list(params) + [0.0, 0.0, 0.0])[:3] if params is not None else (0.0, 0.0, 0.0)
    coef = _floats(node, "coefficients")
    rho = _floats(node, "rho")
    sv = _floats(node, "support_vectors")
    if coef is None or rho is None:
        raise Unsupported("coefficients and rho are required")
    if node.op_type == "SVMClassifier":
        if node.attrs.get("prob_a") is not None and len(node.attrs.get("prob_a")):
            raise Unsupported("probability estimates (prob_a, prob_b) are not supported")
        labels = _labels(node, "classlabels_ints")
        per_class = _ints(node, "vectors_per_class")
        if sv is None or not per_class:
            raise Unsupported("the linear form (no support vectors) is not supported")
        n = len(labels)
        if len(per_class) != n or n < 2:
            raise Unsupported(f"{len(per_class)} vectors_per_class for {n} classes")
        v = sum(per_class)
        if sv.size != v * cols or coef.size != (n - 1) * v or rho.size != n * (n - 1) // 2:
            raise Unsupported("support_vectors, coefficients or rho do not match the classes and features")
        starts = np.concatenate([[0], np.cumsum(per_class)]).astype(np.int32)
        return Svm(sv.reshape(v, cols).astype(F32), coef.reshape(n - 1, v).astype(F32), rho.astype(F32),
                   KERNEL[kernel], gamma, coef0, degree, starts, n)
    n_sv = int(node.attrs.get("n_supports", 0))
    if n_sv == 0:
        if coef.size != cols or rho.size != 1:
            raise Unsupported("the linear form needs one coefficient per feature and one rho")
        return Svm(coef.reshape(1, cols).astype(F32), np.ones(1, F32), rho.astype(F32), KERNEL["LINEAR"], 0, 0, 0,
                   np.zeros(2, np.int32), 1)
    if sv is None or sv.size != n_sv * cols or coef.size != n_sv or rho.size != 1:
        raise Unsupported("support_vectors, coefficients or rho do not match n_supports and the features")
    return Svm(sv.reshape(n_sv, cols).astype(F32), coef.astype(F32), rho.astype(F32), KERNEL[kernel], gamma, coef0,
               degree, np.zeros(2, np.int32), 1)


def svm_kernel_values(s: Svm, x: np.ndarray) -> np.ndarray:
    """k(x, v) for each row and support vector [N, V], in the kernel's order, float32."""
    x = np.asarray(x, F32)
    out = np.empty((x.shape[0], s.vectors.shape[0]), F32)
    g, c0, deg = F32(s.gamma), F32(s.coef0), F32(s.degree)
    with np.errstate(all="ignore"):
        for r in range(x.shape[0]):
            for j, v in enumerate(s.vectors):
                acc = F32(0)
                if s.kernel == KERNEL["RBF"]:
                    for a, b in zip(x[r], v):
                        d = F32(a - b)
                        acc = F32(acc + d * d)
                    out[r, j] = np.exp(-g * acc)
                    continue
                for a, b in zip(x[r], v):
                    acc = F32(acc + a * b)
                if s.kernel == KERNEL["POLY"]:
                    acc = F32(np.power(F32(g * acc + c0), deg))
                elif s.kernel == KERNEL["SIGMOID"]:
                    acc = F32(np.tanh(F32(g * acc + c0)))
                out[r, j] = acc
    return out


@register("SVMRegressor", "SVMClassifier")
class SupportVectorMachine(Op):
    def class_names(self, node, graph):
        return _class_names(node)

    def check(self, node, graph):
        _svm(node, graph)
        if _post(node) != POST["NONE"]:
            raise Unsupported("post_transform is not supported on SVMs (NONE is)")

    def infer_shapes(self, node, graph):
        rows, _ = _rows_cols(graph, node)
        s = _svm(node, graph)
        if node.op_type == "SVMRegressor":
            return [(rows, 1)]
        return [(rows,), (rows, 2 if s.classes == 2 else s.classes * (s.classes - 1) // 2)]

    def output_dtypes(self, node, graph):
        return ["float32"] if node.op_type == "SVMRegressor" else ["int32", "float32"]

    def macs(self, node, graph):
        rows, cols = _rows_cols(graph, node)
        s = _svm(node, graph)
        return rows * s.vectors.shape[0] * (cols + max(1, s.classes - 1))

    def params_count(self, node, graph):
        s = _svm(node, graph)
        return s.vectors.size + s.coef.size + s.rho.size

    def reference(self, node, graph, inputs):
        s = _svm(node, graph)
        x = np.asarray(inputs[0], F32).reshape(-1, s.vectors.shape[1])
        k = svm_kernel_values(s, x)
        if node.op_type == "SVMRegressor":
            out = np.empty((x.shape[0], 1), F32)
            for r in range(x.shape[0]):
                acc = F32(0)
                for j in range(k.shape[1]):
                    acc = F32(acc + s.coef[j] * k[r, j])
                out[r, 0] = F32(acc + s.rho[0])
            if int(node.attrs.get("one_class", 0)):  # a one-class SVM: inside (1) or outside (-1)
                out = np.where(out > 0, F32(1), F32(-1)).astype(F32)
            return [out]
        n = s.classes
        labels = _labels(node, "classlabels_ints")
        pairs = n * (n - 1) // 2
        scores = np.empty((x.shape[0], 2 if n == 2 else pairs), F32)
        label = np.empty(x.shape[0], np.int32)
        for r in range(x.shape[0]):
            votes = np.zeros(n, np.int64)
            p = 0
            for i in range(n - 1):
                for j in range(i + 1, n):
                    acc = 0.0  # in double, as onnxruntime sums (each product in float)
                    for m in range(s.starts[i], s.starts[i + 1]):
                        acc += float(s.coef[j - 1, m] * k[r, m])
                    for m in range(s.starts[j], s.starts[j + 1]):
                        acc += float(s.coef[i, m] * k[r, m])
                    acc = F32(acc + float(s.rho[p]))
                    votes[i if acc > 0 else j] += 1
                    if n == 2:
                        scores[r] = (-acc, acc)
                    else:
                        scores[r, p] = acc
                    p += 1
            label[r] = labels[int(np.argmax(votes))]
        return [label, scores]

    def scratch_bytes(self, node, graph, in_place, features=()):
        s = _svm(node, graph)
        return 4 * s.vectors.shape[0] + (4 * s.classes if node.op_type == "SVMClassifier" else 0)

    def kernels(self, node, graph):
        if _is_int8(graph, node):
            raise Unsupported("no int8 kernel")
        rows, cols = _rows_cols(graph, node)
        s = _svm(node, graph)
        one_class = int(node.attrs.get("one_class", 0)) if node.op_type == "SVMRegressor" else 0
        params = {"rows": rows, "features": cols, "vectors": s.vectors.shape[0], "classes": s.classes + one_class,
                  "kernel": s.kernel, "gamma": float(s.gamma), "coef0": float(s.coef0), "degree": float(s.degree)}
        tables = [Const(s.vectors, "sv"), Const(s.coef, "coef"), Const(s.rho, "rho")]
        if node.op_type == "SVMRegressor":
            return [KernelCall("nn_svm_regressor_f32", ("src/ml/nn_svm_regressor_f32.c", "src/ml/nn_svm_kernel_f32.c"),
                               "nn_svm_params", params, [node.inputs[0], *tables, Scratch("float"), node.outputs[0]])]
        return [KernelCall("nn_svm_classifier_f32", ("src/ml/nn_svm_classifier_f32.c", "src/ml/nn_svm_kernel_f32.c"),
                           "nn_svm_params", params,
                           [node.inputs[0], *tables, Const(s.starts, "start"),
                            Const(_labels(node, "classlabels_ints"), "labels"), Scratch("float"),
                            node.outputs[0], node.outputs[1]])]
