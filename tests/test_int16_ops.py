"""int16 activations (symmetric, zero point 0) for the operators other than Conv and Gemm: data
movement, pooling, Relu/Clip/LeakyRelu, Add/Sub/Mul and the 513-entry interpolated tables.

One model holds every case as its own branch (seeded shapes, several inputs of different
ranges so that scales differ), compiled once with --precision int16: the C equals the NumPy
twin exactly on calibration samples and on int16 inputs spread over the whole range
(-32768 and 32767 included), on the host and, in one firmware per target, on the emulated
Cortex-M4 and M0+; the dequantized outputs stay within a bound of the float model that int8
could not meet.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from codegen.build import HostModel
from codegen.compiler import compile_model, quantize_inputs
from codegen.ops import lut16
from codegen.qparams import from_range
from codegen.reference import run_int8
from conftest import assert_same_on_cortex_m, make_model

X, Y, Z, V = (1, 3, 5, 4), (1, 3, 5, 4), (1, 1, 5, 1), (3, 10)  # the outputs fit the M0+'s 16 KB
IDS, ROWS = (2, 3), 5  # run-time indices into a constant table of 5 rows
U = (1, 58, 3, 3)  # 58 channels of 3x3 taps at 127: 58 * 9 * 127 * 32767 overflows an int32 accumulator
RANGES = {"x": (3.0, 0.5), "y": (0.7, -0.2), "z": (2.0, 1.0), "v": (4.0, 0.0), "u": (1.0, 0.0)}  # spread, centre


def _case_model():
    """Every int16 operator case of this file, one branch each, named by its output."""
    r = np.random.default_rng(1416)
    const = lambda name, shape, lo=-2.0, hi=2.0: (name, r.uniform(lo, hi, shape).astype(np.float32))  # noqa: E731
    inits = dict([const("cw", (1, 3, 1, 1)), const("cd", (1, 1, 1, 4), 0.5, 3.0), const("ca", (4,)),
                  const("cc", (1, 3, 2, 4))])
    inits.update(shape=np.array([2, -1], np.int64), starts=np.array([1, 0], np.int64),
                 ends=np.array([6, 5], np.int64), axes=np.array([2, 3], np.int64), steps=np.array([2, 1], np.int64),
                 pads=np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64), index=np.array([3, 0, -1, 3], np.int64),
                 split=np.array([1, 2], np.int64), uaxes=np.array([0], np.int64), raxes=np.array([1, 3], np.int64),
                 pad_value=np.array(0.25, np.float32), rstarts=np.array([-1], np.int64),
                 rends=np.array([-11], np.int64), raxes1=np.array([1], np.int64), rsteps=np.array([-3], np.int64),
                 eshape=np.array([2, 1, 5, 3], np.int64), repeats=np.array([1, 2, 1, 3], np.int64),
                 shape4=np.array([1, 4, 5, 3], np.int64))
    n = helper.make_node
    nodes = [
        # 1. movement: Reshape, Flatten, Unsqueeze, Transpose, Slice, Split, Pad, Concat, Gather
        n("Reshape", ["x", "shape"], ["reshape"]),
        n("Flatten", ["y"], ["flat"], axis=2),
        n("Unsqueeze", ["v", "uaxes"], ["unsq"]),
        n("Transpose", ["x"], ["transpose"], perm=[0, 2, 3, 1]),
        n("Slice", ["x", "starts", "ends", "axes", "steps"], ["slice"]),
        n("Split", ["y", "split"], ["split0", "split1"], axis=1),
        n("Pad", ["x", "pads"], ["pad"]),
        n("Pad", ["y", "pads", "pad_value"], ["pad_value_out"]),
        n("Slice", ["v", "rstarts", "rends", "raxes1", "rsteps"], ["slice_reversed"]),
        n("Expand", ["z", "eshape"], ["expand"]),
        n("Tile", ["z", "repeats"], ["tile"]),
        n("Reshape", ["y", "shape4"], ["x4"]),
        n("DepthToSpace", ["x4"], ["depth_to_space"], blocksize=2),
        n("Concat", ["x", "y"], ["concat_rescaled"], axis=1),
        n("Concat", ["y", "cc"], ["concat_const"], axis=2),
        n("Gather", ["x", "index"], ["gather"], axis=3),
        n("Gather", ["table", "ids"], ["gather_table"]),
        n("Concat", ["split0", "split1"], ["concat_same"], axis=1),
        n("MaxPool", ["x"], ["maxpool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("GlobalMaxPool", ["y"], ["gmaxpool"]),
        # 2. averages and the rescaled activations
        n("AveragePool", ["x"], ["avgpool"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("AveragePool", ["y"], ["avgpool_pad"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1],
          count_include_pad=1, ceil_mode=1),
        n("GlobalAveragePool", ["x"], ["gavgpool"]),
        n("Relu", ["x"], ["relu"]),
        n("Clip", ["y", "", "clip_hi"], ["clip"]),
        n("LeakyRelu", ["x"], ["leaky"], alpha=0.1),
        n("LeakyRelu", ["v"], ["leaky_neg"], alpha=-0.3),
        # 3. Add, Sub, Mul with broadcasting, constants on either side, Div by a constant
        n("Add", ["x", "y"], ["add"]),
        n("Add", ["y", "x"], ["add_sum"]),
        n("Relu", ["add_sum"], ["add_relu"]),  # fused: the output clamp
        n("Sub", ["x", "z"], ["sub_bcast"]),
        n("Add", ["ca", "y"], ["add_const_left"]),
        n("Mul", ["x", "y"], ["mul"]),
        n("Mul", ["z", "cw"], ["mul_const"]),
        n("Div", ["y", "cd"], ["div_const"]),
        # 4. the interpolated tables
        n("Sigmoid", ["x"], ["sigmoid"]),
        n("Tanh", ["v"], ["tanh"]),
        n("HardSwish", ["v"], ["hardswish"]),
        n("Gelu", ["x"], ["gelu"]),
        n("Exp", ["y"], ["exp"]),
        # 5. Softmax along the last axis and along an inner one
        n("Softmax", ["v"], ["softmax"], axis=-1),
        n("Softmax", ["y"], ["softmax_inner"], axis=1),
        n("LogSoftmax", ["v"], ["logsoftmax"], axis=-1),
        n("LogSoftmax", ["x"], ["logsoftmax_inner"], axis=2),
        # 6. indices of int16 values
        n("ArgMax", ["v"], ["argmax"], axis=1),
        n("ArgMin", ["x"], ["argmin"], axis=2, keepdims=0, select_last_index=1),
        # 7. Max, Min, Sum, Mean of one to three inputs (a constant among them)
        n("Max", ["x", "y"], ["max2"]),
        n("Min", ["x", "z", "cw"], ["min3"]),
        n("Max", ["v"], ["max1"]),
        n("Sum", ["x", "y"], ["sum2"]),
        n("Sum", ["x", "z", "y"], ["sum3"]),
        n("Mean", ["y", "ca", "x", "z"], ["mean4"]),
        # 8. reductions over any axes
        n("ReduceMean", ["x", "raxes"], ["rmean"], keepdims=1),
        n("ReduceSum", ["y", "raxes"], ["rsum"], keepdims=0),
        n("ReduceMax", ["x", "raxes"], ["rmax"], keepdims=1),
        n("ReduceMin", ["v"], ["rmin"], keepdims=0),
        n("ReduceL1", ["y", "raxes"], ["rl1"], keepdims=1),
        n("ReduceSumSquare", ["x", "raxes"], ["rsumsq"], keepdims=1),
        n("ReduceL2", ["tanh"], ["rl2_int8"], keepdims=1),
        # 9. PRelu (a slope per channel), Pow by whole exponents
        n("PRelu", ["x", "slope"], ["prelu"]),
        n("Pow", ["x", "two"], ["square"]),
        n("Pow", ["v", "three"], ["cube"]),
        n("Pow", ["relu", "half"], ["pow_half_int8"]),
        # 10. Resize, nearest and bilinear
        n("Resize", ["x", "", "scales"], ["resize_nearest"], mode="nearest"),
        n("Resize", ["y", "", "scales"], ["resize_linear"], mode="linear"),
        # 11. ConvTranspose: int32 and int64 accumulators
        n("ConvTranspose", ["x", "wt", "bt"], ["deconv"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 0]),
        n("ConvTranspose", ["u", "wu"], ["deconv_acc64"]),
        # 12. normalisation: int16 Scale, z * Scale + B in int64
        n("LayerNormalization", ["v", "ln_scale", "ln_bias"], ["layernorm"], axis=-1),
        n("InstanceNormalization", ["x", "in_scale", "in_bias"], ["instancenorm"]),
        n("LpNormalization", ["v"], ["l2norm"], axis=-1, p=2),
        n("LpNormalization", ["x"], ["l1norm"], axis=1, p=1),
        # 13. MatMul of two activations (batched, broadcast) and by a constant with batch dimensions
        n("Transpose", ["y"], ["xt"], perm=[0, 1, 3, 2]),
        n("MatMul", ["x", "xt"], ["matmul"]),
        n("MatMul", ["v", "mb"], ["matmul_const"]),
        n("Gemm", ["v", "v"], ["gemm_t"], transB=1, alpha=-0.5),
        n("Gemm", ["tanh", "gw", "gc"], ["gemm_bias_int8"], transA=1),
        # 14. comparisons and Where
        n("Less", ["x", "y"], ["less"]),
        n("GreaterOrEqual", ["v", "cmp_k"], ["greater_eq"]),
        n("Where", ["less", "x", "y"], ["where"]),
        n("Where", ["less", "cw_full", "y"], ["where_const"]),
        # operators without int16 kernels stay int8 between Requantize nodes
        n("Log", ["sigmoid"], ["log_int8"]),
        n("Div", ["relu", "sigmoid"], ["div_int8"]),
    ]
    inits["clip_hi"] = np.array(0.3, np.float32)
    # weights on their int8 grid (each output channel reaches 127 steps): the float bound below
    # then measures the int16 arithmetic, not the rounding of the weights
    wt = r.integers(-127, 128, (3, 2, 3, 3)).astype(np.float32)
    wt[0, :, 0, 0] = 127
    wt = (wt * np.float32(0.5 / 127)).astype(np.float32)
    inits.update(slope=np.array([[[0.02]], [[-0.4]], [[0.25]]], np.float32), two=np.array(2.0, np.float32),
                 three=np.array(3.0, np.float32), half=np.array(0.5, np.float32),
                 scales=np.array([1.0, 1.0, 1.6, 1.5], np.float32), table=r.uniform(-1, 3, (5, 4)).astype(np.float32),
                 wt=wt, bt=np.array([0.3, -0.2], np.float32),
                 wu=np.full((58, 1, 3, 3), 0.01, np.float32), ln_scale=r.uniform(0.5, 2.0, 10).astype(np.float32),
                 ln_bias=r.uniform(-1, 1, 10).astype(np.float32), in_scale=np.array([1.5, -0.7, 0.2], np.float32),
                 in_bias=np.array([0.1, 0.0, -2.0], np.float32), mb=r.uniform(-1, 1, (2, 10, 4)).astype(np.float32),
                 gw=r.uniform(-1, 1, (3, 5)).astype(np.float32), gc=r.uniform(-1, 1, (10, 5)).astype(np.float32),
                 cmp_k=np.array(0.5, np.float32), cw_full=r.uniform(-4, 4, (1, 3, 1, 4)).astype(np.float32))
    outputs = [o for node in nodes for o in node.output if o != "add_sum"]
    typed = {"argmax": ((3, 1), TensorProto.INT64), "argmin": ((1, 3, 4), TensorProto.INT64),
             "less": (X, TensorProto.BOOL), "greater_eq": (V, TensorProto.BOOL)}
    inputs = [("x", X), ("y", Y), ("z", Z), ("v", V), ("ids", IDS, TensorProto.INT64), ("u", U)]
    model = make_model(nodes, inputs, [(o, *typed.get(o, (None,))) for o in outputs],
                       initializers=inits, opset=20, name="int16_ops")
    return model, outputs


def _feeds(rng, count):
    return [{**{k: (rng.standard_normal(s) * RANGES[k][0] + RANGES[k][1]).astype(np.float32)
                for k, s in (("x", X), ("y", Y), ("z", Z), ("v", V), ("u", U))},
             "ids": rng.integers(0, ROWS, IDS)} for _ in range(count)]


@pytest.fixture(scope="module")
def compiled():
    model, outputs = _case_model()
    calib = _feeds(np.random.default_rng(7), 8)
    # min/max ranges: no calibration clipping, so the float bound below measures the arithmetic
    return model, outputs, calib, compile_model(model, "net", mode="int8", calib=calib, precision="int16",
                                                calibration="minmax")


INT8_ONLY = {"log_int8", "div_int8", "rl2_int8", "pow_half_int8", "gemm_bias_int8"}
INDICES = {"argmax", "argmin"}
BOOLS = {"less", "greater_eq"}


def test_every_case_is_int16(compiled):
    """Every case runs in int16 but the three without int16 kernels, which the report names and
    which read their inputs through Requantize nodes (int16 -> int8)."""
    _, outputs, _, c = compiled
    graph = c.graph
    assert [graph.tensors[n].dtype for n in graph.inputs] == ["int16"] * 4 + ["int32", "int16"]
    acc64 = {n.outputs[0]: n.attrs["q"]["acc64"] for n in graph.nodes if n.op_type == "ConvTranspose"}
    assert acc64 == {"deconv": False, "deconv_acc64": True}
    assert next(n for n in graph.nodes if n.outputs == ["add_relu"]).op_type == "Add"
    assert {o for o in outputs if graph.tensors[o].dtype == "int8"} == INT8_ONLY
    assert {graph.tensors[o].dtype for o in outputs if o not in INT8_ONLY | INDICES | BOOLS} == {"int16"}
    assert {n.op_type for n in graph.nodes if n.outputs[0] in BOOLS} == {"Less", "GreaterOrEqual"}
    assert {graph.tensors[i].dtype for n in graph.nodes if n.outputs[0] in BOOLS for i in n.inputs
            if not graph.tensors[i].is_const} == {"int16"}
    assert {graph.tensors[o].dtype for o in INDICES} == {"int32"}
    producers = {o: n for n in graph.nodes for o in n.outputs}
    for name in INT8_ONLY:
        for i in producers[name].inputs:
            if i and not graph.tensors[i].is_const:
                assert producers[i].op_type == "Requantize" and graph.tensors[i].dtype == "int8"
    kept = {k["op"] for k in c.report["precision"]["kept_int8"]}
    assert kept == {"Log", "Div", "ReduceL2", "Pow", "Gemm"}


def test_host_and_cortex_m_equal_the_twin(compiled):
    model, outputs, calib, c = compiled
    graph = c.graph
    rng = np.random.default_rng(11)
    samples = [quantize_inputs(graph, f) for f in _feeds(rng, 2)]
    for k in range(2):  # the whole int16 range, both ends included
        sample = {}
        for name in graph.inputs:
            if name == "ids":
                sample[name] = rng.integers(0, ROWS, IDS).astype(np.int32)
                continue
            q = rng.integers(-32768, 32768, graph.tensors[name].shape)
            q.reshape(-1)[:2] = (-32768, 32767)
            if name == "u" and k == 0:  # every tap at its largest: the sum needs the int64 accumulator
                q[:] = 32767
            sample[name] = q.astype(np.int16)
        samples.append(sample)
    host = HostModel(c.emitted.files, c.report["api"])
    expected = []
    for sample in samples:
        got = host.run([sample[n] for n in graph.inputs])
        ref = run_int8(graph, sample)
        for g, name in zip(got, graph.outputs):
            assert g.dtype == (np.int8 if name in INT8_ONLY else np.int32 if name in INDICES
                               else np.uint8 if name in BOOLS else np.int16)
            np.testing.assert_array_equal(g, ref[name], err_msg=f"C differs from the int16 twin on '{name}'")
        expected.append(got)
    assert_same_on_cortex_m(c, [{n: s[n] for n in graph.inputs} for s in samples], expected)


def test_close_to_the_float_model(compiled):
    """On the calibration samples (inside the calibrated ranges: no saturation but that of a
    fixed output range), every int16 output is within 16 of its own steps of the float model:
    an eighth of one step of int8 over the same range (int16's rounding of the inputs and
    outputs, and the tables' chords); the indices equal the float model's."""
    model, outputs, calib, c = compiled
    graph = c.graph
    evaluator = ReferenceEvaluator(model)
    worst = {}
    for feeds in calib:
        got = run_int8(graph, quantize_inputs(graph, feeds))
        want = dict(zip(outputs, evaluator.run(None, feeds)))
        # onnx.reference sums x, not |x|, for the L1 norm (the spec: sum |x|)
        want["l1norm"] = feeds["x"] / np.abs(feeds["x"]).sum(axis=1, keepdims=True)
        for name in INDICES:
            np.testing.assert_array_equal(got[name], np.asarray(want[name]).reshape(got[name].shape))
        for name in set(graph.outputs) - INT8_ONLY - INDICES - BOOLS:
            qp = graph.tensors[name].quant
            # the float value as the output's grid can hold it (LogSoftmax's fixed [-16, 0] saturates)
            ref = np.clip(np.asarray(want[name], np.float64).reshape(got[name].shape), qp.qmin * qp.scale,
                          qp.qmax * qp.scale)
            err = np.abs(qp.dequantize(got[name]).astype(np.float64) - ref).max()
            worst[name] = max(worst.get(name, 0.0), err / qp.scale)
    assert max(worst.values()) <= 16, worst


def test_interpolated_table_follows_its_rule():
    """lut16 over all 65536 input levels: the lookup is the chord between two entries (to the
    rounding of its shift) and clamps to int16; the entries moved by half the chord's error at
    the middles halve the error of entries taken at the knots (tanh over [-12, 12], where the
    segments are curved enough to show it), and stay within h^2 / 16 max|f''| plus a step."""
    x, y = from_range(-12.0, 12.0, bits=16), from_range(-1.0, 1.0, bits=16)
    tanh = lambda v: np.tanh(v.astype(np.float64))  # noqa: E731
    table = lut16.table(x, y, tanh)
    assert table.shape == (513,) and table.dtype == np.int32
    levels = np.arange(-32768, 32768)
    got = lut16.lookup(table, levels).astype(np.float64)
    k, f = (levels + 32768) // 128, (levels + 32768) % 128
    chord = table[k] + (table[k + 1].astype(np.float64) - table[k]) * f / 128
    assert np.abs(got - np.clip(chord, -32768, 32767)).max() <= 0.5
    real = np.tanh(x.dequantize(levels).astype(np.float64)) / y.scale
    knots = np.clip(np.rint(np.tanh(x.scale * (np.arange(513) * 128.0 - 32768)) / y.scale), -2**22, 2**22)
    plain = lut16.lookup(knots.astype(np.int32), levels).astype(np.float64)
    h = 128 * x.scale
    bound = h * h / 16 * (4 / (3 * np.sqrt(3))) / y.scale + 1.0  # max|tanh''| = 4 / (3 sqrt 3)
    assert np.abs(got - real).max() <= bound < np.abs(plain - real).max()
    assert np.abs(got - real).max() < 0.6 * np.abs(plain - real).max()
