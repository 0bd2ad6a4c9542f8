"""verify: thresholds the user sets, the float reference checked against onnx.reference, SQNR
against the pruned float model, and progress on a terminal."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

import codegen.compiler
from codegen.cli import main
from codegen.frontend import qdq
from codegen.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIGITS = [str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"), "--data", str(EXAMPLE / "test.npz")]


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_pruned_model_misses_its_thresholds(tmp_path, capsys):
    """The example pruned at 90% globally: the C equals the reference, but accuracy, the drop
    against the float model and the SQNR miss their thresholds, each named on a line; exit 1.
    SQNR is reported against the original and against the pruned float model (which the int8
    model follows when no re-fit against the original moves it: --reconstruct none)."""
    report = tmp_path / "v.json"
    status, out, _ = run(["verify", *DIGITS, "--sparsity", "0.9", "--prune-scope", "global", "--reconstruct", "none",
                          "--min-accuracy", "0.9", "--max-drop", "0.02", "--min-sqnr", "20", "--json", str(report)],
                         capsys)
    result = json.loads(report.read_text())
    assert status == 1 and out.startswith("FAIL: int8")
    assert result["bit_exact"] and not result["passed"]
    assert result["accuracy"] == result["accuracy_quantized"] < 0.9
    assert result["sqnr_db"] < 20 < result["sqnr_db_pruned"]
    lines = out.splitlines()[1:]
    assert lines == [c["message"] and f"FAIL: {c['message']}" for c in result["thresholds"]]
    assert lines[0] == f"FAIL: accuracy {100 * result['accuracy']:.1f}% is below --min-accuracy 0.9 (90.0%)"
    assert lines[1].startswith("FAIL: accuracy drop ") and lines[1].endswith("exceeds --max-drop 0.02 (2.0 points)")
    assert lines[2] == f"FAIL: SQNR {result['sqnr_db']:.1f} dB is below --min-sqnr 20 dB"
    assert [(c["option"], c["threshold"], c["passed"]) for c in result["thresholds"]] == \
        [("--min-accuracy", 0.9, False), ("--max-drop", 0.02, False), ("--min-sqnr", 20.0, False)]


def test_thresholds_met_pass(tmp_path, capsys):
    report = tmp_path / "v.json"
    status, out, _ = run(["verify", *DIGITS, "--min-accuracy", "0.95", "--max-drop", "0.02", "--min-sqnr", "15",
                          "--json", str(report)], capsys)
    result = json.loads(report.read_text())
    assert status == 0 and out.startswith("PASS: int8") and len(out.splitlines()) == 1
    assert result["passed"] and all(c["passed"] and c["message"] is None for c in result["thresholds"])
    assert result["sqnr_db_pruned"] is None and result["reference_agrees"] is None  # int8, unpruned


@pytest.mark.parametrize("extra,message", [
    (["--min-accuracy", "95"], "--min-accuracy is a fraction in [0, 1] (e.g. 0.95 for 95%), got 95"),
    (["--max-drop", "-0.1"], "--max-drop is a fraction in [0, 1]"),
    (["--min-sqnr", "nan"], "--min-sqnr must be a number of dB"),
])
def test_bad_thresholds_are_clean_errors(extra, message, capsys):
    status, out, err = run(["verify", *DIGITS, *extra], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("onnx2mcu: error: ") and message in err


def test_accuracy_thresholds_need_labels(tmp_path, capsys):
    status, _, err = run(["verify", str(EXAMPLE / "digits.onnx"), "--float", "--max-drop", "0.02"], capsys)
    assert status == 2 and "need labels" in err and err.count("\n") == 1
    data = tmp_path / "nolabels.npz"
    np.savez(data, x=np.load(EXAMPLE / "test.npz")["x"][:4])
    status, _, err = run(["verify", str(EXAMPLE / "digits.onnx"), "--float", "--data", str(data),
                          "--min-accuracy", "0.5"], capsys)
    assert status == 2 and "holds no labels" in err and err.count("\n") == 1


def test_float_reference_that_disagrees_with_onnx_fails(tmp_path, capsys, monkeypatch):
    """The QDQ fixture compiled as float mode once did: Q/DQ pairs as Identity. The C then
    equals the NumPy reference, but the reference is not the model: verify --float fails on
    the reference check alone, and passes once the pairs are computed."""
    args = ["verify", str(FIXTURES / "qdq_convnet.onnx"), "--float", "--data", str(FIXTURES / "qdq_convnet.npz"),
            "--json", str(tmp_path / "v.json")]
    status, out, _ = run(args, capsys)
    result = json.loads((tmp_path / "v.json").read_text())
    assert status == 0 and result["passed"] and result["reference_max_rel_diff"] <= result["reference_tolerance"]

    original = codegen.compiler.import_model

    def pairs_as_identity(*a, **k):
        graph = original(*a, **k)
        qdq.for_int8(graph, "model")
        return graph

    monkeypatch.setattr(codegen.compiler, "import_model", pairs_as_identity)
    status, out, _ = run(args, capsys)
    result = json.loads((tmp_path / "v.json").read_text())
    assert status == 1 and result["bit_exact"] and not result["passed"]
    assert result["reference_agrees"] is False and result["reference_tolerance"] == 1e-3
    assert result["reference_max_rel_diff"] > 0.1
    assert out.splitlines()[1] == (f"FAIL: the NumPy float reference differs from onnx.reference: max rel diff "
                                   f"{result['reference_max_rel_diff']:.3g} > 0.001")


class FakeTerminal(io.StringIO):
    def __init__(self, tty=True):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_shows_after_a_second_on_a_terminal_and_clears():
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress("verify: sample", 50, stream=stream, clock=clock)
    progress.update(1)
    clock.now += 0.5
    progress.update(2)
    assert stream.getvalue() == ""  # a short run stays silent
    clock.now += 0.6
    progress.update(3)
    assert stream.getvalue() == "\rverify: sample 3/50"
    clock.now += 0.01
    progress.update(4)  # throttled
    clock.now += 0.2
    progress.update(10)
    progress.update(50)  # the last step always shows
    progress.close()
    text = stream.getvalue()
    assert text == ("\rverify: sample 3/50\rverify: sample 10/50\rverify: sample 50/50"
                    "\r" + " " * len("verify: sample 50/50") + "\r")
    assert "\n" not in text


def test_progress_is_silent_when_not_a_terminal():
    stream, clock = FakeTerminal(tty=False), FakeClock()
    with Progress("verify: sample", 3, stream=stream, clock=clock) as progress:
        for i in range(1, 4):
            clock.now += 5
            progress.update(i)
    assert stream.getvalue() == ""
    stream = io.StringIO()  # a plain file object: no terminal
    progress = Progress("x", 1, stream=stream, clock=clock)
    clock.now += 5
    progress.update(1)
    progress.close()
    assert stream.getvalue() == ""


def test_progress_ticks_through_one_long_call():
    """Without a total (one emulated run), a background ticker shows the seconds, then clears."""
    stream, clock = FakeTerminal(), FakeClock()
    with Progress("verify: running 8 samples on cortex-m4 (emulated)", stream=stream, clock=clock,
                  interval=0.01) as progress:
        clock.now += 3
        for _ in range(200):  # wait (at most 2 s) for the ticker
            if stream.getvalue():
                break
            progress._stop.wait(0.01)
    text = stream.getvalue()
    assert text.startswith("\rverify: running 8 samples on cortex-m4 (emulated) 3 s")
    assert text.endswith("\r" + " " * len("verify: running 8 samples on cortex-m4 (emulated) 3 s") + "\r")


def test_pruned_float_model_checks_the_unpruned_reference(tmp_path, capsys):
    """A pruned float model: the C equals its (pruned) NumPy graph, SQNR is given against both
    float models, and the reference check runs the unpruned import against onnx.reference."""
    report = tmp_path / "v.json"
    status, out, _ = run(["verify", *DIGITS, "--float", "--sparsity", "0.75", "--json", str(report)], capsys)
    result = json.loads(report.read_text())
    assert status == 0 and result["passed"] and result["reference_agrees"]
    assert result["reference_max_rel_diff"] < 1e-6
    assert result["sqnr_db"] < 30 < 100 < result["sqnr_db_pruned"]
    assert result["accuracy"] == result["accuracy_pruned"] and result["accuracy_quantized"] is None


def test_calibration_progress_is_erased_and_silent_off_a_terminal(monkeypatch):
    """Calibration shows its counter on a terminal and erases it, so a one-line error that
    follows stands alone; written to a log or a pipe it prints nothing."""
    import functools

    from codegen.frontend import import_model
    from codegen.frontend.load import load_model
    from codegen.passes import calibrate
    from codegen.samples import load_samples

    model, label = load_model(EXAMPLE / "digits.onnx")
    graph = import_model(model, label=label, name="digits")
    samples = load_samples(EXAMPLE / "calib.npz", graph)[0]
    clock = FakeClock()

    def ticking():  # every reading a second later: each step is past the first second
        clock.now += 1.0
        return clock.now

    monkeypatch.setattr(calibrate, "Progress", functools.partial(Progress, clock=ticking, interval=0.0))
    for tty in (True, False):
        stream = FakeTerminal(tty=tty)
        monkeypatch.setattr("sys.stderr", stream)
        calibrate.run(graph, samples)
        text = stream.getvalue()
        if tty:
            assert text.startswith("\rcalibrating ") and f"{len(samples)}/{len(samples)}" in text
            assert text.endswith("\r" + " " * len(f"calibrating {len(samples)}/{len(samples)}") + "\r")
            assert "\n" not in text
        else:
            assert text == ""


def test_data_with_nan_is_a_clean_error(tmp_path, capsys):
    data = dict(np.load(EXAMPLE / "test.npz"))
    x = data["x"].copy()
    x[3, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=data["y"])
    status, out, err = run(["verify", *DIGITS[:3], "--data", str(tmp_path / "nan.npz")], capsys)
    assert status == 2 and out == ""
    assert err == f"onnx2mcu: error: {tmp_path / 'nan.npz'}: input 'x' holds NaN or Inf\n"
