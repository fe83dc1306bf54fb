"""Regenerate the bad-DATA corpus: calibration / validation files for quantize, validate, build.

Usage::

    python tests/bad_inputs/make_data_corpus.py            # (re)write tests/bad_inputs/data_corpus/
    python tests/bad_inputs/make_data_corpus.py --check    # exit 1 if the stored corpus is stale
    python tests/bad_inputs/make_data_corpus.py --list     # one line per case

Every case is a function returning the bytes of one ``<name>.npz`` (or ``.npy``) file that
tinylstm must refuse, as ``--calib`` and as ``--data``, with exit status 2 and one line naming
``culprit``, for the model ``examples/models/japanese_vowels.onnx`` (12 features, 9 classes).
The zip files are written by hand with fixed timestamps, so the corpus is byte-identical on
every run. Object (pickled) arrays carry a payload that would create :data:`PWNED` if it were
ever unpickled: the tests check that it never is.

The ``.tlq`` cases (integer model files) are derived from a fresh quantization, so they are not
stored: :func:`tlq_cases` builds them from a valid ``.tlq`` at test time.
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import shutil
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data_corpus"
#: the model every case is checked against (features and classes below)
FEATURES = 12
CLASSES = 9
#: would be created by the pickle payload, were it ever unpickled
PWNED = "/tmp/tinylstm_pwned_data"
#: a protocol-0 pickle that calls os.system (never executed: allow_pickle stays False)
PICKLE_PAYLOAD = b"cos\nsystem\n(S'touch " + PWNED.encode() + b"'\ntR."
_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DataCase:
    name: str
    category: str
    #: a substring the one-line error must contain (besides the file name)
    culprit: str
    build: Callable[[], bytes]
    suffix: str = ".npz"
    note: str = ""

    def path(self, root: Path) -> Path:
        return root / f"{self.name}{self.suffix}"


CASES: dict[str, DataCase] = {}


def case(name: str, category: str, culprit: str, **kw):
    def deco(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        if name in CASES:
            raise ValueError(f"duplicate case {name}")
        CASES[name] = DataCase(name, category, culprit, fn, **kw)
        return fn

    return deco


# --------------------------------------------------------------------------------------
# writing .npy / .npz bytes by hand (deterministic)
# --------------------------------------------------------------------------------------
def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_raw(header: dict, payload: bytes) -> bytes:
    """An .npy with any header (shape, dtype) followed by ``payload``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def npy_object(payload: bytes = PICKLE_PAYLOAD, shape: tuple[int, ...] = (6, 8, 12)) -> bytes:
    """An object-dtype .npy: a header with descr ``|O`` followed by a (hostile) pickle."""
    return npy_raw({"descr": "|O", "fortran_order": False, "shape": shape}, payload)


def npz(members: dict[str, np.ndarray | bytes], compress: bool = False) -> bytes:
    """A zip of ``<key>.npy`` members (arrays, or raw member bytes) with fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for key, v in members.items():
            info = zipfile.ZipInfo(key if key.endswith((".npy", ".txt")) else f"{key}.npy", _DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            z.writestr(info, v if isinstance(v, bytes) else npy(v))
    return buf.getvalue()


def valid_arrays() -> dict[str, np.ndarray]:
    """A small valid data set for the model: 6 sequences of 8 steps, lengths, labels."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 8, FEATURES)).astype(np.float32)
    lengths = np.array([8, 5, 8, 3, 7, 8], dtype=np.int64)
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0
    labels = np.array([0, 1, 2, 3, 4, 8], dtype=np.int64)
    return {"x": x, "lengths": lengths, "labels": labels}


def with_(**changes: np.ndarray | bytes | None) -> bytes:
    """The valid data set with some members replaced (None: removed)."""
    arrays: dict[str, np.ndarray | bytes] = dict(valid_arrays())
    for k, v in changes.items():
        if v is None:
            arrays.pop(k, None)
        else:
            arrays[k] = v
    return npz(arrays)


def x_with(value: float, dtype: type = np.float32) -> np.ndarray:
    x = valid_arrays()["x"].astype(dtype)
    x[2, 1, 3] = value
    return x


# --------------------------------------------------------------------------------------
# files that are not data
# --------------------------------------------------------------------------------------
@case("empty", "not a data file", "empty")
def _empty() -> bytes:
    return b""


