"""Turn a checked ONNX model into an IR Graph.

Rules, in the order they apply:
1. Initializers and Constant nodes become constant tensors; an initializer that is also
   listed as a graph input is a constant.
2. Model inputs need static shapes; a symbolic first (batch) dimension becomes 1. They are
   float32, int64 or int32 (carried as int32: token ids, indices) or bool (uint8).
3. A node whose inputs are all constant is evaluated now (onnx.reference), as is Shape of
   a tensor whose shape is known: this folds the Shape -> Gather -> Concat -> Reshape
   chains of torch exports into one constant, and CastLike of a constant (only the element
   type of its second input matters).
4. ZipMap (ai.onnx.ml) becomes Identity: its output is its input's float scores, under the
   output's name. Identity, Dropout (inference; a mask output only if nothing reads it) and a
   Cast to the element type the tensor already has (int64 and int32 are one) become Identity.
5. Every other node must be a registered operator; its output shapes and element types come
   from the op's own rules. Run-time inputs other than float32 reach only the families that
   take them (Op.int_inputs).
6. Simplifications then run (frontend/simplify.py), and every remaining node is checked
   by its op. All rejections are gathered into one CompileError.
"""

from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from codegen.errors import CompileError, Unsupported
from codegen.frontend import qdq, simplify
from codegen.frontend.load import default_opset, load_model
from codegen.ir import Graph, Node, Tensor
from codegen.ops import get_op, supported_op_types
from codegen.qparams import QParams

_FLOAT = onnx.TensorProto.FLOAT
ML_DOMAIN = "ai.onnx.ml"  # classic machine learning (codegen/ops/ml.py)
# ONNX element types of run-time tensors -> the IR's (codegen/ops/base.py, section 9)
RUNTIME_TYPES = {_FLOAT: "float32", onnx.TensorProto.INT64: "int32", onnx.TensorProto.INT32: "int32",
                 onnx.TensorProto.BOOL: "uint8"}
MAX_ELEMENTS = 1 << 26  # per tensor: 256 MiB of float32


def import_model(source: str | os.PathLike | onnx.ModelProto, label: str | None = None,
                 name: str | None = None) -> Graph:
    """`source` is a path or a ModelProto; a ModelProto is checked again unless `label` is given
    (the caller loaded and checked it with load_model)."""
    if label is None:
        model, label = load_model(source)
    else:
        model = source
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # the inferencer raises several unrelated types
        raise CompileError(f"{label}: shape inference failed: {str(e).strip().splitlines()[0]}") from None
    importer = _Importer(model, label)
    graph = importer.run(name or model.graph.name or "model")
    simplify.run(graph)
    _check_nodes(graph, label, importer.rejected)
    return graph


