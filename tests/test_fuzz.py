"""The fuzzer in CI: 500 seeded malformed models and sample files (tests/fuzz.py), each a
clean one-line error or a compile whose C builds with the strict flags; no traceback, other
exit status, hang, multi-line message, debris or write outside -o. Longer campaigns:
`python -m tests.fuzz --cases 10000 --seed 1`."""

from collections import Counter

import numpy as np
import onnx

import fuzz

CASES = 500
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
                 "dims =", "opset =", "ir_version =", "a cycle", "nodes ", "duplicated", "last dimension ="):
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
