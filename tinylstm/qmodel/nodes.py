"""The integer model's nodes: frozen dataclasses mirroring the float IR node by node.

Everything here is integers (plus the float scale of each node's int8 output, kept as I/O and
diagnostic metadata). Semantics: docs/quantization.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..fixedpoint import Lut
from ..ir import SEQ, VEC, ValueKind


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
