"""Sample files (--calib, --data) and random samples: read lazily, checked, one clean error each.

1. An .npz holds one .npy array per model input, keyed by input name (a single-input model may
   use `x`), with a leading sample axis (or one sample without it), and optionally `y`: integer
   labels, one per sample. A plain .npy file (whatever its name) is the one input of a
   single-input model.
2. Only headers are read first: every member's shape and dtype are checked against the bytes it
   holds, so a header claiming 10^12 samples is an error, not an allocation.
3. At most `limit` samples are read: a seeded subset (the same for the same file and limit),
   in file order; each input's rows are read one after the other from the (possibly
   compressed) member, never the whole array. Memory stays within the chosen rows.
4. Anything else (empty, truncated, not a zip or .npy, a member that is not .npy, object or
   other non-numeric arrays, mismatched sample counts) is a CompileError naming the file and why.
"""

from __future__ import annotations

import lzma
import math
import os
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from codegen.errors import CompileError
from codegen.ir import Graph

DEFAULT_CALIB_SAMPLES = 1000
SUBSET_SEED = 0
_CHUNK = 1 << 20
_MAX_HEADER = 1 << 16
# what a damaged file raises: while reading (zip, deflate, lzma, bzip2) and parsing an .npy header
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)
_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, tokenize.TokenError, RecursionError, MemoryError)
_MAX_FORTRAN = 1 << 28  # Fortran-order arrays are read whole: their rows are not contiguous


@dataclass
class Member:
    """One array of a sample file: where it is and what its header declares."""
    key: str  # the array's name (the member name without .npy; "" for a plain .npy)
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int  # bytes of magic and header before the data

    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class SampleFile:
    """The arrays of an .npz (or one .npy), headers parsed; rows read on demand."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.label = str(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(6)
        except OSError as e:
            raise CompileError(f"{self.label}: cannot read samples: {e.strerror or e}") from None
        if size == 0:
            raise CompileError(f"{self.label}: the file is empty")
        self.zip: zipfile.ZipFile | None = None
        self.members: dict[str, Member] = {}
        if head == npy_format.MAGIC_PREFIX:
            with open(self.path, "rb") as f:
                self.members[""] = self._header(f, "", "", size)
        elif head[:2] == b"PK":
            self._open_zip()
        else:
            raise CompileError(f"{self.label}: not an .npz (zip of .npy arrays) or .npy file")

    def _open_zip(self) -> None:
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (*_READ_ERRORS, ValueError, NotImplementedError, RuntimeError) as e:
            raise CompileError(f"{self.label}: truncated or corrupt .npz: {_line(e)}") from None
        for info in infos:
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise CompileError(f"{self.label}: member '{info.filename}' is not an .npy array")
            key = info.filename[: -len(".npy")]
            with self._stream(info.filename) as f:
                self.members[key] = self._header(f, key, f"member '{info.filename}'", info.file_size)

    def _stream(self, member: str):
        try:
            return self.zip.open(member)
        except (*_READ_ERRORS, ValueError, NotImplementedError, RuntimeError) as e:
            raise CompileError(f"{self.label}: cannot read member '{member}': {_line(e)}") from None

    def _header(self, f, key: str, what: str, size: int) -> Member:
        """Parse an .npy header and check the data size it declares against `size`."""
        try:
            version = npy_format.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
            reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            with warnings.catch_warnings():  # a damaged header can hold an invalid escape sequence
                warnings.simplefilter("ignore")
                shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
            offset = f.tell()
        except _READ_ERRORS as e:
            raise CompileError(f"{self.label}: {what or 'the .npy file'} cannot be read (truncated or corrupt): "
                               f"{_line(e)}") from None
        except _HEADER_ERRORS as e:
            raise CompileError(f"{self.label}: {what or 'the .npy file'} has no valid .npy header: "
                               f"{_line(e)}") from None
        where = f"{what} " if what else ""
        if dtype.hasobject or dtype.fields is not None:  # other dtypes are refused where they are used
            raise CompileError(f"{self.label}: {where}holds dtype {dtype} (Python objects or records); "
                               f"an array of numbers is needed")
        member = Member(key, tuple(int(d) for d in shape), dtype, bool(fortran), offset)
        if member.fortran and len(member.shape) > 1 and member.nbytes() > _MAX_FORTRAN:
            raise CompileError(f"{self.label}: {where}is a {member.nbytes()} B array in Fortran order; "
                               f"save it in C order (numpy.ascontiguousarray)")
        if member.nbytes() != size - offset:
            raise CompileError(f"{self.label}: {where}declares shape {list(member.shape)} of {dtype} "
                               f"({member.nbytes()} B) but holds {size - offset} B (truncated or corrupt)")
        return member

    def read_rows(self, member: Member, rows: np.ndarray | None) -> np.ndarray:
        """The member's rows `rows` (sorted indices along axis 0; None: the whole array)."""
        whole = rows is None or member.fortran or not member.shape
        try:
            with (self._stream(member.key + ".npy") if self.zip else open(self.path, "rb")) as f:
                _skip(f, member.offset)
                if whole:
                    data = _read_exact(f, member.nbytes())
                    arr = np.frombuffer(data, member.dtype).reshape(member.shape, order="F" if member.fortran else "C")
                    return arr if rows is None else arr[rows]
                row_shape = member.shape[1:]
                row_bytes = math.prod(row_shape) * member.dtype.itemsize
                out = np.empty((len(rows), *row_shape), member.dtype)
                at = 0
                for k, r in enumerate(rows):
                    _skip(f, (int(r) - at) * row_bytes)
                    out[k] = np.frombuffer(_read_exact(f, row_bytes), member.dtype).reshape(row_shape)
                    at = int(r) + 1
                return out
        except _READ_ERRORS as e:
            what = f"member '{member.key}.npy'" if self.zip else "the .npy file"
            raise CompileError(f"{self.label}: {what} cannot be read (truncated or corrupt): {_line(e)}") from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _skip(f, count: int) -> None:
    if count > 0 and f.seekable():
        f.seek(count, os.SEEK_CUR)
        return
    while count > 0:
        got = f.read(min(count, _CHUNK))
        if not got:
            raise EOFError("unexpected end of data")
        count -= len(got)


