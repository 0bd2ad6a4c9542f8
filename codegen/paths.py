"""Where the runtime sources and target files are, installed or in a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


RUNTIME_DIR = _data_dir("runtime_c")
TARGETS_DIR = _data_dir("targets")
