"""C identifiers, literals and comments: the only way model-supplied text reaches C source.

Every name from the model becomes an identifier that is plain ASCII, never begins with `_`
or holds `__` (reserved in C and C++), is no keyword, macro, typedef or function of C, C++
or the standard headers, does not begin with a prefix the generated code uses itself (the
model's, the runtime's `nn_`), is unique even after upper-casing (macros are made from it)
and fits a length, shortened with a stable hash of the original text when it is too long.

>>> unique = Identifiers()
>>> unique.make('x; system("rm -rf /")')
'x_system_rm_rf'
>>> unique.make("x;system"), unique.make("x_system"), unique.make("X_SYSTEM")
('x_system', 'x_system_2', 'X_SYSTEM_3')
>>> unique.make("int"), unique.make("3d"), unique.make(""), unique.make("INT8_MAX"), unique.make("memcpy")
('t_int', 't_3d', 't', 't_INT8_MAX', 't_memcpy')
>>> Identifiers(reserved_prefixes=("m_",)).make("M_arena"), Identifiers(reserved_prefixes=("m_",)).make("m")
('t_M_arena', 't_m')
>>> Identifiers(max_length=20).make("a" * 5000)
'aaaaaaaaaaa_c526c622'
>>> prefix_identifier("mobilenet_v2.int8"), prefix_identifier("all"), prefix_identifier("x" * 5000)
('mobilenet_v2_int8', 't_all', 'xxxxxxxxxxxxxxx_c59d3c04')
>>> c_comment("conv */ evil\\r\\nnext \\x00 \u00e9")
'conv * / evil??next ? ?'
>>> float_literal(1.0), float_literal(-0.5), float_literal(1e-45), float_literal(float("inf"))
('1.0f', '-0.5f', '1.40129846e-45f', 'INFINITY')
>>> macro_literal(-128), macro_literal(5), macro_literal(-0.5), macro_literal(-2**31)
('(-128)', '5', '(-0.5f)', '(-2147483647 - 1)')
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

MAX_IDENTIFIER = 63  # significant characters C99 guarantees for internal identifiers and macros
MAX_PREFIX = 24  # a model prefix; leaves room for "_" and the longest runtime or API suffix

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary main
    alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual""".split()
)

# NAME.h is included from C++ too.
CXX_KEYWORDS = frozenset(
    """and and_eq asm bitand bitor catch char8_t char16_t char32_t class compl concept consteval
    constinit const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export
    final friend import module mutable namespace new noexcept not not_eq operator or or_eq override
    private protected public reinterpret_cast requires static_cast template this throw try typeid
    typename using virtual wchar_t xor xor_eq""".split()
)

_MATH_FUNCTIONS = """acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1
    frexp ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc
    lgamma tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder
    remquo copysign nan nextafter nexttoward fdim fmax fmin fma""".split()

# Names the standard headers declare or define (object-like macros, typedefs, functions,
# variables), those of <stdint.h>, <stddef.h>, <string.h> and <math.h> that the generated
# files include and the common ones a firmware includes beside NAME.h, plus the GNU
# dialect's predefined system macros.
STANDARD_NAMES = frozenset(
    """NULL offsetof size_t ptrdiff_t max_align_t wchar_t
    SIZE_MAX PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX WCHAR_MIN WCHAR_MAX WINT_MIN WINT_MAX
    memcpy memmove memset memcmp memchr strcpy strncpy strcat strncat strcmp strncmp strcoll strxfrm
    strchr strrchr strspn strcspn strpbrk strstr strtok strerror strlen strdup strndup strnlen
    bzero bcopy bcmp index rindex ffs strcasecmp strncasecmp
    float_t double_t HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN MATH_ERRNO MATH_ERREXCEPT
    math_errhandling signgam isnan isinf isfinite isnormal signbit fpclassify isgreater
    isgreaterequal isless islessequal islessgreater isunordered DOMAIN SING OVERFLOW UNDERFLOW TLOSS PLOSS
    EOF BUFSIZ FILENAME_MAX FOPEN_MAX TMP_MAX L_tmpnam stdin stdout stderr FILE fpos_t
    EXIT_SUCCESS EXIT_FAILURE RAND_MAX MB_CUR_MAX MB_LEN_MAX div_t ldiv_t lldiv_t
    CHAR_BIT errno assert NDEBUG va_list va_start va_arg va_end va_copy jmp_buf setjmp longjmp
    CLOCKS_PER_SEC TIME_UTC clock_t time_t tm timespec DECIMAL_DIG I complex imaginary
    noreturn bool true false sig_atomic_t mbstate_t wint_t fenv_t fexcept_t lconv
    linux unix i386 sun sparc mips vax""".split()
    + _MATH_FUNCTIONS + [f + "f" for f in _MATH_FUNCTIONS] + [f + "l" for f in _MATH_FUNCTIONS]
)

