"""Formatting integers and const arrays as C99 text (deterministic, no model text)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: value ranges of the C types the emitter uses (their sizes: :data:`.footprint.C_SIZES`)
_RANGES = {
    "int8_t": (-(2**7), 2**7 - 1),
    "uint8_t": (0, 2**8 - 1),
    "int16_t": (-(2**15), 2**15 - 1),
    "uint16_t": (0, 2**16 - 1),
    "int32_t": (-(2**31), 2**31 - 1),
}


def c_int(v: int) -> str:
    """An int literal that keeps its value and type under -Wconversion (INT32_MIN spelled out)."""
    v = int(v)
    if v == -(2**31):
        return "(-2147483647 - 1)"
    return str(v)


def c_float(v: float) -> str:
    """A double literal with every digit needed to round-trip."""
    s = f"{float(v):.17g}"
    if not any(ch in s for ch in ".en"):
        s += ".0"
    return s


def check_range(ctype: str, values: np.ndarray, what: str) -> None:
    lo, hi = _RANGES[ctype]
    if values.size and (int(values.min()) < lo or int(values.max()) > hi):
        raise ValueError(f"{what}: values outside {ctype}")  # an internal error: the emitter chose the type


def int_list(values: Iterable[int], per_line: int = 16, indent: str = "    ") -> str:
    """Comma-separated ints, ``per_line`` per line."""
    vals = [c_int(v) for v in values]
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append(indent + ", ".join(vals[i : i + per_line]) + ",")
    return "\n".join(lines)


def const_array(ctype: str, name: str, values: np.ndarray, comment: str, per_line: int = 16) -> str:
    """``static const <ctype> name[N] = {...};`` with a comment line above."""
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    check_range(ctype, flat, name)
    return f"/* {comment} */\nstatic const {ctype} {name}[{flat.size}] = {{\n{int_list(flat, per_line)}\n}};\n"

