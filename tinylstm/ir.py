"""The float IR: what the ONNX importer produces and everything downstream consumes.

Data flows one way through a short list of nodes. Each node produces one *value*, either

- a **sequence** value, canonical shape ``(batch, time, features)``, or
- a **vector** value, canonical shape ``(batch, features)``.

Node ``k`` may only read values of nodes ``< k``; node 0 is always :class:`InputNode` and
the last node produces the model output. Gate order is normalized at import to
``i, f, g, o`` (input, forget, cell candidate, output); ONNX's ``i, o, f, c`` never leaks
past the importer. Peepholes are stored in ``i, f, o`` order.

How the ONNX input and output tensors map to canonical values is described by a
:class:`View` (which ONNX axis holds batch, time and which feature sub-axes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SEQ: Literal["seq"] = "seq"
VEC: Literal["vec"] = "vec"
ValueKind = Literal["seq", "vec"]

#: Activations ONNX's LSTM accepts (and onnxruntime executes) in ``activations``.
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
# Layouts
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Atom:
    """One indivisible axis: ``B`` (batch), ``T`` (time) or a feature sub-axis.

    ``size`` is None for a dynamic batch/time axis.
    """

    label: str
    size: int | None

    @property
    def is_feature(self) -> bool:
        return self.label not in ("B", "T")


@dataclass(frozen=True)
class View:
    """How an ONNX tensor relates to a canonical value.

    ``atoms`` lists the canonical axes in canonical order: ``B``, then ``T`` for a sequence
    value, then the feature sub-axes whose row-major flattening is the canonical feature
    vector. ``dims`` gives, for each ONNX axis, the atoms (indices into ``atoms``) merged
    into it, row-major; an empty tuple is an axis of size 1.
    """

    atoms: tuple[Atom, ...]
    dims: tuple[tuple[int, ...], ...]

    @property
    def kind(self) -> ValueKind:
        return SEQ if any(a.label == "T" for a in self.atoms) else VEC

    @property
    def features(self) -> int:
        n = 1
        for a in self.atoms:
            if a.is_feature:
                n *= int(a.size)  # type: ignore[arg-type]
        return n

    def _sizes(self, batch: int, time: int | None) -> list[int]:
        out = []
        for a in self.atoms:
            if a.label == "B":
                out.append(batch)
            elif a.label == "T":
                out.append(int(time) if time is not None else 0)
            else:
                out.append(int(a.size))  # type: ignore[arg-type]
        return out

    def onnx_shape(self, batch: int, time: int | None) -> tuple[int, ...]:
        sizes = self._sizes(batch, time)
        return tuple(int(np.prod([sizes[i] for i in g], dtype=np.int64)) for g in self.dims)

    def axis_of(self, label: str) -> int | None:
        """The ONNX axis holding atom ``label`` (alone or merged), or None."""
        for d, g in enumerate(self.dims):
            for i in g:
                if self.atoms[i].label == label:
                    return d
        return None

    def to_canonical(self, x: np.ndarray) -> np.ndarray:
        """ONNX-shaped array -> canonical ``(B, T, F)`` or ``(B, F)``."""
        order = [i for g in self.dims for i in g]
        if sorted(order) != list(range(len(self.atoms))):
            raise ValueError("view does not cover every atom")
        batch, time = self._infer_bt(x.shape)
        sizes = self._sizes(batch, time)
        xa = x.reshape([sizes[i] for i in order])
        perm = [order.index(i) for i in range(len(self.atoms))]
        xa = xa.transpose(perm)
        lead = [batch] + ([time] if self.kind == SEQ else [])
        return xa.reshape(lead + [self.features])  # type: ignore[operator]

    def from_canonical(self, y: np.ndarray) -> np.ndarray:
        """Canonical array -> the ONNX tensor's own shape."""
        batch = y.shape[0]
        time = y.shape[1] if self.kind == SEQ else None
        sizes = self._sizes(batch, time)
        ya = y.reshape(sizes)
        order = [i for g in self.dims for i in g]
        return ya.transpose(order).reshape(self.onnx_shape(batch, time))

    def _infer_bt(self, shape: tuple[int, ...]) -> tuple[int, int | None]:
        if len(shape) != len(self.dims):
            raise ValueError(f"expected rank {len(self.dims)}, got shape {tuple(shape)}")
        batch = time = None
        for d, g in enumerate(self.dims):
            fixed = 1
            unknown = []
            for i in g:
                a = self.atoms[i]
                if a.is_feature or a.size is not None:
                    fixed *= int(a.size)  # type: ignore[arg-type]
                else:
                    unknown.append(a.label)
            if shape[d] % fixed:
                raise ValueError(f"axis {d} has size {shape[d]}, not a multiple of {fixed}")
            rest = shape[d] // fixed
            if not unknown:
                if rest != 1:
                    raise ValueError(f"axis {d} must have size {fixed}, got {shape[d]}")
            elif len(unknown) == 1:
                if unknown[0] == "B":
                    batch = rest
                else:
                    time = rest
            else:
                raise ValueError("cannot infer batch and time from a merged dynamic axis")
        for a in self.atoms:
            if a.label == "B" and a.size is not None:
                batch = a.size
            if a.label == "T" and a.size is not None:
                time = a.size
        if batch is None:
            batch = 1
        return batch, time


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------
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
class LstmNode:
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

    @property
    def num_directions(self) -> int:
        return len(self.directions)

    @property
    def direction(self) -> str:
        if len(self.directions) == 2:
            return "bidirectional"
        return "reverse" if self.directions[0].reverse else "forward"

    @property
    def features(self) -> int:
        return self.num_directions * self.hidden_size

    @property
    def parameters(self) -> int:
        n = 0
        for d in self.directions:
            n += d.w.size + d.r.size + d.b.size + (d.p.size if d.p is not None else 0)
        return n

    @property
    def macs_per_step(self) -> int:
        """Weight-matrix MACs per step, 4·H·(I+H) per direction (the definition of tinylstm.analyze)."""
        h, i = self.hidden_size, self.input_size
        return 4 * h * (i + h) * self.num_directions


