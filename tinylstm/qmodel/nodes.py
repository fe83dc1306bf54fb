"""The integer model's nodes: frozen dataclasses mirroring the float IR node by node.

Everything here is integers (plus the float scale of each node's int8 output, kept as I/O and
diagnostic metadata). Semantics: docs/quantization.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from ..fixedpoint import Lut
from ..ir import SEQ, VEC, Recurrent, ValueKind


@dataclass(frozen=True, eq=False)
class QInput:
    """The graph input as int8 ``(B, T, F)``: ``x_real = scale * (x - zero_point)``."""

    name: str
    features: int
    scale: float
    zero_point: int
    kind: ValueKind = SEQ


#: Largest left shift of the widened matvec inputs (|x - zp| <= 255 stays int16: 255 << 7 = 32640), §5.
MAX_PRE = 7
#: Fewest and most bits of the gate sum t below Q(P) (the rounding shift of §6).
S_MIN = 4
MAX_GATE_SHIFT = 30


@dataclass(frozen=True, eq=False)
class QLstmDirection:
    """One direction of an integer LSTM layer (H hidden, I input; rows ordered i, f, g, o).

    Gate row ``r`` (spec §6): ``t = bias[r] + mul16(acc_x, mult_x[r]) + mul16(acc_h, mult_h[r])``,
    ``z = t >> shift[r]`` in Q(P), where ``acc_x = sum_k w[r, k] ((x_k - zp_x) << pre_x)`` and
    ``acc_h`` likewise over ``h`` with ``pre_h``.
    """

    w: np.ndarray = field(repr=False)  # (4H, I) int16 (or int8) input weights, per-row symmetric
    r: np.ndarray = field(repr=False)  # (4H, H) int16 (or int8) recurrent weights, per-row symmetric
    pre_x: int  # px in [0, 7]: the widened input is (x - zp_x) << px
    pre_h: int  # ph in [0, 7]: the widened hidden state is (h - zp_h) << ph
    mult_x: np.ndarray = field(repr=False)  # (4H,) int32 in [0, 2^15): acc_x -> t (mul16)
    mult_h: np.ndarray = field(repr=False)  # (4H,) int32 in [0, 2^15): acc_h -> t (mul16)
    bias: np.ndarray = field(repr=False)  # (4H,) int32: gate bias and rounding terms, units of t
    shift: np.ndarray = field(repr=False)  # (4H,) int32 in [S_MIN, 30]: z = t >> shift, Q(P)
    peep: np.ndarray | None = field(repr=False)  # (3, H) int16 peepholes i, f, o, or None
    peep_mult: np.ndarray = field(repr=False)  # (3,) int32  pq * c (Q(k)) -> Q(P)
    peep_shift: np.ndarray = field(repr=False)  # (3,) int32
    cell_frac: int  # k: the cell is int16 Q(k)
    #: custom tables (activations other than sigmoid, tanh, tanh), or None: the layer's standard
    #: table (QLstm.table) gives sigmoid and tanh in Q(15)
    lut_f: Lut | None  # i, f, o gates: Q(P) -> Q(q_f)
    lut_g: Lut | None  # cell candidate: Q(P) -> Q(q_g)
    lut_h: Lut | None  # output activation of the cell: Q(k) -> Q(q_h)
    a_fc: int  # cell update: left shift of f*c
    a_ig: int  # cell update: left shift of i*g
    s_c: int  # cell update: final rounding shift
    h_mult: int  # o * h_act(c) (Q(q_f + q_h)) -> int8 h
    h_shift: int
    initial_h: np.ndarray = field(repr=False)  # (1, H) int8: one row, the C runs one sequence at a time
    initial_c: np.ndarray = field(repr=False)  # (1, H) int16 Q(k)
    reverse: bool

    @property
    def standard(self) -> bool:
        """Sigmoid / tanh / tanh through the layer's standard table (no custom tables)."""
        return self.lut_f is None

    @property
    def gate_q(self) -> tuple[int, int, int]:
        """Output fraction bits of the f, g and h activations."""
        if self.standard:
            return 15, 15, 15
        return self.lut_f.q, self.lut_g.q, self.lut_h.q  # type: ignore[union-attr]


@dataclass(frozen=True, eq=False)
class QLstm(Recurrent):
    """An integer LSTM layer: int8 ``(B, T, I)`` in, int8 ``(B, T, D*H)`` out (directions
    concatenated, forward first, one shared output scale)."""

    name: str
    src: int
    input_size: int
    hidden_size: int
    directions: tuple[QLstmDirection, ...]
    pre_frac: int  # P: gate pre-activations are int32 Q(P)
    input_zero_point: int  # zp_x of the int8 input (the widening subtracts it, §5)
    #: the standard table D[j] = rint(2^16 (1 - sigmoid(j 2^-table_frac))), j = 0..n, uint16, or None
    #: when no direction is standard (spec §8)
    table: np.ndarray | None = field(repr=False)
    table_frac: int  # grid step 2^-table_frac of the standard table
    clip_q: int | None  # saturation of pre-activations at +-clip_q, or None
    input_forget: bool
    sequence_lens: np.ndarray | None = field(repr=False)  # (N0,) int64 or None
    sequence_lens_is_input: bool
    scale: float  # of h / Y
    zero_point: int
    kind: ValueKind = SEQ


