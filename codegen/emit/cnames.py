"""C identifiers, literals and comments: the only way model-supplied text reaches C source.

>>> unique = Identifiers()
>>> unique.make('x; system("rm -rf /")')
'x__system__rm__rf____'
>>> unique.make("x;system")
'x_system'
>>> unique.make("x_system")
'x_system_2'
>>> unique.make("int"), unique.make("3d"), unique.make("")
('int_', 't_3d', 't')
>>> Identifiers(reserved_prefixes=("nn_",)).make("nn_copy")
't_nn_copy'
>>> c_comment("conv */ evil\\r\\nnext \\x00 \u00e9")
'conv * / evil??next ? ?'
>>> float_literal(1.0), float_literal(-0.5), float_literal(1e-45), float_literal(float("inf"))
('1.0f', '-0.5f', '1.40129846e-45f', 'INFINITY')
"""

from __future__ import annotations

import math
import re

import numpy as np

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary main""".split()
)


class Identifiers:
    """Hands out sanitized identifiers, never the same one twice."""

    def __init__(self, reserved_prefixes: tuple[str, ...] = ()):
        self.used: set[str] = set()
        self.reserved_prefixes = reserved_prefixes

    def make(self, text: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", text) or "t"
        base = re.sub(r"^_+", "", base) or "t"  # leading underscores are reserved in C
        if base[0].isdigit() or base.lower().startswith(self.reserved_prefixes):
            base = "t_" + base
        if base in C_KEYWORDS:
            base += "_"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def c_comment(text: str) -> str:
    """Printable ASCII only, and no sequence that could end the comment."""
    out = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return out.replace("*/", "* /").replace("/*", "/ *")


def float_literal(value: float) -> str:
    """A float32 value as a C literal that reads back to the same bits."""
    v = float(np.float32(value))
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = f"{v:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def int_literal(value: int) -> str:
    v = int(value)
    if v == -(2**31):
        return "(-2147483647 - 1)"
    return str(v)


def literal(value) -> str:
    """Scalar, list (brace-initialised) or dict (a nested struct, designated fields) in C syntax.

    >>> literal({"size": 3, "shape": [1, 2]})
    '{.size = 3, .shape = {1, 2}}'
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f".{k} = {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "{" + ", ".join(literal(v) for v in value) + "}"
    if isinstance(value, (float, np.floating)):
        return float_literal(value)
    return int_literal(value)


def array_body(array: np.ndarray, per_line: int | None = None) -> str:
    """The inside of an array initializer, several values a line."""
    flat = np.asarray(array).reshape(-1)
    items = [float_literal(v) for v in flat] if flat.dtype.kind == "f" else [int_literal(v) for v in flat]
    per_line = per_line or (6 if flat.dtype.kind == "f" else 16)
    lines = [", ".join(items[i: i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)
