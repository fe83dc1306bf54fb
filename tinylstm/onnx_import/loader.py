"""Reading an ONNX file safely: parse, check opsets, keep external data inside the folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from ..errors import ModelFormatError, UnsupportedModelError

#: Opsets of the default domain the importer has been written against.
MIN_OPSET, MAX_OPSET = 7, 23


def read_model(source: str | os.PathLike | onnx.ModelProto | bytes) -> tuple[onnx.ModelProto, str]:
    """Parse ``source`` and load external data, refusing locations outside the model folder.

    Returns the model and a printable description of where it came from.
    """
    if isinstance(source, onnx.ModelProto):
        model = source
        where = "<in-memory model>"
        base = None
    elif isinstance(source, bytes):
        model = _parse(source, "<bytes>")
        where = "<bytes>"
        base = None
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelFormatError(f"{path}: cannot read ({e.strerror})") from None
        model = _parse(data, where)
        base = path.resolve().parent
    _check_external_data(model, base, where)
    _check_opsets(model)
    return model, where


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    if not data:
        raise ModelFormatError(f"{where}: empty file, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ModelFormatError(f"{where}: not a valid ONNX protobuf ({type(e).__name__})") from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelFormatError(f"{where}: not an ONNX model (no graph or no nodes)")
    return model


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    out = []
    for t in external_data_helper._get_all_tensors(model):
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL:
            out.append(t)
    return out


def _check_external_data(model: onnx.ModelProto, base: Path | None, where: str) -> None:
    tensors = _external_tensors(model)
    if not tensors:
        return
    if base is None:
        raise ModelFormatError(
            f"{where}: tensor '{tensors[0].name}' uses external data; load the model from its "
            "file path so the data file can be found next to it"
        )
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        field = f"initializer '{t.name}' external_data location '{loc}'"
        if not loc or os.path.isabs(loc) or loc.startswith(("/", "\\")) or ":" in loc:
            raise ModelFormatError(f"{where}: {field} must be a relative path inside the model folder")
        target = (base / loc).resolve()
        try:
            target.relative_to(base)
        except ValueError:
            raise ModelFormatError(
                f"{where}: {field} points outside the model folder {base}; refused"
            ) from None
        if not target.is_file():
            raise ModelFormatError(f"{where}: {field}: file not found")
        size = target.stat().st_size
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise ModelFormatError(f"{where}: {field}: bad offset/length") from None
        if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
            raise ModelFormatError(
                f"{where}: {field}: offset/length beyond the end of the {size}-byte data file"
            )
    try:
        external_data_helper.load_external_data_for_model(model, str(base))
    except Exception as e:
        raise ModelFormatError(f"{where}: cannot load external data ({e})") from None


def _check_opsets(model: onnx.ModelProto) -> None:
    default = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            default = imp.version
    if default is None:
        raise UnsupportedModelError(
            "the model imports no opset of the default ONNX domain; supported: "
            f"ai.onnx opsets {MIN_OPSET}-{MAX_OPSET}",
            field="opset_import",
        )
    if not MIN_OPSET <= default <= MAX_OPSET:
        raise UnsupportedModelError(
            f"ai.onnx opset {default} is not supported; supported: {MIN_OPSET}-{MAX_OPSET}",
            field="opset_import",
        )


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """All initializers as numpy arrays; float ones must be finite."""
    out: dict[str, np.ndarray] = {}
    for t in model.graph.initializer:
        try:
            a = numpy_helper.to_array(t)
        except Exception as e:
            raise ModelFormatError(f"initializer '{t.name}' cannot be decoded ({e})") from None
        check_finite(a, f"initializer '{t.name}'")
        out[t.name] = a
    return out


def check_finite(a: np.ndarray, what: str) -> None:
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ModelFormatError(f"{what} contains {bad} NaN/Inf value(s); weights must be finite")
