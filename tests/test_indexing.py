"""Slice, Split, Expand, Tile, DepthToSpace, SpaceToDepth and Gather in float32 and int8: views
copied by nn_strided_copy, rows by nn_gather; bytes move, values do not change."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.reference import run_float, run_int8
from codegen.samples import load_samples
from codegen.verify import verify
from codegen.ops.indexing import View
from codegen.qparams import from_range
from conftest import MODES, check_fixture, make_model, onnxruntime_oracle, random_feeds
from test_targets import need

I64_MAX, I64_MIN = 2**63 - 1, -(2**63)
MIN_SQNR_DB = 30.0


def check_cases(rng, mode, cases, opset):
    """All `cases` in one model (one compile): case k is (op, input shape, attributes, constant
    inputs (None: absent), number of outputs), reading model input xk. float32: C == NumPy
    reference == onnx.reference, exactly (nothing is computed). int8: the outputs keep their
    input's scale and zero point, and C == int8 reference == onnx.reference run on the int8
    input levels, exactly."""
    nodes, inputs, outputs, inits = [], [], [], {}
    for k, (op, shape, attrs, consts, n_out) in enumerate(cases):
        names = [f"x{k}"]
        for j, c in enumerate(consts):
            names.append("" if c is None else f"c{k}_{j}")
            if c is not None:
                inits[f"c{k}_{j}"] = np.asarray(c)
        outs = [f"y{k}_{j}" for j in range(n_out)]
        nodes.append(helper.make_node(op, names, outs, name=f"case{k}", **attrs))
        inputs.append((f"x{k}", shape))
        outputs += outs
    model = make_model(nodes, inputs, [(o, None) for o in outputs], inits, opset=opset)
    feeds = random_feeds(rng, dict(inputs), count=3)
    evaluator = ReferenceEvaluator(model)
    if mode == "float32":
        compiled = compile_model(model, "net")
        host = HostModel(compiled.emitted.files, compiled.report["api"])
        c_out = host.run([feeds[0][n] for n in compiled.graph.inputs])
        ref = run_float(compiled.graph, feeds[0])
        for c, name, e in zip(c_out, compiled.graph.outputs, evaluator.run(None, feeds[0])):
            np.testing.assert_array_equal(ref[name], e, err_msg=f"NumPy reference vs onnx.reference on '{name}'")
            np.testing.assert_array_equal(c, ref[name], err_msg=f"C vs the NumPy reference on '{name}'")
        return compiled
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    graph = compiled.graph
    for name in graph.outputs:
        source = graph.tensors["x" + name[1:].split("_")[0]]
        assert graph.tensors[name].quant == source.quant, f"'{name}' does not keep its input's parameters"
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(graph, f)
        c_out = host.run([q[n] for n in graph.inputs])
        ref = run_int8(graph, q)
        levels = evaluator.run(None, {n: q[n].astype(np.float32) for n in graph.inputs})
        for c, name, e in zip(c_out, graph.outputs, levels):
            assert c.dtype == np.int8
            np.testing.assert_array_equal(c, ref[name], err_msg=f"C vs the int8 reference on '{name}'")
            np.testing.assert_array_equal(c, e, err_msg=f"int8 '{name}' vs onnx.reference on the int8 levels")
    return compiled


def _slice_inputs(starts, ends, axes, steps):
    consts = [np.array(starts, np.int64), np.array(ends, np.int64)]
    if axes is not None or steps is not None:
        consts.append(np.array(axes if axes is not None else range(len(starts)), np.int64))
    if steps is not None:
        consts.append(np.array(steps, np.int64))
    return consts


SLICES = [  # (shape, starts, ends, axes, steps)
    ((4, 6), [1], [5], [1], None),  # no steps
    ((2, 5, 6), [4, -1], [I64_MIN, 0], [1, 2], [-2, -1]),  # negative steps, torch's INT64_MIN
    ((2, 5, 6), [0, 1], [I64_MAX, I64_MAX], [-1, 0], [2, 1]),  # torch's INT64_MAX, negative axis
    ((3, 7), [-100, 10], [100, -100], [0, 1], [3, -3]),  # clamping both ways
    ((3, 4, 5), [-3, 1], [100, 3], None, None),  # axes omitted, end clamped
    ((1, 8, 4, 4), [2], [6], [1], None),  # channel range: one contiguous run
    ((2, 3, 2, 3, 2, 4), [1, 0, 3], [2, 3, 0], [1, 3, 5], [1, 2, -1]),  # rank 6
]


@pytest.mark.parametrize("mode", MODES)
def test_slice(rng, mode):
    check_cases(rng, mode, [("Slice", shape, {}, _slice_inputs(*args), 1) for shape, *args in SLICES], 13)
    check_cases(rng, mode, [("Slice", SLICES[0][0], {}, _slice_inputs(*SLICES[0][1:]), 1)], 10)
    # opset 1 to 9: attributes (inputs once the version converter has upgraded the model)
    check_cases(rng, mode, [("Slice", (3, 4, 5), {"starts": [1, 0], "ends": [3, -1], "axes": [0, 2]}, [], 1),
                            ("Slice", (3, 4, 5), {"starts": [-3, 1], "ends": [100, 3]}, [], 1)], 9)


@pytest.mark.parametrize("mode", MODES)
def test_split(rng, mode):
    check_cases(rng, mode, [
        ("Split", (2, 6, 3), {"axis": 1}, [], 3),  # equal parts
        ("Split", (4, 5), {"axis": -1}, [np.array([2, 1, 2], np.int64)], 3),  # split input
        ("Split", (2, 3, 2, 2, 3, 4), {"axis": 5}, [np.array([1, 3], np.int64)], 2),  # rank 6, last axis
        ("Split", (2, 4), {}, [], 2),  # default axis 0
    ], 13)
    check_cases(rng, mode, [("Split", (2, 6, 3), {"axis": 1, "split": [1, 5]}, [], 2)], 11)  # attribute
    check_cases(rng, mode, [
        ("Split", (7, 2), {"axis": 0, "num_outputs": 3}, [], 3),  # 3, 3, 1
        ("Split", (1, 8, 2, 2), {"axis": 1, "num_outputs": 2}, [], 2),  # ShuffleNet's channel split
    ], 18)


@pytest.mark.parametrize("mode", MODES)
def test_expand_and_tile(rng, mode):
    expands = [((3, 1), [2, 1, 4]), ((1, 4), [3, 1]), ((2, 1, 3), [2, 4, 1]), ((5,), [2, 1, 5]),
               ((1, 3, 1, 1), [1, 3, 2, 2])]
    tiles = [((2, 3), [2, 3]), ((1, 2, 3, 2), [2, 1, 1, 3]), ((3,), [4]), ((2, 3, 2), [1, 1, 1]),
             ((2, 2, 2, 2, 2, 2), [2, 2, 2, 2, 2, 2])]  # rank 6 with every axis repeated: 12 view axes
    check_cases(rng, mode, [("Expand", s, {}, [np.array(t, np.int64)], 1) for s, t in expands] +
                [("Tile", s, {}, [np.array(r, np.int64)], 1) for s, r in tiles], 13)


@pytest.mark.parametrize("mode", MODES)
def test_depth_to_space(rng, mode):
    check_cases(rng, mode, [
        ("DepthToSpace", (1, 8, 2, 3), {"blocksize": 2}, [], 1),  # DCR by default
        ("DepthToSpace", (2, 18, 2, 2), {"blocksize": 3, "mode": "CRD"}, [], 1),
        ("DepthToSpace", (1, 12, 3, 2), {"blocksize": 2, "mode": "DCR"}, [], 1),
        ("SpaceToDepth", (1, 3, 4, 6), {"blocksize": 2}, [], 1),
        ("SpaceToDepth", (2, 2, 3, 3), {"blocksize": 3}, [], 1)], 13)
    check_cases(rng, mode, [("SpaceToDepth", (1, 2, 4, 6), {"blocksize": 2, "mode": "CRD"}, [], 1)], 28)


@pytest.mark.parametrize("mode", MODES)
def test_gather_constant_indices(rng, mode):
    gathers = [((5, 3), [4, 0, -1, 2], 0),
               ((2, 5, 3), [[4, -1], [0, 2]], 1),  # 2-D indices, negative ones wrap
               ((2, 3, 4), 2, -1),  # a scalar index removes the axis
               ((1, 6, 2, 2), [5, 4, 3, 2, 1, 0], 1),
               ((2, 2, 2, 2, 3), [[0, 2], [1, 1]], 4)]  # output rank 6
    check_cases(rng, mode, [("Gather", s, {"axis": a}, [np.array(i, np.int64)], 1) for s, i, a in gathers], 13)


def test_views_describe_their_ops(rng):
    """View.take (the kernel's addressing) equals each op's NumPy semantics."""
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    assert np.array_equal(View(23, [2, 3, 4], [-12, -4, -1]).take(x), x[::-1, ::-1, ::-1])
    merged = View(0, [2, 1, 3, 4], [12, 99, 4, 1]).coalesced()
    assert (merged.shape, merged.strides) == ([24], [1])
    assert View(0, [2, 3], [0, 1]).coalesced().shape == [2, 3]


@pytest.mark.parametrize("mode", MODES)
def test_chain_of_views(rng, mode):
    """Every op in one graph, views of views, and an embedding read by sliced int32 ids (the model
    the emulated cores run below): C == NumPy reference exactly; float32 == onnx.reference on the
    sample whose ids are all in range."""
    model = _indexing_model()
    feeds = _indexing_feeds(rng)
    compiled = compile_model(model, "net", mode=mode, calib=feeds if mode == "int8" else None)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    expected = ReferenceEvaluator(model).run(None, {**feeds[0], "ids": feeds[0]["ids"].astype(np.int64)})
    for f in feeds:
        q = quantize_inputs(compiled.graph, f) if mode == "int8" else f
        ref = (run_int8 if mode == "int8" else run_float)(compiled.graph, q)
        for c, name, e in zip(host.run([q[n] for n in compiled.graph.inputs]), compiled.graph.outputs, expected):
            np.testing.assert_array_equal(c, ref[name])
            if f is feeds[0] and mode == "float32":
                np.testing.assert_array_equal(ref[name], e)


ERRORS = [
    ("Gather", {"axis": 1}, (2, 5), {"i": np.array([1, 5], np.int64)}, "index 5 is out of range for axis 1 of size 5"),
    ("Gather", {}, (3, 2), {"i": np.array([[0], [-4]], np.int64)}, "index -4 is out of range for axis 0 of size 3"),
    ("Slice", {}, (3, 4), {"s": np.array([0]), "e": np.array([2]), "a": np.array([1]), "st": np.array([0])},
     "step 0 on axis 1"),
    ("Slice", {}, (3, 4), {"s": np.array([3]), "e": np.array([1]), "a": np.array([1])}, "is empty"),
    ("Split", {"axis": 1, "num_outputs": 3}, (2, 4), {}, "cannot give 3 outputs"),
    ("Split", {"axis": 0}, (5, 2), {}, "does not split into 3 equal parts"),
    ("Tile", {}, (2, 3), {"r": np.array([2], np.int64)}, r"repeats \[2\] for rank 2"),
    ("DepthToSpace", {"blocksize": 2}, (1, 6, 2, 2), {}, "C 6 is not a multiple of blocksize"),
    ("SpaceToDepth", {"blocksize": 2}, (1, 2, 3, 4), {}, "H 3 and W 4 must be multiples of blocksize 2"),
]


@pytest.mark.parametrize("op,attrs,shape,inits,message", ERRORS, ids=[e[-1][:24] for e in ERRORS])
def test_unsupported_is_a_one_line_error(op, attrs, shape, inits, message):
    outputs = ["Y0", "Y1", "Y2"] if op == "Split" else ["Y"]
    node = helper.make_node(op, ["X", *inits], outputs, name="n", **attrs)
    model = make_model([node], [("X", shape)], [(o, [1]) for o in outputs], inits, opset=18)
    with pytest.raises(CompileError, match=f"{op} node 'n': .*{message}") as err:
        compile_model(model)
    assert "\n" not in str(err.value)


def _indexing_model():
    """Every view shape the kernels distinguish (contiguous runs, negative, zero and large strides,
    12 view axes), the row gather, and an int8 embedding read by int32 ids through a Slice."""
    nodes = [helper.make_node("Slice", ["X", "s", "e", "a", "st"], ["S"]),  # negative steps
             helper.make_node("Split", ["X"], ["P", "Q"], axis=1, num_outputs=2),  # memcpy runs
             helper.make_node("DepthToSpace", ["P"], ["D"], blocksize=2, mode="CRD"),
             helper.make_node("SpaceToDepth", ["D"], ["E"], blocksize=2),
             helper.make_node("Expand", ["Q", "shape"], ["F"]),  # zero strides
             helper.make_node("Tile", ["S", "r"], ["T"]),
             helper.make_node("Gather", ["F", "i"], ["G"], axis=3),
             helper.make_node("Expand", ["E", "shape"], ["H"]),
             helper.make_node("Concat", ["H", "G"], ["C"], axis=1),
             helper.make_node("Tile", ["C", "r6"], ["Y1"]),
             helper.make_node("Gather", ["T", "j"], ["Y2"], axis=1),
             helper.make_node("Slice", ["ids", "s1", "e1", "a1", "st1"], ["K"]),  # int32 elements
             helper.make_node("Gather", ["emb", "K"], ["Y3"])]
    inits = {"s": np.array([I64_MAX, -1], np.int64), "e": np.array([I64_MIN, 0], np.int64),
             "a": np.array([3, 1], np.int64), "st": np.array([-2, -3], np.int64), "shape": np.array([2, 1, 1, 1]),
             "r": np.array([1, 2, 1, 3], np.int64), "i": np.array([3, 0, -2, 1], np.int64),
             "r6": np.array([2, 1, 2, 1], np.int64), "j": np.array([1, 0], np.int64),
             "s1": np.array([-1], np.int64), "e1": np.array([I64_MIN], np.int64), "a1": np.array([1], np.int64),
             "st1": np.array([-1], np.int64),
             "emb": (np.random.default_rng(3).standard_normal((7, 3)) + 0.5).astype(np.float32)}
    return make_model(nodes, [("X", (1, 8, 4, 4)), ("ids", (1, 8), onnx.TensorProto.INT64)],
                      [("Y1", None), ("Y2", None), ("Y3", None)], inits, opset=18)


def _indexing_feeds(rng) -> list[dict[str, np.ndarray]]:
    """Three samples; the ids of the first are in range, the others hold ids beyond [-7, 7)."""
    feeds = random_feeds(rng, {"X": (1, 8, 4, 4)}, count=3)
    for k, f in enumerate(feeds):
        f["ids"] = rng.integers(-7, 7, (1, 8)).astype(np.int32)
        if k:
            f["ids"][0, :4] = [7, -8, 2**31 - 1, -(2**31)]
    return feeds


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_kernels_are_identical_on_target(target):
    """The strided copy and the gather on the emulated cores: one firmware, int8 (and float32 on
    the M4, where 4-byte elements take the other paths)."""
    need(target)
    model = _indexing_model()
    feeds = _indexing_feeds(np.random.default_rng(13))
    for mode in ("int8", "float32") if target == "cortex-m4" else ("int8",):
        compiled = compile_model(model, "net", mode=mode, calib=feeds if mode == "int8" else None, target=target)
        samples = [quantize_inputs(compiled.graph, f) for f in feeds] if mode == "int8" else feeds
        host = HostModel(compiled.emitted.files, compiled.report["api"])
        want = [host.run([s[n] for n in compiled.graph.inputs]) for s in samples]
        got = cross.run_samples(compiled.emitted.files, compiled.report["api"], samples, target)
        for g, h in zip(got, want):
            for a, b in zip(g, h):
                np.testing.assert_array_equal(a, b)


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("name", ["shufflenet_block_opset13", "shufflenet_block_dynamo"])
def test_shufflenet_block(name):
    """A ShuffleNetV2 unit (channel split by Slice or Split, concat, channel shuffle) from both
    exporters: float32 within 1e-4 of onnxruntime, int8 bit-exact with the reference."""
    compiled, result = check_fixture(FIXTURES / f"{name}.onnx", FIXTURES / f"{name}.npz")
    ops = [layer["op"] for layer in compiled.report["layers"]]
    assert ("Split" in ops) if "dynamo" in name else (ops.count("Slice") == 2)
    print(f"{name}: int8 SQNR {result['sqnr_db']:.1f} dB against float")
    assert result["bit_exact"] and result["sqnr_db"] >= MIN_SQNR_DB, result["sqnr_db"]


def embedding_model(table: np.ndarray, ids_shape, axis: int = 0, ids_type=onnx.TensorProto.INT64, runtime_data=False):
    inputs = [("ids", ids_shape, ids_type)] + ([("T", table.shape)] if runtime_data else [])
    return make_model([helper.make_node("Gather", ["T", "ids"], ["Y"], axis=axis)], inputs, [("Y", None)],
                      {} if runtime_data else {"T": table}, opset=13)


def clamped_rows(table: np.ndarray, ids: np.ndarray, axis: int) -> np.ndarray:
    """The documented rule for ids outside [-n, n): the nearest row."""
    n = table.shape[axis]
    ids = ids.astype(np.int64)
    return np.take(table, np.clip(np.where(ids < 0, ids + n, ids), 0, n - 1), axis=axis)


EMBEDDINGS = [((10, 4), (1, 6), 0, onnx.TensorProto.INT64), ((3, 7, 2), (5,), 1, onnx.TensorProto.INT32),
              ((6, 3), (2, 2, 2), -2, onnx.TensorProto.INT64)]
OUT_OF_RANGE = [100, -100, 2**31 - 1, -(2**31)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("table_shape,ids_shape,axis,ids_type", EMBEDDINGS)
def test_gather_runtime_ids(rng, mode, table_shape, ids_shape, axis, ids_type):
    """A constant table read by run-time int32 ids (an embedding): in-range ids (negative ones
    wrap) as onnx.reference; ids outside [-n, n) read the nearest row, in C as in NumPy. int8:
    the table is quantized per tensor and the output keeps its scale and zero point."""
    table = (rng.standard_normal(table_shape) * 2 + 0.5).astype(np.float32)
    n = table_shape[axis]
    model = embedding_model(table, ids_shape, axis, ids_type)
    samples = [{"ids": rng.integers(-n, n, ids_shape).astype(np.int32)} for _ in range(3)]
    wild = rng.integers(-n, n, ids_shape).astype(np.int32).reshape(-1)
    wild[:len(OUT_OF_RANGE)] = OUT_OF_RANGE[:wild.size]
    compiled = compile_model(model, "net", mode=mode, calib=samples if mode == "int8" else None)
    graph = compiled.graph
    assert graph.tensors["ids"].dtype == "int32"
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    evaluator = ReferenceEvaluator(model)
    out_q = graph.tensors["Y"].quant
    expected_table = table if mode == "float32" else out_q.quantize(table)
    if mode == "int8":
        assert out_q == from_range(table.min(), table.max())
    for ids in [s["ids"] for s in samples] + [wild.reshape(ids_shape)]:
        c = host.run([ids])[0]
        ref = (run_float if mode == "float32" else run_int8)(graph, {"ids": ids})["Y"]
        np.testing.assert_array_equal(c, ref)
        np.testing.assert_array_equal(c, clamped_rows(expected_table, ids, axis))
        if np.all((ids >= -n) & (ids < n)):
            want = evaluator.run(None, {"ids": ids.astype(np.int64 if ids_type == onnx.TensorProto.INT64 else np.int32)})[0]
            if mode == "float32":
                np.testing.assert_array_equal(c, want)
            else:
                assert np.max(np.abs(out_q.dequantize(c) - want)) <= out_q.scale / 2 * (1 + 1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_gather_runtime_data_and_ids(rng, mode):
    """Both operands at run time: the data keeps its own parameters in int8."""
    model = embedding_model(np.zeros((5, 3), np.float32), (4,), 0, runtime_data=True)
    feeds = [{"T": rng.standard_normal((5, 3)).astype(np.float32), "ids": rng.integers(-5, 5, 4).astype(np.int32)}
             for _ in range(3)]
    compiled = compile_model(model, "net", mode=mode, calib=feeds if mode == "int8" else None)
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(compiled.graph, f) if mode == "int8" else f
        c = host.run([q[n] for n in compiled.graph.inputs])[0]
        np.testing.assert_array_equal(c, clamped_rows(q["T"], f["ids"], 0))


def test_embedding_bag():
    """torch's nn.Embedding (Gather of a constant table by int64 token ids) -> mean -> Linear:
    float32 within 1e-4 of onnxruntime, int8 bit-exact with the reference."""
    path, data = FIXTURES / "embedding_bag.onnx", FIXTURES / "embedding_bag.npz"
    compiled = compile_model(path)
    assert compiled.graph.tensors["ids"].dtype == "int32" and compiled.report["layers"][0]["op"] == "Gather"
    samples, _ = load_samples(data, compiled.graph)
    session = onnxruntime_oracle(onnx.load(str(path)))
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for feeds in samples:
        got = host.run([feeds["ids"]])[0]
        want = np.asarray(session.run(None, {"ids": feeds["ids"].astype(np.int64)})[0], np.float32)
        assert np.max(np.abs(got - want.reshape(got.shape))) <= 1e-4 * np.max(np.abs(want))
    result = verify(compile_model(path, mode="int8", calib=data), samples)
    print(f"embedding_bag: int8 SQNR {result['sqnr_db']:.1f} dB against float")
    assert result["bit_exact"] and result["sqnr_db"] >= MIN_SQNR_DB, result["sqnr_db"]
