"""The float IR: what the ONNX importer produces and everything downstream consumes.

Data flows one way through a short list of nodes. Each node produces one *value*, either

- a **sequence** value, canonical shape ``(batch, time, features)``, or
- a **vector** value, canonical shape ``(batch, features)``.

Node ``k`` may only read values of nodes ``< k``; node 0 is always :class:`InputNode` and
the last node produces the model output. Gate order is normalized at import to
``i, f, g, o`` (input, forget, cell candidate, output); ONNX's ``i, o, f, c`` never leaks
past the importer. Peepholes are stored in ``i, f, o`` order. GRU gate rows keep ONNX's order
``z, r, h`` (update, reset, candidate), which is also Keras's; PyTorch's ``r, z, n`` is
reordered by its exporters.

How the ONNX input and output tensors map to canonical values is described by a
:class:`~tinylstm.ir.view.View`; the whole model is :class:`~tinylstm.ir.model.FloatModel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from .macs import gru_macs, lstm_macs
from .view import SEQ, VEC, ValueKind

#: Activations ONNX's LSTM and GRU accept (and onnxruntime executes) in ``activations``.
LSTM_ACTIVATIONS = (
    "Sigmoid",
    "Tanh",
    "Relu",
    "Affine",
    "LeakyRelu",
    "ThresholdedRelu",
    "ScaledTanh",
    "HardSigmoid",
    "Elu",
    "Softsign",
    "Softplus",
)


@dataclass(frozen=True)
class Activation:
    """An elementwise function, ONNX spelling, with its optional alpha/beta."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __str__(self) -> str:
        args = [f"{k}={v:g}" for k, v in (("alpha", self.alpha), ("beta", self.beta)) if v is not None]
        return self.name + (f"({', '.join(args)})" if args else "")


SIGMOID = Activation("Sigmoid")
TANH = Activation("Tanh")



# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------
class Recurrent:
    """What a recurrent layer (LSTM or GRU, float or integer) derives from its directions: a
    dataclass with ``hidden_size`` and ``directions`` (each with ``reverse``) mixes it in."""

    hidden_size: int
    directions: tuple

    @property
    def num_directions(self) -> int:
        return len(self.directions)

    @property
    def direction(self) -> str:
        """forward, reverse or bidirectional"""
        if len(self.directions) == 2:
            return "bidirectional"
        return "reverse" if self.directions[0].reverse else "forward"

    @property
    def features(self) -> int:
        """Output features: the directions' h concatenated."""
        return self.num_directions * self.hidden_size


@dataclass(frozen=True, eq=False)
class LstmDirection:
    """One direction of an LSTM layer. Shapes use H = hidden size, I = input size.

    Gate rows are ordered i, f, g, o: row ``k*H + j`` is unit ``j`` of gate ``k``.
    """

    w: np.ndarray = field(repr=False)  # (4H, I) input weights
    r: np.ndarray = field(repr=False)  # (4H, H) recurrent weights
    b: np.ndarray = field(repr=False)  # (4H,)   Wb + Rb, folded at import
    p: np.ndarray | None = field(repr=False)  # (3, H) peepholes for i, f, o; None when the node has no P
    initial_h: np.ndarray = field(repr=False)  # (N0, H) N0 == 1: same for every batch row; else the fixed batch
    initial_c: np.ndarray = field(repr=False)  # (N0, H)
    reverse: bool  # processes time from the last valid step to the first
    activations: tuple[Activation, Activation, Activation]  # f (i,f,o), g (cell in), h (out)


@dataclass(frozen=True, eq=False)
class LstmNode(Recurrent):
    """One ONNX LSTM node: a sequence in, a sequence ``(B, T, D*H)`` out (directions
    concatenated on the feature axis, forward first). Steps past a sequence's length are 0."""

    name: str
    src: int
    input_size: int
    hidden_size: int
    directions: tuple[LstmDirection, ...]
    clip: float | None = None
    input_forget: bool = False
    #: (N0,) int constant lengths, or None: every step valid (unless supplied at run time)
    sequence_lens: np.ndarray | None = field(default=None, repr=False)
    #: lengths are a graph input, passed to ``FloatModel.run(..., sequence_lens=...)``
    sequence_lens_is_input: bool = False
    kind: ValueKind = SEQ
    #: gate rows per hidden unit; read by :mod:`.macs`
    gates: ClassVar[int] = 4

    @property
    def parameters(self) -> int:
        n = 0
        for d in self.directions:
            n += d.w.size + d.r.size + d.b.size + (d.p.size if d.p is not None else 0)
        return n

    @property
    def macs_per_step(self) -> int:
        """Weight-matrix MACs per step, 4·H·(I+H) per direction (:mod:`.macs`)."""
        return lstm_macs(self.input_size, self.hidden_size, self.num_directions)


