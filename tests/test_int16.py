"""int16 activations with int8 weights (TFLite's 16x8 scheme): the fixed-point twins, the
Requantize kernels between precisions, the int16 Conv and Gemm kernels against their NumPy
twins (host and emulated Cortex-M), and --precision."""

import numpy as np
import pytest
from cffi import FFI

from codegen import fixedpoint as fp
from codegen.build import compile_shared
from codegen.paths import RUNTIME_DIR
from codegen.qparams import QParams, from_range

TWIN_C = r"""
#include "requant.h"
#include "nn.h"
void twin_requantize64(const int64_t *acc, const int32_t *m0, const int32_t *shift, int32_t *out, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) out[i] = nn_requantize64(acc[i], m0[i], shift[i]); }
"""


def _runtime_files(*sources):
    files = {p.name: p.read_text() for p in (RUNTIME_DIR / "include").glob("*.h")}
    for s in sources:
        files[s.split("/")[-1]] = (RUNTIME_DIR / s).read_text()
    return files


@pytest.fixture(scope="module")
def lib():
    ffi = FFI()
    ffi.cdef("""
        void twin_requantize64(const int64_t *, const int32_t *, const int32_t *, int32_t *, int32_t);
        typedef struct { int32_t size; int32_t input_offset; int32_t output_offset; int32_t multiplier;
                         int32_t shift; } nn_requantize_params;
        void nn_requantize_s8_s16(const nn_requantize_params *p, const int8_t *in, int16_t *out);
        void nn_requantize_s16_s8(const nn_requantize_params *p, const int16_t *in, int8_t *out);
    """)
    files = _runtime_files("src/quantize/nn_requantize_s8_s16.c", "src/quantize/nn_requantize_s16_s8.c")
    files["twin.c"] = TWIN_C
    return ffi, ffi.dlopen(str(compile_shared(files)))


def test_requantize64_twins(lib, rng):
    """nn_requantize64 == fixedpoint.requantize64 on random and edge accumulators, multipliers, shifts."""
    ffi, c = lib
    n = 400_000
    acc = np.concatenate([rng.integers(-(2**62), 2**62, n // 4), rng.integers(-(2**48), 2**48, n // 4),
                          rng.integers(-(2**36), 2**36, n // 4), rng.integers(-(2**20), 2**20, n - 3 * (n // 4)),
                          [-(2**63), 2**63 - 1, -(2**47), 2**47, 0, 1, -1]]).astype(np.int64)
    m0 = rng.integers(2**30, 2**31, acc.size).astype(np.int32)
    m0[-7:] = [2**31 - 1, 2**30, 2**31 - 1, 2**30, 2**31 - 1, 2**30, 2**31 - 1]
    shift = rng.integers(-31, 31, acc.size).astype(np.int32)
    shift[-7:] = [30, -31, 0, 15, 16, 14, -31]
    out = np.empty(acc.size, np.int32)
    c.twin_requantize64(ffi.from_buffer("int64_t[]", acc), ffi.from_buffer("int32_t[]", m0),
                        ffi.from_buffer("int32_t[]", shift), ffi.from_buffer("int32_t[]", out), acc.size)
    np.testing.assert_array_equal(out, fp.requantize64(acc, m0, shift))


def test_requantize64_rounds_like_the_real_product(rng):
    """Within the accumulator limit the result is the real product acc * M rounded, up to the
    16-bit mantissa's relative error 2^-15 (plus the half step of rounding)."""
    acc = rng.integers(-(2**46), 2**46, 10_000)
    real = rng.uniform(2.0**-40, 2.0**-20, acc.size)
    pairs = [fp.quantize_multiplier(r) for r in real]
    m0 = np.array([p[0] for p in pairs], np.int64)
    shift = np.array([p[1] for p in pairs], np.int64)
    exact = acc * (m0 * 2.0 ** (shift - 31))
    got = fp.requantize64(acc, m0, shift).astype(np.float64)
    assert np.all(np.abs(got - exact) <= np.abs(exact) * 2.0**-15 + 0.5 + 1e-9)


def test_int16_qparams():
    q = from_range(-1.0, 3.0, bits=16)
    assert (q.zero_point, q.bits, q.qmin, q.qmax, q.dtype) == (0, 16, -32768, 32767, "int16")
    assert q.scale == np.float32(3.0 / 32767)
    assert q.quantize(np.array([3.0, -3.0, 10.0, -10.0])).tolist() == [32767, -32767, 32767, -32768]
    assert q.quantize(np.zeros(1)).dtype == np.int16
    assert q.clamp_range(0.0, np.inf) == (0, 32767)
    assert QParams(0.5, 3).qmin == -128 and from_range(-1.0, 3.0).bits == 8


@pytest.mark.parametrize("src, dst", [("int8", "int16"), ("int16", "int8")])
def test_requantize_kernels(lib, rng, src, dst):
    """nn_requantize_s8_s16 / _s16_s8 == the Requantize node's NumPy twin, every value of the
    source type, including the saturating ends."""
    from codegen.ir import Graph, Node, Tensor
    from codegen.ops import get_op

    ffi, c = lib
    x = np.arange(-128, 128, dtype=np.int8) if src == "int8" else np.arange(-32768, 32768, dtype=np.int16)
    qin = QParams(np.float32(0.05), 17) if src == "int8" else from_range(-3.0, 2.0, bits=16)
    # the output range is narrower than the input's: the ends saturate
    qout = from_range(-4.0, 4.0, bits=16) if dst == "int16" else from_range(-1.0, 2.5)
    g = Graph("g", {"x": Tensor("x", x.shape, src, quant=qin), "y": Tensor("y", x.shape, dst, quant=qout)},
              [], ["x"], ["y"], 18)
    node = Node("Requantize", "r", ["x"], ["y"])
    op = get_op("Requantize")
    node.attrs["q"] = op.quantize(node, g)
    want = op.reference_s8(node, g, [x])[0]
    assert want.dtype == np.dtype(dst)
    p = ffi.new("nn_requantize_params *", {"size": x.size, **node.attrs["q"]})
    out = np.empty(x.size, dst)
    fn = c.nn_requantize_s8_s16 if src == "int8" else c.nn_requantize_s16_s8
    fn(p, ffi.from_buffer(f"{src}_t[]", x), ffi.from_buffer(f"{dst}_t[]", out))
    np.testing.assert_array_equal(out, want)
    real_in = qin.dequantize(x).astype(np.float64)
    inside = (real_in > qout.scale * (qout.qmin - qout.zero_point)) & (real_in < qout.scale * (qout.qmax - qout.zero_point))
    # half a step, plus the doubling high multiply's own rounding before the final shift (2^shift steps)
    bound = 0.5 + 2.0 ** min(node.attrs["q"]["shift"], 0) + 1e-6
    assert np.all(np.abs(qout.dequantize(want)[inside] - real_in[inside]) <= qout.scale * bound)
    assert want.min() == qout.qmin and want.max() == qout.qmax
