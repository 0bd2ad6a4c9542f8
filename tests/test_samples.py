"""Sample files read lazily: same arrays as numpy.load, seeded subsets, bounded memory, and
every malformed file a one-line error naming the file (codegen/samples.py)."""

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from codegen.cli import main
from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.samples import DEFAULT_CALIB_SAMPLES, calibration_samples, load_samples, subset
from conftest import make_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"


def _two_input_model():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"])]
    return make_model(nodes, [("a", (1, 3, 2)), ("b", (1, 3, 2))], [("y", None)])


def _graph(model):
    return compile_model(model, "net").graph


@pytest.fixture(scope="module")
def graph2():
    return _graph(_two_input_model())


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("limit", [None, 1, 7, 40])
def test_rows_equal_numpy_load(tmp_path, graph2, compressed, limit):
    rng = np.random.default_rng(limit or 0)
    a = rng.standard_normal((40, 1, 3, 2)).astype(np.float32)
    b = rng.integers(-100, 100, (40, 3, 2)).astype(">i2")  # no unit axis, big-endian integers
    y = rng.integers(0, 10, 40)
    path = tmp_path / "s.npz"
    (np.savez_compressed if compressed else np.savez)(path, a=a, b=b, y=y)
    samples, labels = load_samples(path, graph2, limit)
    rows = np.arange(40) if limit is None or limit >= 40 else subset(40, limit)
    assert len(samples) == len(rows) and np.array_equal(labels, y[rows])
    for s, r in zip(samples, rows):
        assert s["a"].dtype == np.float32 and np.array_equal(s["a"], a[r])
        assert np.array_equal(s["b"], b[r][None].astype(np.float32))
    if limit is not None and limit < 40:
        assert list(rows) == sorted(set(rows))  # distinct, in file order
        again, _ = load_samples(path, graph2, limit)
        assert all(np.array_equal(x["a"], z["a"]) for x, z in zip(samples, again))  # seeded


def test_subset_of_a_large_compressed_file_reads_only_the_chosen_rows(tmp_path):
    """100,000 samples (25.6 MB of float32, compressed): a subset of 100 is read in well under
    the file's size."""
    graph = _graph(make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (1, 64))], [("y", None)]))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100_000, 1, 64)).astype(np.float32)
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=x)
    rows = subset(len(x), 100)
    del x
    tracemalloc.start()
    try:
        samples, _ = load_samples(path, graph, 100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(samples) == 100
    assert peak < 4 * 2**20, f"peak {peak} B while reading 100 of 100,000 samples"
    assert np.array_equal(samples[0]["x"], np.random.default_rng(3).standard_normal((100_000, 1, 64))
                          .astype(np.float32)[rows[0]])


def _npy_bytes(shape, dtype="<f4", data=b""):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data  # magic, version and header


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _malformed(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the error must say)."""
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x=np.random.default_rng(0).standard_normal((50, 1, 8, 8)).astype(np.float32))
    raw = good.read_bytes()
    cases = {}

    def put(name, data: bytes, why: str):
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        cases[name] = (p, why)

    put("empty", b"", "empty")
    put("truncated", raw[: len(raw) // 2], "truncated or corrupt")
    flipped = bytearray(raw)
    for k in range(200, 600, 7):
        flipped[k] ^= 0x5A
    put("flipped", bytes(flipped), "corrupt")
    put("text", b"x,y\n1,2\n", "not an .npz")
    p = tmp_path / "member.npz"
    _zip(p, {"x.npy": _npy_bytes((1, 1, 8, 8), data=bytes(256)), "notes.txt": b"hello"})
    cases["member"] = (p, "member 'notes.txt' is not an .npy array")
    p = tmp_path / "huge.npz"
    _zip(p, {"x.npy": _npy_bytes((10**12, 1, 8, 8), data=bytes(256))})
    cases["huge"] = (p, "declares shape [1000000000000, 1, 8, 8]")
    p = tmp_path / "object.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object))
    cases["object"] = (p, "object")
    p = tmp_path / "badheader.npz"
    _zip(p, {"x.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 12345}  \n"})
    cases["badheader"] = (p, "no valid .npy header")
    p = tmp_path / "short.npy"
    p.write_bytes(_npy_bytes((10, 1, 8, 8), data=bytes(100)))
    cases["short_npy"] = (p, "truncated or corrupt")
    p = tmp_path / "strings.npz"
    np.savez(p, x=np.array(["a", "b"]))
    cases["strings"] = (p, "numbers")
    p = tmp_path / "shape.npz"
    np.savez(p, x=np.zeros((5, 7), np.float32))
    cases["shape"] = (p, "input 'x' has shape [5, 7]")
    p = tmp_path / "labels.npz"
    np.savez(p, x=np.zeros((5, 1, 8, 8), np.float32), y=np.zeros(4, np.int64))
    cases["labels"] = (p, "'y' must hold 5 integer labels")
    return cases


MALFORMED = ["empty", "truncated", "flipped", "text", "member", "huge", "object", "badheader", "short_npy",
             "strings", "shape", "labels"]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_sample_files_are_one_line_errors(tmp_path, capsys, case):
    path, why = _malformed(tmp_path)[case]
    out = tmp_path / "out"
    status = main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("onnx2mcu: error: ") and str(path) in err, err
    assert why in err, err
    assert not out.exists()


def test_verify_data_errors_name_the_file(tmp_path, capsys):
    path, _ = _malformed(tmp_path)["huge"]
    status = main(["verify", str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"),
                   "--data", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and str(path) in err, err


def test_plain_npy_serves_a_single_input_model(tmp_path, graph2):
    """A plain .npy (under any name) is the single input's array; a multi-input model refuses it."""
    x = np.load(EXAMPLE / "calib.npz")["x"]
    path = tmp_path / "calib.npz"  # an .npy saved under an .npz name
    with open(path, "wb") as f:
        np.save(f, x)
    graph = compile_model(EXAMPLE / "digits.onnx", mode="float32").graph
    from_npy, labels = load_samples(path, graph)
    from_npz, _ = load_samples(EXAMPLE / "calib.npz", graph)
    assert labels is None and len(from_npy) == len(from_npz)
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(from_npy, from_npz))
    two = tmp_path / "two.npy"
    np.save(two, np.zeros((4, 1, 3, 2), np.float32))
    with pytest.raises(CompileError, match="plain .npy holds one array; the model has 2 inputs"):
        load_samples(two, graph2)