class _Importer:
    def __init__(self, model: onnx.ModelProto, label: str):
        self.model = model
        self.label = label
        self.opset = default_opset(model)
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.rejected: list[tuple[str, str, str]] = []  # (op_type, node name, why)
        self.unknown: set[str] = set()  # tensors downstream of a rejected node
        self.quantized: dict[str, tuple[str, qdq.Quantization]] = {}  # QuantizeLinear output -> (input, its)
        self.given: dict[str, QParams] = {}  # activation quantization that a QDQ model carries
        self.bounds: set[str] = set()  # Clip's min and max inputs: the only constants that may be infinite

    def run(self, name: str) -> Graph:
        g = self.model.graph
        self.bounds = {i for n in g.node if n.op_type == "Clip" for i in n.input[1:3]}
        self.read = {i for n in g.node for i in n.input if i} | {o.name for o in g.output}
        for init in g.initializer:
            self._add_const(init.name, _tensor_array(init, f"{self.label}: initializer", init.name in self.bounds))
        inputs = [vi for vi in g.input if vi.name not in self.tensors]
        for vi in inputs:
            self.tensors[vi.name] = Tensor(vi.name, self._input_shape(vi), RUNTIME_TYPES[vi.type.tensor_type.elem_type])
        for index, proto in enumerate(g.node):
            self._import_node(proto, index)
        outputs = [o.name for o in g.output]
        for o in outputs:
            t = self.tensors.get(o)
            if t is not None and t.is_const:
                self.rejected.append(("Output", o, "the output is a constant; nothing to compute"))
            elif o in [vi.name for vi in inputs]:
                self.rejected.append(("Output", o, "the output is a model input; nothing to compute"))
            elif o in self.quantized:
                self.rejected.append(("Output", o, f"the output is a QuantizeLinear's {t.dtype}; outputs are "
                                                   "float32 (end with DequantizeLinear)"))
        if self.rejected:
            _raise_rejected(self.label, self.rejected)
        graph = Graph(name, self.tensors, self.nodes, [vi.name for vi in inputs], outputs, self.opset)
        graph.meta["onnx_types"] = {vi.name: onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name
                                    for vi in inputs}
        if self.given:
            graph.meta["qdq"] = dict(self.given)
        return graph

    def _input_shape(self, vi: onnx.ValueInfoProto) -> tuple[int, ...]:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise CompileError(f"{self.label}: input '{vi.name}' is not a tensor")
        if tt.elem_type not in RUNTIME_TYPES:
            dtype = _dtype_name(tt.elem_type)
            raise CompileError(f"{self.label}: input '{vi.name}' has element type {dtype}; float32, int64, int32 "
                               "and bool are supported")
        if not tt.HasField("shape"):
            raise CompileError(f"{self.label}: input '{vi.name}' has no shape; static shapes are required")
        shape = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(d.dim_value)
            elif i == 0 and not d.HasField("dim_value"):  # a symbolic or unnamed batch dimension
                shape.append(1)
            else:
                what = d.dim_param or "unknown"
                raise CompileError(
                    f"{self.label}: input '{vi.name}' dimension {i} is dynamic ({what}); "
                    "only the first (batch) dimension may be symbolic"
                )
        if math.prod(shape) > MAX_ELEMENTS:
            raise CompileError(f"{self.label}: input '{_printable(vi.name)}' of shape {tuple(shape)} has more than "
                               f"{MAX_ELEMENTS} elements, far beyond a microcontroller's memory")
        return tuple(shape)

    def _add_const(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        self.tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value)

    def _import_node(self, proto: onnx.NodeProto, index: int) -> None:
        name = proto.name or f"{proto.op_type}_{index}"
        ins = list(proto.input)
        if proto.domain not in ("", "ai.onnx") and not (proto.domain == ML_DOMAIN and get_op(proto.op_type)):
            if proto.domain == ML_DOMAIN and proto.op_type != "ZipMap":
                return self._reject(proto, name, "operator not supported")
            if proto.domain != ML_DOMAIN:
                return self._reject(proto, name, f"operator domain '{proto.domain}' is not supported")
        if any(i in self.unknown for i in ins):
            self.unknown.update(proto.output)
            return None
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in proto.attribute):
            return self._reject(proto, name, "control flow (subgraphs) is not supported")
        present = [i for i in ins if i]
        if proto.op_type in ("QuantizeLinear", "DequantizeLinear") and not self.tensors[ins[0]].is_const:
            return self._qdq(proto, name, ins)
        if all(self.tensors[i].is_const for i in present) or proto.op_type in ("Shape", "Size") or \
                (proto.op_type == "CastLike" and ins and ins[0] and self.tensors[ins[0]].is_const):
            return self._fold(proto, name)
        attrs = {a.name: _attr_value(a) for a in proto.attribute}
        op_type = proto.op_type
        if op_type == "ZipMap" and proto.domain == ML_DOMAIN:  # rule 4: its input, under its output's name
            if self.tensors[ins[0]].dtype != "float32":
                return self._reject(proto, name, f"input '{ins[0]}' is {self.tensors[ins[0]].dtype}; float32 is supported")
            labels = attrs.get("classlabels_int64s", attrs.get("classlabels_strings", []))
            scores = self.tensors[ins[0]].shape
            if not scores or len(labels) != scores[-1]:
                return self._reject(proto, name, f"{len(labels)} class labels for {scores[-1] if scores else 0} "
                                                 f"scores per row")
            op_type, ins, attrs = "Identity", ins[:1], {}
        if op_type == "Dropout" or (op_type == "Cast" and self._is_noop_cast(proto, attrs)):
            if op_type == "Dropout" and len(proto.output) > 1 and proto.output[1] in self.read:
                return self._reject(proto, name, "the dropout mask output is not supported")
            if op_type == "Dropout" and len(ins) > 2 and ins[2]:
                training = self.tensors[ins[2]].data
                if training is None or bool(training.reshape(-1)[0]):
                    return self._reject(proto, name, "training mode is not supported")
            op_type, ins, attrs = "Identity", ins[:1], {}
        outputs = [o for o in proto.output]
        if proto.op_type == "Dropout":  # an unread mask output is dropped
            outputs = outputs[:1]
        node = Node(op_type, name, ins, outputs, attrs)
        if op_type == "BatchNormalization":
            return self._batchnorm(proto, node)
        op = get_op(op_type)
        if op is None:
            return self._reject(proto, name, "operator not supported")
        if op.compact_outputs:  # outputs absent or read by nothing dropped, the positions of the others kept
            present_slots = [k for k, o in enumerate(node.outputs) if o]
            node.attrs["output_slots"] = [k for k in present_slots if node.outputs[k] in self.read] or present_slots[:1]
            node.outputs = [node.outputs[k] for k in node.attrs["output_slots"]]
        for i in present:
            if not self.tensors[i].is_const and self.tensors[i].dtype != "float32" and not op.int_inputs:
                return self._reject(proto, name, f"input '{i}' is {self.tensors[i].dtype}; float32 is supported")
        graph = Graph("", self.tensors, self.nodes, [], [], self.opset)
        try:
            shapes = op.infer_shapes(node, graph)
            for o, shape in zip(node.outputs, shapes):
                if math.prod(int(d) for d in shape) > MAX_ELEMENTS:
                    raise Unsupported(f"output '{_printable(o)}' of shape {tuple(shape)} has more than "
                                      f"{MAX_ELEMENTS} elements, far beyond a microcontroller's memory")
            op.check(node, graph)
        except Unsupported as e:
            return self._reject(proto, name, str(e))
        node.outputs = node.outputs[: len(shapes)]
        if any(o and o not in node.outputs for o in proto.output) and proto.op_type != "Dropout" \
                and not op.compact_outputs:
            return self._reject(proto, name, "optional outputs are not supported")
        for o, shape, dtype in zip(node.outputs, shapes, op.output_dtypes(node, graph)):
            self.tensors[o] = Tensor(o, tuple(int(d) for d in shape), dtype)
        self.nodes.append(node)
        return None

    def _qdq(self, proto: onnx.NodeProto, name: str, ins: list[str]) -> None:
        """A QuantizeLinear -> DequantizeLinear pair on an activation becomes one FakeQuantize
        node (codegen/ops/quantize.py), which float mode computes; a per-tensor 8-bit pair
        also gives the tensor its int8 parameters (uint8 ones shifted by -128: the same real
        values), and int8 mode drops the node (frontend/qdq.py). The DequantizeLinear must
        use its QuantizeLinear's scale, zero point and axis. (DequantizeLinear of a constant
        folds to float weights.)"""
        parsed = qdq.parse(proto, ins, self.tensors)
        if isinstance(parsed, str):
            return self._reject(proto, name, parsed)
        if proto.op_type == "QuantizeLinear":
            out = proto.output[0]
            self.quantized[out] = (ins[0], parsed)
            self.tensors[out] = Tensor(out, self.tensors[ins[0]].shape, parsed.dtype)
            return None
        if ins[0] not in self.quantized:
            return self._reject(proto, name, "DequantizeLinear of an activation needs a QuantizeLinear before it")
        source, q = self.quantized[ins[0]]
        if not q.same(parsed):
            return self._reject(proto, name, "its scale, zero point or axis differ from its QuantizeLinear's")
        out = proto.output[0]
        qp = q.int8_params()
        if qp is not None:
            self.given[source] = self.given[out] = qp
        self.tensors[out] = Tensor(out, self.tensors[source].shape, "float32")
        self.nodes.append(Node("FakeQuantize", name, [source, *q.inputs], [out], q.attrs()))
        return None

    def _batchnorm(self, proto: onnx.NodeProto, node: Node) -> None:
        """Kept as a node until simplify folds it into its producer or rewrites it."""
        if node.attrs.get("training_mode", 0) or len([o for o in proto.output if o]) > 1:
            return self._reject(proto, node.name, "training mode is not supported")
        if not all(self.tensors[i].is_const for i in node.inputs[1:5]):
            return self._reject(proto, node.name, "scale, bias, mean and variance must be constants")
        shape = self.tensors[node.inputs[0]].shape
        if len(shape) < 2 or len(shape) > 4:
            return self._reject(proto, node.name, f"input rank {len(shape)} is not supported (2 to 4)")
        node.outputs = node.outputs[:1]
        self.tensors[node.outputs[0]] = Tensor(node.outputs[0], shape, "float32")
        self.nodes.append(node)
        return None

    def _is_noop_cast(self, proto: onnx.NodeProto, attrs: dict) -> bool:
        return RUNTIME_TYPES.get(attrs.get("to")) == self.tensors[proto.input[0]].dtype

    def _fold(self, proto: onnx.NodeProto, name: str) -> None:
        if proto.op_type == "DequantizeLinear":  # weights of a QDQ model, at any opset
            try:
                return self._add_const(proto.output[0], self._dequantize(proto))
            except Unsupported as e:
                return self._reject(proto, name, str(e))
        if proto.op_type == "Constant":
            for a in proto.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    _tensor_array(a.t, f"{self.label}: Constant node '{_printable(name)}' value", True)
        feeds = {}
        for i in proto.input:
            if not i:
                continue
            t = self.tensors[i]
            feeds[i] = t.data if t.is_const else np.zeros(t.shape, t.dtype)
        try:
            values = _evaluate(proto, self.opset, feeds)
        except Exception as e:  # evaluation of arbitrary constant subgraphs
            why = f"cannot fold constant node: {str(e).strip().splitlines()[0]}"
            return self._reject(proto, name, why, infer=False)
        for o, v in zip([o for o in proto.output if o], values):
            if o:
                self._add_const(o, v)
                v = np.asarray(v)
                if v.dtype.kind == "f" and (np.isnan(v).any() or (np.isinf(v).any() and o not in self.bounds)):
                    why = f"its constant output '{_printable(o)}' holds NaN or Inf"
                    self.rejected.append((proto.op_type, name, why))
        return None

    def _dequantize(self, proto: onnx.NodeProto) -> np.ndarray:
        """(x - zero_point) * scale, per tensor or per channel along `axis` (default 1), in
        onnx.reference's arithmetic (x as float32, NumPy's promotions, the result as float32).
        Per tensor, scale and zero point may be a scalar or one element each."""
        ins = list(proto.input) + ["", ""]
        x = self.tensors[ins[0]].data
        scale = self.tensors[ins[1]].data
        zp = self.tensors[ins[2]].data if ins[2] else None
        if x.size == 0 or scale.size == 0:
            raise Unsupported("zero-size weights or scale")
        if zp is not None and zp.shape != scale.shape and not zp.size == scale.size == 1:
            raise Unsupported(f"zero point of shape {zp.shape} for a scale of shape {scale.shape}")
        zp = np.zeros((), x.dtype) if zp is None else zp
        if scale.size > 1:
            axis = int({a.name: a.i for a in proto.attribute}.get("axis", 1))
            if not -x.ndim <= axis < x.ndim or scale.ndim != 1 or x.shape[axis] != scale.size:
                raise Unsupported(f"{scale.size} scales along axis {axis} of weights of shape {x.shape}")
            axis %= x.ndim
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        else:
            scale, zp = scale.reshape(()), zp.reshape(())
        dx = x.astype(np.float32) if not ins[2] else x.astype(np.float32) - zp
        return (dx * scale).astype(np.float32)

    def _reject(self, proto: onnx.NodeProto, name: str, why: str, infer: bool = True) -> None:
        """Record why; the node's outputs get the shapes onnx's shape inference gives them, so
        that every later node is still checked (those it cannot infer make their users unknown;
        so do those of a constant node that could not be folded: its users expect a constant)."""
        self.rejected.append((proto.op_type, name, why))
        inferred = self._inferred_outputs(proto) if infer else {}
        for o in proto.output:
            if o in inferred:
                self.tensors[o] = inferred[o]
            elif o:
                self.unknown.add(o)

    def _inferred_outputs(self, proto: onnx.NodeProto) -> dict[str, Tensor]:
        """Static output shapes and types of one node: onnx's shape inference run on the node
        alone with its inputs' shapes (small constants as values), else the model's value_info."""
        infos = list(self.model.graph.value_info) + list(self.model.graph.output)
        inputs, consts = [], []
        for i in dict.fromkeys(i for i in proto.input if i):
            t = self.tensors.get(i)
            try:
                inputs.append(onnx.helper.make_tensor_value_info(
                    i, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), t.shape))
            except (AttributeError, KeyError, TypeError):  # unknown input, or a type onnx cannot name
                inputs = None
                break
            if t.is_const and t.data.size <= 1024:
                consts.append(numpy_helper.from_array(t.data, i))
        if inputs is not None:
            graph = onnx.helper.make_graph([proto], "node", inputs, [], consts)
            single = onnx.helper.make_model(graph, opset_imports=self.model.opset_import,
                                            ir_version=self.model.ir_version)
            try:
                infos = list(onnx.shape_inference.infer_shapes(single, data_prop=True).graph.value_info) + infos
            except Exception:  # the inferencer raises several unrelated types; the model's value_info remains
                pass
        found = {}
        outputs = set(o for o in proto.output if o)
        for vi in infos:
            if vi.name not in outputs or vi.name in found or not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            dims = tt.shape.dim if tt.HasField("shape") else None
            if dims is None or not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
                continue
            if math.prod(d.dim_value for d in dims) > MAX_ELEMENTS:
                continue
            try:
                dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
            except (KeyError, TypeError):
                continue
            found[vi.name] = Tensor(vi.name, tuple(d.dim_value for d in dims), dtype)
        return found


