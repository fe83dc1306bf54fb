"""One SHA-256 of a tree of dataclasses, arrays and scalars: model fingerprints and C banners."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np

#: ``skip(obj, field_name)``: leave that field of that dataclass out of the hash
Skip = Callable[[object, str], bool]


def tree_sha256(value: object, skip: Skip | None = None) -> str:
    """SHA-256 over every field of ``value``, recursively: dataclasses by type and field names,
    arrays by dtype, shape and bytes, sequences by length, scalars by type and ``repr``."""
    h = hashlib.sha256()

    def walk(v: object) -> None:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            h.update(b"D" + type(v).__name__.encode())
            for f in dataclasses.fields(v):
                if skip is None or not skip(v, f.name):
                    h.update(b"F" + f.name.encode())
                    walk(getattr(v, f.name))
        elif isinstance(v, np.ndarray):
            h.update(b"A" + str(v.dtype).encode() + repr(v.shape).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (tuple, list)):
            h.update(b"T%d" % len(v))
            for x in v:
                walk(x)
        else:
            h.update(b"S" + type(v).__name__.encode() + repr(v).encode())

    walk(value)
    return h.hexdigest()
