"""Targets are data: one TOML file per target in targets/."""

from __future__ import annotations

import tomllib
from functools import lru_cache

from codegen.errors import CompileError
from codegen.paths import TARGETS_DIR


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


@lru_cache(maxsize=None)
def load_target(name: str) -> dict:
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise CompileError(f"unknown target '{name}' (known: {', '.join(target_names())})")
    with open(path, "rb") as f:
        return tomllib.load(f)
