"""codegen/fixedpoint.py against runtime_c/include/requant.h: one definition, two twins, equal everywhere."""

import math

import numpy as np
import pytest
from cffi import FFI

from codegen import fixedpoint as fp
from codegen.build import compile_shared
from codegen.errors import CompileError
from codegen.paths import RUNTIME_DIR

TWIN_C = r"""
#include "requant.h"
void twin_high_mul(const int32_t *a, const int32_t *b, int32_t *out, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) out[i] = nn_sat_doubling_high_mul(a[i], b[i]); }
void twin_divide(const int32_t *x, const int32_t *e, int32_t *out, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) out[i] = nn_rounding_divide_by_pot(x[i], e[i]); }
void twin_requantize(const int32_t *acc, const int32_t *m0, const int32_t *shift, int32_t *out, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) out[i] = nn_requantize(acc[i], m0[i], shift[i]); }
"""


@pytest.fixture(scope="module")
def twin():
    ffi = FFI()
    ffi.cdef("""
        void twin_high_mul(const int32_t *, const int32_t *, int32_t *, int32_t);
        void twin_divide(const int32_t *, const int32_t *, int32_t *, int32_t);
        void twin_requantize(const int32_t *, const int32_t *, const int32_t *, int32_t *, int32_t);
    """)
    lib = ffi.dlopen(str(compile_shared({"twin.c": TWIN_C, "requant.h": (RUNTIME_DIR / "include" / "requant.h").read_text()})))

    def call(name, *arrays):
        arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in arrays]
        out = np.empty_like(arrays[0])
        ptrs = [ffi.cast("int32_t *", ffi.from_buffer(a)) for a in arrays]
        getattr(lib, name)(*ptrs, ffi.cast("int32_t *", ffi.from_buffer(out)), len(out))
        return out

    return call


EDGES = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -(2**30), -65536, -3, -2, -1, 0, 1, 2, 3, 65536,
                  2**30, fp.INT32_MAX - 1, fp.INT32_MAX], dtype=np.int64)


def _accumulators(rng, n):
    """Full-range, small and near-half values: where rounding and saturation differ."""
    full = rng.integers(fp.INT32_MIN, fp.INT32_MAX, n // 2, endpoint=True)
    small = rng.integers(-(2**16), 2**16, n // 4)
    halves = (rng.integers(-(2**20), 2**20, n - n // 2 - n // 4) << rng.integers(1, 11, n - n // 2 - n // 4)) + \
        rng.choice([-1, 0, 1], n - n // 2 - n // 4)
    return np.concatenate([full, small, halves])


def test_high_mul_twins(twin, rng):
    n = 1_000_000
    a = np.concatenate([_accumulators(rng, n), np.repeat(EDGES, EDGES.size)])
    b = np.concatenate([rng.integers(fp.INT32_MIN, fp.INT32_MAX, n, endpoint=True), np.tile(EDGES, EDGES.size)])
    np.testing.assert_array_equal(twin("twin_high_mul", a, b), fp.sat_doubling_high_mul(a, b))
    assert fp.sat_doubling_high_mul(fp.INT32_MIN, fp.INT32_MIN) == fp.INT32_MAX


def test_divide_by_pot_twins(twin, rng):
    n = 1_000_000
    x = _accumulators(rng, n)
    e = rng.integers(0, 32, n)
    # exact halves: +-(2k+1) * 2^(e-1) for every exponent
    exps = np.arange(1, 32)
    halves = np.concatenate([(2 * k + 1) << (exps - 1) for k in (0, 1, 5)])
    halves = halves[np.abs(halves) <= fp.INT32_MAX]
    hx = np.concatenate([halves, -halves, np.repeat(EDGES, 32)])
    he = np.concatenate([np.tile(exps, 3)[: halves.size], np.tile(exps, 3)[: halves.size], np.tile(np.arange(32), EDGES.size)])
    x, e = np.concatenate([x, hx]), np.concatenate([e, he])
    np.testing.assert_array_equal(twin("twin_divide", x, e), fp.rounding_divide_by_pot(x, e))
    # half away from zero: 3/2 -> 2, -3/2 -> -2, 5/4 -> 1, -5/4 -> -1
    assert fp.rounding_divide_by_pot(np.array([3, -3, 5, -5, 1, -1]), np.array([1, 1, 2, 2, 1, 1])).tolist() == \
        [2, -2, 1, -1, 1, -1]


def test_requantize_twins(twin, rng):
    n = 1_000_000
    acc = _accumulators(rng, n)
    m0 = rng.integers(2**30, 2**31 - 1, n, endpoint=True)
    shift = rng.integers(fp.SHIFT_MIN, fp.SHIFT_MAX, n, endpoint=True)
    # every shift from -31 to 30 against every edge accumulator and edge multipliers
    shifts = np.arange(fp.SHIFT_MIN, fp.SHIFT_MAX + 1)
    edge_m0 = np.array([0, 1, 2**30, 2**30 + 1, 2**31 - 1])
    grid = np.array(np.meshgrid(EDGES, edge_m0, shifts, indexing="ij")).reshape(3, -1)
    acc, m0, shift = (np.concatenate([v, g]) for v, g in zip((acc, m0, shift), grid))
    np.testing.assert_array_equal(twin("twin_requantize", acc, m0, shift), fp.requantize(acc, m0, shift))


def test_requantize_rounds_to_nearest(rng):
    """Against exact arithmetic: always one of the two neighbours, and the nearest one except where
    the two roundings (high multiply, then shift) meet within 2^-right of a half."""
    reals = np.exp(rng.uniform(math.log(1e-6), math.log(1e3), 2000))
    accs = rng.integers(-(2**20), 2**20, 2000)
    for real, acc in zip(reals, accs):
        m0, shift = fp.quantize_multiplier(float(real))
        got = int(fp.requantize(acc, m0, shift))
        exact = acc * m0 * 2.0 ** (shift - 31)
        if abs(exact) >= 2**31 - 1:
            continue
        assert abs(got - exact) < 1, (real, acc, got, exact)
        distance_to_half = abs(abs(exact - math.floor(exact)) - 0.5)
        if distance_to_half > 2.0 ** min(shift, 0):
            assert got == math.floor(exact + 0.5) if exact >= 0 else got == -math.floor(-exact + 0.5)


@pytest.mark.parametrize("real", [1e-12, 3e-10, 1e-6, 0.0039215686, 0.25, 0.5, 0.75, 0.999999999, 1.0, 1.5, 255.0, 2.0**29])
def test_quantize_multiplier_is_close(real):
    m0, shift = fp.quantize_multiplier(real)
    assert fp.SHIFT_MIN <= shift <= fp.SHIFT_MAX and 0 <= m0 < 2**31
    rebuilt = m0 * 2.0 ** (shift - 31)
    tolerance = 2.0**-31 if shift == fp.SHIFT_MIN else real * 2.0**-30
    assert abs(rebuilt - real) <= tolerance


def test_quantize_multiplier_rejects_bad_values():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(1e-30) == (0, 0)
    for bad in (-1.0, math.inf, math.nan, 2.0**31):
        with pytest.raises(CompileError):
            fp.quantize_multiplier(bad)
