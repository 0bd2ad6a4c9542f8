"""Calibration methods (codegen/passes/calibrate.py) and MSE weight clipping (codegen/qparams.py):
each method against a NumPy recomputation on the full array of values, within one histogram bin;
auto's choice against the consumers' errors recomputed; determinism; the bounded second pass."""

import numpy as np
import pytest
from onnx import helper

from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.frontend import import_model
from codegen.ops import get_op
from codegen.passes import calibrate as cal
from codegen.qparams import from_range, mse_weight_scales, quantize_weights, weight_scales
from codegen.reference import run_float
from conftest import make_model

K = 1024
OUTLIERS = (9.0, -11.0, 12.0, -10.0)


def model():
    """x -> a = -x -> p = Relu(a) -> h = p W1; g = a W2; y = h + g."""
    rng = np.random.default_rng(3)
    inits = {"m": np.float32(-1.0), "w1": (rng.standard_normal((K, 8)) / 32).astype(np.float32),
             "w2": (rng.standard_normal((K, 8)) / 32).astype(np.float32)}
    nodes = [helper.make_node("Mul", ["x", "m"], ["a"], name="neg"),
             helper.make_node("Relu", ["a"], ["p"], name="relu"),
             helper.make_node("Gemm", ["p", "w1"], ["h"], name="fc1"),
             helper.make_node("Gemm", ["a", "w2"], ["g"], name="fc2"),
             helper.make_node("Add", ["h", "g"], ["y"], name="add")]
    return make_model(nodes, [("x", [1, K])], [("y", [1, 8])], inits)


def gaussian_samples(n: int = 32) -> list[dict]:
    """Standard normal inputs with four large outliers (one in each of four samples)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, 1, K)).astype(np.float32)
    for i, v in zip(range(0, n, 8), OUTLIERS):
        x[i, 0, i % K] = v
    return [{"x": s} for s in x]


@pytest.fixture(scope="module")
def graph():
    return import_model(model(), label="case", name="case")


@pytest.fixture(scope="module")
def values(graph):
    """Every sample's value of every tensor, concatenated (the full arrays)."""
    runs = [run_float(graph, s, keep_all=True) for s in gaussian_samples()]
    return {n: np.concatenate([r[n].reshape(-1) for r in runs]).astype(np.float64) for n in runs[0]}


@pytest.fixture(scope="module")
def results(graph):
    return {m: cal.calibrate(graph, gaussian_samples(), m, percentile=99.9, progress=False) for m in cal.METHODS}


def bin_width(v: np.ndarray) -> float:
    return (v.max() - v.min()) / cal.BINS


def true_mse(v: np.ndarray, lo: float, hi: float) -> float:
    q = from_range(lo, hi)
    return float(np.mean((q.dequantize(q.quantize(v)).astype(np.float64) - v) ** 2))


def test_minmax_is_the_exact_range_and_run_is_minmax(graph, values, results):
    ranges, details = results["minmax"]
    for name, v in values.items():
        assert ranges[name] == (v.min(), v.max())
        assert details[name]["clipped"] == 0.0
    assert cal.run(graph, gaussian_samples(), progress=False) == ranges


def test_percentile_clips_the_outliers_within_one_bin_of_numpy(values, results):
    ranges, details = results["percentile"]
    v = values["a"]
    lo, hi = ranges["a"]
    want_lo, want_hi = np.percentile(v, [0.1, 99.9])
    assert abs(lo - want_lo) <= bin_width(v) and abs(hi - want_hi) <= bin_width(v)
    assert hi < 4.0 and lo > -4.0 and v.max() >= 11 and v.min() <= -11  # the outliers are clipped
    outside = np.mean((v < lo) | (v > hi))
    assert details["a"]["method"] == "percentile"
    assert abs(details["a"]["clipped"] - outside) <= 2.0 / len(v) + 1e-12  # a bin cut by each bound
    assert ranges["x"] == (values["x"].min(), values["x"].max())  # model inputs keep min/max


