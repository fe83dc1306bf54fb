"""The const data section of a generated model: arrays, LSTM weights as stored, deduplicated
tables and lookup-table initializers, in the order they are written, each counted in flash."""

from __future__ import annotations

import numpy as np

from ..fixedpoint import Lut
from ..lowering import table_ctype
from .cformat import check_range, const_array
from .footprint import Footprint
from .names import c_comment


class ConstData:
    """Const data blocks (C text, in order) of one model under ``prefix``; flash in ``fp``."""

    def __init__(self, prefix: str, fp: Footprint):
        self.p = prefix
        self.fp = fp
        self.blocks: list[str] = []
        self.tables: dict[tuple[str, bytes], str] = {}  # (ctype, values) -> name

    def text(self, block: str) -> None:
        """A comment or an initializer whose flash the caller counts."""
        self.blocks.append(block)

    def array(self, ctype: str, name: str, values: np.ndarray, comment: str, per_line: int = 16) -> str:
        arr = np.asarray(values)
        self.blocks.append(const_array(ctype, name, arr, comment, per_line))
        self.fp.const_array(ctype, int(arr.size))
        return name

    def weights(self, ctype: str, name: str, values: np.ndarray, comment: str) -> str:
        """LSTM weights as the runtime stores them (tl_lstm.h): int8 as TL_W8(w) bytes (int8_t), int16
        as TL_W16(w) words (uint16_t); both carry a bias on Armv6-M only."""
        flat = np.asarray(values).reshape(-1).astype(np.int64)
        check_range(ctype, flat, name)
        macro, stored, per = ("TL_W8", "int8_t", 16) if ctype == "int8_t" else ("TL_W16", "uint16_t", 12)
        lines = [", ".join(f"{macro}({int(v)})" for v in flat[i : i + per]) + "," for i in range(0, flat.size, per)]
        self.blocks.append(f"/* {comment}; stored as {macro} values */\n"
                           f"static const {stored} {name}[{flat.size}] = {{\n"
                           + "\n".join("    " + ln for ln in lines) + "\n};\n")
        self.fp.const_array(stored, int(flat.size))
        return name

    def table(self, values: np.ndarray, fallback: str, comment: str) -> tuple[str, str]:
        """A deduplicated const table: returns (name, ctype)."""
        v = np.asarray(values).astype(np.int64).reshape(-1)
        ctype = table_ctype(v, fallback)
        key = (ctype, v.tobytes())
        if key not in self.tables:
            name = f"{self.p}_table{len(self.tables)}"
            self.tables[key] = name
            self.array(ctype, name, v, comment)
        return self.tables[key], ctype

    def lut(self, lut: Lut, in_what: str) -> str:
        """A ``tl_lut_t`` initializer (its table deduplicated)."""
        name, ctype = self.table(
            lut.table, "int32_t",
            f"{c_comment(lut.function, 60)}: {'half table (point-symmetric)' if lut.sym else 'full table'}, "
            f"{lut.n} segments, grid 2^-{lut.x_frac}, output Q({lut.q})",
        )
        ptrs = f"{name}, 0" if ctype == "uint16_t" else f"0, {name}"
        return (f"{{{ptrs}, {lut.n}, {lut.sym}, {lut.shift}}} /* {c_comment(lut.function, 60)}: "
                f"{in_what} Q({lut.in_frac}) -> Q({lut.q}) */")