def test_calib_samples_is_a_seeded_subset_reported(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"),
                 "--calib-samples", "50", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    total = len(np.load(EXAMPLE / "calib.npz")["x"])
    subset = {k: report["calibration"][k] for k in ("source", "samples", "available", "limit", "seed")}
    assert subset == {"source": str(EXAMPLE / "calib.npz"), "samples": 50, "available": total, "limit": 50, "seed": 0}
    # the subset is what calibration saw: the same scales as calibrating on those rows given as a list
    graph = compile_model(EXAMPLE / "digits.onnx", mode="float32").graph
    rows, _ = load_samples(EXAMPLE / "calib.npz", graph, 50)
    listed = compile_model(EXAMPLE / "digits.onnx", "digits", mode="int8", calib=rows)
    assert listed.emitted.files["digits.c"] == (out / "digits.c").read_text()
    default = compile_model(EXAMPLE / "digits.onnx", mode="int8", calib=EXAMPLE / "calib.npz")
    assert default.report["calibration"]["samples"] == min(total, DEFAULT_CALIB_SAMPLES)
    assert main(["compile", str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"),
                 "--calib-samples", "0", "-o", str(out)]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_calibration_samples_subsets_a_list_too():
    graph = _graph(_two_input_model())
    given = [{"a": np.full((1, 3, 2), i, np.float32), "b": np.zeros((1, 3, 2), np.float32)} for i in range(30)]
    samples, source, section = calibration_samples(given, graph, "m", limit=5)
    assert [int(s["a"][0, 0, 0]) for s in samples] == list(subset(30, 5))
    assert section == {"samples": 5, "available": 30, "limit": 5, "seed": 0}


def test_damaged_files_are_clean_errors(tmp_path):
    """Seeded truncations and byte changes of .npz files (stored, deflate, lzma, bzip2) and of an
    .npy: each one loads or is a one-line CompileError, nothing else."""
    graph = compile_model(EXAMPLE / "digits.onnx", mode="float32").graph
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 20)
    originals = []
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2):
        path = tmp_path / "o.npz"
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for key, arr in (("x", x), ("y", y)):
                buf = io.BytesIO()
                np.save(buf, arr)
                z.writestr(f"{key}.npy", buf.getvalue())
        originals.append(path.read_bytes())
    buf = io.BytesIO()
    np.save(buf, x)
    originals.append(buf.getvalue())
    outcomes = {"loaded": 0, "error": 0}
    for case in range(300):
        data = bytearray(originals[case % len(originals)])
        if case % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            reach = 200 if case % 3 == 2 else len(data)  # headers, or anywhere
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(0, min(reach, len(data))))] = int(rng.integers(0, 256))
        path = tmp_path / "damaged.npz"
        path.write_bytes(bytes(data))
        try:
            samples, _ = load_samples(path, graph, int(rng.integers(1, 30)))
            assert all(s["x"].shape == (1, 1, 8, 8) for s in samples)
            outcomes["loaded"] += 1
        except CompileError as e:
            assert "\n" not in str(e) and str(path) in str(e)
            outcomes["error"] += 1
    assert outcomes["error"] > 200


def test_fortran_order_arrays_read_whole(tmp_path):
    graph = compile_model(EXAMPLE / "digits.onnx", mode="float32").graph
    x = np.asfortranarray(np.random.default_rng(4).standard_normal((30, 1, 8, 8)).astype(np.float32))
    path = tmp_path / "f.npz"
    np.savez(path, x=x)
    samples, _ = load_samples(path, graph, 7)
    assert all(np.array_equal(s["x"], x[r][None]) for s, r in zip(samples, subset(30, 7)))