# Families of reserved names: <stdint.h>/<limits.h>/<inttypes.h> types and limits, <math.h>,
# <float.h>, <fenv.h>, <errno.h>, <signal.h>, <locale.h> and <stdio.h> macros.
_RESERVED_FAMILIES = re.compile(
    r"u?int\w*_t|(S|U)?(CHAR|SHRT|INT|LONG|LLONG|SIZE|PTRDIFF|SIG_ATOMIC|WCHAR|WINT)\w*_(MAX|MIN|C|WIDTH)"
    r"|(FP|FE|FLT|DBL|LDBL|M|LC|SEEK|MATH)_\w*|(PRI|SCN)[a-zX]\w*|E[0-9A-Z][0-9A-Z_]*|SIG[A-Z_][0-9A-Z_]*")

# Target names CMake reserves (policy CMP0037); the model prefix names the CMake library.
CMAKE_RESERVED = frozenset(
    """all all_build help install preinstall clean edit_cache rebuild_cache zero_check package
    package_source test run_tests depend list_install_components""".split()
)


def is_reserved(name: str) -> bool:
    """True for names that C, C++ or the standard headers own.

    >>> [is_reserved(n) for n in ("x", "int8_t", "UINT16_MAX", "class", "NAN", "EDOM", "Edge", "ECG_net")]
    [False, True, True, True, True, True, False, False]
    """
    return (name in C_KEYWORDS or name in CXX_KEYWORDS or name in STANDARD_NAMES
            or _RESERVED_FAMILIES.fullmatch(name) is not None)


def short_hash(text: str) -> str:
    """8 hex digits of the SHA-256 of `text`: the same text always gets the same."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _sanitize(text: str) -> str:
    """ASCII letters, digits and single inner underscores ('' when nothing is left)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")


def _fit(base: str, suffix: str, max_length: int) -> str:
    return base[: max_length - len(suffix)].rstrip("_") + suffix


def _shorten(base: str, text: str, max_length: int) -> str:
    """`base` if it fits, else its start and "_" + the hash of the original `text`."""
    return base if len(base) <= max_length else _fit(base, "_" + short_hash(str(text)), max_length)


class Identifiers:
    """Hands out sanitized identifiers, never the same one twice, even ignoring case.

    `reserved_prefixes` (compared ignoring case) and `reserved` (exact) are names taken by the
    generated code itself; `max_length` bounds every identifier handed out."""

    def __init__(self, reserved_prefixes: tuple[str, ...] = (), reserved: tuple[str, ...] = (),
                 max_length: int = MAX_IDENTIFIER):
        if max_length < 12:
            raise ValueError("identifiers need at least 12 characters (a short hash and a count)")
        self.used: set[str] = set()  # upper-cased
        self.reserved_prefixes = tuple(p.lower() for p in reserved_prefixes)
        self.reserved = frozenset(reserved)
        self.max_length = max_length

    def _taken(self, name: str) -> bool:
        return (name[0].isdigit() or name.lower().startswith(self.reserved_prefixes)
                or name in self.reserved or is_reserved(name))

    def make(self, text: str) -> str:
        base = _sanitize(text) or "t"
        # A stem that neither is taken nor leads into a reserved prefix once "_<k>" is added;
        # each reserved prefix can rule out one lead at most.
        for lead in ("", "t_", "v_", "w_", "z_", "q_", "r_"):
            stem = _shorten(lead + base, text, self.max_length)
            if not self._taken(stem) and not any(p.startswith(stem.lower() + "_") for p in self.reserved_prefixes):
                break
        else:
            raise ValueError(f"no identifier for {text!r} outside the reserved prefixes {self.reserved_prefixes}")
        name, k = stem, 1
        while name.upper() in self.used or self._taken(name):
            k += 1
            name = _fit(stem, f"_{k}", self.max_length)
        self.used.add(name.upper())
        return name