@dataclass(frozen=True, eq=False)
class InputNode:
    """The graph's first input as a canonical sequence value."""

    name: str
    features: int
    kind: ValueKind = SEQ


@dataclass(frozen=True, eq=False)
class LstmStateNode:
    """Y_h or Y_c of an LSTM node as a vector ``(B, D*H)``: the state after each
    direction's last processed step (forward: last valid step; reverse: step 0)."""

    name: str
    src: int  # index of the LstmNode
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
    | LstmStateNode
    | SelectStepNode
    | FeatureGatherNode
    | DenseNode
    | ActivationNode
)


@dataclass(frozen=True, eq=False)
class FloatModel:
    """A float LSTM model, ready to run (``run``), inspect or quantize."""

    nodes: tuple[Node, ...]
    input_name: str
    output_name: str
    input_view: View
    output_view: View
    #: graph inputs besides the first that feed LSTM ``sequence_lens``
    sequence_lens_input: str | None = None
    opset: int = 0
    producer: str = ""
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: the static batch / time length the ONNX input declares (or the exporter baked into the
    #: graph), None when dynamic. A default, not a constraint: see :attr:`fixed_batch`.
    export_batch: int | None = None
    export_time: int | None = None
    #: the row of a static batch whose per-row constants were kept (``load_onnx(batch_row=)``)
    batch_row: int | None = None

    @property
    def lstm_layers(self) -> list[LstmNode]:
        return [n for n in self.nodes if isinstance(n, LstmNode)]

    @property
    def input_features(self) -> int:
        return self.nodes[0].features

    @property
    def output_features(self) -> int:
        return self.nodes[-1].features

    @property
    def many_to_many(self) -> bool:
        """True when the output has a time axis (a value per step)."""
        return self.nodes[-1].kind == SEQ

    @property
    def causal(self) -> bool:
        """True when every LSTM runs forward only: the model can stream step by step."""
        return all(n.direction == "forward" for n in self.lstm_layers) and not any(
            isinstance(n, SelectStepNode) and n.index >= 0 for n in self.nodes
        )

    @property
    def fixed_batch(self) -> int | None:
        """The batch the model must run at: a static batch whose rows hold different constants
        (:meth:`batch_dependence`); None when any number of sequences may run at once."""
        for a in self.input_view.atoms:
            if a.label == "B":
                return a.size
        return None

    @property
    def fixed_time(self) -> int | None:
        """The sequence length the model must run at (its graph depends on it), or None."""
        for a in self.input_view.atoms:
            if a.label == "T":
                return a.size
        return None

    def batch_dependence(self) -> list[tuple[str, str, int]]:
        """``(node, field, rows)`` for every constant that differs between the rows of a static
        batch (initial states, ``sequence_lens``): what makes :attr:`fixed_batch` not None."""
        return batch_dependence(self.nodes)

    def fingerprint(self) -> str:
        """SHA-256 of what the model computes: node kinds, sizes, attributes, weights and views,
        not node names, paths or notes, so a re-export of the same weights keeps it."""
        from .digest import tree_sha256

        return tree_sha256((self.nodes, self.input_view, self.output_view),
                           lambda obj, name: name == "name" and hasattr(obj, "kind"))

    @property
    def parameters(self) -> int:
        return sum(getattr(n, "parameters", 0) for n in self.nodes)

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates for one time step of batch 1 (heads on a selected step
        counted once, as if evaluated every step)."""
        total = 0
        for n in self.nodes:
            if isinstance(n, LstmNode):
                total += n.macs_per_step
            elif isinstance(n, DenseNode):
                total += int(n.weight.size)
        return total

    def run(self, x: np.ndarray, sequence_lens: np.ndarray | None = None) -> np.ndarray:
        """Float reference run: ONNX-shaped input -> ONNX-shaped first output (float32)."""
        from .reference import run_float

        return run_float(self, x, sequence_lens=sequence_lens)


def batch_dependence(nodes: tuple[Node, ...] | list[Node]) -> list[tuple[str, str, int]]:
    """``(node, field, rows)`` of the LSTM constants kept per row of a static batch."""
    out = []
    for n in nodes:
        if not isinstance(n, LstmNode):
            continue
        if n.sequence_lens is not None and n.sequence_lens.shape[0] > 1:
            out.append((n.name, "sequence_lens", int(n.sequence_lens.shape[0])))
        for what in ("initial_h", "initial_c"):
            rows = max(getattr(d, what).shape[0] for d in n.directions)
            if rows > 1:
                out.append((n.name, what, rows))
    return out