@case("text", "not a data file", "not an .npz")
def _text() -> bytes:
    return b"x,lengths\n1,2\n"


@case("truncated_zip_half", "not a data file", "not a readable")
def _trunc_half() -> bytes:
    data = with_()
    return data[: len(data) // 2]


@case("truncated_zip_tail", "not a data file", "not a readable",
      note="the last 10 bytes (end of the central directory) cut off")
def _trunc_tail() -> bytes:
    return with_()[:-10]


@case("zip_without_arrays", "not a data file", "expected 'x'", note="a zip holding readme.txt")
def _zip_txt() -> bytes:
    return npz({"readme.txt": b"hello"})


@case("zip_bad_crc", "not a data file", "not a readable", note="one byte of x flipped: CRC mismatch")
def _bad_crc() -> bytes:
    data = bytearray(with_())
    k = data.index(b"x.npy") + 5 + 200  # inside x's array bytes
    data[k] ^= 0xFF
    return bytes(data)


@case("zip_deflate_corrupt", "not a data file", "not a readable",
      note="a compressed npz whose deflate stream is damaged")
def _deflate() -> bytes:
    data = bytearray(npz(valid_arrays(), compress=True))
    k = data.index(b"x.npy") + 5 + 40
    data[k : k + 16] = b"\xff" * 16
    return bytes(data)


@case("npy_header_garbage", "not a data file", "'x'",
      note="x.npy with a header that is not a Python literal dict")
def _hdr_garbage() -> bytes:
    good = npy(valid_arrays()["x"])
    hlen = struct.unpack("<H", good[8:10])[0]
    return with_(x=good[:10] + b"{'descr': <f4 garbage" + b" " * (hlen - 21) + good[10 + hlen :])


@case("pickle_file", "pickled objects", "never loads pickles", suffix=".npy",
      note="a bare pickle named .npy (np.load would unpickle it with allow_pickle=True)")
def _pickle_file() -> bytes:
    return PICKLE_PAYLOAD


@case("object_npy", "pickled objects", "object", suffix=".npy", note="an .npy of dtype object")
def _object_npy() -> bytes:
    return npy_object()


@case("object_x", "pickled objects", "'x'", note="x.npy of dtype object inside the npz")
def _object_x() -> bytes:
    return with_(x=npy_object())


@case("object_lengths", "pickled objects", "'lengths'")
def _object_lengths() -> bytes:
    return with_(lengths=npy_object(shape=(6,)))


@case("object_labels", "pickled objects", "'labels'")
def _object_labels() -> bytes:
    return with_(labels=npy_object(shape=(6,)))


# --------------------------------------------------------------------------------------
# x: shape and dtype
# --------------------------------------------------------------------------------------
@case("missing_x", "x shape", "'x'", note="arrays 'data' and 'lengths' but no 'x'")
def _missing_x() -> bytes:
    return with_(x=None, data=valid_arrays()["x"])


@case("x_rank1", "x shape", "'x'")
def _rank1() -> bytes:
    return with_(x=np.zeros(12, np.float32), lengths=None, labels=None)


@case("x_rank2", "x shape", "'x'")
def _rank2() -> bytes:
    return with_(x=np.zeros((8, 12), np.float32), lengths=None, labels=None)


@case("x_rank4", "x shape", "'x'")
def _rank4() -> bytes:
    return with_(x=np.zeros((6, 8, 12, 1), np.float32))


@case("x_features_5", "x shape", "features", note="5 features for a 12-feature model")
def _feat5() -> bytes:
    return with_(x=np.zeros((6, 8, 5), np.float32))


@case("x_features_13", "x shape", "features")
def _feat13() -> bytes:
    return with_(x=np.zeros((6, 8, 13), np.float32))


@case("x_no_sequences", "x shape", "no sequences", note="N = 0")
def _n0() -> bytes:
    return with_(x=np.zeros((0, 8, 12), np.float32), lengths=None, labels=None)


@case("x_no_time_steps", "x shape", "time steps", note="T = 0")
def _t0() -> bytes:
    return with_(x=np.zeros((6, 0, 12), np.float32), lengths=None)


@case("x_npy_rank2", "x shape", "'x'", suffix=".npy", note="an .npy holding a 2-D x")
def _npy_rank2() -> bytes:
    return npy(np.zeros((8, 12), np.float32))


_X_DTYPES = {
    "str": np.full((6, 8, 12), "1.0", dtype="<U3"),
    "bytes": np.full((6, 8, 12), b"1.0", dtype="S3"),
    "complex": np.zeros((6, 8, 12), np.complex64),
    "bool": np.zeros((6, 8, 12), np.bool_),
    "datetime": np.zeros((6, 8, 12), "datetime64[s]"),
    "structured": np.zeros((6, 8, 12), [("a", "<f4"), ("b", "<f4")]),
}
for _k, _a in _X_DTYPES.items():
    case(f"x_dtype_{_k}", "x dtype", "dtype")(lambda a=_a: with_(x=a))


# --------------------------------------------------------------------------------------
# x: values
# --------------------------------------------------------------------------------------
@case("x_nan", "x values", "NaN")
def _nan() -> bytes:
    return with_(x=x_with(np.nan))


@case("x_posinf", "x values", "Inf")
def _posinf() -> bytes:
    return with_(x=x_with(np.inf))


@case("x_neginf", "x values", "Inf")
def _neginf() -> bytes:
    return with_(x=x_with(-np.inf))


@case("x_nan_in_padding", "x values", "NaN", note="a NaN after the sequence's length")
def _nan_pad() -> bytes:
    x = valid_arrays()["x"]
    x[3, 6, 0] = np.nan  # sequence 3 has length 3
    return with_(x=x)


@case("x_beyond_float32", "x values", "float32",
      note="float64 1e39: finite, but infinite once cast to the model's float32 input")
def _beyond_f32() -> bytes:
    return with_(x=x_with(1e39, np.float64))


# --------------------------------------------------------------------------------------
# lengths
# --------------------------------------------------------------------------------------
@case("lengths_2d", "lengths", "'lengths'")
def _len2d() -> bytes:
    return with_(lengths=np.full((6, 1), 8, np.int64))


@case("lengths_count", "lengths", "'lengths'", note="5 lengths for 6 sequences")
def _lencount() -> bytes:
    return with_(lengths=np.full(5, 8, np.int64))


@case("lengths_negative", "lengths", "'lengths'")
def _lenneg() -> bytes:
    return with_(lengths=np.array([8, 5, -1, 3, 7, 8], np.int64))


@case("lengths_zero", "lengths", "'lengths'")
def _lenzero() -> bytes:
    return with_(lengths=np.array([8, 5, 0, 3, 7, 8], np.int64))


@case("lengths_beyond_t", "lengths", "'lengths'", note="a length of 9 for T = 8")
def _lenbig() -> bytes:
    return with_(lengths=np.array([8, 5, 9, 3, 7, 8], np.int64))


@case("lengths_uint64_max", "lengths", "'lengths'")
def _lenu64() -> bytes:
    return with_(lengths=np.array([8, 5, 2**64 - 1, 3, 7, 8], np.uint64))


@case("lengths_float", "lengths", "'lengths'")
def _lenfloat() -> bytes:
    return with_(lengths=np.array([8, 5, 8, 3, 7, 8], np.float32))


@case("lengths_bool", "lengths", "'lengths'")
def _lenbool() -> bytes:
    return with_(lengths=np.ones(6, np.bool_))


@case("lengths_str", "lengths", "'lengths'")
def _lenstr() -> bytes:
    return with_(lengths=np.array(["8"] * 6))


# --------------------------------------------------------------------------------------
# labels and targets
# --------------------------------------------------------------------------------------
@case("labels_count", "labels", "'labels'", note="5 labels for 6 sequences")
def _labcount() -> bytes:
    return with_(labels=np.arange(5, dtype=np.int64))


@case("labels_2d", "labels", "'labels'")
def _lab2d() -> bytes:
    return with_(labels=np.zeros((6, 1), np.int64))


@case("labels_class_9", "labels", "'labels'", note="label 9 for a 9-class model (0..8)")
def _lab9() -> bytes:
    return with_(labels=np.array([0, 1, 2, 9, 4, 8], np.int64))


@case("labels_negative", "labels", "'labels'")
def _labneg() -> bytes:
    return with_(labels=np.array([0, 1, -1, 3, 4, 8], np.int64))


@case("labels_float", "labels", "'labels'")
def _labfloat() -> bytes:
    return with_(labels=np.array([0, 1, 2, 3, 4, 8], np.float64))


@case("labels_str", "labels", "'labels'")
def _labstr() -> bytes:
    return with_(labels=np.array(list("012348")))


@case("y_count", "targets", "'y'", note="y for 5 of 6 sequences")
def _ycount() -> bytes:
    return with_(labels=None, y=np.zeros((5, CLASSES), np.float32))


@case("y_width", "targets", "'y'", note="4 targets per sequence for a 9-output model")
def _ywidth() -> bytes:
    return with_(labels=None, y=np.zeros((6, 4), np.float32))


@case("y_nan", "targets", "'y'")
def _ynan() -> bytes:
    y = np.zeros((6, CLASSES), np.float32)
    y[1, 1] = np.nan
    return with_(labels=None, y=y)


@case("y_str", "targets", "'y'")
def _ystr() -> bytes:
    return with_(labels=None, y=np.full((6, CLASSES), "a"))


@case("y_scalar", "targets", "'y'")
def _yscalar() -> bytes:
    return with_(labels=None, y=np.float32(1.0))


# --------------------------------------------------------------------------------------
# declared sizes
# --------------------------------------------------------------------------------------
@case("x_declares_2p40_rows", "declared sizes", "'x'",
      note="x.npy's header declares (2^40, 8, 12) float32 but holds 384 bytes")
def _x_huge() -> bytes:
    return with_(x=npy_raw({"descr": "<f4", "fortran_order": False, "shape": (2**40, 8, 12)},
                           b"\0" * 384))


@case("x_declares_16_gib", "declared sizes", "'x'",
      note="x.npy's header declares 16 GiB (fits a 64-bit allocation) but holds 384 bytes")
def _x_16g() -> bytes:
    return with_(x=npy_raw({"descr": "<f4", "fortran_order": False, "shape": (2**22, 1024, 1)},
                           b"\0" * 384))


@case("x_declares_negative", "declared sizes", "'x'", note="a negative dimension in x's header")
def _x_neg() -> bytes:
    return with_(x=npy_raw({"descr": "<f4", "fortran_order": False, "shape": (6, -8, 12)},
                           b"\0" * 384))


@case("lengths_declares_2p40", "declared sizes", "'lengths'")
def _len_huge() -> bytes:
    return with_(lengths=npy_raw({"descr": "<i8", "fortran_order": False, "shape": (2**40,)},
                                 b"\0" * 48))


@case("zip_declares_2_gib", "declared sizes", "'x'",
      note="the zip directory says x.npy unpacks to 2 GiB (a zip bomb's signature)")
def _zip_2g() -> bytes:
    data = bytearray(with_())
    # find the central directory entry of x.npy and patch its uncompressed size (offset 24)
    k = 0
    while True:
        k = data.index(b"PK\x01\x02", k)
        name_len = struct.unpack("<H", data[k + 28 : k + 30])[0]
        if data[k + 46 : k + 46 + name_len] == b"x.npy":
            break
        k += 4
    data[k + 24 : k + 28] = struct.pack("<I", 2**31)
    return bytes(data)


# --------------------------------------------------------------------------------------
# task-file recipes (tinylstm.data.taskfiles): regenerated data must stay bounded and checked
# --------------------------------------------------------------------------------------
def recipe(**fields: object) -> bytes:
    base: dict[str, object] = {"task": "adding", "n": 4, "T": 20, "seed": 0,
                               "x_sha256": "0" * 64, "y_sha256": "0" * 64}
    base.update(fields)
    return npz({k: np.asarray(v) for k, v in base.items() if v is not None})


@case("recipe_n_1e12", "task recipes", "'n'", note="a recipe asking for 10^12 sequences")
def _rec_n() -> bytes:
    return recipe(n=10**12)


@case("recipe_t_1e9", "task recipes", "'T'", note="a recipe asking for 10^9 time steps")
def _rec_t() -> bytes:
    return recipe(T=10**9)


@case("recipe_unknown_task", "task recipes", "unknown task")
def _rec_task() -> bytes:
    return recipe(task="rm -rf /")


@case("recipe_seed_negative", "task recipes", "'seed'")
def _rec_seed() -> bytes:
    return recipe(seed=-1)


@case("recipe_n_not_scalar", "task recipes", "'n'")
def _rec_nvec() -> bytes:
    return recipe(n=np.array([4, 4]))


@case("recipe_task_object", "task recipes", "'task'")
def _rec_obj() -> bytes:
    members: dict[str, np.ndarray | bytes] = {"task": npy_object(shape=())}
    members.update({k: np.asarray(v) for k, v in
                    (("n", 4), ("T", 20), ("seed", 0), ("x_sha256", "0" * 64), ("y_sha256", "0" * 64))})
    return npz(members)


@case("recipe_hash_mismatch", "task recipes", "different data")
def _rec_hash() -> bytes:
    return recipe()


@case("reference_unknown_dataset", "task recipes", "no bundled data set")
def _ref_unknown() -> bytes:
    return npz({"dataset": np.asarray("mnist"), "split": np.asarray("test"),
                "x_sha256": np.asarray("0" * 64), "y_sha256": np.asarray("0" * 64)})


# --------------------------------------------------------------------------------------
# .tlq integer model files, derived from a valid one at test time
# --------------------------------------------------------------------------------------
def _tlq_members(valid: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(valid)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _tlq_header(valid: bytes) -> dict:
    members = _tlq_members(valid)
    buf = io.BytesIO(members["header.npy"])
    return json.loads(np.lib.format.read_array(buf, allow_pickle=False).tobytes())


def _tlq_with_header(valid: bytes, header: bytes) -> bytes:
    members = _tlq_members(valid)
    members["header.npy"] = npy(np.frombuffer(header, np.uint8))
    return npz(members)


def _edit_model(valid: bytes, edit: Callable[[dict], None]) -> bytes:
    tree = _tlq_header(valid)
    edit(tree)
    return _tlq_with_header(valid, json.dumps(tree).encode())


def _first(tree: dict, type_name: str) -> dict:
    """The first object of ``$type`` ``type_name`` in the header tree (depth first)."""
    stack: list[object] = [tree]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if v.get("$type") == type_name:
                return v
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))
    raise KeyError(type_name)


