"""Read an ONNX model from a path, bytes or a ModelProto and check it, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import onnx.version_converter
from google.protobuf.message import DecodeError

from codegen.errors import CompileError

MIN_OPSET = 11


def load_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Return (model with external data loaded, a label for messages)."""
    if isinstance(source, onnx.ModelProto):
        model, label = source, source.graph.name or "model"
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise CompileError(f"{label}: no such file")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as e:
            raise CompileError(f"{label}: not an ONNX model ({_first_line(e) or 'cannot parse'})") from None
        if not model.HasField("graph") or not model.opset_import:
            raise CompileError(f"{label}: not an ONNX model (no graph or opset)")
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, TypeError, onnx.checker.ValidationError) as e:  # TypeError: a location not UTF-8
            raise CompileError(f"{label}: cannot read external data: {_first_line(e)}") from None
    return _check(model, label), label


def _check(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Check the model; one older than MIN_OPSET is upgraded by onnx's version converter."""
    _check_text(model, label)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as e:
        raise CompileError(f"{label}: invalid ONNX model: {_first_line(e)}") from None
    opset = default_opset(model)
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        raise CompileError(f"{label}: the model imports no default-domain opset")
    if opset > newest:
        raise CompileError(f"{label}: opset {opset} is newer than this onnx knows ({newest})")
    if opset < MIN_OPSET:
        legacy = {n.output[0] for n in model.graph.node if n.op_type in ("Resize", "Upsample") and n.output}
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
            onnx.checker.check_model(model)
        except Exception as e:  # the converter raises assorted types
            raise CompileError(
                f"{label}: opset {opset} is not supported ({MIN_OPSET} to {newest} are) and upgrading it "
                f"failed: {_first_line(e)}"
            ) from None
        _keep_legacy_resize(model, legacy, label)
    return model


def _keep_legacy_resize(model: onnx.ModelProto, outputs: set[str], label: str) -> None:
    """Resize-10 and Upsample sample at x / scale and (in onnxruntime) round nearest down when
    enlarging, up when shrinking; the version converter makes them Resize-11 nodes with its
    half_pixel default. Give those nodes back their coordinates and rounding."""
    consts = {i.name: i for i in model.graph.initializer}
    consts.update({n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant"
                   for a in n.attribute if a.name == "value"})
    for node in model.graph.node:
        if node.op_type != "Resize" or not node.output or node.output[0] not in outputs:
            continue
        attrs = {a.name: a for a in node.attribute}
        if "coordinate_transformation_mode" not in attrs:
            node.attribute.append(onnx.helper.make_attribute("coordinate_transformation_mode", "asymmetric"))
        scales = consts.get(node.input[2]) if len(node.input) > 2 else None
        mode = attrs["mode"].s.decode() if "mode" in attrs else "nearest"
        if mode != "nearest" or "nearest_mode" in attrs or scales is None:
            continue
        values = onnx.numpy_helper.to_array(scales).reshape(-1)
        if (values > 1).any() and (values < 1).any():
            raise CompileError(f"{label}: Resize node '{node.name or node.output[0]}' of opset 10 enlarges and shrinks at once "
                               "(its nearest rounding differs between the two); not supported")
        node.attribute.append(onnx.helper.make_attribute("nearest_mode", "ceil" if (values < 1).any() else "floor"))


def _check_text(model: onnx.ModelProto, label: str) -> None:
    """Names are text: protobuf hands a string field that is not valid UTF-8 over as bytes."""
    g = model.graph
    named = [("graph", g.name)] + [("opset domain", o.domain) for o in model.opset_import]
    named += [("value", v.name) for v in (*g.input, *g.output, *g.value_info, *g.initializer)]
    for n in g.node:
        named += [("node", n.name), ("operator", n.op_type), ("domain", n.domain)]
        named += [("value", v) for v in (*n.input, *n.output)] + [("attribute", a.name) for a in n.attribute]
    for what, text in named:
        if isinstance(text, bytes):
            raise CompileError(f"{label}: {what} name {text!r} is not valid UTF-8")


def default_opset(model: onnx.ModelProto) -> int | None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    if model.graph.node and all(n.domain == "ai.onnx.ml" for n in model.graph.node):
        return onnx.defs.onnx_opset_version()  # a model of ai.onnx.ml operators only needs none
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