def test_percentile_ranges_contain_zero():
    h = cal.Histogram(2.0, 3.0, False)
    h.add(np.linspace(2.0, 3.0, 1000))
    lo, hi = cal.percentile_range(h, 99.0)
    assert lo == 0.0 and abs(hi - np.percentile(np.linspace(2.0, 3.0, 1000), 99.0)) <= 1.0 / cal.BINS


def test_mse_range_is_the_least_error_on_the_full_values(values, results):
    ranges, details = results["mse"]
    for name in ("a", "p"):
        v = values[name]
        lo, hi = ranges[name]
        lo0, hi0 = min(v.min(), 0.0), max(v.max(), 0.0)
        fractions = np.geomspace(cal.MSE_FLOOR, 1.0, 400)
        best = min(true_mse(v, lo0 * f, hi0 * f) for f in fractions)
        got = true_mse(v, lo, hi)
        assert got <= best * 1.002, (name, got, best)
        assert got < true_mse(v, lo0, hi0)  # better than min/max
        assert hi < v.max() and details[name]["clipped"] > 0  # the largest outlier is clipped
        # the histogram's estimate of that error: within a fraction of a percent of the recomputation
        estimate = cal._sq_error(value_histogram(v), np.array([lo]), np.array([hi]))[0]
        assert estimate == pytest.approx(got, rel=2e-3)


def value_histogram(v: np.ndarray, with_abs: bool = False) -> cal.Histogram:
    h = cal.Histogram(v.min(), v.max(), with_abs)
    h.add(v)
    return h


def kl_reference(counts: np.ndarray, levels: int = 128) -> int:
    """TensorRT's threshold search written plainly, one candidate and one group at a time."""
    best, best_i = None, None
    for i in range(levels, len(counts) + 1):
        p = [float(c) for c in counts[:i]]
        p[-1] += float(counts[i:].sum())
        q = [0.0] * i
        for j in range(levels):
            lo, hi = j * i // levels, (j + 1) * i // levels
            spread = [k for k in range(lo, hi) if p[k] > 0]
            for k in spread:
                q[k] = float(counts[lo:hi].sum()) / len(spread)
        if any(a > 0 and b == 0 for a, b in zip(p, q)):
            continue  # the clipped tail lands where Q has nothing
        ps, qs = sum(p), sum(q)
        kl = sum(a / ps * np.log((a / ps) / (b / qs)) for a, b in zip(p, q) if a > 0)
        if best is None or kl <= best + cal.KL_TIE:  # ties: the least clipping
            best, best_i = min(kl, best if best is not None else kl), i
    return best_i


def half_gaussian() -> np.ndarray:
    rng = np.random.default_rng(7)
    v = np.abs(rng.standard_normal(40000))
    v[rng.random(v.size) < 0.5] = 0.0  # a Relu's zeros: left out of the |x| histogram
    v[:3] = [9.0, 10.0, 11.0]
    return v


