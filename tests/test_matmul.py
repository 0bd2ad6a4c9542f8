"""MatMul and Gemm of two run-time operands (nn_matmul_f32, nn_matmul_s8): NumPy's matmul rule
with broadcast batch dimensions and 1-D operands, Gemm's transposes, alpha, beta and C.

Float: C == NumPy reference == onnx.reference. int8: C == the NumPy twin bit for bit, and the
dequantized output within half an output step of the float product of the dequantized
operands (the one rounding of the requantization), on the host and on the emulated Cortex-M."""

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from codegen import cross
from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.errors import CompileError
from codegen.reference import run_float, run_int8
from conftest import check_float_model, check_int8_model, make_model, random_feeds

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dimensions broadcast both ways
    ((4,), (2, 4, 3)),  # 1-D left: a row, its axis removed
    ((2, 3, 4), (4,)),  # 1-D right: a column, its axis removed
    ((7,), (7,)),  # a dot product: a scalar
    ((1, 2, 16, 8), (1, 2, 8, 16)),  # attention scores, 2 heads
    ((2, 1, 2, 1, 3, 5), (1, 3, 1, 2, 5, 2)),  # rank 6
    ((3, 1), (1, 4)),  # K = 1: an outer product
]

GEMM_CASES = [
    # (M, K, N, transA, transB, alpha, beta, C: "none", "const <shape>" or "input <shape>")
    (3, 5, 4, 0, 0, 1.0, 1.0, "none"),
    (2, 6, 3, 1, 0, 0.5, 2.0, "const n"),
    (4, 3, 5, 0, 1, -1.5, 0.25, "const mn"),
    (3, 4, 2, 1, 1, 1.0, 1.0, "const m1"),
    (2, 7, 6, 0, 1, 2.0, -1.0, "const scalar"),
    (3, 4, 5, 1, 1, 0.75, 1.5, "input mn"),
    (1, 8, 3, 0, 0, 1.0, 1.0, "input n"),
]