def _read_exact(f, count: int) -> bytes:
    parts, left = [], count
    while left > 0:
        got = f.read(min(left, 64 * _CHUNK))
        if not got:
            raise EOFError("unexpected end of data")
        parts.append(got)
        left -= len(got)
    return b"".join(parts)


def _layout(member: Member, shape: tuple[int, ...], label: str, name: str) -> tuple[int, bool, bool]:
    """How an array maps to an input of `shape`: (samples, has a sample axis, needs a unit axis)."""
    arr = member.shape
    if arr == shape:
        return 1, False, False
    if arr[1:] == shape and arr:
        return arr[0], True, False
    if shape and shape[0] == 1 and arr and arr[1:] == shape[1:]:
        return arr[0], True, True
    raise CompileError(f"{label}: input '{name}' has shape {list(arr)}; expected {list(shape)} or [N, ...] of it")


def subset(count: int, limit: int | None, seed: int = SUBSET_SEED) -> np.ndarray | None:
    """Sorted indices of a seeded subset of `limit` among `count` (None: all of them)."""
    if limit is None or count <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def load_samples(path: str | os.PathLike, graph: Graph, limit: int | None = None
                 ) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """Samples of `path` for `graph`'s inputs (at most `limit`, a seeded subset) and the labels
    `y` (None when absent). See the module docstring for the format."""
    samples, labels, _ = _load(path, graph, limit)
    return samples, labels


