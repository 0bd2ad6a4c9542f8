"""The fuzzer in CI: 460 seeded malformed models and sample files (tests/fuzz.py), each a
clean one-line error or a compile whose C builds with the strict flags; no traceback, other
exit status, hang, multi-line message, debris or write outside -o. Longer campaigns:
`python -m tests.fuzz --cases 10000 --seed 1`."""

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import helper

import fuzz

CASES = 460
SEED = 12


def test_fuzz_cases_are_compiles_or_clean_errors():
    seconds: Counter = Counter()
    counts, failures = fuzz.campaign(CASES, SEED, jobs=2, build_share=0.25, seconds=seconds)
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:20])
    assert sum(counts.values()) == CASES
    # The mix stays meaningful: most cases are rejected, a good share still compiles and builds.
    assert counts["clean error"] >= CASES // 2, counts
    assert counts["compiled"] >= 10, counts


def test_cases_are_reproducible_and_varied():
    """The same seed and index give the same case; the mutations cover every kind."""
    a, b = fuzz.make_case(SEED, 7), fuzz.make_case(SEED, 7)
    assert (a.model, a.calib, a.mutation, a.args) == (b.model, b.calib, b.mutation, b.args)
    cases = [fuzz.make_case(SEED, i) for i in range(CASES)]
    text = " | ".join(c.mutation for c in cases)
    for kind in ("file truncated", "bits flipped", "calib:", "renamed to", "data_type =", "raw_data",
                 "dims =", "opset =", "ir_version =", "a cycle", "nodes ", "duplicated", "last dimension =",
                 "constant '", "elem_type = INT64", "elem_type = BOOL", "one entry", "axis ="):
        assert kind in text, f"no case of {kind!r} in {CASES}"
    assert len({c.source for c in cases}) == len(fuzz.SOURCES)
    for c in cases:
        if c.calib is None and not c.mutation.startswith(("file truncated", "bits flipped")):
            onnx.load_from_string(c.model)  # structured mutations still serialize to a protobuf


def test_hostile_npz_header_claims_many_samples():
    """The 10^12-sample header really says so (the mutation is not a silent no-op)."""
    rng = np.random.default_rng(0)
    for i in range(200):
        data, what = fuzz.npz_case(fuzz.SOURCES[0][2], rng)
        if "10^12" in what:
            assert str(10 ** 12).encode() in data
            return
    raise AssertionError("no 10^12 header case in 200 draws")


# --- regressions found by the campaigns over the later operators' models --------------------

FIXTURES = fuzz.ROOT / "tests" / "fixtures"


def _one_line_error(argv, capsys) -> str:
    from codegen.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("onnx2mcu: error:") and err.count("\n") == 1, err
    return err


