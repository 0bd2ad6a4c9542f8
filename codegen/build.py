"""Compile a generated model folder and run it on the host, in-process through cffi
(codegen/cross.py builds, measures and runs it for the other targets).

Builds are cached by a hash of every source file, the compiler and its flags, so
running the same model twice (as the tests do) compiles once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from cffi import FFI

from codegen import workdirs
from codegen.errors import CompileError
from codegen.targets import load_target


def cache_dir() -> Path:
    root = os.environ.get("ONNX2MCU_CACHE") or Path.home() / ".cache" / "onnx2mcu"
    return Path(root) / "host"


def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise CompileError(f"C compiler '{cc}' not found; install gcc or set CC") from None
    return out.splitlines()[0] if out else cc


def compile_shared(files: dict[str, str], cc: str | None = None, extra_flags: tuple[str, ...] = ()) -> Path:
    """Build the C files of a model folder into a shared library; return its cached path."""
    target = load_target("host")
    cc = cc or os.environ.get("CC") or target["cc"]
    flags = [*target["cflags"], *extra_flags, *target["shared_flags"]]
    h = hashlib.sha256()
    for part in (_compiler_id(cc), " ".join(flags)):
        h.update(part.encode() + b"\0")
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    key = h.hexdigest()[:24]
    lib = cache_dir() / f"{key}.so"
    if lib.is_file():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with workdirs.build_folder() as folder:
        tmp = str(folder)
        for name, text in files.items():
            Path(tmp, name).write_text(text)
        sources = sorted(n for n in files if n.endswith(".c"))
        out = Path(tmp, "model.so")
        proc = subprocess.run([cc, *flags, "-o", str(out), *sources], cwd=tmp, capture_output=True, text=True)
        if proc.returncode:
            raise CompileError(f"host C compiler failed: {proc.stderr.strip()}")
        workdirs.sweep(lib.parent, workdirs.TAG)
        staged = lib.parent / f"{workdirs.TAG}-{os.getpid()}-{key}.tmp"
        shutil.copyfile(out, staged)
        os.replace(staged, lib)
    return lib


class HostModel:
    """The generated C, loaded through cffi; call it on NumPy arrays."""

    def __init__(self, files: dict[str, str], api: dict, cc: str | None = None):
        self.api = api
        self.ffi = FFI()
        args = [f"{'const ' if kind == 'inputs' else ''}{t['ctype']} *" for kind in ("inputs", "outputs")
                for t in api[kind]]
        self.ffi.cdef(f"int {api['invoke']}({', '.join(args)});")
        self.path = compile_shared(files, cc)
        self.lib = self.ffi.dlopen(str(self.path))
        self.invoke = getattr(self.lib, api["invoke"])

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One inference; each input must have the model input's size."""
        c_in = []
        for spec, x in zip(self.api["inputs"], inputs):
            arr = np.ascontiguousarray(x, dtype=spec["dtype"]).reshape(-1)
            if arr.size != spec["size"]:
                raise ValueError(f"input '{spec['name']}' needs {spec['size']} values, got {arr.size}")
            c_in.append(arr)
        outs = [np.zeros(spec["size"], spec["dtype"]) for spec in self.api["outputs"]]
        ptrs = [self.ffi.from_buffer(f"{s['ctype']}[]", a) for s, a in zip(self.api["inputs"], c_in)]
        ptrs += [self.ffi.from_buffer(f"{s['ctype']}[]", a) for s, a in zip(self.api["outputs"], outs)]
        status = self.invoke(*ptrs)
        if status != 0:
            raise RuntimeError(f"{self.api['invoke']} returned {status}")
        return [o.reshape(s["shape"]) for s, o in zip(self.api["outputs"], outs)]
