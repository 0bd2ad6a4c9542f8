"""Fuzz the compiler with malformed models and sample files.

    python -m tests.fuzz --cases N --seed S [--jobs J] [--build-share F] [--case I]

Each case takes the bundled example or one of tests/fixtures, applies one seeded mutation
(attribute values, the newer operators' attributes and ai.onnx.ml lists, integer constants
such as indices and split sizes, dims, element types of values and of inputs and outputs, raw
data, hostile or duplicated names, node order, cycles, opset and IR versions, huge declared
dims; byte-level truncations and bit flips of
the file; malformed .npz files) and runs `onnx2mcu compile` in a worker process, in a
folder of its own, with its own temporary directory and working directory. Outcomes:

- "compiled": exit 0, and the folder builds with gcc -std=c99 -Wall -Wextra -Werror
  -pedantic -c *.c ("compiled, build skipped" for the share not built);
- "clean error": exit 2 and exactly one stderr line starting "onnx2mcu: error:";
- anything else is a failure: another exit status, a traceback or a multi-line message, a
  hang, a C build that fails, debris beside -o or in the temporary directory, a file
  written outside -o. A failure prints its case number, seed and mutation so that
  `--seed S --case I` reproduces it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    ("digits", ROOT / "examples" / "digits" / "digits.onnx", ROOT / "examples" / "digits" / "calib.npz"),
    ("qdq_convnet", ROOT / "tests" / "fixtures" / "qdq_convnet.onnx", ROOT / "tests" / "fixtures" / "qdq_convnet.npz"),
    ("skl_mlp", ROOT / "tests" / "fixtures" / "skl_mlp.onnx", ROOT / "tests" / "fixtures" / "skl_mlp.npz"),
    ("torch_dynamo_mlp", ROOT / "tests" / "fixtures" / "torch_dynamo_mlp.onnx",
     ROOT / "tests" / "fixtures" / "torch_dynamo_mlp.npz"),
    ("torch_resnetish", ROOT / "tests" / "fixtures" / "torch_resnetish.onnx",
     ROOT / "tests" / "fixtures" / "torch_resnetish.npz"),
]
# Models of the later operator families: int64 token ids (Gather), bool masks (Equal, Where,
# Expand), ai.onnx.ml (a linear classifier with ZipMap, a random forest), a bidirectional GRU,
# attention (MatMul of two activations, Softmax), ShuffleNet's Slice and channel shuffle, ArgMax.
SOURCES += [(name, ROOT / "tests" / "fixtures" / f"{name}.onnx", ROOT / "tests" / "fixtures" / f"{calib}.npz")
            for name, calib in [("embedding_bag", "embedding_bag"), ("masked_pooling_opset13", "masked_pooling"),
                                ("ml_logreg", "ml_logreg"), ("ml_random_forest", "ml_random_forest"),
                                ("kws_gru_opset13", "kws_gru_opset13"), ("attention_block", "attention_block"),
                                ("shufflenet_block_opset13", "shufflenet_block_opset13"),
                                ("argmax_head_opset13", "argmax_head")]]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]
CASE_SECONDS = 60
HOSTILE_NAMES = [
    "int", "return", "static", "main", "INT8_MAX", "INT8_MIN", "INT32_MAX", "UINT8_MAX", "SIZE_MAX", "NAN",
    "int8_t", "int32_t", "memcpy", "nn", "requant", "nn_conv", "x", "X", "_", "__x", "9lives", "a b", "a-b",
    "../escape", "/abs", "with\nnewline", "*/ int p; /*", "\\", "\u00e9t\u00e9", "\U0001f600", "", "n" * 5000,
    "CON", "aux", ".", "..",
]


@dataclass
class Case:
    index: int
    source: str
    mutation: str
    model: bytes
    calib: bytes | None  # None: the source's own calibration file
    args: list[str]

    def describe(self, seed: int) -> str:
        return f"case {self.index} (--seed {seed} --case {self.index}): {self.source}: {self.mutation}"


# --- structured mutations of a ModelProto; each returns a description ---------------------

def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _weird_int(rng):
    return int(_pick(rng, [-2 ** 31, -9, -2, -1, 0, 1, 2, 3, 5, 7, 64, 1000, 2 ** 31 - 1, 2 ** 40, 2 ** 62]))


def _weird_float(rng):
    return float(_pick(rng, [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-30, 0.5, 2.0, 1e30, 3.4e38]))


def m_attribute(model, rng):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return m_opset(model, rng)
    node = _pick(rng, nodes)
    a = _pick(rng, list(node.attribute))
    kind = int(rng.integers(4))
    if kind == 0:
        node.attribute.remove(a)
        return f"node '{node.name}': attribute {a.name} removed"
    if a.type == onnx.AttributeProto.INT:
        a.i = _weird_int(rng)
        return f"node '{node.name}': {a.name} = {a.i}"
    if a.type == onnx.AttributeProto.FLOAT:
        a.f = _weird_float(rng)
        return f"node '{node.name}': {a.name} = {a.f}"
    if a.type == onnx.AttributeProto.INTS:
        values = list(a.ints)
        if kind == 1 and values:
            values[int(rng.integers(len(values)))] = _weird_int(rng)
        elif kind == 2:
            values = values[:-1] if values and rng.random() < 0.5 else values + [_weird_int(rng)]
        else:
            values = [_weird_int(rng) for _ in range(int(rng.integers(0, 6)))]
        del a.ints[:]
        a.ints.extend(values)
        return f"node '{node.name}': {a.name} = {values}"
    if a.type == onnx.AttributeProto.STRING:
        a.s = _pick(rng, [b"", b"SAME_UPPER", b"VALID", b"bogus", b"\xff\xfe", b"NOTSET"])
        return f"node '{node.name}': {a.name} = {a.s!r}"
    if a.type == onnx.AttributeProto.TENSOR:
        a.t.data_type = int(_pick(rng, [0, 2, 3, 6, 7, 8, 11, 999]))
        return f"node '{node.name}': {a.name} tensor data_type = {a.t.data_type}"
    # another type: make it an int
    node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(a.name, _weird_int(rng)))
    return f"node '{node.name}': {a.name} replaced by an int"


def m_add_attribute(model, rng):
    node = _pick(rng, list(model.graph.node))
    name = _pick(rng, ["axis", "group", "pads", "strides", "kernel_shape", "transB", "alpha", "auto_pad", "bogus"])
    if any(a.name == name for a in node.attribute):
        return m_attribute(model, rng)
    value = _pick(rng, [_weird_int(rng), [_weird_int(rng)] * int(rng.integers(1, 5)), _weird_float(rng), "VALID"])
    node.attribute.append(helper.make_attribute(name, value))
    return f"node '{node.name}': attribute {name} = {value!r} added"


def _initializers(model):
    return list(model.graph.initializer)


def m_init_dims(model, rng):
    inits = _initializers(model)
    if not inits:
        return m_io_dims(model, rng)
    t = _pick(rng, inits)
    dims = list(t.dims)
    kind = int(rng.integers(4))
    if kind == 0 and dims:
        dims[int(rng.integers(len(dims)))] = _pick(rng, [0, 1, 2, 3, 2 ** 31, 2 ** 40])
    elif kind == 1 and dims:
        dims = dims[:-1]
    elif kind == 2:
        dims = dims + [1]
    else:
        dims = list(reversed(dims))
    del t.dims[:]
    t.dims.extend(dims)
    return f"initializer '{t.name}': dims = {dims}"


def m_init_values(model, rng):
    """Valid tensors with different shape or values (NaN, Inf, huge, zero-size)."""
    inits = _initializers(model)
    if not inits:
        return m_io_dims(model, rng)
    t = _pick(rng, inits)
    try:
        a = numpy_helper.to_array(t).copy()
    except Exception:  # unreadable (a dtype onnx cannot convert): mutate its bytes instead
        return m_raw_data(model, rng)
    kind = int(rng.integers(5))
    if kind == 0 and a.size and a.dtype.kind == "f":
        a.reshape(-1)[int(rng.integers(a.size))] = _weird_float(rng)
        what = "one value made extreme"
    elif kind == 1:
        a = a.reshape(-1)[: int(rng.integers(0, max(1, a.size)))]
        what = f"replaced by {a.size} values, 1-D"
    elif kind == 2:
        a = np.zeros((0,) + a.shape[1:], a.dtype) if a.ndim else np.zeros((0,), a.dtype)
        what = "made zero-size"
    elif kind == 3:
        a = a.reshape(-1)[:1].reshape(()) if a.size else a
        what = "made a scalar"
    else:
        a = a.astype(_pick(rng, [np.float64, np.int64, np.int32, np.int8, np.uint8, np.float16, np.bool_]))
        what = f"cast to {a.dtype}"
    t.CopyFrom(numpy_helper.from_array(a, t.name))
    return f"initializer '{t.name}': {what}"


def m_dtype(model, rng):
    inits = _initializers(model)
    new = int(_pick(rng, list(range(0, 24)) + [999, -1]))
    if inits and rng.random() < 0.7:
        t = _pick(rng, inits)
        t.data_type = new if new >= 0 else 0
        return f"initializer '{t.name}': data_type = {t.data_type}"
    vi = _pick(rng, list(model.graph.input) + list(model.graph.output))
    vi.type.tensor_type.elem_type = new if new >= 0 else 0
    return f"value '{vi.name}': elem_type = {vi.type.tensor_type.elem_type}"


def m_raw_data(model, rng):
    inits = [t for t in _initializers(model) if t.raw_data]
    if not inits:
        return m_init_dims(model, rng)
    t = _pick(rng, inits)
    raw = bytearray(t.raw_data)
    kind = int(rng.integers(4))
    if kind == 0:
        raw = raw[: int(rng.integers(len(raw)))]
        what = f"truncated to {len(raw)} bytes"
    elif kind == 1:
        raw += bytes(int(rng.integers(1, 9)))
        what = f"extended to {len(raw)} bytes"
    elif kind == 2:
        raw = bytearray(rng.integers(0, 256, len(raw), dtype=np.uint8).tobytes())
        what = "random bytes"
    else:
        raw = bytearray(b"\xff" * len(raw))  # NaN in every float
        what = "all bytes 0xff"
    t.raw_data = bytes(raw)
    return f"initializer '{t.name}': raw_data {what}"


def _all_value_names(model):
    g = model.graph
    names = [v.name for v in g.input] + [t.name for t in g.initializer]
    names += [o for n in g.node for o in n.output if o]
    return list(dict.fromkeys(names))


def _rename(model, old, new):
    g = model.graph
    for coll in (g.input, g.output, g.value_info, g.initializer):
        for v in coll:
            if v.name == old:
                v.name = new
    for n in g.node:
        for seq in (n.input, n.output):
            for i, x in enumerate(seq):
                if x == old:
                    seq[i] = new


def m_name(model, rng):
    new = _pick(rng, HOSTILE_NAMES)
    kind = int(rng.integers(4))
    if kind == 0:
        node = _pick(rng, list(model.graph.node))
        node.name = new
        return f"node '{node.name[:40]}' renamed to {new[:40]!r}"
    if kind == 1:
        old = _pick(rng, [v.name for v in model.graph.input] + [v.name for v in model.graph.output])
    else:
        old = _pick(rng, _all_value_names(model))
    if kind == 3 and rng.random() < 0.5:  # only where produced or only where used: a dangling name
        for n in model.graph.node:
            for i, x in enumerate(n.input):
                if x == old:
                    n.input[i] = new
        return f"uses of '{old[:40]}' renamed to {new[:40]!r}"
    _rename(model, old, new)
    return f"value '{old[:40]}' renamed to {new[:40]!r}"


def m_duplicate(model, rng):
    names = _all_value_names(model)
    a, b = _pick(rng, names), _pick(rng, names)
    kind = int(rng.integers(3))
    if kind == 0:
        _rename(model, a, b)
        return f"value '{a[:40]}' renamed to the existing '{b[:40]}'"
    if kind == 1 and model.graph.initializer:
        t = _pick(rng, _initializers(model))
        model.graph.initializer.append(copy.deepcopy(t))
        return f"initializer '{t.name}' duplicated"
    if kind == 2 and len(model.graph.output):
        model.graph.output.append(copy.deepcopy(model.graph.output[0]))
        return f"output '{model.graph.output[0].name}' listed twice"
    node = _pick(rng, list(model.graph.node))
    model.graph.node.append(copy.deepcopy(node))
    return f"node '{node.name}' duplicated"


def m_node_order(model, rng):
    nodes = list(model.graph.node)
    kind = int(rng.integers(3))
    if kind == 0:
        order = rng.permutation(len(nodes))
        what = "shuffled"
    elif kind == 1:
        order = list(reversed(range(len(nodes))))
        what = "reversed"
    else:
        i = int(rng.integers(len(nodes)))
        order = [k for k in range(len(nodes)) if k != i]
        what = f"node {i} ('{nodes[i].name}') removed"
    new = [copy.deepcopy(nodes[k]) for k in order]
    del model.graph.node[:]
    model.graph.node.extend(new)
    return f"nodes {what}"


def m_cycle(model, rng):
    nodes = list(model.graph.node)
    if len(nodes) < 2:
        return m_node_order(model, rng)
    i = int(rng.integers(len(nodes) - 1))
    j = int(rng.integers(i, len(nodes)))
    src = nodes[j].output[0]
    k = int(rng.integers(max(1, len(nodes[i].input))))
    if len(nodes[i].input):
        nodes[i].input[k] = src
    else:
        nodes[i].input.append(src)
    return f"node {i} ('{nodes[i].name}') input {k} wired to the output of node {j}: a cycle"


def m_opset(model, rng):
    if rng.random() < 0.5:
        v = int(_pick(rng, [0, 1, 6, 7, 9, 10, 11, 13, 17, 21, 22, 23, 25, 99, 2 ** 40]))
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = v
        return f"opset = {v}"
    v = int(_pick(rng, [0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 99]))
    model.ir_version = v
    return f"ir_version = {v}"


def m_io_dims(model, rng):
    vi = _pick(rng, list(model.graph.input) + list(model.graph.output))
    dims = vi.type.tensor_type.shape.dim
    kind = int(rng.integers(4))
    if kind == 0 and len(dims):
        d = dims[int(rng.integers(len(dims)))]
        value = _pick(rng, [0, 2, 3, 1000, 10 ** 6, 2 ** 31, 2 ** 40, 2 ** 62])
        d.dim_value = value
        return f"value '{vi.name}': a dimension = {value}"
    if kind == 1 and len(dims):
        d = dims[int(rng.integers(len(dims)))]
        d.dim_param = _pick(rng, ["N", "batch", "", "x y"])
        return f"value '{vi.name}': a dimension made symbolic"
    if kind == 2:
        dims.add().dim_value = int(_pick(rng, [1, 2, 7]))
        return f"value '{vi.name}': a dimension added"
    vi.type.tensor_type.ClearField("shape")
    return f"value '{vi.name}': shape removed"


def m_huge_input(model, rng):
    vi = model.graph.input[0]
    dims = vi.type.tensor_type.shape.dim
    if not len(dims):
        return m_io_dims(model, rng)
    d = dims[-1]
    d.dim_value = int(_pick(rng, [2 ** 16, 2 ** 20, 2 ** 24, 2 ** 31, 2 ** 40]))
    return f"input '{vi.name}': last dimension = {d.dim_value}"


# Attribute values that the operators' own rules must judge: out-of-range axes, unknown modes,
# directions and element types, permutations that are not one.
OP_ATTRIBUTES = {
    "Gather": {"axis": [-4, -1, 1, 2, 3, 7]},
    "Slice": {},
    "Split": {"axis": [-5, 1, 3, 9], "num_outputs": [0, 1, 3, 1000], "split": [[0], [1, 1], [-1, 3], [2 ** 40]]},
    "Concat": {"axis": [-5, 2, 3, 9]},
    "Expand": {},
    "Transpose": {"perm": [[0, 0, 1], [3, 2, 1, 0, 4], [0, 2, 1], [], [0, 1, 9, 2]]},
    "Softmax": {"axis": [-9, -2, 0, 1, 2, 5]},
    "ArgMax": {"axis": [-3, 0, 1, 2, 5], "keepdims": [0, 1, 2, -1], "select_last_index": [0, 1, 7]},
    "ReduceMean": {"axes": [[], [0], [1, 1], [-1], [5]], "keepdims": [0, 1, 3]},
    "ReduceMax": {"axes": [[], [0], [2], [-1], [7]], "keepdims": [0, 1, 3]},
    "Cast": {"to": [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 16, 999]},
    "GRU": {"direction": [b"forward", b"reverse", b"bidirectional", b"sideways", b""],
            "hidden_size": [0, 1, 31, 33, -1, 2 ** 31], "linear_before_reset": [0, 1, 2],
            "layout": [0, 1, 2], "clip": [0.0, -1.0, 3.0, float("nan")],
            "activations": [[b"Sigmoid", b"Tanh"], [b"Relu", b"Tanh"], [b"Bogus", b"Tanh"], [b"Sigmoid"]],
            "activation_alpha": [[0.5], []]},
    "LSTM": {"direction": [b"forward", b"reverse", b"bidirectional", b"Forward"], "hidden_size": [0, 1, 15, -1],
             "input_forget": [0, 1, 5], "layout": [0, 1], "clip": [0.0, 2.0, float("inf")],
             "activations": [[b"Sigmoid", b"Tanh", b"Tanh"], [b"Sigmoid", b"Tanh"], [b"HardSigmoid", b"Tanh", b"Tanh"]]},
    "Resize": {"mode": [b"nearest", b"linear", b"cubic", b"bogus"],
               "coordinate_transformation_mode": [b"half_pixel", b"align_corners", b"asymmetric",
                                                  b"pytorch_half_pixel", b"tf_crop_and_resize", b"bogus"],
               "nearest_mode": [b"round_prefer_floor", b"floor", b"ceil", b"bogus"], "antialias": [0, 1],
               "exclude_outside": [0, 1], "keep_aspect_ratio_policy": [b"stretch", b"not_larger", b"x"],
               "axes": [[2, 3], [3, 3], [-1], [9]]},
    "ConvTranspose": {"output_padding": [[1, 1], [5, 5], [-1, 0], [1]], "strides": [[0, 0], [3, 3], [1]],
                      "group": [0, 2, 3, 1000], "dilations": [[2, 2], [0, 1]], "auto_pad": [b"SAME_UPPER", b"VALID"],
                      "output_shape": [[1, 1], [100, 100], [3]]},
    "LayerNormalization": {"axis": [-9, -1, 0, 1, 2, 5], "epsilon": [0.0, -1.0, float("nan"), 1e30],
                           "stash_type": [0, 1, 10]},
    "LogSoftmax": {"axis": [-9, -2, 0, 1, 5]},
    "Gelu": {"approximate": [b"none", b"tanh", b"bogus"]},
    "Elu": {"alpha": [0.0, -1.0, float("nan"), 1e30]},
    "ReduceL2": {"axes": [[], [0], [9], [1, 1]], "keepdims": [0, 1, 2], "noop_with_empty_axes": [0, 1]},
    "Reshape": {"allowzero": [0, 1, 2]},
    "Equal": {}, "Where": {},
    "LinearClassifier": {"multi_class": [0, 1, 2], "post_transform": [b"NONE", b"LOGISTIC", b"SOFTMAX_ZERO",
                                                                      b"PROBIT", b"BOGUS"]},
    "Normalizer": {"norm": [b"L1", b"L2", b"MAX", b"l1", b"BOGUS"]},
    "ZipMap": {"classlabels_int64s": [[0, 1], [0, 1, 2, 3]], "classlabels_strings": [[b"a", b"b", b"c"]]},
    "TreeEnsembleClassifier": {"post_transform": [b"NONE", b"SOFTMAX", b"LOGISTIC", b"PROBIT", b"BOGUS"],
                               "classlabels_strings": [[b"x", b"y", b"z"]]},
}


def m_op_attribute(model, rng):
    """An attribute of one of the newer operators set to a value its rule must judge; for
    ai.onnx.ml list attributes, one list made a different length than its siblings or given an
    out-of-range entry."""
    nodes = [n for n in model.graph.node if n.op_type in OP_ATTRIBUTES]
    if not nodes:
        return m_attribute(model, rng)
    node = _pick(rng, nodes)
    lists = [a for a in node.attribute if a.type in (onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS,
                                                      onnx.AttributeProto.STRINGS)]
    if node.domain == "ai.onnx.ml" and lists and rng.random() < 0.6:
        a = _pick(rng, lists)
        field = {onnx.AttributeProto.INTS: a.ints, onnx.AttributeProto.FLOATS: a.floats,
                 onnx.AttributeProto.STRINGS: a.strings}[a.type]
        kind = int(rng.integers(3))
        if kind == 0 and len(field):
            del field[int(rng.integers(len(field)))]
            return f"node '{node.name}': {a.name} one entry shorter ({len(field)})"
        if kind == 1 and len(field):
            field.append(field[-1])
            return f"node '{node.name}': {a.name} one entry longer ({len(field)})"
        if len(field):
            i = int(rng.integers(len(field)))
            if a.type == onnx.AttributeProto.INTS:
                field[i] = _weird_int(rng)
            elif a.type == onnx.AttributeProto.FLOATS:
                field[i] = _weird_float(rng)
            else:
                field[i] = _pick(rng, [b"", b"BRANCH_XX", b"LEAF", b"\xff"])
            return f"node '{node.name}': {a.name}[{i}] = {field[i]!r}"
    choices = OP_ATTRIBUTES[node.op_type]
    if not choices:
        return m_int_constant(model, rng)
    name = _pick(rng, sorted(choices))
    value = _pick(rng, choices[name])
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    if isinstance(value, list) and not value:
        node.attribute.append(helper.make_attribute(name, value, attr_type=onnx.AttributeProto.INTS))
    else:
        node.attribute.append(helper.make_attribute(name, value))
    return f"node '{node.name}': {name} = {value!r}"


def _int_constants(model):
    """(description, getter, setter) of every integer constant: initializers and Constant nodes."""
    found = []
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            found.append((f"initializer '{t.name}'", t))
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR and a.t.data_type in (
                        onnx.TensorProto.INT64, onnx.TensorProto.INT32):
                    found.append((f"constant '{n.output[0]}'", a.t))
    return found


def m_int_constant(model, rng):
    """An integer constant (indices, shapes, starts and ends, split sizes, axes) given an
    out-of-range, negative or huge entry, or one entry more or fewer."""
    found = _int_constants(model)
    if not found:
        return m_init_values(model, rng)
    what, t = _pick(rng, found)
    try:
        a = numpy_helper.to_array(t).copy()
    except Exception:  # unreadable after an earlier mutation: mutate its bytes instead
        return m_raw_data(model, rng)
    kind = int(rng.integers(3))
    if kind == 0 and a.size:
        value = _pick(rng, [-2 ** 31, -2 ** 40, -100, -3, -1, 0, 1, 2, 3, 7, 63, 64, 1000, 2 ** 31 - 1, 2 ** 62])
        a.reshape(-1)[int(rng.integers(a.size))] = np.clip(value, np.iinfo(a.dtype).min, np.iinfo(a.dtype).max)
        desc = f"entry = {a.reshape(-1).tolist()[:8]}"
    elif kind == 1:
        a = np.append(a.reshape(-1), a.reshape(-1)[-1:] if a.size else [1]).astype(a.dtype)
        desc = f"one entry more ({a.size})"
    else:
        a = a.reshape(-1)[:-1] if a.size > 1 else a.reshape(-1)
        desc = f"1-D, {a.size} entries"
    t.CopyFrom(numpy_helper.from_array(a, t.name))
    return f"{what}: {desc}"


def m_io_type(model, rng):
    """A model input or output declared another element type: float as int64/int32/bool, token
    ids as float, a label as float or bool."""
    vi = _pick(rng, list(model.graph.input) + list(model.graph.output))
    if not vi.type.HasField("tensor_type"):
        return m_dtype(model, rng)
    new = int(_pick(rng, [onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.INT32,
                          onnx.TensorProto.BOOL, onnx.TensorProto.UINT8, onnx.TensorProto.INT8,
                          onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE]))
    vi.type.tensor_type.elem_type = new
    return f"value '{vi.name}': elem_type = {onnx.TensorProto.DataType.Name(new)}"


STRUCTURED = [m_attribute, m_add_attribute, m_init_dims, m_init_values, m_dtype, m_raw_data, m_name,
              m_duplicate, m_node_order, m_cycle, m_opset, m_io_dims, m_huge_input, m_op_attribute,
              m_int_constant, m_io_type]


# --- byte-level mutations of the file -------------------------------------------------------

def b_truncate(data: bytes, rng) -> tuple[bytes, str]:
    n = int(rng.integers(len(data)))
    return data[:n], f"file truncated to {n} of {len(data)} bytes"


def b_flip(data: bytes, rng) -> tuple[bytes, str]:
    raw = bytearray(data)
    where = sorted(int(rng.integers(len(raw))) for _ in range(int(rng.integers(1, 9))))
    for w in where:
        raw[w] ^= 1 << int(rng.integers(8))
    return bytes(raw), f"bits flipped at offsets {where}"


# --- malformed sample files -----------------------------------------------------------------

def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npz_case(calib_path: Path, rng) -> tuple[bytes, str]:
    good = calib_path.read_bytes()
    kind = int(rng.integers(8))
    if kind == 0:
        return b"", "calib: empty file"
    if kind == 1:
        n = int(rng.integers(1, len(good)))
        return good[:n], f"calib: truncated to {n} bytes"
    if kind == 2:
        with np.load(calib_path) as z:
            first = z[z.files[0]]
        return _npy_bytes(first), "calib: a .npy under the .npz name"
    buf = io.BytesIO()
    with np.load(calib_path) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(iter(arrays))
    with zipfile.ZipFile(buf, "w") as zf:
        if kind == 3:
            zf.writestr(f"{key}.npy", b"not a numpy file")
            what = "a member that is not .npy"
        elif kind == 4:
            head = io.BytesIO()
            np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                        "shape": (10 ** 12,) + arrays[key].shape[1:]})
            zf.writestr(f"{key}.npy", head.getvalue() + arrays[key][:2].astype("<f4").tobytes())
            what = "header claiming 10^12 samples"
        elif kind == 5:
            zf.writestr(f"{key}.npy", _npy_bytes(np.full(arrays[key].shape, np.inf)))
            what = "samples all Inf"
        elif kind == 6:
            zf.writestr(f"{key}.npy", _npy_bytes(np.zeros((0,) + arrays[key].shape[1:], np.float32)))
            what = "zero samples"
        else:
            zf.writestr("readme.txt", b"hello")
            what = "no array for the input"
    return buf.getvalue(), f"calib: {what}"


# --- case generation ------------------------------------------------------------------------

def make_case(seed: int, index: int) -> Case:
    rng = np.random.default_rng([seed, index])
    source, model_path, calib_path = SOURCES[int(rng.integers(len(SOURCES)))]
    data = model_path.read_bytes()
    args = ["--float"] if rng.random() < 0.25 else []
    roll = rng.random()
    calib = None
    if roll < 0.12:
        data, what = (b_truncate if rng.random() < 0.5 else b_flip)(data, rng)
    elif roll < 0.22:
        calib, what = npz_case(calib_path, rng)
        args = []
    else:
        model = onnx.load_from_string(data)
        mutation = STRUCTURED[int(rng.integers(len(STRUCTURED)))]
        what = mutation(model, rng)
        if rng.random() < 0.2:  # a second mutation now and then
            what += "; " + STRUCTURED[int(rng.integers(len(STRUCTURED)))](model, rng)
        data = model.SerializeToString()
        if rng.random() < 0.05:
            name = _pick(rng, HOSTILE_NAMES)
            args += ["--name", name]
            what += f"; --name {name[:40]!r}"
    return Case(index, source, what, data, calib, args)


# --- running one case -----------------------------------------------------------------------

def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _alarm(signum, frame):
    raise TimeoutError("case timed out")


def run_case(seed: int, index: int, build: bool, workdir: str) -> tuple[str, str]:
    """(outcome, detail) for one case; outcome is "compiled", "compiled, build skipped",
    "clean error" or a failure kind."""
    from codegen.cli import main

    case = make_case(seed, index)
    root = Path(tempfile.mkdtemp(prefix=f"case{index}-", dir=workdir))
    try:
        model = root / "model.onnx"
        model.write_bytes(case.model)
        calib = root / "calib.npz"
        if case.calib is None:
            shutil.copyfile(next(c for s, _, c in SOURCES if s == case.source), calib)
        else:
            calib.write_bytes(case.calib)
        tmp, cwd = root / "tmp", root / "cwd"
        tmp.mkdir()
        cwd.mkdir()
        before = _listing(root)
        out = root / "out"
        argv = ["compile", str(model), "-o", str(out), *case.args]
        if "--float" not in case.args:
            argv += ["--calib", str(calib)]
        err, std = io.StringIO(), io.StringIO()
        old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
        os.chdir(cwd)
        os.environ["TMPDIR"] = str(tmp)
        tempfile.tempdir = str(tmp)
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(CASE_SECONDS)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
                try:
                    status = main(argv)
                except SystemExit as e:
                    status = e.code
        except TimeoutError:
            return "hang", f"no result within {CASE_SECONDS} s"
        except MemoryError:
            return "exception", "MemoryError escaped main"
        finally:
            signal.alarm(0)
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
        stderr = err.getvalue()
        after = _listing(root)
        if _listing(tmp):
            return "debris", f"left in the temporary directory: {_listing(tmp)[:5]}"
        if _listing(cwd):
            return "write outside -o", f"written in the working directory: {_listing(cwd)[:5]}"
        extra = [p for p in after if p not in before and p != "out" and not p.startswith("out/")]
        if extra:
            return "debris", f"left beside -o: {extra[:5]}"
        if status == 2:
            if stderr.count("\n") != 1 or not stderr.startswith("onnx2mcu: error:"):
                return "bad error message", repr(stderr[:500])
            if out.exists():
                return "debris", "-o written although the compile failed"
            return "clean error", stderr.strip()
        if status != 0:
            return f"exit {status}", repr(stderr[:500])
        if stderr:
            return "stderr on success", repr(stderr[:500])
        if not out.is_dir():
            return "no output", "exit 0 without the output folder"
        if not build:
            return "compiled, build skipped", ""
        sources = sorted(str(p) for p in out.glob("*.c"))
        proc = subprocess.run(["gcc", *STRICT, *sources], cwd=tmp, capture_output=True, text=True, timeout=120)
        if proc.returncode:
            return "C build failed", (proc.stderr.strip().splitlines() or ["?"])[0][:300]
        return "compiled", ""
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _worker_init():
    try:
        import resource

        limit = 3 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    from codegen import cli  # imported once per worker, not once per case


def _run(job):
    seed, index, build, workdir = job
    start = time.perf_counter()
    try:
        result = run_case(seed, index, build, workdir)
    except Exception as e:  # a failure of the harness or of a mutation itself
        result = ("harness error", f"{type(e).__name__}: {e}")
    return index, result, time.perf_counter() - start


OK = ("compiled", "compiled, build skipped", "clean error")


def campaign(cases: int, seed: int, jobs: int = 2, build_share: float = 1.0, first: int = 0,
             progress=None, seconds: Counter | None = None) -> tuple[Counter, list[str]]:
    """Run cases first .. first+cases-1; return the counts per outcome and one line per failure
    (and add each outcome's seconds to `seconds`)."""
    counts: Counter = Counter()
    seconds = Counter() if seconds is None else seconds
    failures = []
    workdir = tempfile.mkdtemp(prefix="onnx2mcu-fuzz-")
    step = max(1, round(1 / build_share)) if build_share > 0 else 0
    jobs_list = [(seed, i, bool(step) and i % step == 0, workdir) for i in range(first, first + cases)]
    ctx = multiprocessing.get_context("fork")
    pending = set(range(first, first + cases))
    try:
        with ctx.Pool(jobs, initializer=_worker_init, maxtasksperchild=200) as pool:
            results = pool.imap_unordered(_run, jobs_list)
            while pending:
                try:  # a worker killed outright (a crash, the OOM killer) loses its case: stop waiting
                    index, (outcome, detail), spent = results.next(timeout=CASE_SECONDS + 150)
                except multiprocessing.TimeoutError:
                    for index in sorted(pending):
                        counts["worker lost"] += 1
                        failures.append(f"{make_case(seed, index).describe(seed)} -> worker lost: no result "
                                        f"(a crash or a hang the alarm did not stop)")
                    pool.terminate()
                    break
                pending.discard(index)
                counts[outcome] += 1
                seconds[outcome] += spent
                if outcome not in OK:
                    try:
                        what = make_case(seed, index).describe(seed)
                    except Exception:  # the mutation itself failed: a harness error, reported as such
                        what = f"case {index} (--seed {seed} --case {index})"
                    failures.append(f"{what} -> {outcome}: {detail}")
                if progress:
                    progress(cases - len(pending), counts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return counts, failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--case", type=int, help="run only this case (as numbered by --seed)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--build-share", type=float, default=1.0, help="share of compiled cases whose C is built")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case's outcome")
    args = p.parse_args(argv)
    if args.case is not None:
        case = make_case(args.seed, args.case)
        workdir = tempfile.mkdtemp(prefix="onnx2mcu-fuzz-")
        try:
            outcome, detail = run_case(args.seed, args.case, True, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"{case.describe(args.seed)} -> {outcome}: {detail}")
        return 0 if outcome in OK else 1
    start = time.time()

    def progress(done, counts):
        failed = sum(v for k, v in counts.items() if k not in OK)
        if sys.stderr.isatty():
            print(f"\r{done}/{args.cases} cases, {failed} failures", end="", file=sys.stderr, flush=True)
        elif done % 500 == 0:
            print(f"{done}/{args.cases} cases, {failed} failures, {time.time() - start:.0f} s", file=sys.stderr,
                  flush=True)

    seconds: Counter = Counter()
    counts, failures = campaign(args.cases, args.seed, args.jobs, args.build_share, progress=progress,
                                seconds=seconds)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for line in failures:
        print(line)
    print(f"{args.cases} cases, seed {args.seed}, {time.time() - start:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    if args.verbose:
        for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {k}: {seconds[k] / v:.2f} s per case")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
