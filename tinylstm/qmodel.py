"""The integer model: frozen dataclasses mirroring the float IR node by node, and `.tlq` I/O.

Everything here is integers (plus the float scale of each node's int8 output, kept as I/O and
diagnostic metadata). Semantics: docs/quantization.md; file format: §14 there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import ModelFormatError, OutputPathError
from .fixedpoint import Lut
from .ir import SEQ, VEC, Atom, ValueKind, View

FORMAT_NAME = "tinylstm-qmodel"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class QInput:
    """The graph input as int8 ``(B, T, F)``: ``x_real = scale * (x - zero_point)``."""

    name: str
    features: int
    scale: float
    zero_point: int
    kind: ValueKind = SEQ


@dataclass(frozen=True, eq=False)
class QLstmDirection:
    """One direction of an integer LSTM layer (H hidden, I input; rows ordered i, f, g, o)."""

    w: np.ndarray = field(repr=False)  # (4H, I) int16 (or int8) input weights, per-row symmetric
    r: np.ndarray = field(repr=False)  # (4H, H) int16 (or int8) recurrent weights
    effb_x: np.ndarray = field(repr=False)  # (4H,) int32  -zp_x * sum_k w[r, k]
    effb_h: np.ndarray = field(repr=False)  # (4H,) int32  -zp_h * sum_k r[r, k]
    mult_x: np.ndarray = field(repr=False)  # (4H,) int32  acc_x -> Q(P)
    shift_x: np.ndarray = field(repr=False)  # (4H,) int32
    mult_h: np.ndarray = field(repr=False)  # (4H,) int32  acc_h -> Q(P)
    shift_h: np.ndarray = field(repr=False)  # (4H,) int32
    bias: np.ndarray = field(repr=False)  # (4H,) int32  gate bias in Q(P)
    peep: np.ndarray | None = field(repr=False)  # (3, H) int16 peepholes i, f, o, or None
    peep_mult: np.ndarray = field(repr=False)  # (3,) int32  pq * c (Q(k)) -> Q(P)
    peep_shift: np.ndarray = field(repr=False)  # (3,) int32
    cell_frac: int  # k: the cell is int16 Q(k)
    lut_f: Lut  # i, f, o gates: Q(P) -> Q(q_f)
    lut_g: Lut  # cell candidate: Q(P) -> Q(q_g)
    lut_h: Lut  # output activation of the cell: Q(k) -> Q(q_h)
    a_fc: int  # cell update: left shift of f*c
    a_ig: int  # cell update: left shift of i*g
    s_c: int  # cell update: final rounding shift
    h_mult: int  # o * h_act(c) (Q(q_f + q_h)) -> int8 h
    h_shift: int
    initial_h: np.ndarray = field(repr=False)  # (1, H) int8: one row, the C runs one sequence at a time
    initial_c: np.ndarray = field(repr=False)  # (1, H) int16 Q(k)
    reverse: bool


@dataclass(frozen=True, eq=False)
class QLstm:
    """An integer LSTM layer: int8 ``(B, T, I)`` in, int8 ``(B, T, D*H)`` out (directions
    concatenated, forward first, one shared output scale)."""

    name: str
    src: int
    input_size: int
    hidden_size: int
    directions: tuple[QLstmDirection, ...]
    pre_frac: int  # P: gate pre-activations are int32 Q(P)
    clip_q: int | None  # saturation of pre-activations at +-clip_q, or None
    input_forget: bool
    sequence_lens: np.ndarray | None = field(repr=False)  # (N0,) int64 or None
    sequence_lens_is_input: bool
    scale: float  # of h / Y
    zero_point: int
    kind: ValueKind = SEQ

    @property
    def num_directions(self) -> int:
        return len(self.directions)

    @property
    def features(self) -> int:
        return self.num_directions * self.hidden_size


@dataclass(frozen=True, eq=False)
class QLstmState:
    """Y_h (data movement) or Y_c (int16 cell requantized to int8 per direction)."""

    name: str
    src: int
    which: Literal["h", "c"]
    features: int
    scale: float
    zero_point: int
    mult: tuple[int, ...] = ()  # which == "c": per direction, Q(k_d) -> int8
    shift: tuple[int, ...] = ()
    kind: ValueKind = VEC


@dataclass(frozen=True, eq=False)
class QSelectStep:
    name: str
    src: int
    index: int
    features: int
    scale: float
    zero_point: int
    kind: ValueKind = VEC


@dataclass(frozen=True, eq=False)
class QFeatureGather:
    name: str
    src: int
    indices: np.ndarray = field(repr=False)  # (F_out,) int64
    scale: float = 1.0
    zero_point: int = 0
    kind: ValueKind = SEQ

    @property
    def features(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True, eq=False)
class QDense:
    """``y = sat(zp + requant(W x + eff_bias), act_min, act_max)`` (tl_dense_s8)."""

    name: str
    src: int
    weight: np.ndarray = field(repr=False)  # (F_out, F_in) int8
    eff_bias: np.ndarray = field(repr=False)  # (F_out,) int32
    mult: np.ndarray = field(repr=False)  # (F_out,) int32
    shift: np.ndarray = field(repr=False)  # (F_out,) int32
    act_min: int
    act_max: int
    scale: float
    zero_point: int
    fused: str | None = None  # name of a fused Relu node
    kind: ValueKind = VEC

    @property
    def features(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True, eq=False)
class QTable:
    """An elementwise activation on int8: ``y = table[x + 128]``."""

    name: str
    src: int
    activation: str
    table: np.ndarray = field(repr=False)  # (256,) int8
    features: int
    scale: float
    zero_point: int
    kind: ValueKind = VEC


@dataclass(frozen=True, eq=False)
class QSoftmax:
    """Softmax (out scale 1/256, zp -128) or LogSoftmax (calibrated out scale, zp 127)."""

    name: str
    src: int
    log: bool
    exp_table: np.ndarray = field(repr=False)  # (256,) int32  rint(2^15 exp(-n s_in))
    log2_table: np.ndarray | None = field(repr=False)  # (257,) int32, LogSoftmax only
    l_mult: int  # LogSoftmax: Q(16) log2(S / 2^15) -> output units
    l_shift: int
    d_mult: int  # LogSoftmax: x - max (units of s_in) -> output units
    d_shift: int
    features: int
    scale: float
    zero_point: int
    kind: ValueKind = VEC


QNode = QInput | QLstm | QLstmState | QSelectStep | QFeatureGather | QDense | QTable | QSoftmax


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """An integer LSTM model: run it bit-exactly (``run_int``), save it (``.tlq``)."""

    nodes: tuple[QNode, ...]
    input_name: str
    output_name: str
    input_view: View
    output_view: View
    sequence_lens_input: str | None = None
    source: str = ""
    #: the quantize() options used (JSON scalars)
    options: tuple[tuple[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    #: ``FloatModel.fingerprint()`` of the float model quantized ("" in files of older tinylstm)
    float_fingerprint: str = ""
    #: ``load_onnx(batch_row=)`` of that float model, and the static length its file declares
    batch_row: int | None = None
    export_time: int | None = None
    #: the longest calibration sequence (steps): the default bound of buffered C runs
    longest_calibration: int = 0

    # ---- I/O scales -------------------------------------------------------------------
    @property
    def input_scale(self) -> float:
        return self.nodes[0].scale

    @property
    def input_zero_point(self) -> int:
        return self.nodes[0].zero_point

    @property
    def output_scale(self) -> float:
        return self.nodes[-1].scale

    @property
    def output_zero_point(self) -> int:
        return self.nodes[-1].zero_point

    @property
    def lstm_layers(self) -> list[QLstm]:
        return [n for n in self.nodes if isinstance(n, QLstm)]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input (ONNX layout) -> int8: ``sat8(rint(x / s) + zp)`` in float64."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            from .errors import DataError

            raise DataError("input contains NaN or Inf")
        q = np.rint(x / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        """int8 output -> float32 ``scale * (y - zp)``."""
        y = np.asarray(y, dtype=np.float64)
        return (self.output_scale * (y - self.output_zero_point)).astype(np.float32)

    def run_int(self, x_int8: np.ndarray, sequence_lens: np.ndarray | None = None, trace: bool = False):
        """Bit-exact integer run: int8 input (ONNX layout) -> int8 output (ONNX layout).

        With ``trace=True`` returns ``(y, trace)`` where ``trace[layer_name][d]`` holds the
        per-step integer gate pre-activations, gates, cell and hidden state (simulate.LstmTrace).
        """
        from .simulate import run_int

        return run_int(self, x_int8, sequence_lens=sequence_lens, trace=trace)

    def run(self, x: np.ndarray, sequence_lens: np.ndarray | None = None) -> np.ndarray:
        """Float in, float out: quantize the input, ``run_int``, dequantize the output."""
        return self.dequantize_output(self.run_int(self.quantize_input(x), sequence_lens=sequence_lens))

    # ---- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a ``.tlq`` file (npz + JSON header, no pickle; docs/quantization.md §14)."""
        save_model(self, path)

    @staticmethod
    def load(path: str | os.PathLike) -> QuantizedModel:
        """Read a ``.tlq`` file written by :meth:`save`."""
        return load_model(path)