@dataclass(frozen=True, eq=False)
class GruDirection:
    """One direction of a GRU layer. Shapes use H = hidden size, I = input size.

    Gate rows are ordered z, r, h (update, reset, candidate): row ``k*H + j`` is unit ``j`` of
    gate ``k``. Per step (``x`` the input, ``h`` the previous state)::

        z = f(W_z x + R_z h + b_z)        r = f(W_r x + R_r h + b_r)
        n = g(W_h x + b_h + r * (R_h h + rb_h))   linear_before_reset
        n = g(W_h x + b_h + R_h (r * h))          otherwise
        h' = (1 - z) * n + z * h

    with ``clip`` (when set) on the three pre-activations.
    """

    w: np.ndarray = field(repr=False)  # (3H, I) input weights
    r: np.ndarray = field(repr=False)  # (3H, H) recurrent weights
    #: (3H,) z, r: Wb + Rb; h: Wbh, plus Rbh when not linear_before_reset (folded at import)
    b: np.ndarray = field(repr=False)
    #: (H,) Rbh inside ``r * (R_h h + rb_h)`` when linear_before_reset; zeros otherwise (folded)
    rb_h: np.ndarray = field(repr=False)
    initial_h: np.ndarray = field(repr=False)  # (N0, H) N0 == 1: same for every batch row; else the fixed batch
    reverse: bool  # processes time from the last valid step to the first
    activations: tuple[Activation, Activation]  # f (z, r), g (candidate)


@dataclass(frozen=True, eq=False)
class GruNode(Recurrent):
    """One ONNX GRU node: a sequence in, a sequence ``(B, T, D*H)`` out (directions
    concatenated on the feature axis, forward first). Steps past a sequence's length are 0;
    its Y_h is an :class:`LstmStateNode` with ``which="h"``."""

    name: str
    src: int
    input_size: int
    hidden_size: int
    directions: tuple[GruDirection, ...]
    clip: float | None = None
    #: the candidate's recurrent product is taken before the reset gate (PyTorch, Keras reset_after)
    linear_before_reset: bool = False
    #: (N0,) int constant lengths, or None: every step valid (unless supplied at run time)
    sequence_lens: np.ndarray | None = field(default=None, repr=False)
    #: lengths are a graph input, passed to ``FloatModel.run(..., sequence_lens=...)``
    sequence_lens_is_input: bool = False
    kind: ValueKind = SEQ
    #: gate rows per hidden unit; read by :mod:`.macs`
    gates: ClassVar[int] = 3

    @property
    def parameters(self) -> int:
        extra = self.hidden_size if self.linear_before_reset else 0  # rb_h
        return sum(d.w.size + d.r.size + d.b.size + extra for d in self.directions)

    @property
    def macs_per_step(self) -> int:
        """Weight-matrix MACs per step, 3·H·(I+H) per direction (:mod:`.macs`)."""
        return gru_macs(self.input_size, self.hidden_size, self.num_directions)


@dataclass(frozen=True, eq=False)
class InputNode:
    """The graph's first input as a canonical sequence value."""

    name: str
    features: int
    kind: ValueKind = SEQ


@dataclass(frozen=True, eq=False)
class LstmStateNode:
    """Y_h or Y_c of an LSTM node, or Y_h of a GRU node, as a vector ``(B, D*H)``: the state
    after each direction's last processed step (forward: last valid step; reverse: step 0)."""

    name: str
    src: int  # index of the LstmNode or GruNode
    which: Literal["h", "c"]
    features: int
    kind: ValueKind = VEC


@dataclass(frozen=True, eq=False)
class SelectStepNode:
    """One time step of a sequence value: ``index`` >= 0 from the start, < 0 from the end
    of the padded sequence (-1: the last step, like PyTorch's ``out[:, -1]``)."""

    name: str
    src: int
    index: int
    features: int
    kind: ValueKind = VEC


@dataclass(frozen=True, eq=False)
class FeatureGatherNode:
    """Reorders / selects features: ``out[..., k] = in[..., indices[k]]``."""

    name: str
    src: int
    indices: np.ndarray = field(repr=False)  # (F_out,) int64
    kind: ValueKind = SEQ

    @property
    def features(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True, eq=False)
class DenseNode:
    """``y = x @ weight.T + bias`` on the feature axis of a sequence or vector value."""

    name: str
    src: int
    weight: np.ndarray = field(repr=False)  # (F_out, F_in)
    bias: np.ndarray = field(repr=False)  # (F_out,)
    kind: ValueKind = VEC

    @property
    def features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def parameters(self) -> int:
        return int(self.weight.size + self.bias.size)


@dataclass(frozen=True, eq=False)
class ActivationNode:
    """An elementwise activation (Relu, Tanh, Sigmoid, ...) or, when ``softmax`` is set,
    Softmax / LogSoftmax over the feature axis."""

    name: str
    src: int
    activation: Activation
    features: int
    kind: ValueKind = VEC


Node = (
    InputNode
    | LstmNode
    | GruNode
    | LstmStateNode
    | SelectStepNode
    | FeatureGatherNode
    | DenseNode
    | ActivationNode
)

#: the recurrent layer nodes (an LSTM or a GRU)
RECURRENT = (LstmNode, GruNode)


def batch_dependence(nodes: tuple[Node, ...] | list[Node]) -> list[tuple[str, str, int]]:
    """``(node, field, rows)`` of the LSTM / GRU constants kept per row of a static batch."""
    out = []
    for n in nodes:
        if not isinstance(n, RECURRENT):
            continue
        if n.sequence_lens is not None and n.sequence_lens.shape[0] > 1:
            out.append((n.name, "sequence_lens", int(n.sequence_lens.shape[0])))
        for what in ("initial_h", "initial_c") if isinstance(n, LstmNode) else ("initial_h",):
            rows = max(getattr(d, what).shape[0] for d in n.directions)
            if rows > 1:
                out.append((n.name, what, rows))
    return out

