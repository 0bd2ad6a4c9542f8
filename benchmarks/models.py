"""The MLPerf Tiny reference architectures at their real shapes, built with onnx.helper.

Weights are seeded He-normal draws and every convolution or dense layer is followed by a
BatchNormalization node with non-trivial statistics (the compiler folds them), so the models
exercise the same graphs a trained export would. `MODELS` also holds the bundled digits
example. No training framework is needed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OPSET = 13


class _Builder:
    """Nodes and initializers of one model, with seeded weights."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def batchnorm(self, x: str, name: str, channels: int) -> str:
        r = self.rng
        ins = [x] + [self.const(f"{name}_{k}", v) for k, v in (
            ("scale", r.uniform(0.5, 1.5, channels)), ("bias", r.normal(0.0, 0.1, channels)),
            ("mean", r.normal(0.0, 0.1, channels)), ("var", r.uniform(0.5, 2.0, channels)))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=1e-3))
        return name

    def act(self, x: str, kind: str | None) -> str:
        if kind == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [x + "_relu"], name=x + "_relu"))
            return x + "_relu"
        if kind == "relu6":
            lo, hi = self.const(x + "_lo", np.float32(0)), self.const(x + "_hi", np.float32(6))
            self.nodes.append(helper.make_node("Clip", [x, lo, hi], [x + "_relu6"], name=x + "_relu6"))
            return x + "_relu6"
        return x

    def conv(self, x: str, name: str, cin: int, cout: int, kernel, stride=1, pads=None, group=1,
             act: str | None = "relu") -> str:
        kh, kw = kernel
        fan_in = cin // group * kh * kw
        w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), (cout, cin // group, kh, kw))
        pads = pads if pads is not None else [kh // 2, kw // 2, kh // 2, kw // 2]
        self.nodes.append(helper.make_node("Conv", [x, self.const(name + "_w", w)], [name + "_conv"], name=name,
                                           kernel_shape=[kh, kw], strides=[stride, stride], pads=pads, group=group))
        return self.act(self.batchnorm(name + "_conv", name + "_bn", cout), act)

    def dense(self, x: str, name: str, fin: int, fout: int, act: str | None = "relu", bn: bool = True) -> str:
        w = self.rng.normal(0.0, math.sqrt(2.0 / fin), (fout, fin))
        b = self.const(name + "_b", self.rng.normal(0.0, 0.05, fout))
        self.nodes.append(helper.make_node("Gemm", [x, self.const(name + "_w", w), b], [name + "_gemm"], name=name,
                                           transB=1))
        y = self.batchnorm(name + "_gemm", name + "_bn", fout) if bn else name + "_gemm"
        return self.act(y, act)

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def model(self, name: str, x_shape, y: str, y_shape) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT,
                                                                                   list(x_shape))],
                                  [helper.make_tensor_value_info(y, onnx.TensorProto.FLOAT, list(y_shape))],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="onnx2mcu-benchmarks")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (begin, end) for one axis."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    return total // 2, total - total // 2


def ds_cnn(seed: int = 1) -> onnx.ModelProto:
    """Keyword spotting DS-CNN: 49x10 MFCC input, conv 64 10x4 stride 2, four depthwise-separable blocks."""
    b = _Builder(seed)
    (pt, pb), (pl, pr) = _same_pads(49, 10, 2), _same_pads(10, 4, 2)
    x = b.conv("input", "conv1", 1, 64, (10, 4), stride=2, pads=[pt, pl, pb, pr])
    for i in range(1, 5):
        x = b.conv(x, f"dw{i}", 64, 64, (3, 3), group=64)
        x = b.conv(x, f"pw{i}", 64, 64, (1, 1))
    x = b.op("AveragePool", [x], "pool", kernel_shape=[25, 5])
    x = b.op("Flatten", [x], "flatten")
    x = b.dense(x, "fc", 64, 12, act=None, bn=False)
    return b.model("ds_cnn", (1, 1, 49, 10), b.op("Softmax", [x], "probabilities", axis=1), (1, 12))


def resnet8(seed: int = 2) -> onnx.ModelProto:
    """Image classification ResNet-8: 32x32x3, three stages of 16/32/64 with residual adds."""
    b = _Builder(seed)
    x = b.conv("input", "conv1", 3, 16, (3, 3))
    cin = 16
    for stage, cout in enumerate((16, 32, 64), start=1):
        stride = 1 if stage == 1 else 2
        y = b.conv(x, f"s{stage}a", cin, cout, (3, 3), stride=stride)
        y = b.conv(y, f"s{stage}b", cout, cout, (3, 3), act=None)
        shortcut = x if stage == 1 else b.conv(x, f"s{stage}skip", cin, cout, (1, 1), stride=stride, act=None)
        x = b.act(b.op("Add", [y, shortcut], f"s{stage}add"), "relu")
        cin = cout
    x = b.op("AveragePool", [x], "pool", kernel_shape=[8, 8])
    x = b.op("Flatten", [x], "flatten")
    x = b.dense(x, "fc", 64, 10, act=None, bn=False)
    return b.model("resnet8", (1, 3, 32, 32), b.op("Softmax", [x], "probabilities", axis=1), (1, 10))