def test_entropy_threshold_search_matches_a_plain_recomputation():
    v = half_gaussian()  # at a quarter of the bins and levels, so that the plain loops stay quick
    counts, _ = np.histogram(v[v != 0], cal.ENTROPY_BINS // 4, (0.0, v.max()))
    levels = cal.ENTROPY_LEVELS // 4
    assert cal.kl_threshold_bin(counts, levels) == kl_reference(counts, levels)


def test_entropy_on_a_half_gaussian():
    v = half_gaussian()
    h = value_histogram(v, with_abs=True)
    counts, _ = np.histogram(v[v != 0], cal.ENTROPY_BINS, (0.0, v.max()))
    assert np.array_equal(h.abs_counts, counts)  # the histogram of the full values
    width = v.max() / cal.ENTROPY_BINS
    lo, hi = cal.entropy_range(h)
    assert lo == 0.0 and hi == cal.kl_threshold_bin(counts) * width
    assert 2.5 < hi < 6.0  # the outliers are clipped, the bulk kept


def test_entropy_on_a_signed_tensor_is_symmetric_within_its_range(values, results):
    ranges, _ = results["entropy"]
    v = values["a"]
    lo, hi = ranges["a"]
    counts, _ = np.histogram(np.abs(v[v != 0]), cal.ENTROPY_BINS, (0.0, np.abs(v).max()))
    t = cal.kl_threshold_bin(counts) * np.abs(v).max() / cal.ENTROPY_BINS
    assert (lo, hi) == (max(-t, v.min()), min(t, v.max()))
    assert hi < v.max()


def test_auto_picks_the_candidate_with_the_least_consumer_error(graph, results):
    ranges, details = results["auto"]
    candidates = {m: results[m][0]["a"] for m in cal.CANDIDATES}
    assert len(set(candidates.values())) == 4
    # recompute: `a` fake-quantized through its two consumers (Relu, then fc2), against the float outputs
    relu, fc2 = (next(n for n in graph.nodes if n.name == k) for k in ("relu", "fc2"))
    errors = {}
    for m, (lo, hi) in candidates.items():
        q = from_range(lo, hi)
        noise = {"p": 0.0, "g": 0.0}
        power = {"p": 0.0, "g": 0.0}
        samples = gaussian_samples()
        for feeds in samples[::max(1, len(samples) // cal.AUTO_SAMPLES)][:cal.AUTO_SAMPLES]:
            ref = run_float(graph, feeds, keep_all=True)
            fq = q.dequantize(q.quantize(ref["a"]))
            for node, out in ((relu, "p"), (fc2, "g")):
                ins = [fq if i == "a" else graph.tensors[i].data for i in node.inputs]
                got = get_op(node.op_type).reference(node, graph, ins)[0].astype(np.float64)
                noise[out] += np.sum((got - ref[out]) ** 2)
                power[out] += np.sum(ref[out].astype(np.float64) ** 2)
        errors[m] = sum(noise[o] / power[o] for o in noise)
    assert details["a"]["method"] == min(errors, key=errors.get)
    assert ranges["a"] == candidates[details["a"]["method"]]
    assert max(errors.values()) > 1.5 * min(errors.values())  # the choice matters
    assert details["y"]["method"] == "mse" and ranges["y"] == results["mse"][0]["y"]  # a graph output


def test_same_samples_same_ranges_and_second_pass_without_the_cache(graph, results, monkeypatch):
    for m in ("mse", "auto"):
        again = cal.calibrate(graph, gaussian_samples(), m, percentile=99.9, progress=False)
        assert again == results[m]
    monkeypatch.setattr(cal, "CACHE_BYTES", 0)  # the second pass runs the graph again
    monkeypatch.setattr(cal, "PENDING_BYTES", 0)  # and fills the histograms sample by sample
    assert cal.calibrate(graph, gaussian_samples(), "percentile", percentile=99.9, progress=False) == \
        results["percentile"]


def test_per_tensor_choice_and_model_inputs(graph, values):
    ranges, details = cal.calibrate(graph, gaussian_samples(), "minmax", percentile=99.9, progress=False,
                                    per_tensor={"x": "percentile"})
    assert details["x"]["method"] == "percentile" and ranges["x"][1] < values["x"].max()
    assert details["a"]["method"] == "minmax"


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "kl"}, "unknown calibration method 'kl'"),
    ({"method": "percentile", "percentile": 50}, "--percentile: 50 is outside (50, 100]"),
    ({"method": "percentile", "percentile": 100.5}, "--percentile: 100.5 is outside (50, 100]"),
])
def test_bad_options_are_one_line_errors(graph, kwargs, message):
    with pytest.raises(CompileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cal.calibrate(graph, gaussian_samples(2), progress=False, **kwargs)
    with pytest.raises(CompileError, match="--percentile"):
        compile_model(model(), mode="int8", calib=gaussian_samples(2), calibration="percentile", percentile=40)


def brute_force_scales(w: np.ndarray) -> np.ndarray:
    out = []
    for row in w.astype(np.float64):
        peak = np.abs(row).max()
        best = None
        for f in range(100, 0, -1):
            s = float(np.float32(f / 100 * peak / 127))
            err = np.sum((np.clip(np.rint(row / s), -127, 127) * s - row) ** 2)
            if best is None or err < best[0]:
                best = (err, s)
        out.append(best[1])
    return np.float32(out)


def test_mse_weight_scales_are_the_grid_optimum_and_beat_max_scaling():
    rng = np.random.default_rng(11)
    w = np.concatenate([rng.standard_t(2, size=(3, 4096)), rng.standard_normal((2, 4096))]).astype(np.float32)
    scales = mse_weight_scales(w)
    assert np.array_equal(scales, brute_force_scales(w))

    def mse(s):
        q, _ = quantize_weights(w, 0, s)
        return ((q * s[:, None].astype(np.float64) - w) ** 2).mean(axis=1)

    assert np.all(mse(scales) <= mse(weight_scales(w)))
    assert mse(scales)[0] < 0.99 * mse(weight_scales(w))[0]  # the heavy-tailed channel
    zeros = np.zeros((2, 8), np.float32)
    zeros[1] = 1.0
    assert np.array_equal(mse_weight_scales(zeros), weight_scales(zeros))


def test_weight_clipping_reaches_the_layers(graph):
    compiled = compile_model(model(), mode="int8", calib=gaussian_samples(4), calibration="minmax",
                             weight_clipping="mse",
                             per_layer={"fc1": {"weight_clipping": "none"}, "fc2": {"calibration": "mse"}})
    nodes = {n.name: n for n in compiled.graph.nodes}
    assert "weight_scales" not in nodes["fc1"].attrs
    w2 = cal.layer_weight(nodes["fc2"], compiled.graph)
    assert np.array_equal(nodes["fc2"].attrs["weight_scales"], mse_weight_scales(w2))
    tensors = compiled.report["calibration"]["tensors"]
    assert tensors["g"]["method"] == "mse" and tensors["h"]["method"] == "minmax"
    for per_layer, what in (({"fc9": {"weight_clipping": "mse"}}, "per-layer weight clipping of node 'fc9'"),
                            ({"fc9": {"calibration": "mse"}}, "per-layer calibration of 'fc9'")):
        with pytest.raises(CompileError, match=what):
            compile_model(model(), mode="int8", calib=gaussian_samples(2), per_layer=per_layer)


def test_report_and_inspect_show_each_layers_method_range_and_clipping(tmp_path, capsys):
    import onnx

    from codegen.cli import main

    onnx.save(model(), tmp_path / "case.onnx")
    np.savez(tmp_path / "calib.npz", x=np.stack([s["x"] for s in gaussian_samples()]))
    args = [str(tmp_path / "case.onnx"), "--calib", str(tmp_path / "calib.npz"), "--calibration", "percentile",
            "--percentile", "99.9"]
    assert main(["compile", *args, "-o", str(tmp_path / "out")]) == 0
    report = __import__("json").loads((tmp_path / "out" / "report.json").read_text())
    tensors = report["calibration"]["tensors"]
    assert report["calibration"]["method"] == "percentile" and report["calibration"]["percentile"] == 99.9
    assert tensors["x"]["method"] == "minmax" and tensors["a"]["method"] == "percentile"
    assert 0 < tensors["a"]["clipped"] < 0.01
    capsys.readouterr()
    assert main(["inspect", *args]) == 0
    out = capsys.readouterr().out
    a = tensors["a"]
    assert "calibration: percentile 99.9; weight clipping: none" in out
    assert f"[0] neg: percentile [{a['lo']:.4g}, {a['hi']:.4g}], {100 * a['clipped']:.3g}% clipped" in out
    assert main(["inspect", *args[:3], "--percentile", "101"]) == 2
    assert "onnx2mcu: error: --percentile: 101.0 is outside (50, 100]" in capsys.readouterr().err


def test_int16_tensors_take_their_min_max_and_int8_ones_the_chosen_range(values):
    samples = gaussian_samples()
    for precision, bits in (("int16", 16), ("int8", 8)):
        compiled = compile_model(model(), mode="int8", calib=samples, calibration="percentile", percentile=99.9,
                                 precision=precision)
        a = compiled.graph.tensors["a"].quant
        want = (values["a"].min(), values["a"].max()) if bits == 16 else \
            tuple(compiled.report["calibration"]["tensors"]["a"][k] for k in ("lo", "hi"))
        assert a == from_range(*want, bits=bits)