# ---------------------------------------------------------------------------------------
# .tlq serialization: dataclass tree -> JSON with array references
# ---------------------------------------------------------------------------------------
_CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (
        QuantizedModel,
        QInput,
        QLstm,
        QLstmDirection,
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
    if dataclasses.is_dataclass(v) and type(v).__name__ in _CLASSES:
        out: dict[str, Any] = {"$type": type(v).__name__}
        for f in dataclasses.fields(v):
            out[f.name] = _encode(getattr(v, f.name), arrays)
        return out
    raise TypeError(f"cannot store {type(v).__name__}")


def _decode(v: Any, arrays: Any, where: str) -> Any:
    if isinstance(v, list):
        return tuple(_decode(x, arrays, where) for x in v)
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
        cls = _CLASSES.get(cls_name) if isinstance(cls_name, str) else None
        if cls is None:
            raise ModelFormatError(f"{where}: unknown object type {cls_name!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = set(v) - names - {"$type"}
        if extra:
            raise ModelFormatError(f"{where}: unknown fields {sorted(extra)} for {cls_name}")
        kwargs = {k: _decode(x, arrays, f"{where}.{k}") for k, x in v.items() if k != "$type"}
        hints = typing.get_type_hints(cls)
        for k, x in list(kwargs.items()):
            if hints.get(k) is dict:  # pragma: no cover - no dict fields today
                kwargs[k] = dict(x)
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ModelFormatError(f"{where}: bad {cls_name}: {e}") from None
    return v


def save_model(model: QuantizedModel, path: str | os.PathLike) -> None:
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


def load_model(path: str | os.PathLike) -> QuantizedModel:
    """Read a ``.tlq`` file and check it with :func:`check_model` (:class:`ModelFormatError`)."""
    from .data_io import read_arrays
    from .errors import DataError

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
    if tree.get("version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"'{p}' has .tlq format version {tree.get('version')!r}; this tinylstm reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        model = _decode(tree.get("model"), arrays, "model")
    except RecursionError:
        raise ModelFormatError(f"'{p}': header nested too deeply") from None
    except ModelFormatError as e:
        raise ModelFormatError(f"'{p}': {e}") from None
    if not isinstance(model, QuantizedModel):
        raise ModelFormatError(f"'{p}': the header does not describe a QuantizedModel")
    try:
        check_model(model)
    except ModelFormatError as e:
        raise ModelFormatError(f"'{p}': {e}") from None
    return model


# ---------------------------------------------------------------------------------------
# checking a loaded model: the invariants the quantizer guarantees and the simulator, the C
# emitter and the overflow proof (docs/quantization.md §11) rely on
# ---------------------------------------------------------------------------------------
INT8_RANGE = (-128, 127)
INT32_MAX = 2**31 - 1
#: most features / hidden units / nodes a loaded model may declare
MAX_FEATURES = 1 << 20
MAX_NODES = 100_000
_PRE_FRAC = (8, 24)  # quantize.MIN_PRE_FRAC .. 24
_CELL_FRAC = (0, 23)  # quantize.MAX_CELL_FRAC
_GATE_Q = (0, 15)


class _Bad(Exception):
    """A failed check: (where, message)."""


def _fail(where: str, msg: str) -> typing.NoReturn:
    raise _Bad(where, msg)


def check_model(model: QuantizedModel) -> None:
    """Refuse (``ModelFormatError`` naming the node and field) a model the quantizer could not
    have written: wrong field types, inconsistent shapes or dtypes, out-of-range integers, or
    bounds of the overflow proof (§11) that do not hold. Every model ``quantize`` returns passes."""
    try:
        _check_types(model, "model")
        _check_graph(model)
    except _Bad as e:
        where, msg = e.args
        raise ModelFormatError(f"{where}: {msg}") from None


def _conforms(v: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return v is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(v, h) for h in typing.get_args(hint))
    if origin is Literal:
        return isinstance(v, str) and v in typing.get_args(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(v, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(x, args[0]) for x in v)
        return len(v) == len(args) and all(_conforms(x, a) for x, a in zip(v, args, strict=True))
    if hint is bool:
        return isinstance(v, bool)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(hint, type):
        return isinstance(v, hint)
    return True  # pragma: no cover - every annotation above is handled


def _check_types(obj: Any, where: str) -> None:
    """Every dataclass field holds a value of its annotated type (recursively)."""
    if isinstance(obj, tuple):
        for k, x in enumerate(obj):
            _check_types(x, f"{where}[{k}]")
        return
    if not dataclasses.is_dataclass(obj):
        return
    hints = typing.get_type_hints(type(obj))
    name = getattr(obj, "name", None)
    here = f"node '{name}'" if isinstance(name, str) and where.startswith("model.nodes") else where
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if not _conforms(v, hints[f.name]):
            shown = type(v).__name__ if isinstance(v, (np.ndarray, tuple, list, dict)) else repr(v)[:40]
            _fail(here, f"field '{f.name}' is {shown}; expected {_hint_name(hints[f.name])}")
        _check_types(v, f"{where}.{f.name}")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "").replace("numpy.", "np.")


def _int_in(v: int, lo: int, hi: int, where: str, field: str) -> None:
    if not lo <= v <= hi:
        _fail(where, f"'{field}' = {v} must lie in [{lo}, {hi}]")


def _array(a: np.ndarray, dtypes: tuple[str, ...], shape: tuple[int | None, ...], where: str,
           field: str) -> np.ndarray:
    if a.dtype.name not in dtypes or a.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(a.shape, shape, strict=True)):
        dims = ", ".join("*" if d is None else str(d) for d in shape)
        want_shape = f"({dims},)" if len(shape) == 1 else f"({dims})"
        _fail(where, f"'{field}' is {a.dtype.name} {a.shape}; expected {'/'.join(dtypes)} {want_shape}")
    return a


def _multipliers(mult: np.ndarray, shift: np.ndarray, where: str, field: str) -> None:
    """Requantization pairs (§2): mult in [2^30, 2^31) with shift in [0, 62], or (0, 0)."""
    m = mult.astype(np.int64)
    s = shift.astype(np.int64)
    ok = ((m >= 2**30) & (m < 2**31) & (s >= 0) & (s <= 62)) | ((m == 0) & (s == 0))
    if not ok.all():
        i = int(np.argmin(ok.reshape(-1)))
        _fail(where, f"'{field}' pair {i} (mult {m.reshape(-1)[i]}, shift {s.reshape(-1)[i]}) is not a "
                     "requantization multiplier (mult in [2^30, 2^31), shift in [0, 62], or 0, 0)")


def encoded_factors(mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The real factors of (mult, shift) pairs, computed as the quantizer computes them."""
    return mult.astype(np.float64) * np.exp2(-shift.astype(np.float64))


def acc_bound(wq: np.ndarray, zp: int) -> np.ndarray:
    """max |sum_k wq[r, k] (x_k - zp)| over int8 x (§11.1), as the quantizer computes it."""
    return np.abs(wq.astype(np.int64)).sum(axis=1) * max(128 + zp, 127 - zp)


def state_c_bound(mult: Sequence[int], shift: Sequence[int], zero_point: int) -> float:
    """Largest ``|zp + requant(c, mult, shift)|`` of a Y_c output over every int16 cell (§11.9)."""
    f = encoded_factors(np.asarray(mult, np.int64), np.asarray(shift, np.int64))
    return float(f.max()) * 32768.0 + 1 + abs(zero_point) if f.size else 0.0


def log_softmax_bound(l_mult: int, l_shift: int, d_mult: int, d_shift: int) -> float:
    """Largest ``|127 + D − L|`` of LogSoftmax (§10, §11.8): ``|x − xm| ≤ 255``, ``0 ≤ l2 ≤ 2^20``."""
    f = encoded_factors(np.array([l_mult, d_mult], np.int64), np.array([l_shift, d_shift], np.int64))
    return 127 + (2.0**20 * f[0] + 1) + (255.0 * f[1] + 1)


def _matvec_partial(w: np.ndarray, effb: np.ndarray, where: str, field: str) -> None:
    partial = np.abs(effb.astype(np.int64)) + 128 * np.abs(w.astype(np.int64)).sum(axis=1)
    if partial.size and int(partial.max()) > INT32_MAX:
        _fail(where, f"'{field}': an int32 accumulator could overflow (§11.1)")


def _check_view(v: View, where: str, features: int, kind: str) -> None:
    n = len(v.atoms)
    order = [i for g in v.dims for i in g]
    if sorted(order) != list(range(n)) or not v.atoms or v.atoms[0].label != "B":
        _fail(where, "the layout's axes do not list each of its atoms once, batch first")
    for a in v.atoms:
        if a.size is None and a.is_feature:
            _fail(where, f"feature axis '{a.label}' has no size")
        if a.size is not None and not 1 <= a.size <= MAX_FEATURES:
            _fail(where, f"axis '{a.label}' has size {a.size}")
    if v.kind != kind or (kind == SEQ and v.atoms[1].label != "T"):
        _fail(where, f"the layout is a {v.kind} value; the node is a {kind} value")
    if v.features != features:
        _fail(where, f"the layout has {v.features} features; the node has {features}")


def _check_graph(model: QuantizedModel) -> None:
    nodes = model.nodes
    if not nodes or len(nodes) > MAX_NODES:
        _fail("model", f"'nodes' holds {len(nodes)} nodes; expected 1 to {MAX_NODES}")
    if not isinstance(nodes[0], QInput) or nodes[0].kind != SEQ:
        _fail("model", "'nodes' must start with the sequence input (QInput)")
    for k, n in enumerate(nodes):
        where = f"node '{n.name}'"
        if not (math.isfinite(n.scale) and n.scale > 0):
            _fail(where, f"'scale' = {n.scale!r} must be finite and > 0")
        _int_in(n.zero_point, *INT8_RANGE, where, "zero_point")
        if isinstance(n, QLstm):
            _int_in(n.hidden_size, 1, MAX_FEATURES, where, "hidden_size")
        _int_in(n.features, 1, MAX_FEATURES, where, "features")
        if isinstance(n, QInput):
            if k:
                _fail(where, "an input node after the first node")
            continue
        _int_in(n.src, 0, k - 1, where, "src")
        src = nodes[n.src]
        _check_node(n, src, where)
    _check_view(model.input_view, "model input_view", nodes[0].features, SEQ)
    _check_view(model.output_view, "model output_view", nodes[-1].features, nodes[-1].kind)


def _check_node(n: QNode, src: QNode, where: str) -> None:
    if isinstance(n, QLstm):
        _check_lstm(n, src, where)
    elif isinstance(n, QLstmState):
        if not isinstance(src, QLstm):
            _fail(where, "'src' of an LSTM state must be an LSTM node")
        if n.features != src.features or n.kind != VEC:
            _fail(where, f"'features' = {n.features} (vec) must equal the LSTM's {src.features}")
        pairs = (n.mult, n.shift)
        if n.which == "c":
            if len(n.mult) != src.num_directions or len(n.shift) != src.num_directions:
                _fail(where, f"'mult'/'shift' need one pair per direction ({src.num_directions})")
            _multipliers(np.array(pairs[0], np.int64), np.array(pairs[1], np.int64), where, "mult/shift")
            if state_c_bound(n.mult, n.shift, n.zero_point) > INT32_MAX:
                _fail(where, "the cell requantization could overflow int32 (§11.9)")
    elif isinstance(n, QSelectStep):
        if src.kind != SEQ or n.kind != VEC or n.features != src.features:
            _fail(where, "a step selection needs a sequence of the same features")
        _int_in(n.index, -INT32_MAX, INT32_MAX, where, "index")
    elif isinstance(n, QFeatureGather):
        idx = _array(n.indices, ("int64",), (None,), where, "indices")
        if idx.size == 0 or idx.min() < 0 or idx.max() >= src.features or n.kind != src.kind:
            _fail(where, f"'indices' must select among the {src.features} features of its source")
    elif isinstance(n, QDense):
        _check_dense(n, src, where)
    elif isinstance(n, QTable):
        _array(n.table, ("int8",), (256,), where, "table")
        if n.features != src.features or n.kind != src.kind:
            _fail(where, f"'features' = {n.features} must equal its source's {src.features}")
    elif isinstance(n, QSoftmax):
        _check_softmax(n, src, where)


def _check_dense(n: QDense, src: QNode, where: str) -> None:
    w = _array(n.weight, ("int8",), (None, src.features), where, "weight")
    out = w.shape[0]
    if out != n.features or n.kind != src.kind:
        _fail(where, f"'weight' has {out} rows for {n.features} features")
    effb = _array(n.eff_bias, ("int32",), (out,), where, "eff_bias")
    _multipliers(_array(n.mult, ("int32",), (out,), where, "mult"),
                 _array(n.shift, ("int32",), (out,), where, "shift"), where, "mult/shift")
    _int_in(n.act_max, *INT8_RANGE, where, "act_max")
    _int_in(n.act_min, INT8_RANGE[0], n.act_max, where, "act_min")
    _matvec_partial(w, effb, where, "weight")
    bound = (np.abs(effb.astype(np.float64)) + acc_bound(w, src.zero_point)) * encoded_factors(n.mult, n.shift) \
        + 1 + abs(n.zero_point)
    if bound.size and bound.max() > INT32_MAX:
        _fail(where, "the output requantization could overflow int32 (§11.7)")


def _check_softmax(n: QSoftmax, src: QNode, where: str) -> None:
    if n.features != src.features or n.features >= 65536 or n.kind != src.kind:
        _fail(where, f"'features' = {n.features} must equal its source's and be < 65536")
    e = _array(n.exp_table, ("int32",), (256,), where, "exp_table")
    if e[0] != 2**15 or e.min() < 0 or (np.diff(e.astype(np.int64)) > 0).any():
        _fail(where, "'exp_table' must start at 2^15 and decrease to >= 0")
    if n.log:
        t = _array(n.log2_table, ("int32",), (257,), where, "log2_table")
        d = np.diff(t.astype(np.int64))
        if t[0] != 0 or d.min() < 0 or d.max() > 369:
            _fail(where, "'log2_table' must start at 0 and rise by at most 369 per entry (§11.8)")
        _multipliers(np.array([n.l_mult, n.d_mult]), np.array([n.l_shift, n.d_shift]), where,
                     "l_mult/l_shift, d_mult/d_shift")
        if log_softmax_bound(n.l_mult, n.l_shift, n.d_mult, n.d_shift) > INT32_MAX:
            _fail(where, "127 + D - L could overflow int32 (§11.8)")


def _check_lut(lut: Lut, in_frac: int, where: str, field: str) -> None:
    t = _array(lut.table, ("int32",), (None,), where, f"{field}.table")
    n = t.shape[0] - 1
    if n < 2 or n & (n - 1):
        _fail(where, f"'{field}' has {n} segments; expected a power of two >= 2")
    _int_in(lut.sym, 0, 1, where, f"{field}.sym")
    _int_in(lut.q, *_GATE_Q, where, f"{field}.q")
    _int_in(lut.shift, 0, 30, where, f"{field}.shift")
    if lut.x_frac + lut.shift != in_frac:
        _fail(where, f"'{field}' reads Q({lut.x_frac + lut.shift}) inputs; its input is Q({in_frac})")
    if n << lut.shift >= 2**31:
        _fail(where, f"'{field}' grid ({n} segments, shift {lut.shift}) exceeds int32")
    tv = t.astype(np.int64)
    vals = np.concatenate([tv, 2 * tv[0] - tv]) if lut.sym else tv
    if np.abs(vals).max() > 2**15:
        _fail(where, f"'{field}' holds values beyond +-2^15 (§11.5)")
    if int(np.abs(np.diff(tv)).max()) * ((1 << lut.shift) - 1) > INT32_MAX:
        _fail(where, f"'{field}' interpolation could overflow int32 (§11.4)")


def _check_lstm(n: QLstm, src: QNode, where: str) -> None:
    H, n_in = n.hidden_size, n.input_size
    if src.kind != SEQ or n.kind != SEQ or n_in != src.features:
        _fail(where, f"'input_size' = {n_in} must equal the features of its sequence input ({src.features})")
    if not 1 <= n.num_directions <= 2 or (n.num_directions == 2 and (
            n.directions[0].reverse or not n.directions[1].reverse)):
        _fail(where, "'directions' must be one, or forward then reverse")
    _int_in(n.pre_frac, *_PRE_FRAC, where, "pre_frac")
    if n.clip_q is not None:
        _int_in(n.clip_q, 0, INT32_MAX, where, "clip_q")
    if n.sequence_lens is not None:
        lens = _array(n.sequence_lens, ("int32", "int64"), (None,), where, "sequence_lens")
        if lens.size and (lens.min() < 0 or lens.max() > INT32_MAX):
            _fail(where, "'sequence_lens' must lie in [0, 2^31)")
    zpx, zph = src.zero_point, n.zero_point
    for k, d in enumerate(n.directions):
        dw = f"{where} direction {k}"
        w = _array(d.w, ("int8", "int16"), (4 * H, n_in), dw, "w")
        r = _array(d.r, ("int8", "int16"), (4 * H, H), dw, "r")
        row = (4 * H,)
        vec = {f: _array(getattr(d, f), ("int32",), row, dw, f)
               for f in ("effb_x", "effb_h", "mult_x", "shift_x", "mult_h", "shift_h", "bias")}
        _multipliers(vec["mult_x"], vec["shift_x"], dw, "mult_x/shift_x")
        _multipliers(vec["mult_h"], vec["shift_h"], dw, "mult_h/shift_h")
        for f, m, want in (("effb_x", w, zpx), ("effb_h", r, zph)):
            if not np.array_equal(vec[f].astype(np.int64), -want * m.astype(np.int64).sum(axis=1)):
                _fail(dw, f"'{f}' is not -zero_point * (row sums of the weights)")
        _matvec_partial(w, vec["effb_x"], dw, "w")
        _matvec_partial(r, vec["effb_h"], dw, "r")
        pm = _array(d.peep_mult, ("int32",), (3,), dw, "peep_mult")
        ps = _array(d.peep_shift, ("int32",), (3,), dw, "peep_shift")
        _multipliers(pm, ps, dw, "peep_mult/peep_shift")
        _int_in(d.cell_frac, *_CELL_FRAC, dw, "cell_frac")
        _check_lut(d.lut_f, n.pre_frac, dw, "lut_f")
        _check_lut(d.lut_g, n.pre_frac, dw, "lut_g")
        _check_lut(d.lut_h, d.cell_frac, dw, "lut_h")
        k_c, qf, qg = d.cell_frac, d.lut_f.q, d.lut_g.q
        m = max(k_c, qg)
        if (d.a_fc, d.a_ig, d.s_c) != (m - k_c, m - qg, qf + m - k_c):
            _fail(dw, f"cell shifts (a_fc, a_ig, s_c) = {(d.a_fc, d.a_ig, d.s_c)} do not match "
                      f"cell_frac {k_c} and the tables' q ({qf}, {qg}): expected {(m - k_c, m - qg, qf + m - k_c)}")
        _multipliers(np.array([d.h_mult]), np.array([d.h_shift]), dw, "h_mult/h_shift")
        if 2.0**30 * (d.h_mult * 2.0**-d.h_shift) + 1 + abs(zph) > INT32_MAX:
            _fail(dw, "the hidden requantization could overflow int32 (§11.6)")
        _array(d.initial_h, ("int8",), (1, H), dw, "initial_h")  # one row: the C runs one sequence
        _array(d.initial_c, ("int16",), (1, H), dw, "initial_c")
        # pre-activation bound (§11.3), computed as the quantizer computes it
        zb = acc_bound(w, zpx).astype(np.float64) * encoded_factors(vec["mult_x"], vec["shift_x"]) + 1 \
            + acc_bound(r, zph).astype(np.float64) * encoded_factors(vec["mult_h"], vec["shift_h"]) + 1 \
            + np.abs(vec["bias"].astype(np.float64))
        if d.peep is not None:
            peep = _array(d.peep, ("int16",), (3, H), dw, "peep")
            if peep.min() < -32767:
                _fail(dw, "'peep' holds -32768 (peepholes lie in [-32767, 32767])")
            pk = np.abs(peep.astype(np.float64)).max(axis=1) * 32768.0 * encoded_factors(pm, ps) + 1
            zb = zb + np.concatenate([np.full(H, pk[0]), np.full(H, pk[1]), np.zeros(H), np.full(H, pk[2])])
        if zb.max() > INT32_MAX:
            _fail(dw, "gate pre-activations could overflow int32 (§11.3)")


__all__ = [
    "FORMAT_VERSION",
    "check_model",
    "QDense",
    "QFeatureGather",
    "QInput",
    "QLstm",
    "QLstmDirection",
    "QLstmState",
    "QNode",
    "QSelectStep",
    "QSoftmax",
    "QTable",
    "QuantizedModel",
    "SEQ",
    "VEC",
]
