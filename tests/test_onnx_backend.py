"""The ONNX backend test cases shipped inside the onnx package, for the supported operators.

Every case whose model uses one of the spine's operators runs through compile. A case the
compiler accepts must verify equal (C within the float tolerance) to the case's expected
outputs on every data set; a case it rejects must get the clean one-line CompileError.
Each multi-input node case also runs "frozen": every input but the first becomes a
constant initializer, as weights, shapes and axes are in real models.
Counts are printed at the end of the session (see conftest.pytest_terminal_summary).
"""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from codegen.build import HostModel
from codegen.compiler import compile_model
from codegen.errors import CompileError
from codegen.verify import within_tolerance
from conftest import BACKEND_RESULTS

SPINE_OPS = set(
    """Conv Gemm MatMul Add Sub Mul Div Relu LeakyRelu Clip Sigmoid Tanh HardSigmoid HardSwish Softmax MaxPool
    AveragePool GlobalAveragePool GlobalMaxPool ReduceMean ReduceMax ReduceSum Flatten Reshape Squeeze Unsqueeze
    Transpose Concat Pad BatchNormalization Identity Dropout Elu Selu Exp Log Sqrt Reciprocal Abs Neg Erf Softplus
    Gelu Mish LayerNormalization InstanceNormalization LogSoftmax
    ReduceMin ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSumExp ReduceProd LpNormalization
    Slice Split Gather Expand Tile DepthToSpace SpaceToDepth
    LSTM GRU
    ConvTranspose Resize Upsample
    LRN
    PRelu Pow Min Max Sum Mean CastLike
    Cast Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Xor Where ArgMax ArgMin
    Scaler Normalizer Binarizer ArrayFeatureExtractor LinearRegressor LinearClassifier TreeEnsembleRegressor
    TreeEnsembleClassifier TreeEnsemble SVMRegressor SVMClassifier ZipMap""".split()
)
DATA_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def _uses_spine_op(model: onnx.ModelProto) -> bool:
    return any(n.op_type in SPINE_OPS for n in model.graph.node)


def _node_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    out = []
    for case in cases:
        if case.kind != "node" or case.model is None or not _uses_spine_op(case.model):
            continue
        data = [(list(i), list(o)) for i, o in case.data_sets]
        out.append(pytest.param(case.model, data, False, id=case.name))
        # freezing needs inputs an initializer can hold (not onnx's object arrays of 2- and 4-bit types)
        if len(case.model.graph.input) > 1 and all(np.asarray(v).dtype != object for v in data[0][0][1:]):
            out.append(pytest.param(case.model, data, True, id=case.name + "-frozen"))
    return out


def _read_pb(path: str) -> np.ndarray:
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def _dir_cases():
    out = []
    for sub in ("pytorch-converted", "pytorch-operator"):
        for d in sorted(glob.glob(os.path.join(DATA_DIR, sub, "*"))):
            model = onnx.load(os.path.join(d, "model.onnx"))
            if not _uses_spine_op(model):
                continue
            data = []
            for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
                ins = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                                                    key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
                outs = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                                                     key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
                data.append((ins, outs))
            out.append(pytest.param(model, data, False, id=f"{sub}/{os.path.basename(d)}"))
    return out


def _freeze(model: onnx.ModelProto, first_inputs: list[np.ndarray]) -> onnx.ModelProto:
    """Turn every graph input but the first into an initializer holding the data set's value."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    frozen.ir_version = max(frozen.ir_version, 4)  # IR 3 lists every initializer among the inputs
    graph_inputs = [i for i in model.graph.input]
    del frozen.graph.input[1:]
    for vi, value in zip(graph_inputs[1:], first_inputs[1:]):
        frozen.graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    return frozen


@pytest.mark.parametrize("model,data,frozen", _node_cases() + _dir_cases())
def test_backend_case(model, data, frozen):
    kind = "frozen" if frozen else "as-is"
    if frozen:
        model = _freeze(model, data[0][0])
        data = [(ins[:1], outs) for ins, outs in data[:1]]
    try:
        compiled = compile_model(model, "case_model")
    except CompileError as e:
        BACKEND_RESULTS[f"{kind} rejected"] += 1
        msg = str(e)
        assert "\n" not in msg and msg.strip(), "a rejection must be one line"
        return
    BACKEND_RESULTS[f"{kind} accepted"] += 1
    host = HostModel(compiled.emitted.files, compiled.report["api"])
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    for inputs, expected in data:
        feeds = dict(zip(names, inputs))
        outputs = host.run([feeds[n] for n in compiled.graph.inputs])
        for got, want in zip(outputs, expected):
            want = np.asarray(want)
            assert within_tolerance(got, want.reshape(got.shape)), (
                f"max abs diff {np.max(np.abs(got - want.reshape(got.shape)))}"
            )
    BACKEND_RESULTS[f"{kind} passed"] += 1