def test_zipmap_labels_must_match_the_scores(tmp_path, capsys):
    """A ZipMap of 4 labels over 3 scores was dropped silently; onnxruntime refuses it."""
    model = onnx.load(str(FIXTURES / "ml_logreg.onnx"))
    zipmap = next(n for n in model.graph.node if n.op_type == "ZipMap")
    labels = next(a for a in zipmap.attribute if a.name == "classlabels_int64s")
    labels.ints.append(3)
    onnx.save(model, str(tmp_path / "m.onnx"))
    err = _one_line_error(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--float"], capsys)
    assert "node 'ZipMap': 4 class labels for 3 scores per row" in err
    assert not (tmp_path / "out").exists()


def test_tree_classifier_class_ids_within_the_labels(tmp_path, capsys):
    """class_ids 0..2 with two class labels failed verify with a ValueError (3 scores, 2 labels)."""
    model = onnx.load(str(FIXTURES / "ml_random_forest.onnx"))
    trees = model.graph.node[0]
    labels = next(a for a in trees.attribute if a.name == "classlabels_int64s")
    del labels.ints[-1]
    onnx.save(model, str(tmp_path / "m.onnx"))
    err = _one_line_error(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--float"], capsys)
    assert "node 'TreeEnsembleClassifier': class_ids 0..2 for 2 class labels" in err


def test_verify_names_the_oracle_that_refuses_the_model(tmp_path, capsys):
    """Token ids declared int32 beside an int64 constant compile (both are int32_t in C), but
    onnx.reference refuses the Equal: verify said "internal error" with a traceback hint."""
    model = onnx.load(str(FIXTURES / "masked_pooling_opset13.onnx"))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT32
    onnx.save(model, str(tmp_path / "m.onnx"))
    err = _one_line_error(["verify", str(tmp_path / "m.onnx"), "--float", "--samples", "1",
                           "--data", str(FIXTURES / "masked_pooling.npz")], capsys)
    assert "the float oracle cannot run this model (RuntimeTypeError: Input type mismatch: int32 != int64" in err


def test_verify_refuses_token_ids_outside_the_table(tmp_path, capsys):
    """An id outside the embedding table is defined in the C (the nearest row) but not in ONNX:
    verify stopped on onnx.reference's IndexError as an internal error."""
    ids = np.load(FIXTURES / "embedding_bag.npz")["ids"][:2].copy()
    ids[1, 3] = -51
    np.savez(tmp_path / "ids.npz", ids=ids)
    err = _one_line_error(["verify", str(FIXTURES / "embedding_bag.onnx"), "--float", "--data",
                           str(tmp_path / "ids.npz")], capsys)
    assert "ids.npz: input 'ids' holds -51, outside [-50, 50) of node '/embed/Gather'" in err


@pytest.mark.parametrize("scales, sizes", [([1, 1, 1e30, 1], None), (None, [1, 2, 4, 2 ** 62])])
def test_resize_to_an_enormous_output_is_refused(tmp_path, capsys, scales, sizes):
    """A huge scale or size made the source tables first (numpy: "Maximum allowed size exceeded")."""
    from conftest import make_model

    inputs = ["x", "", "scales" if scales else "", "sizes" if sizes else ""]
    consts = {"scales": np.array(scales, np.float32)} if scales else {"sizes": np.array(sizes, np.int64)}
    model = make_model([helper.make_node("Resize", inputs, ["y"], name="up")], [("x", (1, 2, 4, 4))], [("y", None)],
                       consts)
    onnx.save(model, str(tmp_path / "m.onnx"))
    err = _one_line_error(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--float"], capsys)
    assert "Resize node 'up': output shape (1, 2, " in err and "has more than 67108864 elements" in err


@pytest.mark.parametrize("mode", ["--float", "int8"])
def test_lrn_window_wider_than_int_compiles(tmp_path, capsys, mode):
    """size 2^40 put a window half-width beyond int into the C (gcc -Werror=overflow); the window
    is cut to the channels there are, the same sums."""
    import subprocess

    from conftest import make_model
    from codegen.cli import main

    model = make_model([helper.make_node("LRN", ["x"], ["y"], size=2 ** 40)], [("x", (1, 3, 2, 2))], [("y", (1, 3, 2, 2))])
    onnx.save(model, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(3).standard_normal((4, 1, 3, 2, 2)).astype(np.float32))
    args = ["--float"] if mode == "--float" else ["--calib", str(tmp_path / "c.npz")]
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), *args]) == 0, capsys.readouterr().err
    sources = sorted(str(p) for p in (tmp_path / "out").glob("*.c"))
    subprocess.run(["gcc", *fuzz.STRICT, *sources], cwd=tmp_path, check=True)


@pytest.mark.parametrize("mode", ["--float", "int8"])
def test_gather_from_an_empty_table_is_refused(tmp_path, capsys, mode):
    """Run-time ids into a table of no rows: int8 calibration failed in numpy's take, and float
    compiled a kernel whose clamp (to row n - 1 = -1) reads before the table."""
    from onnx import numpy_helper

    model = onnx.load(str(FIXTURES / "embedding_bag.onnx"))
    table = next(t for t in model.graph.initializer if t.name == model.graph.node[0].input[0])
    table.CopyFrom(numpy_helper.from_array(np.zeros((0, table.dims[1]), np.float32), table.name))
    onnx.save(model, str(tmp_path / "m.onnx"))
    args = ["--float"] if mode == "--float" else ["--calib", str(FIXTURES / "embedding_bag.npz")]
    err = _one_line_error(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), *args], capsys)
    assert "Gather node '/embed/Gather': axis 0 of the data is empty: no row for any index" in err


def test_gather_from_a_scalar_is_refused(tmp_path, capsys):
    """A scalar table (rank 0) has no axis to gather on."""
    from onnx import numpy_helper

    model = onnx.load(str(FIXTURES / "embedding_bag.onnx"))
    table = next(t for t in model.graph.initializer if t.name == model.graph.node[0].input[0])
    table.CopyFrom(numpy_helper.from_array(np.array(1.0, np.float32), table.name))
    onnx.save(model, str(tmp_path / "m.onnx"))
    err = _one_line_error(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--float"], capsys)
    assert "Gather node '/embed/Gather': data is a scalar; Gather needs at least one axis" in err