def prefix_identifier(text: str) -> str:
    """A model's C prefix (NAME.h, NAME_invoke, NAME_ARENA_BYTES, the CMake library NAME):
    at most MAX_PREFIX characters, not itself a reserved name."""
    base = _sanitize(text) or "model"
    if base[0].isdigit() or is_reserved(base) or base.lower() in CMAKE_RESERVED:
        base = "t_" + base
    return _shorten(base, text, MAX_PREFIX)


def c_comment(text: str) -> str:
    """Printable ASCII only, and no sequence that could end the comment."""
    out = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return out.replace("*/", "* /").replace("/*", "/ *")


def string_literal(text: str) -> str:
    """A C string literal holding the UTF-8 bytes of `text`: letters, digits, space and _-.,:
    as they are, every other byte as a three-digit octal escape (no quote, backslash, trigraph
    or line break can reach the source).

    >>> print(string_literal('a"b?é'))
    "a\\042b\\077\\303\\251"
    """
    keep = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:")
    return '"' + "".join(chr(b) if b in keep else "\\%03o" % b for b in str(text).encode("utf-8")) + '"'


def short_name(text: str, max_length: int = 80) -> str:
    """A model name for a comment or a message: as it is, or its start, "..." and its hash
    when longer than `max_length` (C99 promises 4095 characters per source line, no more).

    >>> short_name("conv1"), short_name("n" * 5000, 24)
    ('conv1', 'nnnnnnnnnnnnn...91c45f5c')
    """
    text = str(text)
    return text if len(text) <= max_length else text[: max_length - 11] + "..." + short_hash(text)


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


def macro_literal(value) -> str:
    """A number as the value of a #define: a negative one in parentheses, so that
    `x-NAME_ZERO_POINT` or `-NAME_ZERO_POINT` parse as meant."""
    text = float_literal(value) if isinstance(value, (float, np.floating)) else int_literal(value)
    return f"({text})" if text.startswith("-") else text


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


STRING_TABLE_MIN = 64  # int8 and uint8 tables of this many values or more are string literals


def table_initializer(array: np.ndarray) -> tuple[int, str]:
    """(declared size, initializer body) of a const table.

    A C compiler spends about a microsecond and a hundred bytes of memory on each number of an
    initializer list, minutes for a model of 50 million weights, but reads a string literal
    at once: int8 and uint8 tables of STRING_TABLE_MIN values or more are written as one
    (a character array may be initialized by a string literal, C99 6.7.8p14; int8_t is
    signed char), each byte a three-digit octal escape, with one element more for the
    terminating NUL (so no compiler warns about a string without one). NAME.c tells GCC and
    Clang that the literal is longer than the 4,095 characters C99 promises to support.

    >>> table_initializer(np.array([1, -2], np.int8))
    (2, '  1, -2')
    >>> size, body = table_initializer(np.arange(-100, 100, 2, dtype=np.int8))
    >>> size, body[:25]
    (101, '"\\\\234\\\\236\\\\240\\\\242\\\\244\\\\246')
    """
    flat = np.ascontiguousarray(array).reshape(-1)
    if not flat.size:
        return 1, "0"
    if flat.dtype not in (np.int8, np.uint8) or flat.size < STRING_TABLE_MIN:
        return flat.size, array_body(flat)
    escapes = np.array([list(b"\\%03o" % v) for v in range(256)], np.uint8)
    per_line, raw = 32, flat.view(np.uint8)
    full = raw.size // per_line * per_line
    ends = np.frombuffer(b'"\n    "', np.uint8)
    parts = [b'"']
    for first in range(0, full, per_line << 15):  # whole lines, a megabyte of text at a time
        lines = escapes[raw[first: min(full, first + (per_line << 15))]].reshape(-1, per_line * 4)
        parts.append(np.hstack([lines, np.broadcast_to(ends, (len(lines), len(ends)))]).tobytes())
    parts.append(escapes[raw[full:]].tobytes() + b'"')
    text = b"".join(parts).decode("ascii")
    return flat.size + 1, text[:-7] if full == raw.size else text  # no empty last line


LINE_WIDTH = 160  # characters of values per line of an integer table


