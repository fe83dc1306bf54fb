"""The integer model: frozen dataclasses mirroring the float IR node by node, and `.tlq` I/O.

Everything here is integers (plus the float scale of each node's int8 output, kept as I/O and
diagnostic metadata). Semantics: docs/quantization.md; file format: §14 there.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import typing
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
    initial_h: np.ndarray = field(repr=False)  # (N0, H) int8
    initial_c: np.ndarray = field(repr=False)  # (N0, H) int16 Q(k)
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
        raise OutputPathError(f"cannot write '{p}': {e.strerror or e}") from None


def load_model(path: str | os.PathLike) -> QuantizedModel:
    p = os.fspath(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ModelFormatError(f"'{p}': no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise ModelFormatError(f"'{p}' is not a tinylstm .tlq file ({e})") from None
    if "header" not in arrays or arrays["header"].dtype != np.uint8:
        raise ModelFormatError(f"'{p}' is not a tinylstm .tlq file (no header)")
    try:
        tree = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"'{p}': unreadable header ({e})") from None
    if not isinstance(tree, dict) or tree.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"'{p}' is not a tinylstm .tlq file (format {tree.get('format')!r})"
                               if isinstance(tree, dict) else f"'{p}': bad header")
    if tree.get("version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"'{p}' has .tlq format version {tree.get('version')!r}; this tinylstm reads version "
            f"{FORMAT_VERSION}"
        )
    model = _decode(tree.get("model"), arrays, "model")
    if not isinstance(model, QuantizedModel):
        raise ModelFormatError(f"'{p}': the header does not describe a QuantizedModel")
    return model


__all__ = [
    "FORMAT_VERSION",
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