def _load(path, graph: Graph, limit: int | None):
    if limit is not None and limit < 1:
        raise CompileError(f"the number of samples must be at least 1, not {limit}")
    f = SampleFile(path)
    try:
        label = f.label
        plain = "" in f.members
        columns, counts = {}, {}
        for name in graph.inputs:
            if plain:
                if len(graph.inputs) != 1:
                    raise CompileError(f"{label}: a plain .npy holds one array; the model has {len(graph.inputs)} "
                                       f"inputs: save one array per input name with numpy.savez")
                key = ""
            else:
                key = name if name in f.members else ("x" if len(graph.inputs) == 1 and "x" in f.members else None)
            if key is None:
                raise CompileError(f"{label}: no array for input '{name}' (keys: {', '.join(sorted(f.members))})")
            member = f.members[key]
            if member.dtype.kind not in "fiub":
                raise CompileError(f"{label}: input '{name}' has dtype {member.dtype}; numbers are needed")
            counts[name] = _layout(member, graph.tensors[name].shape, label, name)
            columns[name] = member
        sizes = {c[0] for c in counts.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise CompileError(f"{label}: inputs hold different or zero numbers of samples "
                               f"({', '.join(f'{k}: {v[0]}' for k, v in counts.items())})")
        total = sizes.pop()
        rows = subset(total, limit)
        y = None if plain else f.members.get("y")
        if y is not None and (y.dtype.kind not in "iu" or math.prod(y.shape) != total):
            raise CompileError(f"{label}: 'y' must hold {total} integer labels")
        arrays = {}
        for name, member in columns.items():
            n, batched, unit = counts[name]
            arr = _as_type(f.read_rows(member, rows if batched else None), graph.tensors[name].dtype, label, name)
            if not batched:
                arr = arr[None]
            elif unit:
                arr = arr[:, None]
            arrays[name] = arr
        labels = None
        if y is not None:
            labels = f.read_rows(y, None).reshape(-1)
            labels = labels if rows is None else labels[rows]
    finally:
        f.close()
    count = total if rows is None else len(rows)
    samples = [{k: v[i] for k, v in arrays.items()} for i in range(count)]
    return samples, labels, total


def _as_type(arr: np.ndarray, dtype: str, label: str, name: str) -> np.ndarray:
    """Samples as the input's element type: float32 (int8/int16 once quantized: the real values); int32
    (whole numbers in its range); bool."""
    if dtype in ("float32", "int8", "int16"):
        return arr.astype(np.float32)
    if dtype == "uint8":
        return (arr != 0).astype(np.uint8)
    whole = arr.dtype.kind in "iub" or bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if not whole or (arr.size and (arr.min() < -2 ** 31 or arr.max() >= 2 ** 31)):
        raise CompileError(f"{label}: input '{name}' is an integer input; its samples must be whole numbers "
                           "within int32's range")
    return arr.astype(np.int32)


def integer_bound(graph: Graph, name: str) -> int:
    """How many values [0, n) random samples of an integer input take: the smallest bound its
    readers give (Op.index_bound), else 2 for bool and 16."""
    from codegen.ops import get_op

    bounds = [get_op(n.op_type).index_bound(n, graph, k) for n in graph.nodes for k, i in enumerate(n.inputs)
              if i == name]
    bounds = [b for b in bounds if b]
    if graph.tensors[name].dtype == "uint8":
        return 2
    return min(bounds) if bounds else 16


def check_index_bounds(samples: list[dict[str, np.ndarray]], graph: Graph, label: str) -> None:
    """Refuse samples whose integer inputs index outside [-n, n) of a reader's table
    (Op.index_bound): ONNX leaves such an index undefined, so verify has no oracle for it."""
    from codegen.ops import get_op

    for node in graph.nodes:
        for k, name in enumerate(node.inputs):
            n = get_op(node.op_type).index_bound(node, graph, k) if name in graph.inputs else None
            for sample in samples if n else []:
                bad = sample[name][(sample[name] < -n) | (sample[name] >= n)]
                if bad.size:
                    raise CompileError(f"{label}: input '{name}' holds {int(bad.reshape(-1)[0])}, outside [-{n}, {n}) "
                                       f"of node '{node.name}'; ONNX leaves such an index undefined (the C clamps it to "
                                       "the table)")


def random_samples(graph: Graph, count: int = 8, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Seeded inputs of the model's shapes: standard normal, or uniform integers in the input's
    bound (integer_bound)."""
    rng = np.random.default_rng(seed)
    bounds = {n: integer_bound(graph, n) for n in graph.inputs if graph.tensors[n].dtype in ("int32", "uint8")}

    def sample(name: str) -> np.ndarray:
        t = graph.tensors[name]
        if name in bounds:
            return rng.integers(0, bounds[name], t.shape).astype(t.dtype)
        return rng.standard_normal(t.shape).astype(np.float32)

    return [{n: sample(n) for n in graph.inputs} for _ in range(count)]


def calibration_samples(calib, graph: Graph, label: str, limit: int | None = DEFAULT_CALIB_SAMPLES):
    """(samples, what they came from, a report section): `calib` is an .npz/.npy path or a list of
    {input name: array}; at most `limit` samples, a seeded subset."""
    if calib is None:
        raise CompileError(f"{label}: int8 needs calibration data: pass --calib CALIB.npz (or --float)")
    if isinstance(calib, (str, os.PathLike)):
        samples, _, total = _load(calib, graph, limit)
        source = str(calib)
    else:
        if limit is not None and limit < 1:
            raise CompileError(f"the number of samples must be at least 1, not {limit}")
        calib = list(calib)
        total, rows = len(calib), subset(len(calib), limit)
        samples = calib if rows is None else [calib[i] for i in rows]
        source = "calibration samples"
    section = {"samples": len(samples), "available": total, "limit": limit, "seed": SUBSET_SEED}
    return samples, source, section