def matmul_model(a_shape, b_shape, relu=False):
    nodes = [helper.make_node("MatMul", ["A", "B"], ["Y"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["Y"], ["R"]))
    return make_model(nodes, [("A", a_shape), ("B", b_shape)], [("R" if relu else "Y", None)])


def gemm_model(rng, m, k, n, ta, tb, alpha, beta, c, relu=False):
    a_shape, b_shape = ((k, m) if ta else (m, k)), ((n, k) if tb else (k, n))
    inputs, inits, names = [("A", a_shape), ("B", b_shape)], {}, ["A", "B"]
    if c != "none":
        kind, shape = c.split()
        c_shape = {"n": (n,), "mn": (m, n), "m1": (m, 1), "scalar": ()}[shape]
        if kind == "const":
            inits["C"] = rng.standard_normal(c_shape).astype(np.float32)
        else:
            inputs.append(("C", c_shape))
        names.append("C")
    nodes = [helper.make_node("Gemm", names, ["Y"], transA=ta, transB=tb, alpha=alpha, beta=beta)]
    if relu:
        nodes.append(helper.make_node("Relu", ["Y"], ["R"]))
    return make_model(nodes, inputs, [("R" if relu else "Y", None)], inits), dict(inputs)


def assert_kernel_order_bits(compiled, feeds):
    """The kernel-order reference (verify's for QDQ models) is the float C bit for bit (the host
    build contracts no multiply-add)."""
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    got = host.run([feeds[n] for n in compiled.graph.inputs])[0]
    np.testing.assert_array_equal(got, run_float(compiled.graph, feeds, kernel_order=True)[compiled.graph.outputs[0]])


def check_int8_product(model, shapes: dict, rng, count: int = 4):
    """int8: C == twin exactly; against the float model evaluated on the dequantized int8
    inputs, the output is off by at most the half step of its one rounding (clamped to the
    output's range), plus the rounding of a constant C to the product's scale."""
    feeds = random_feeds(rng, shapes, count)
    compiled = compile_model(model, "net", mode="int8", calib=feeds)
    graph = compiled.graph
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    evaluator = ReferenceEvaluator(model)
    out = graph.outputs[0]
    qp = graph.tensors[out].quant
    product_step = np.prod([graph.tensors[n].quant.scale for n in graph.inputs[:2]])
    for f in feeds:
        q = quantize_inputs(graph, f)
        c = host.run([q[n] for n in graph.inputs])[0]
        np.testing.assert_array_equal(c, run_int8(graph, q)[out])
        deq = {n: graph.tensors[n].quant.dequantize(q[n]) for n in graph.inputs}
        want = np.asarray(evaluator.run(None, deq)[0], np.float64).reshape(c.shape)
        want = np.clip(want, qp.dequantize(np.int8(-128)), qp.dequantize(np.int8(127)))
        err = np.abs(qp.dequantize(c).astype(np.float64) - want)
        bound = 0.5 * qp.scale * (1 + 1e-4) + 2 * product_step + 1e-6 * np.abs(want).max()
        assert err.max() <= bound, f"{err.max() / qp.scale:.3f} output steps from the float product"
    return compiled


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul_float(rng, a_shape, b_shape):
    model = matmul_model(a_shape, b_shape)
    feeds = random_feeds(rng, {"A": a_shape, "B": b_shape}, 1)[0]
    compiled = check_float_model(model, feeds)
    assert compiled.report["layers"][0]["kernels"] == ["nn_matmul_f32"]
    assert_kernel_order_bits(compiled, feeds)
    m, k, n = (a_shape[-2] if len(a_shape) > 1 else 1), a_shape[-1], (b_shape[-1] if len(b_shape) > 1 else 1)
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    assert compiled.report["layers"][0]["macs"] == int(np.prod(batch, dtype=np.int64)) * m * k * n


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul_int8(rng, a_shape, b_shape):
    compiled = check_int8_product(matmul_model(a_shape, b_shape, relu=a_shape == (3, 4)),
                                  {"A": a_shape, "B": b_shape}, rng)
    assert compiled.report["layers"][0]["kernels"] == ["nn_matmul_s8"]


@pytest.mark.parametrize("m,k,n,ta,tb,alpha,beta,c", GEMM_CASES)
def test_gemm_runtime_b_float(rng, m, k, n, ta, tb, alpha, beta, c):
    model, shapes = gemm_model(rng, m, k, n, ta, tb, alpha, beta, c, relu=alpha == 2.0)
    feeds = random_feeds(rng, shapes, 1)[0]
    compiled = check_float_model(model, feeds)
    assert [layer["kernels"] for layer in compiled.report["layers"]] == [["nn_matmul_f32"]]
    assert_kernel_order_bits(compiled, feeds)


@pytest.mark.parametrize("m,k,n,ta,tb,alpha,beta,c", [g for g in GEMM_CASES if not g[-1].startswith("input")])
def test_gemm_runtime_b_int8(rng, m, k, n, ta, tb, alpha, beta, c):
    model, shapes = gemm_model(rng, m, k, n, ta, tb, alpha, beta, c, relu=alpha == 2.0)
    compiled = check_int8_product(model, shapes, rng)
    assert [layer["kernels"] for layer in compiled.report["layers"]] == [["nn_matmul_s8"]]


def test_gemm_int8_refusals(rng):
    model, shapes = gemm_model(rng, 2, 3, 4, 0, 0, 1.0, 1.0, "input mn")
    with pytest.raises(CompileError, match="Gemm node .*: int8 Gemm with a run-time C is not supported"):
        compile_model(model, "net", mode="int8", calib=random_feeds(rng, shapes, 2))
    model, shapes = gemm_model(rng, 2, 3, 4, 0, 0, 0.0, 1.0, "none")
    with pytest.raises(CompileError, match="int8 Gemm with alpha 0 is not supported"):
        compile_model(model, "net", mode="int8", calib=random_feeds(rng, shapes, 2))
    # the expanded sum's partial sums reach K * 2^16: 2^31 at K = 32768
    model = matmul_model((1, 32768), (32768, 1))
    with pytest.raises(CompileError, match=r"int32 accumulator could overflow \(K = 32768\)"):
        compile_model(model, "net", mode="int8", calib=random_feeds(rng, {"A": (1, 32768), "B": (32768, 1)}, 1))


@pytest.mark.parametrize("a_shape,b_shape,const", [
    ((2, 3, 4), (2, 4, 5), "B"),  # a constant with batch dimensions: nn_fc cannot take it
    ((3, 2, 4), (4, 3), "A"),  # a constant left operand of a batched right one
])
@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_matmul_batched_constant_operand(rng, a_shape, b_shape, const, mode):
    shapes = {"A": a_shape, "B": b_shape}
    value = rng.standard_normal(shapes[const])
    act = "B" if const == "A" else "A"
    model = make_model([helper.make_node("MatMul", ["A", "B"], ["Y"])], [(act, shapes[act])], [("Y", None)],
                       {const: value.astype(np.float32)})
    if mode == "float32":
        compiled = check_float_model(model, random_feeds(rng, {act: shapes[act]}, 1)[0])
    else:
        # the constant rounds to its own per-tensor step: half a step times the sum of the other
        # operand's magnitudes, bounded by the input's rounding allowance below
        compiled = check_int8_model(model, random_feeds(rng, {act: shapes[act]}, 4), 1.0,
                                    in_steps=4.0 * value.shape[-1 if const == "A" else -2] * np.abs(value).max())
    assert compiled.report["layers"][0]["kernels"] == [f"nn_matmul_{'f32' if mode == 'float32' else 's8'}"]


def test_constant_weight_keeps_the_fully_connected_kernel(rng):
    """x @ W with a 2-D constant W stays a fully connected layer (nn_fc, its sparse kernels)."""
    model = make_model([helper.make_node("MatMul", ["A", "W"], ["Y"])], [("A", (2, 3, 8))], [("Y", None)],
                       {"W": rng.standard_normal((8, 4)).astype(np.float32)})
    compiled = compile_model(model, "net", mode="int8", calib=random_feeds(rng, {"A": (2, 3, 8)}, 2))
    assert compiled.report["layers"][0]["kernels"] == ["nn_fc_s8"]


def attention_ops_model():
    """One model per firmware run: the product kernels in the views the tests above cover."""
    rng = np.random.default_rng(17)
    nodes = [helper.make_node("MatMul", ["X", "Y"], ["P"]),
             helper.make_node("Softmax", ["P"], ["S"], axis=1),
             helper.make_node("MatMul", ["X", "V"], ["Q"]),
             helper.make_node("Gemm", ["Q", "Z", "C"], ["G"], transB=1, alpha=-0.5, beta=2.0),
             helper.make_node("Relu", ["G"], ["R"]),
             helper.make_node("MatMul", ["V", "Y"], ["T"])]
    inputs = [("X", (2, 4, 6)), ("Y", (1, 6, 5)), ("V", (6,)), ("Z", (5, 4))]
    model = make_model(nodes, inputs, [("S", None), ("R", None), ("T", None)],
                       {"C": rng.standard_normal(5).astype(np.float32)})
    return model, dict(inputs)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_int8_products_on_cortex_m(target):
    from test_targets import need

    need(target)
    model, shapes = attention_ops_model()
    feeds = random_feeds(np.random.default_rng(23), shapes, count=4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, target=target)
    kernels = {k for layer in compiled.report["layers"] for k in layer["kernels"]}
    assert {"nn_matmul_s8", "nn_softmax_s8"} <= kernels
    q = [quantize_inputs(compiled.graph, f) for f in feeds]
    host = HostModel(compiled.host_files or compiled.emitted.files, compiled.report["api"])
    got = cross.run_samples(compiled.emitted.files, compiled.report["api"], q, target)
    for g, s in zip(got, q):
        ref = run_int8(compiled.graph, s)
        for a, h, name in zip(g, host.run([s[n] for n in compiled.graph.inputs]), compiled.graph.outputs):
            np.testing.assert_array_equal(a, h)
            np.testing.assert_array_equal(a, ref[name])


def test_float_products_on_cortex_m4():
    from test_targets import need

    need("cortex-m4")
    from codegen.verify import verify

    model, shapes = attention_ops_model()
    compiled = compile_model(model, "net")
    assert verify(compiled, random_feeds(np.random.default_rng(29), shapes, count=3), target="cortex-m4")["target_equal"]


def test_pruning_leaves_a_product_of_activations_alone(rng):
    """Pruning and its bias correction walk every layer: a product of two activations has no
    weights of its own and runs after the pruned layer that feeds it."""
    from codegen.passes.prune import PruneOptions

    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("Transpose", ["H"], ["T"], perm=[1, 0]),
             helper.make_node("MatMul", ["H", "T"], ["Y"])]
    model = make_model(nodes, [("X", (3, 8))], [("Y", None)], {"W": rng.standard_normal((8, 6)).astype(np.float32)})
    feeds = random_feeds(rng, {"X": (3, 8)}, 4)
    compiled = compile_model(model, "net", mode="int8", calib=feeds, prune=PruneOptions(sparsity=0.5))
    assert [layer["kernels"] for layer in compiled.report["layers"]][::2] == [["nn_fc_s8"], ["nn_matmul_s8"]]
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    for f in feeds:
        q = quantize_inputs(compiled.graph, f)
        np.testing.assert_array_equal(host.run([q["X"]])[0], run_int8(compiled.graph, q)["Y"])
