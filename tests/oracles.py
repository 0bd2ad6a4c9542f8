"""onnxruntime as an oracle, in a module of its own so that it imports without the compiler:
test_end_to_end runs it alone under an emulated x86-64 CPU without AVX-512. conftest.py
exports it to the tests."""

from __future__ import annotations


def onnxruntime_oracle(model):
    """onnxruntime as an oracle (a ModelProto or a path): for the corners where onnx.reference
    is wrong, and for QDQ models. Graph optimizations are off (ORT_DISABLE_ALL), so every node
    runs as the spec defines it: a QDQ graph runs DequantizeLinear, the float op, QuantizeLinear.
    With its default optimizations onnxruntime fuses such graphs into int8 kernels that saturate
    on x86-64 CPUs without AVX-512 VNNI (u8s8 through pmaddubsw), up to 17 steps off."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