#: Smallest and largest right shift narrowing the GRU's int16 state into its recurrent matvec input
#: (spec §16): at least 1, so that the narrowed state and reset product (|v| <= 2^(15 - q)) fit int16.
MIN_STATE_SHIFT, MAX_STATE_SHIFT = 1, 15


@dataclass(frozen=True, eq=False)
class QGruDirection:
    """One direction of an integer GRU layer (H hidden, I input; rows ordered z, r, h), spec §16.

    The state is int16 ``Q(state_frac)``; the recurrent matvec reads it narrowed,
    ``v_h = shift_half_up(h, state_shift)`` (the candidate rows: ``shift_half_up(r h, 15 + state_shift)``
    without linear_before_reset). Gate row ``r``: ``t = bias[r] + mul16(acc_x, mult_x[r]) + R[r]``,
    ``z = t >> shift[r]`` in Q(P), with ``R = mul16(acc_h, mult_h[r])``, or for the candidate rows with
    linear_before_reset ``R = shift_half_up(r (rbias + mul16(acc_h, mult_h)), 15)``.
    """

    w: np.ndarray = field(repr=False)  # (3H, I) int16 (or int8) input weights, per-row symmetric
    r: np.ndarray = field(repr=False)  # (3H, H) int16 (or int8) recurrent weights, per-row symmetric
    pre_x: int  # px in [0, 7]: the widened input is (x - zp_x) << px
    state_shift: int  # q in [1, 15]: the recurrent matvec reads the state narrowed by q
    mult_x: np.ndarray = field(repr=False)  # (3H,) int32 in [0, 2^15): acc_x -> t (mul16)
    mult_h: np.ndarray = field(repr=False)  # (3H,) int32 in [0, 2^15): acc_h -> t (mul16)
    bias: np.ndarray = field(repr=False)  # (3H,) int32: gate bias and rounding terms, units of t
    shift: np.ndarray = field(repr=False)  # (3H,) int32 in [S_MIN, 30]: z = t >> shift, Q(P)
    #: (H,) int32: the candidate's recurrent bias inside r * (R_h h + rb_h), units of t times 2^(15 - q_f)
    #: (linear_before_reset); zeros otherwise
    rbias: np.ndarray = field(repr=False)
    state_frac: int  # k: the state h is int16 Q(k)
    #: custom tables (activations other than sigmoid, tanh), or None: the layer's standard table
    lut_f: Lut | None  # z, r gates: Q(P) -> Q(q_f)
    lut_g: Lut | None  # candidate: Q(P) -> Q(q_g)
    a_h: int  # update: left shift of z * h
    a_n: int  # update: left shift of (2^q_f - z) * n
    s_u: int  # update: final rounding shift
    y_mult: int  # the int16 state Q(k) -> the int8 output
    y_shift: int
    initial_h: np.ndarray = field(repr=False)  # (1, H) int16 Q(k): one row, the C runs one sequence at a time
    reverse: bool

    @property
    def standard(self) -> bool:
        """Sigmoid / tanh through the layer's standard table (no custom tables)."""
        return self.lut_f is None

    @property
    def gate_q(self) -> tuple[int, int]:
        """Output fraction bits of the f (z, r) and g (candidate) activations."""
        if self.standard:
            return 15, 15
        return self.lut_f.q, self.lut_g.q  # type: ignore[union-attr]


@dataclass(frozen=True, eq=False)
class QGru(Recurrent):
    """An integer GRU layer: int8 ``(B, T, I)`` in, int8 ``(B, T, D*H)`` out (directions
    concatenated, forward first, one shared output scale); the state is int16 (spec §16)."""

    name: str
    src: int
    input_size: int
    hidden_size: int
    directions: tuple[QGruDirection, ...]
    pre_frac: int  # P: gate pre-activations are int32 Q(P)
    input_zero_point: int  # zp_x of the int8 input (the widening subtracts it, §5)
    #: the standard table (as QLstm.table), or None when no direction is standard
    table: np.ndarray | None = field(repr=False)
    table_frac: int
    clip_q: int | None  # saturation of the three pre-activations at +-clip_q, or None
    linear_before_reset: bool
    sequence_lens: np.ndarray | None = field(repr=False)  # (N0,) int64 or None
    sequence_lens_is_input: bool
    scale: float  # of the int8 output Y
    zero_point: int
    kind: ValueKind = SEQ
    #: gate rows per hidden unit; read by :mod:`tinylstm.ir.macs` (a GRU step is 3 H (I + H) MACs)
    gates: ClassVar[int] = 3


@dataclass(frozen=True, eq=False)
class QLstmState:
    """Y_h (data movement; of an LSTM or a GRU) or Y_c (an LSTM's int16 cell requantized to int8 per
    direction)."""

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


QNode = QInput | QLstm | QGru | QLstmState | QSelectStep | QFeatureGather | QDense | QTable | QSoftmax
