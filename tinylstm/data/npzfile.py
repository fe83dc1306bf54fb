"""Reading ``.npz`` / ``.npy`` files safely: never unpickling, sizes checked before allocating.

Every failure is a :class:`~tinylstm.errors.DataError` naming the file (and the array). Used for
data sets and for ``.tlq`` integer-model files alike.
"""

from __future__ import annotations

import math
import os
import stat
import tokenize
import zipfile
import zlib
from collections.abc import Iterable
from typing import IO

import numpy as np

from ..errors import DataError

#: the most bytes one array of a data file may hold (guards against zip bombs and lying headers)
MAX_ARRAY_BYTES = 1 << 30


def read_arrays(path: str | os.PathLike, what: str,
                keys: Iterable[str] | None = None) -> tuple[set[str], dict[str, np.ndarray]]:
    """The names of the arrays in an ``.npz`` (``{'x'}`` for an ``.npy``) and those of ``keys``
    (all of them when ``keys`` is None).

    Never unpickles: object arrays are refused from their header. Each array's declared size
    is checked against :data:`MAX_ARRAY_BYTES` and against the bytes the file holds before
    anything is allocated. Every failure is a :class:`DataError` naming the file (and the array).
    """
    path = os.fspath(path)
    label = f"{what} '{path}'"
    kind = _file_kind(path, label)
    wanted = None if keys is None else list(keys)
    try:
        if kind == "npy":
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                want_x = wanted is None or "x" in wanted
                return {"x"}, ({"x": _read_npy(f, size, "x", label)} if want_x else {})
        with zipfile.ZipFile(path) as z:
            members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
                       for i in z.infolist()}
            out: dict[str, np.ndarray] = {}
            for key in (members if wanted is None else wanted):
                info = members.get(key)
                if info is None:
                    continue
                if info.file_size > MAX_ARRAY_BYTES:
                    raise DataError(f"{label}: array '{key}' unpacks to {_size(info.file_size)}; "
                                    f"tinylstm reads data arrays up to {_size(MAX_ARRAY_BYTES)}")
                with z.open(info) as f:
                    out[key] = _read_npy(f, info.file_size, key, label)
            return set(members), out
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{label}: not enough memory to load it") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError) as e:
        raise DataError(f"{label} is not a readable .{kind} file (damaged or truncated: "
                        f"{_reason(e)})") from None


def _file_kind(path: str, label: str) -> str:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{label} is not a regular file")
        if st.st_size == 0:
            raise DataError(f"{label} is empty")
        with open(path, "rb") as f:
            head = f.read(6)
    except FileNotFoundError:
        raise DataError(f"{label}: no such file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise DataError(f"{label}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if head.startswith(b"PK"):
        return "npz"
    if head == b"\x93NUMPY":
        return "npy"
    raise DataError(f"{label} is not an .npz or .npy file (no zip or NumPy signature; tinylstm "
                    "never loads pickles or text)")


def _read_npy(f: IO[bytes], size: int, key: str, label: str) -> np.ndarray:
    """One ``.npy`` stream: header checked first, then exactly the declared bytes read."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise DataError(f"{label}: array '{key}' has .npy format version {version}; supported: "
                            "1.0, 2.0")
    except DataError:
        raise
    except (ValueError, SyntaxError, tokenize.TokenError, TypeError, RecursionError, EOFError) as e:
        raise DataError(f"{label}: array '{key}' has no readable .npy header ({_reason(e)})") from None
    if dtype.hasobject:
        raise DataError(f"{label}: array '{key}' holds Python objects (dtype {dtype}); tinylstm never "
                        "unpickles data: store numbers")
    if any(d < 0 for d in shape) or dtype.itemsize == 0:
        raise DataError(f"{label}: array '{key}' declares shape {shape} of {dtype}")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(f"{label}: array '{key}' declares shape {shape} of {dtype} ({_size(nbytes)}); "
                        f"tinylstm reads data arrays up to {_size(MAX_ARRAY_BYTES)}")
    data = f.read(nbytes) if nbytes else b""
    if len(data) < nbytes:
        raise DataError(f"{label}: array '{key}' declares shape {shape} of {dtype} ({nbytes} bytes) "
                        f"but holds {len(data)} bytes")
    a = np.frombuffer(bytearray(data), dtype=dtype, count=count) if count else np.empty(0, dtype)
    return a.reshape(shape, order="F" if fortran else "C")


def _size(nbytes: int) -> str:
    for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << k:
            return f"{nbytes / (1 << k):.4g} {unit}"
    return f"{nbytes} bytes"


def _reason(e: BaseException) -> str:
    """A short one-line reason from a library exception."""
    msg = e.args[0] if isinstance(e, tokenize.TokenError) and e.args else e
    text = " ".join(str(msg).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
