"""Folders the compiler makes for itself, and how none of them outlives the next run.

1. Every such folder carries its owner's process id in its name: build folders
   `onnx2mcu-PID-XXXXXXXX` under tempfile.gettempdir(), and write_folder's staging and
   replaced outputs `.OUT.onnx2mcu-PID-new-XXXXXXXX` / `...-old-...` beside the output folder.
2. A process killed mid-run cannot remove its folders; the next run removes every one whose
   process is gone (`sweep`). A live owner's folders are left alone, so runs in parallel are safe.
3. Folders are created like any compiler creates them: mode 0777 minus the umask.
4. For tests only: `ONNX2MCU_TEST_KILL_AT=POINT` kills the process with SIGKILL when it reaches
   `checkpoint(POINT)`, to prove point 2 at the worst moments.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

TAG = "onnx2mcu"


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's live process (or a name we do not own)
    return True


def make_folder(parent: Path, prefix: str, kind: str = "") -> Path:
    """A new folder `PREFIX-PID-[KIND-]XXXXXXXX` in `parent`, created 0777 & ~umask."""
    for _ in range(100):
        path = parent / f"{prefix}-{os.getpid()}-{kind + '-' if kind else ''}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: cannot create a unique folder named {prefix}-*")


def sweep(parent: Path, prefix: str) -> list[Path]:
    """Remove the entries `PREFIX-PID-...` of `parent` whose process is gone; the ones removed."""
    pattern = re.compile(re.escape(prefix) + r"-(\d+)-")
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or pid_alive(int(match.group(1))):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass  # another run swept it first
        except OSError:
            pass  # not ours to remove (permissions): left for its owner
    return removed


def build_root() -> Path:
    return Path(tempfile.gettempdir())


@contextmanager
def build_folder():
    """A temporary build folder (swept at the next run if this process is killed)."""
    root = build_root()
    sweep(root, TAG)
    folder = make_folder(root, TAG)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkpoint(point: str) -> None:
    """Die here, as a SIGKILL would kill us, when the tests ask for it (ONNX2MCU_TEST_KILL_AT)."""
    if os.environ.get("ONNX2MCU_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
