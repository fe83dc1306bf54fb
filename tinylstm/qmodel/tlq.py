"""The ``.tlq`` file: the integer model as an ``.npz`` of arrays plus a JSON header (no pickle).

Format: docs/quantization.md §14. Generic over the model's dataclasses: every class a file may
name is in :data:`CLASSES`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import typing
from typing import Any

import numpy as np

from ..data.npzfile import read_arrays
from ..errors import DataError, ModelFormatError, OutputPathError
from ..fixedpoint import Lut
from ..ir import Atom, View
from .nodes import (
    QDense,
    QFeatureGather,
    QGru,
    QGruDirection,
    QInput,
    QLstm,
    QLstmDirection,
    QLstmState,
    QSelectStep,
    QSoftmax,
    QTable,
)

FORMAT_NAME = "tinylstm-qmodel"
FORMAT_VERSION = 2

# ---------------------------------------------------------------------------------------
# .tlq serialization: dataclass tree -> JSON with array references
# ---------------------------------------------------------------------------------------
_CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (
        QInput,
        QLstm,
        QLstmDirection,
        QGru,
        QGruDirection,
        QLstmState,
        QSelectStep,
        QFeatureGather,
        QDense,
        QTable,
        QSoftmax,
        Lut,
        View,
        Atom,
    )
}
_DTYPES = ("int8", "int16", "int32", "int64", "bool", "float64", "uint8", "uint16")


def _encode(v: Any, arrays: dict[str, np.ndarray]) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, np.ndarray):
        if v.dtype.name not in _DTYPES:
            raise TypeError(f"array dtype {v.dtype} not storable")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(v)
        return {"$array": key}
    if isinstance(v, (tuple, list)):
        return [_encode(x, arrays) for x in v]
    if dataclasses.is_dataclass(v) and (type(v).__name__ in _CLASSES or type(v).__name__ == "QuantizedModel"):
        out: dict[str, Any] = {"$type": type(v).__name__}
        for f in dataclasses.fields(v):
            out[f.name] = _encode(getattr(v, f.name), arrays)
        return out
    raise TypeError(f"cannot store {type(v).__name__}")


def _decode(v: Any, arrays: Any, where: str, classes: dict[str, type]) -> Any:
    if isinstance(v, list):
        return tuple(_decode(x, arrays, where, classes) for x in v)
    if isinstance(v, dict):
        if "$array" in v:
            key = v["$array"]
            if not isinstance(key, str) or key not in arrays:
                raise ModelFormatError(f"{where}: missing array {key!r}")
            a = arrays[key]
            if a.dtype.name not in _DTYPES:
                raise ModelFormatError(f"{where}: array {key} has unsupported dtype {a.dtype}")
            return a
        cls_name = v.get("$type")
        cls = classes.get(cls_name) if isinstance(cls_name, str) else None
        if cls is None:
            raise ModelFormatError(f"{where}: unknown object type {cls_name!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = set(v) - names - {"$type"}
        if extra:
            raise ModelFormatError(f"{where}: unknown fields {sorted(extra)} for {cls_name}")
        kwargs = {k: _decode(x, arrays, f"{where}.{k}", classes) for k, x in v.items() if k != "$type"}
        hints = typing.get_type_hints(cls)
        for k, x in list(kwargs.items()):
            if hints.get(k) is dict:  # pragma: no cover - no dict fields today
                kwargs[k] = dict(x)
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ModelFormatError(f"{where}: bad {cls_name}: {e}") from None
    return v


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` (a :class:`~.model.QuantizedModel`) as a ``.tlq`` file, atomically."""
    arrays: dict[str, np.ndarray] = {}
    tree = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "model": _encode(model, arrays)}
    header = np.frombuffer(json.dumps(tree, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, header=header, **arrays)
    p = os.fspath(path)
    tmp = p + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, p)
    except OSError as e:
        with contextlib.suppress(OSError):  # no temporary file left behind
            os.unlink(tmp)
        raise OutputPathError(f"cannot write '{p}': {e.strerror or e}") from None


#: the largest JSON header a .tlq may hold (a real one is a few KB)
MAX_HEADER_BYTES = 16 << 20


def load_model(path: str | os.PathLike, model_class: type) -> Any:
    """Read a ``.tlq`` file holding a ``model_class`` (:class:`ModelFormatError` otherwise); the
    caller checks the model's invariants."""
    p = os.fspath(path)
    try:
        _, arrays = read_arrays(p, "integer model")
    except DataError as e:
        raise ModelFormatError(f"{e} (expected a tinylstm .tlq file)") from None
    header = arrays.get("header")
    if header is None or header.dtype != np.uint8 or header.ndim != 1:
        raise ModelFormatError(f"'{p}' is not a tinylstm .tlq file (no header)")
    if header.size > MAX_HEADER_BYTES:
        raise ModelFormatError(f"'{p}': header of {header.size} bytes (at most {MAX_HEADER_BYTES})")
    try:
        tree = json.loads(header.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ModelFormatError(f"'{p}': unreadable header ({reason})") from None
    if not isinstance(tree, dict) or tree.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"'{p}' is not a tinylstm .tlq file (format {tree.get('format')!r})"
                               if isinstance(tree, dict) else f"'{p}': bad header (not a JSON object)")
    version = tree.get("version")
    if version == 1:
        raise ModelFormatError(
            f"'{p}' is a .tlq of format version 1 (tinylstm 0.1, the first integer spec); this tinylstm "
            f"implements spec version 2 (one rounding per gate, docs/quantization.md) and reads version "
            f"{FORMAT_VERSION}: quantize the ONNX model again"
        )
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"'{p}' has .tlq format version {version!r}; this tinylstm reads version {FORMAT_VERSION}"
        )
    try:
        model = _decode(tree.get("model"), arrays, "model", {**_CLASSES, model_class.__name__: model_class})
    except RecursionError:
        raise ModelFormatError(f"'{p}': header nested too deeply") from None
    except ModelFormatError as e:
        raise ModelFormatError(f"'{p}': {e}") from None
    if not isinstance(model, model_class):
        raise ModelFormatError(f"'{p}': the header does not describe a {model_class.__name__}")
    return model