def array_body(array: np.ndarray, per_line: int | None = None) -> str:
    """The inside of an array initializer, several values a line.

    Integer tables (the bulk of a model: tens of megabytes) are written by NumPy, not value by
    value: each value right-aligned in the width of the widest, a comma after each.

    >>> array_body(np.array([1, -128, 7, 127, 0], np.int8), per_line=3)
    '    1, -128,    7,\\n      127,    0'
    >>> array_body(np.array([0.5, -1.0, np.inf, 3e-39], np.float32))
    '0.5f, -1.0f, INFINITY, 3.00000065e-39f'
    """
    flat = np.asarray(array).reshape(-1)
    if flat.dtype.kind == "f":
        per_line = per_line or 6
        items = _float_items(flat.astype(np.float32))
        return ",\n    ".join(", ".join(items[i: i + per_line]) for i in range(0, len(items), per_line))
    if not flat.size:
        return ""
    if flat.dtype.kind not in "iub":
        raise TypeError(f"array_body: dtype {flat.dtype} is not a number")
    lo, hi = int(flat.min()), int(flat.max())
    if lo < -(2**31) + 1 or hi >= 2**31:  # a literal that needs int_literal's spelling
        items = [int_literal(v) for v in flat.tolist()]
        per_line = per_line or 16
        return ",\n    ".join(", ".join(items[i: i + per_line]) for i in range(0, len(items), per_line))
    width = max(len(str(lo)), len(str(hi))) + 1  # a space before the widest
    per_line = per_line or max(1, LINE_WIDTH // (width + 1))
    step = per_line * max(1, (1 << 20) // per_line)  # values per chunk: whole lines only
    newline = np.frombuffer(b"\n    ", np.uint8)
    table = None
    if hi - lo < 1 << 16:  # int8, int16: each value's field looked up, whole fields at a time
        table = np.ascontiguousarray(_int_fields(np.arange(lo, hi + 1), width)).view(f"V{width + 1}").reshape(-1)
    parts = []
    for first in range(0, len(flat), step):
        chunk = flat[first: first + step].astype(np.int64)
        if table is not None:
            fields = table[chunk - lo].view(np.uint8).reshape(-1, width + 1)
        else:
            fields = _int_fields(chunk, width)
        full = len(fields) // per_line * per_line
        lines = fields[:full].reshape(-1, per_line * (width + 1))
        parts.append(np.hstack([lines, np.broadcast_to(newline, (len(lines), len(newline)))]).tobytes())
        if full < len(fields):
            parts.append(fields[full:].tobytes())
    parts[-1] = parts[-1].rstrip().rstrip(b",")
    return b"".join(parts).decode("ascii")


def _int_fields(values: np.ndarray, width: int) -> np.ndarray:
    """[n, width + 1] ASCII bytes: each value right-aligned in `width` columns, then a comma."""
    n = len(values)
    out = np.full((n, width + 1), ord(" "), np.uint8)
    out[:, width] = ord(",")
    magnitude = np.abs(values)
    digits = np.ones(n, np.int64)
    for d in range(width):
        place = 10 ** d
        present = (magnitude >= place) | (d == 0)
        digits += (magnitude >= place * 10)
        column = (magnitude // place) % 10 + ord("0")
        out[:, width - 1 - d] = np.where(present, column, out[:, width - 1 - d])
    negative = np.flatnonzero(values < 0)
    out[negative, width - 1 - digits[negative]] = ord("-")
    return out


def _float_items(flat: np.ndarray) -> list[str]:
    """_float_text of every value of a float32 array, at twice its speed: one bound format
    method mapped over the values, then the few that need another spelling patched (whole
    numbers below 1e9 print without a point; non-finite values)."""
    items = list(map("{:.9g}f".format, flat.tolist()))
    with np.errstate(invalid="ignore"):
        whole = np.flatnonzero(np.isfinite(flat) & (np.floor(flat) == flat) & (np.abs(flat) < 1e9))
    for i in whole.tolist():
        items[i] = items[i][:-1] + ".0f"
    for i in np.flatnonzero(~np.isfinite(flat)).tolist():
        items[i] = _float_text(float(flat[i]))
    return items


def _float_text(v: float) -> str:
    """float_literal for a value that is already a float32 widened to a Python float."""
    if v != v:
        return "NAN"
    if v in (math.inf, -math.inf):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = f"{v:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"