MOBILENET_BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1),
                    (128, 1), (256, 2), (256, 1)]


def mobilenet_v1_025(seed: int = 3) -> onnx.ModelProto:
    """Visual wake words: MobileNetV1 width 0.25 at 96x96x3, ReLU6 activations."""
    b = _Builder(seed)
    size = 96
    p = _same_pads(size, 3, 2)
    x = b.conv("input", "conv1", 3, 8, (3, 3), stride=2, pads=[p[0], p[0], p[1], p[1]], act="relu6")
    size, cin = 48, 8
    for i, (cout, stride) in enumerate(MOBILENET_BLOCKS, start=1):
        p = _same_pads(size, 3, stride)
        x = b.conv(x, f"dw{i}", cin, cin, (3, 3), stride=stride, pads=[p[0], p[0], p[1], p[1]], group=cin,
                   act="relu6")
        x = b.conv(x, f"pw{i}", cin, cout, (1, 1), act="relu6")
        size, cin = -(-size // stride), cout
    x = b.op("AveragePool", [x], "pool", kernel_shape=[size, size])
    x = b.op("Flatten", [x], "flatten")
    x = b.dense(x, "fc", 256, 2, act=None, bn=False)
    return b.model("mobilenet_v1_025", (1, 3, 96, 96), b.op("Softmax", [x], "probabilities", axis=1), (1, 2))


AUTOENCODER_WIDTHS = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]


def fc_autoencoder(seed: int = 4) -> onnx.ModelProto:
    """Anomaly detection autoencoder: 640-128-128-128-128-8-128-128-128-128-640."""
    b = _Builder(seed)
    x = "input"
    widths = AUTOENCODER_WIDTHS
    for i in range(len(widths) - 1):
        last = i == len(widths) - 2
        x = b.dense(x, f"fc{i + 1}", widths[i], widths[i + 1], act=None if last else "relu", bn=not last)
    return b.model("fc_autoencoder", (1, 640), x, (1, 640))


def digits() -> onnx.ModelProto:
    return onnx.load(str(ROOT / "examples" / "digits" / "digits.onnx"))


MODELS = OrderedDict([("ds_cnn", ds_cnn), ("resnet8", resnet8), ("mobilenet_v1_025", mobilenet_v1_025),
                      ("fc_autoencoder", fc_autoencoder), ("digits", digits)])


def calibration(model: onnx.ModelProto, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Seeded standard-normal float32 inputs, keyed by input name."""
    rng = np.random.default_rng(seed)
    inputs = [(i.name, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]) for i in model.graph.input]
    return [{name: rng.standard_normal(shape).astype(np.float32) for name, shape in inputs} for _ in range(count)]


def calibration_for(name: str, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Calibration samples of a model in MODELS: the example's own data for digits."""
    if name == "digits":
        data = np.load(ROOT / "examples" / "digits" / "calib.npz")
        key = [k for k in data.files if k != "y"][0]
        return [{key: data[key][i:i + 1]} for i in range(min(count, len(data[key])))]
    return calibration(MODELS[name](), count, seed)


def reference_macs(name: str) -> int:
    """Multiply-accumulates from the architecture description (not from the compiler)."""
    if name == "ds_cnn":
        return 25 * 5 * 64 * 10 * 4 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12
    if name == "resnet8":
        macs = 32 * 32 * 16 * 3 * 9 + 2 * 32 * 32 * 16 * 16 * 9
        macs += 16 * 16 * 32 * 16 * 9 + 16 * 16 * 32 * 32 * 9 + 16 * 16 * 32 * 16
        macs += 8 * 8 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9 + 8 * 8 * 64 * 32
        return macs + 64 * 10
    if name == "mobilenet_v1_025":
        size = 48
        macs, cin = size * size * 8 * 3 * 9, 8
        for cout, stride in MOBILENET_BLOCKS:
            size = -(-size // stride)
            macs += size * size * cin * 9 + size * size * cin * cout
            cin = cout
        return macs + 256 * 2
    if name == "fc_autoencoder":
        return sum(a * b for a, b in zip(AUTOENCODER_WIDTHS, AUTOENCODER_WIDTHS[1:]))
    raise KeyError(name)