def _evaluate(proto: onnx.NodeProto, opset: int, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The node's non-empty outputs by onnx.reference at the model's opset. (A lone NodeProto
    is evaluated at the newest opset whatever `opsets` says: opset-11 Unsqueeze with its `axes`
    attribute, as the version converter writes it, would fail. Inside a graph it is not.)"""
    inputs = [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
              for i, v in feeds.items()]
    outputs = [onnx.helper.make_empty_tensor_value_info(o) for o in proto.output if o]
    graph = onnx.helper.make_graph([proto], "fold", inputs, outputs)
    return ReferenceEvaluator(graph, opsets={"": opset}).run(None, feeds)


def _dtype_name(data_type: int) -> str:
    """TensorProto's name of an element type, or its number marked unknown."""
    if data_type in onnx.TensorProto.DataType.values():
        return onnx.TensorProto.DataType.Name(data_type)
    return f"{data_type} (unknown)"


def _tensor_array(tensor: onnx.TensorProto, where: str, inf_ok: bool = False) -> np.ndarray:
    """The tensor's values; a CompileError naming it when its data cannot be read, is text,
    or holds NaN or Inf (Inf is allowed where `inf_ok`: Clip bounds)."""
    what = f"{where} '{_printable(tensor.name)}'"
    try:
        value = numpy_helper.to_array(tensor)
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as e:
        dtype = _dtype_name(tensor.data_type)
        raise CompileError(f"{what}: cannot read its {dtype} data of dims {list(tensor.dims)} "
                           f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
    if value.dtype.kind in "OSU":
        raise CompileError(f"{what}: holds strings; numeric data is required")
    if value.dtype.kind not in "biuf":
        raise CompileError(f"{what}: element type {value.dtype} is not supported")
    if value.dtype.kind == "f":
        if np.isnan(value).any():
            raise CompileError(f"{what} holds NaN")
        if not inf_ok and np.isinf(value).any():
            raise CompileError(f"{what} holds Inf")
    return value


def _attr_value(attr: onnx.AttributeProto):
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return _tensor_array(value, f"attribute '{attr.name}' tensor")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


def _check_nodes(graph: Graph, label: str, rejected: list) -> None:
    for node in graph.nodes:
        try:
            get_op(node.op_type).check(node, graph)
        except Unsupported as e:
            rejected.append((node.op_type, node.name, str(e)))
    if rejected:
        _raise_rejected(label, rejected)


def _raise_rejected(label: str, rejected: list) -> None:
    parts = [f"{op} node '{_printable(name)}': {why}" for op, name, why in rejected]
    msg = f"{label}: {len(rejected)} unsupported node{'s' if len(rejected) > 1 else ''}: " + "; ".join(parts)
    if any(why == "operator not supported" for _, _, why in rejected):
        msg += f" (supported operators: {', '.join(supported_op_types())})"
    raise CompileError(msg)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
