"""Reading an ONNX file safely: parse, check opsets, keep external data inside the folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import external_data_helper, numpy_helper

from ..errors import ModelFormatError, UnsupportedModelError, one_line

#: Opsets of the default domain the importer has been written against.
MIN_OPSET, MAX_OPSET = 7, 23
#: protobuf cannot parse a message of 2 GiB or more (larger models keep weights external)
MAX_MODEL_BYTES = (1 << 31) - 1
#: external_data keys onnx defines (any other is refused, never passed to onnx's loader)
EXTERNAL_DATA_KEYS = {"location", "offset", "length", "checksum"}
_DEFAULT_DOMAINS = ("", "ai.onnx")


def read_model(source: str | os.PathLike | onnx.ModelProto | bytes) -> tuple[onnx.ModelProto, str]:
    """Parse ``source`` and load external data, refusing locations outside the model folder.

    Returns the model and a printable description of where it came from.
    """
    if isinstance(source, onnx.ModelProto):
        model = source
        where = "<in-memory model>"
        base = None
        if _has_raw_strings(model):
            model = onnx.ModelProto()
            model.CopyFrom(source)  # the caller's model stays untouched
    elif isinstance(source, bytes):
        model = _parse(source, "<bytes>")
        where = "<bytes>"
        base = None
    else:
        path = Path(source)
        where = str(path)
        model = _parse(_read_file(path), where)
        base = path.resolve().parent
    decode_strings(model)
    _check_external_data(model, base, where)
    _check_opsets(model)
    return model, where


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_MODEL_BYTES`; anything else refused."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise ModelFormatError(f"{path}: cannot open ({reason})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFormatError(f"{path}: is a directory, not an ONNX file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFormatError(f"{path}: is a {_file_kind(st.st_mode)}, not a regular file")
    if st.st_size > MAX_MODEL_BYTES:
        raise ModelFormatError(
            f"{path}: {st.st_size} bytes; an ONNX file must be under 2 GiB (protobuf's limit: "
            "larger models keep their weights in external data files)"
        )
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read ({e.strerror})") from None


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


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


# --------------------------------------------------------------------------------------
# strings: protobuf hands invalid UTF-8 over as bytes
# --------------------------------------------------------------------------------------
def decode_strings(model: onnx.ModelProto) -> None:
    """Make every string field of ``model`` a ``str``: invalid UTF-8 (which protobuf returns
    as ``bytes``) is decoded with ``\\xNN`` escapes for the bad bytes, in place."""
    _walk_strings(model, fix=True)


def _has_raw_strings(model: onnx.ModelProto) -> bool:
    return _walk_strings(model, fix=False)


def _walk_strings(msg: Message, fix: bool) -> bool:
    """True when a string field of ``msg`` (recursively) is ``bytes``; fixes it if ``fix``."""
    found = False
    if isinstance(msg, onnx.TensorProto):  # never touch the (large) data fields
        fields = [(msg.DESCRIPTOR.fields_by_name[f], getattr(msg, f)) for f in ("name", "doc_string")]
        fields.append((msg.DESCRIPTOR.fields_by_name["external_data"], msg.external_data))
    else:
        fields = msg.ListFields()
    for fd, value in fields:
        if fd.type == fd.TYPE_STRING:
            if fd.is_repeated:
                if bytes in map(type, value):
                    found = True
                    if fix:
                        value[:] = [_decoded(v) for v in value]
            elif isinstance(value, bytes):
                found = True
                if fix:
                    setattr(msg, fd.name, _decoded(value))
        elif fd.type == fd.TYPE_MESSAGE:
            for sub in value if fd.is_repeated else [value]:
                found = _walk_strings(sub, fix) or found
                if found and not fix:
                    return True
    return found


def _decoded(v: str | bytes) -> str:
    return v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else v


# --------------------------------------------------------------------------------------
# external data
# --------------------------------------------------------------------------------------
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
        _check_external_tensor(t, base, where)
    try:
        external_data_helper.load_external_data_for_model(model, str(base))
    except Exception as e:
        raise ModelFormatError(f"{where}: cannot load external data ({one_line(e)})") from None


def _check_external_tensor(t: onnx.TensorProto, base: Path, where: str) -> None:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    shown = loc if len(loc) <= 200 else loc[:100] + f"...({len(loc)} characters)"
    field = f"initializer '{t.name}' external_data location '{shown}'"
    unknown = sorted(set(info) - EXTERNAL_DATA_KEYS)
    if unknown:
        raise ModelFormatError(
            f"{where}: initializer '{t.name}' has unknown external_data key(s) {unknown}; "
            f"known: {', '.join(sorted(EXTERNAL_DATA_KEYS))}"
        )
    if not loc or os.path.isabs(loc) or loc.startswith(("/", "\\")) or ":" in loc:
        raise ModelFormatError(f"{where}: {field} must be a relative path inside the model folder")
    if "\x00" in loc:
        raise ModelFormatError(f"{where}: {field} holds a NUL byte")
    try:
        target = (base / loc).resolve()
        inside = target.is_relative_to(base)
        size = target.stat().st_size if inside and target.is_file() else None
    except OSError as e:
        raise ModelFormatError(f"{where}: {field}: cannot open ({e.strerror})") from None
    if not inside:
        raise ModelFormatError(f"{where}: {field} points outside the model folder {base}; refused")
    if size is None:
        raise ModelFormatError(f"{where}: {field}: file not found")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelFormatError(f"{where}: {field}: bad offset/length") from None
    if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
        raise ModelFormatError(
            f"{where}: {field}: offset/length beyond the end of the {size}-byte data file"
        )


# --------------------------------------------------------------------------------------
# opsets and tensors
# --------------------------------------------------------------------------------------
def _check_opsets(model: onnx.ModelProto) -> None:
    versions = [imp.version for imp in model.opset_import if imp.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise UnsupportedModelError(
            "the model imports no opset of the default ONNX domain; supported: "
            f"ai.onnx opsets {MIN_OPSET}-{MAX_OPSET}",
            field="opset_import",
        )
    if len(versions) > 1:
        raise UnsupportedModelError(
            f"the default ONNX domain is imported {len(versions)} times (versions "
            f"{', '.join(map(str, versions))}); it must be imported once",
            field="opset_import",
        )
    if not MIN_OPSET <= versions[0] <= MAX_OPSET:
        raise UnsupportedModelError(
            f"ai.onnx opset {versions[0]} is not supported; supported: {MIN_OPSET}-{MAX_OPSET}",
            field="opset_import",
        )


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    return 0


def initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """All initializers as numpy arrays; names must be unique and float ones finite."""
    out: dict[str, np.ndarray] = {}
    for t in model.graph.initializer:
        if t.name in out:
            raise ModelFormatError(
                f"initializer '{t.name}' is defined twice; initializer names must be unique"
            )
        a = tensor_array(t, f"initializer '{t.name}'")
        check_finite(a, f"initializer '{t.name}'")
        out[t.name] = a
    return out


def tensor_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """A TensorProto as a numpy array of a real-number, integer or bool dtype.

    Narrow float types (bfloat16, float8, float4) widen to float32 and 2/4-bit integers to
    8 bits, losslessly; complex and string tensors are refused.
    """
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:
        raise ModelFormatError(f"{what} cannot be decoded ({type(e).__name__}: {one_line(e)})") from None
    if a.dtype.kind in "biuf":
        return a
    name = a.dtype.name
    if a.dtype.kind == "V" and name.startswith(("bfloat16", "float8", "float4")):
        return a.astype(np.float32)
    if a.dtype.kind == "V" and name in ("int4", "int2", "uint4", "uint2"):
        return a.astype(np.uint8 if name.startswith("u") else np.int8)
    raise UnsupportedModelError(
        f"{what} holds {onnx.TensorProto.DataType.Name(t.data_type)} values; tinylstm reads real "
        "numbers, integers and booleans"
    )


def check_finite(a: np.ndarray, what: str) -> None:
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ModelFormatError(f"{what} contains {bad} NaN/Inf value(s); weights must be finite")