TLQ_CASES = (
    "tlq_empty", "tlq_text", "tlq_truncated_half", "tlq_truncated_tail", "tlq_onnx_file",
    "tlq_data_file", "tlq_no_header", "tlq_header_not_json", "tlq_header_not_utf8",
    "tlq_header_is_list", "tlq_header_deep", "tlq_header_object", "tlq_wrong_version",
    "tlq_wrong_format", "tlq_no_nodes", "tlq_nodes_not_list", "tlq_empty_nodes", "tlq_unknown_type",
    "tlq_hidden_size_string", "tlq_hidden_size_huge", "tlq_scale_nan", "tlq_zero_point_300",
    "tlq_src_out_of_range", "tlq_array_missing", "tlq_arrays_swapped", "tlq_shift_out_of_range",
    "tlq_array_object",
)


def tlq_cases(valid: bytes) -> dict[str, tuple[bytes, str]]:
    """``name -> (bytes of a broken .tlq, culprit)`` from the bytes of a valid ``.tlq``
    (the names of :data:`TLQ_CASES`)."""
    members = _tlq_members(valid)
    arrays = [k for k in members if k != "header.npy"]

    def set_version(t: dict) -> None:
        t["version"] = 99

    def set_format(t: dict) -> None:
        t["format"] = "something-else"

    def drop_nodes(t: dict) -> None:
        del t["model"]["nodes"]

    def nodes_not_list(t: dict) -> None:
        t["model"]["nodes"] = 7

    def unknown_type(t: dict) -> None:
        _first(t, "QLstm")["$type"] = "os.system"

    def hidden_size_string(t: dict) -> None:
        _first(t, "QLstm")["hidden_size"] = "64"

    def hidden_size_huge(t: dict) -> None:
        _first(t, "QLstm")["hidden_size"] = 10**12

    def scale_nan(t: dict) -> None:
        _first(t, "QInput")["scale"] = float("nan")

    def zero_point_300(t: dict) -> None:
        _first(t, "QInput")["zero_point"] = 300

    def src_out_of_range(t: dict) -> None:
        _first(t, "QLstm")["src"] = 99

    def array_ref_missing(t: dict) -> None:
        _first(t, "QLstmDirection")["w"] = {"$array": "a999"}

    def empty_nodes(t: dict) -> None:
        t["model"]["nodes"] = []

    def swap_weight_arrays(t: dict) -> None:
        d = _first(t, "QLstmDirection")
        d["w"], d["bias"] = d["bias"], d["w"]

    def shift_out_of_range(t: dict) -> None:
        d = _first(t, "QLstmDirection")
        d["h_shift"] = 70

    out: dict[str, tuple[bytes, str]] = {
        "tlq_empty": (b"", "empty"),
        "tlq_text": (b"not a model\n", "not an .npz"),
        "tlq_truncated_half": (valid[: len(valid) // 2], "not a readable"),
        "tlq_truncated_tail": (valid[:-10], "not a readable"),
        "tlq_onnx_file": ((HERE.parent.parent / "examples/models/japanese_vowels.onnx").read_bytes(),
                          "not an .npz"),
        "tlq_data_file": (with_(), "not a tinylstm .tlq"),
        "tlq_no_header": (npz({k[:-4]: members[k] for k in arrays}), "header"),
        "tlq_header_not_json": (_tlq_with_header(valid, b"{'format': 1,"), "header"),
        "tlq_header_not_utf8": (_tlq_with_header(valid, b"\xff\xfe{}"), "header"),
        "tlq_header_is_list": (_tlq_with_header(valid, b"[1, 2]"), "header"),
        "tlq_header_deep": (_tlq_with_header(valid, b"[" * 100_000 + b"]" * 100_000), "header"),
        "tlq_header_object": (npz({**members, "header.npy": npy_object(shape=(10,))}), "header"),
        "tlq_wrong_version": (_edit_model(valid, set_version), "version 99"),
        "tlq_wrong_format": (_edit_model(valid, set_format), "something-else"),
        "tlq_no_nodes": (_edit_model(valid, drop_nodes), "nodes"),
        "tlq_nodes_not_list": (_edit_model(valid, nodes_not_list), "nodes"),
        "tlq_empty_nodes": (_edit_model(valid, empty_nodes), "nodes"),
        "tlq_unknown_type": (_edit_model(valid, unknown_type), "os.system"),
        "tlq_hidden_size_string": (_edit_model(valid, hidden_size_string), "hidden_size"),
        "tlq_hidden_size_huge": (_edit_model(valid, hidden_size_huge), "hidden_size"),
        "tlq_scale_nan": (_edit_model(valid, scale_nan), "scale"),
        "tlq_zero_point_300": (_edit_model(valid, zero_point_300), "zero_point"),
        "tlq_src_out_of_range": (_edit_model(valid, src_out_of_range), "src"),
        "tlq_array_missing": (_edit_model(valid, array_ref_missing), "a999"),
        "tlq_arrays_swapped": (_edit_model(valid, swap_weight_arrays), "w"),
        "tlq_shift_out_of_range": (_edit_model(valid, shift_out_of_range), "h_shift"),
    }
    first = arrays[0]
    out["tlq_array_object"] = (npz({**members, first: npy_object(shape=(4,))}), first[:-4])
    assert tuple(out) == TLQ_CASES
    return out


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def write_corpus(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in CASES.values():
        p = c.path(root)
        p.write_bytes(c.build())
        paths.append(p)
    return paths


def check_corpus(root: Path = CORPUS) -> list[str]:
    """Files whose stored bytes differ from a fresh generation (empty: up to date)."""
    if not root.exists():
        return ["<corpus missing>"]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_corpus(fresh)
        names = {p.name for p in fresh.iterdir()} | {p.name for p in root.iterdir()}
        return sorted(n for n in names if not ((fresh / n).is_file() and (root / n).is_file()
                                               and filecmp.cmp(fresh / n, root / n, shallow=False)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare the stored corpus, write nothing")
    p.add_argument("--list", action="store_true", help="list the cases")
    p.add_argument("--out", type=Path, default=CORPUS, help="corpus folder (default: %(default)s)")
    args = p.parse_args(argv)
    if args.list:
        for c in CASES.values():
            print(f"{c.path(Path()).name:<32} {c.category:<18} {c.culprit:<16} {c.note}")
        return 0
    if args.check:
        diffs = check_corpus(args.out)
        for d in diffs:
            print(f"stale: {d}")
        return 1 if diffs else 0
    if args.out.exists():
        shutil.rmtree(args.out)
    paths = write_corpus(args.out)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} cases, {size} bytes, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
