"""Walk the ONNX graph once, folding constants and turning data-carrying tensors into IR.

Every tensor becomes a numpy constant or a :class:`Sym` (a view of an IR value). Ops on
constants are folded; ops on Syms are the supported model ops (LSTM, dense heads,
activations) or glue that only moves data (Transpose, Reshape, Gather of a step, ...),
which becomes a change of view or a small data-movement node.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import (
    SEQ,
    VEC,
    Activation,
    ActivationNode,
    Atom,
    DenseNode,
    FeatureGatherNode,
    InputNode,
    LstmNode,
    LstmStateNode,
    Node,
    SelectStepNode,
)
from . import args
from . import lstm as lstm_mod
from .attrs import FLOAT, INT, INTS, STRING, attr, node_label, required
from .fold import ShapeOnly, axes_argument, fold, resolve_reshape, slice_params
from .loader import check_finite
from .symbolic import BATCH_SENTINEL, TIME_SENTINEL, Sym, ViewError, feature_index_grid, reshape_dims

LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
#: Ops that only move or reshape data, accepted on model tensors.
GLUE_OPS = (
    "Identity", "Cast", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Gather",
    "Slice", "Shape", "Expand", "Dropout",
)
MODEL_OPS = ("LSTM", "Gemm", "MatMul", "Add", "Relu", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
             "LeakyRelu", "HardSigmoid", "Elu", "Softsign", "Softplus")
ELEMENTWISE = {
    "Relu": (),
    "Tanh": (),
    "Sigmoid": (),
    "Softsign": (),
    "Softplus": (),
    "LeakyRelu": (("alpha", 0.01),),
    "Elu": (("alpha", 1.0),),
    "HardSigmoid": (("alpha", 0.2), ("beta", 0.5)),
}
#: attributes each Sym-handling op understands; anything else is refused, never ignored
KNOWN_ATTRS: dict[str, set[str]] = {
    "Identity": set(),
    "Cast": {"to", "saturate", "round_mode"},
    "Transpose": {"perm"},
    "Squeeze": {"axes"},
    "Unsqueeze": {"axes"},
    "Reshape": {"allowzero"},
    "Flatten": {"axis"},
    "Gather": {"axis"},
    "Slice": {"starts", "ends", "axes"},
    "Shape": {"start", "end"},
    "Expand": set(),
    "Dropout": {"seed", "ratio", "is_test"},
    "Gemm": {"alpha", "beta", "transA", "transB", "broadcast"},
    "MatMul": set(),
    "Add": {"axis", "broadcast"},
    "Softmax": {"axis"},
    "LogSoftmax": {"axis"},
    "Relu": set(),
    "Tanh": set(),
    "Sigmoid": set(),
    "Softsign": set(),
    "Softplus": set(),
    "LeakyRelu": {"alpha"},
    "Elu": {"alpha"},
    "HardSigmoid": {"alpha", "beta"},
}
#: a static sequence length (and a picked step) must fit the C runtime's int32 step counter
MAX_STEPS = (1 << 31) - 1
#: distinct literal lengths a Reshape may offer as a baked sequence length (each costs a
#: re-interpretation of the graph)
MAX_BAKED_CANDIDATES = 4
#: steps from either end of a dynamic time axis a Gather/Slice may pick
MAX_STEP_OFFSET = 64

Picks = range | np.ndarray  # indices on one axis: a lazy range (Slice) or an array (Gather)


class Interpreter:
    """One pass over a topologically sorted graph, for one input-layout hypothesis."""

    def __init__(
        self,
        model: onnx.ModelProto,
        consts: dict[str, np.ndarray],
        input_name: str,
        input_shape: list[int | None],
        input_axes: tuple[str, ...],
        seq_lens_input: str | None,
        opset: int,
        batch_row: int | None = None,
    ):
        self.model = model
        #: the row of a static batch whose per-row constants (initial states, sequence_lens)
        #: to keep when the rows differ; None keeps them all
        self.batch_row = batch_row
        self.opset = opset
        self.env: dict[str, object] = dict(consts)
        self.nodes: list[Node] = []
        self.seq_lens_input = seq_lens_input
        self.lstm_outputs: dict[int, dict[str, int]] = {}
        #: value -> how many tensors in env view it (a Dense bias folds in when only one does)
        self.sym_uses: dict[int, int] = {0: 1}
        # the graph input: atoms B, T, F laid out as input_axes says
        sizes = {}
        fixed = {}
        for label, dim in zip(input_axes, input_shape, strict=True):
            if label in ("B", "T"):
                fixed[label] = dim
                sizes[label] = dim if dim is not None else (
                    BATCH_SENTINEL if label == "B" else TIME_SENTINEL
                )
        feat = [d for lab, d in zip(input_axes, input_shape, strict=True) if lab == "F"][0]
        if feat is None:
            raise UnsupportedModelError(
                f"graph input '{input_name}' has a dynamic feature axis; the number of input "
                "features must be fixed",
                field="input shape",
            )
        if "B" not in fixed:
            fixed["B"], sizes["B"] = 1, 1
        atoms = (Atom("B", fixed["B"]), Atom("T", fixed["T"]), Atom("F", int(feat)))
        self.input_atoms = atoms
        self.nodes.append(InputNode(input_name, int(feat)))
        idx = {"B": 0, "T": 1, "F": 2}
        self.env[input_name] = Sym(
            0,
            atoms,
            tuple((idx[lab],) for lab in input_axes),
            (sizes["B"], sizes["T"], int(feat)),
        )
        if seq_lens_input is not None:
            self.env[seq_lens_input] = _SeqLensInput(seq_lens_input)

    # ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.progress = 0
        for node in self.model.graph.node:
            self.visit(node)
            self.progress += 1

    def value(self, name: str, node: onnx.NodeProto):
        if name == "":
            return None
        if name not in self.env:
            raise UnsupportedModelError(
                f"input '{name}' is not produced by any node, initializer or graph input",
                node=node_label(node),
                field="input",
            )
        return self.env[name]

    def visit(self, node: onnx.NodeProto) -> None:
        label = node_label(node)
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(
                f"op {node.domain}::{node.op_type} is not supported (only the default ONNX domain)",
                node=label,
                field="domain",
            )
        ins = [self.value(n, node) for n in node.input]
        for k, (n, v) in enumerate(zip(node.input, ins, strict=True)):
            if isinstance(v, ExtraInput):
                slot = LSTM_INPUTS[k] if node.op_type == "LSTM" and k < len(LSTM_INPUTS) else "input"
                raise UnsupportedModelError(
                    f"graph input '{n}' is used as {slot}; the only graph inputs supported are the "
                    "model input and LSTM sequence_lens (others must be initializers or constants)",
                    node=label,
                    field=slot,
                )
        if any(isinstance(v, _SeqLensInput) for v in ins) and node.op_type != "LSTM":
            raise UnsupportedModelError(
                f"graph input '{self.seq_lens_input}' may only feed LSTM sequence_lens",
                node=label,
            )
        for v in ins:
            if isinstance(v, SymStack) and node.op_type not in ("Gather", "Slice", "Identity"):
                raise UnsupportedModelError(v.refusal(), node=v.label)
        syms = [v for v in ins if isinstance(v, (Sym, SymStack))]
        if not syms and node.op_type != "LSTM":
            outs = fold(node, ins, self.opset)
            for name, val in zip(node.output, outs, strict=False):
                if name:
                    self.env[name] = val
            return
        op = node.op_type
        known = KNOWN_ATTRS.get(op)
        if known is not None:
            for a in node.attribute:
                if a.name not in known:
                    raise UnsupportedModelError(
                        f"attribute '{a.name}' of {op} is not supported",
                        node=label,
                        field=a.name,
                    )
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise UnsupportedModelError(
                f"op {op} on model data is not supported; supported model ops: "
                f"{', '.join(MODEL_OPS)}; glue: {', '.join(GLUE_OPS)} and constant-only "
                "shape arithmetic",
                node=label,
                field="op_type",
            )
        outs = handler(node, label, ins)
        for name, val in zip(node.output, outs, strict=False):
            if name and val is not None:
                self.env[name] = val
                if isinstance(val, Sym):
                    self.sym_uses[val.value] = self.sym_uses.get(val.value, 0) + 1

    def add(self, n: Node) -> int:
        self.nodes.append(n)
        return len(self.nodes) - 1

    # ---------------------------------------------------------------------------------
    # helpers
    def features_in_order(self, s: Sym, feat_atoms: list[int], label: str) -> int:
        """An IR value whose canonical features are ``s``'s feature atoms in the order given.

        Returns ``s.value`` itself when that order is already canonical.
        """
        feats, grid = feature_index_grid(s, label)
        if sorted(feat_atoms) != feats:
            raise UnsupportedModelError(
                f"the feature axis {s.describe()} does not hold all features of its value",
                node=label,
            )
        if feat_atoms == feats:
            return s.value
        perm = [feats.index(i) for i in feat_atoms]
        idx = grid.transpose(perm).reshape(-1)
        return self.add(FeatureGatherNode(label, s.value, idx, kind=self.nodes[s.value].kind))

    def new_value(self, value: int, s: Sym, feature_dim: int, features: int) -> Sym:
        """A Sym for ``value`` laid out like ``s`` but with ``features`` in ``feature_dim``."""
        kind = self.nodes[value].kind
        atoms = [a for a in s.atoms if not a.is_feature]
        sizes = [s.sizes[i] for i, a in enumerate(s.atoms) if not a.is_feature]
        remap = {i: k for k, i in enumerate(i for i, a in enumerate(s.atoms) if not a.is_feature)}
        if kind == VEC and any(a.label == "T" for a in atoms):
            raise AssertionError("vector value with a time atom")
        feat_index = len(atoms)
        atoms.append(Atom("F", features))
        sizes.append(features)
        dims = []
        for d, g in enumerate(s.dims):
            if d == feature_dim:
                dims.append((feat_index,) if features != 1 else ())
            else:
                dims.append(tuple(remap[i] for i in g))
        if features == 1:
            atoms.pop()
            sizes.pop()
        return Sym(value, tuple(atoms), tuple(dims), tuple(sizes))

    def feature_dim(self, s: Sym, axis: int, label: str, what: str) -> list[int]:
        axis = axis % s.rank
        g = list(s.dims[axis])
        feats = s.feature_atoms()
        if sorted(g) != feats or any(i not in feats for i in g):
            raise UnsupportedModelError(
                f"{what} must act on the feature axis; input is laid out {s.describe()} "
                f"and axis {axis} is not the whole feature axis",
                node=label,
            )
        for d, gg in enumerate(s.dims):
            if d != axis and any(s.atoms[i].is_feature for i in gg):
                raise UnsupportedModelError(
                    f"{what} input {s.describe()} has features on more than one axis", node=label
                )
        return g

    def const(self, v, label: str, what: str) -> np.ndarray:
        """A constant operand (weights, shapes, indices) of at most MAX_FOLD_ELEMENTS."""
        if isinstance(v, (Sym, SymStack, _SeqLensInput)):
            raise UnsupportedModelError(
                f"{what} must be a constant (initializer or folded), not computed from the input",
                node=label,
                field=what,
            )
        if isinstance(v, ShapeOnly):
            raise UnsupportedModelError(v.refusal(), node=label, field=what)
        args.bound(np.shape(v), label, what)
        return np.asarray(v)

    # ---------------------------------------------------------------------------------
    # glue
    def op_Identity(self, node, label, ins):
        return [ins[0]]

    op_Dropout = op_Identity

    def op_Cast(self, node, label, ins):
        to = required(node, "to", INT)
        if to not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            raise UnsupportedModelError(
                f"Cast of model data to {_type_name(to)} is not supported "
                "(only to float types)",
                node=label,
                field="to",
            )
        return [ins[0]]

    def op_Shape(self, node, label, ins):
        return fold(node, [ShapeOnly(ins[0].shape, label)], self.opset)

    def op_Transpose(self, node, label, ins):
        s: Sym = ins[0]
        perm = args.perm(attr(node, "perm", INTS), s.rank, label)
        return [s.with_dims([s.dims[p] for p in perm])]

    def op_Squeeze(self, node, label, ins):
        s: Sym = ins[0]
        axes = axes_argument(node, [s, self._const_or_none(ins, 1, label, "axes")], 1, label)
        shape = s.shape
        if axes is None:
            axes = [d for d, n in enumerate(shape) if n == 1]
        axes = args.axes(axes, s.rank, label)
        for a in axes:
            if shape[a] != 1:
                raise UnsupportedModelError(
                    f"Squeeze of axis {a} which holds {s.describe()} (not size 1)", node=label,
                    field="axes",
                )
        # atoms in squeezed dims have size 1 (a static batch of 1): they float
        return [s.with_dims([g for d, g in enumerate(s.dims) if d not in axes])]

    def op_Unsqueeze(self, node, label, ins):
        s: Sym = ins[0]
        axes = axes_argument(node, [s, self._const_or_none(ins, 1, label, "axes")], 1, label)
        if axes is None:
            raise UnsupportedModelError("Unsqueeze needs axes", node=label, field="axes")
        dims = list(s.dims)
        for a in sorted(args.axes(axes, s.rank + len(axes), label)):
            dims.insert(a, ())
        return [s.with_dims(dims)]

    def _const_or_none(self, ins: list, k: int, label: str, what: str) -> np.ndarray | None:
        """Optional constant input ``k``."""
        return self.const(ins[k], label, what) if len(ins) > k and ins[k] is not None else None

    def op_Reshape(self, node, label, ins):
        s: Sym = ins[0]
        raw = self.const(ins[1], label, "shape")
        try:
            target = resolve_reshape(s.shape, raw, node)
            dims = reshape_dims(s, target)
        except (ViewError, UnsupportedModelError) as e:
            self._maybe_baked_time(s, raw, label)
            msg = str(e) if isinstance(e, ViewError) else e.args[0].split(": ", 1)[-1]
            raise UnsupportedModelError(msg, node=label, field="shape") from None
        return [s.with_dims(dims)]

    def _maybe_baked_time(self, s: Sym, raw: np.ndarray, label: str) -> None:
        """A Reshape whose target bakes a literal sequence length into a dynamic-time graph."""
        t_atoms = [a for a in s.atoms if a.label == "T"]
        if not t_atoms or t_atoms[0].size is not None:
            return
        cands = list(dict.fromkeys(int(v) for v in np.asarray(raw).reshape(-1)
                                   if v > 1 and v % TIME_SENTINEL and v % BATCH_SENTINEL))
        if 0 < len(cands) <= MAX_BAKED_CANDIDATES:
            raise BakedTimeError(label, cands)

    def op_Flatten(self, node, label, ins):
        s: Sym = ins[0]
        axis = args.axis(attr(node, "axis", INT, 1), s.rank + 1, label)
        shape = s.shape
        target = [math.prod(shape[:axis]), math.prod(shape[axis:])]
        try:
            dims = reshape_dims(s, target)
        except ViewError as e:
            raise UnsupportedModelError(str(e), node=label, field="axis") from None
        return [s.with_dims(dims)]

    def op_Expand(self, node, label, ins):
        s: Sym = ins[0]
        shape = args.dims(args.ints(self.const(ins[1], label, "shape"), label, "shape"), label)
        out = args.broadcast_shape([s.shape, shape], label)
        if tuple(out) != s.shape:
            raise UnsupportedModelError(
                f"Expand of model data {s.describe()} to {shape} would copy it; only no-op "
                "Expands are supported",
                node=label,
            )
        return [s]

    def select_axis(self, s: Sym, axis: int, picks: Picks, keep_dim: bool, label: str, what: str):
        """Gather/Slice on one axis of a Sym: time steps or features.

        ``picks`` are indices on that axis (negative ones count from the end): a ``range``
        from a Slice (never materialized: a time axis may be huge) or an array from a Gather.
        """
        axis = args.axis(axis, s.rank, label)
        g = [i for i in s.dims[axis] if s.sizes[i] != 1]
        if not g:
            # an axis of size 1 (e.g. num_directions of a one-direction LSTM)
            if [int(p) for p in _from_end(picks, 1)] != [0]:
                raise UnsupportedModelError(f"{what} index out of range on a size-1 axis", node=label)
            if keep_dim:
                return s
            return s.with_dims([g for d, g in enumerate(s.dims) if d != axis])  # size-1 atoms float
        if len(g) != 1:
            raise UnsupportedModelError(
                f"{what} on axis {axis} of {s.describe()} is not supported (the axis must hold "
                "exactly one of batch, time or a feature axis)",
                node=label,
            )
        atom = g[0]
        size = s.sizes[atom]
        picks = _from_end(picks, size)
        label_of = s.atoms[atom].label
        if label_of in ("B", "T") and keep_dim and _picks_all(picks, size):
            return s
        if label_of == "B":
            raise UnsupportedModelError(f"{what} over the batch axis is not supported", node=label)
        if label_of == "T":
            index = self._step_index(s.atoms[atom].size, size, picks, label, what)
            return self._select_step(s, axis, atom, index, keep_dim, label)
        return self._select_features(s, axis, atom, picks, keep_dim, label, what)

    def _step_index(self, fixed: int | None, size: int, picks: Picks, label: str, what: str) -> int:
        """The SelectStep index of one picked step (negative: counted from the end)."""
        if len(picks) != 1:
            raise UnsupportedModelError(
                f"{what} of {len(picks)} time steps is not supported (only one step, e.g. the last)",
                node=label,
            )
        t = int(picks[0])
        if fixed is None:  # a dynamic time axis of sentinel size
            if size - MAX_STEP_OFFSET <= t < size:
                return t - size  # counted from the end
            if 0 <= t < MAX_STEP_OFFSET:
                return t
            raise UnsupportedModelError(
                f"{what} picks a time step that depends on the sequence length (supported: one of "
                f"the first or last {MAX_STEP_OFFSET} steps)",
                node=label,
            )
        if fixed > MAX_STEPS:
            raise UnsupportedModelError(
                f"{what} on a fixed sequence length of {fixed} steps; supported: up to {MAX_STEPS}",
                node=label,
            )
        if not 0 <= t < size:
            raise UnsupportedModelError(
                f"{what} picks time step {t} of a sequence of fixed length {size}", node=label
            )
        return t - size if t == size - 1 else t

    def _select_step(self, s: Sym, axis: int, atom: int, index: int, keep_dim: bool, label: str) -> Sym:
        """One time step of ``s`` (time atom ``atom`` on ``axis``): a SelectStep node."""
        feats = s.feature_atoms()
        nfeat = math.prod(s.sizes[i] for i in feats)
        v = self.add(SelectStepNode(label, s.value, index, nfeat))
        atoms = [at for i, at in enumerate(s.atoms) if i != atom]
        sizes = [sz for i, sz in enumerate(s.sizes) if i != atom]
        dims = []
        for d, gg in enumerate(s.dims):
            rest = tuple(i if i < atom else i - 1 for i in gg if i != atom)
            if d == axis and not keep_dim:
                if any(sizes[i] != 1 for i in rest):
                    raise UnsupportedModelError(
                        f"{s.describe()}: picking one time step of axis {axis} would drop the other "
                        "axes merged into it", node=label)
                continue  # size-1 atoms merged with time (a static batch of 1) float
            dims.append(rest)
        return Sym(v, tuple(atoms), tuple(dims), tuple(sizes))

    def _select_features(self, s: Sym, axis: int, atom: int, picks: Picks, keep_dim: bool,
                         label: str, what: str) -> Sym:
        """Some features of feature atom ``atom`` (on ``axis``): a FeatureGather node."""
        size = s.sizes[atom]
        feats, grid = feature_index_grid(s, label)
        picks = np.asarray(picks, dtype=np.int64)
        if picks.size and (picks.min() < 0 or picks.max() >= size):
            raise UnsupportedModelError(f"{what} index out of range", node=label)
        sub = np.take(grid, picks, axis=feats.index(atom))
        # canonical order of the remaining feature atoms stays; the picked atom shrinks
        v = self.add(FeatureGatherNode(label, s.value, sub.reshape(-1), kind=self.nodes[s.value].kind))
        atoms = list(s.atoms)
        sizes = list(s.sizes)
        new_size = int(picks.size)
        atoms[atom] = Atom(s.atoms[atom].label, new_size)
        sizes[atom] = new_size
        dims = [list(gg) for gg in s.dims]
        if not keep_dim and new_size != 1:
            raise UnsupportedModelError("unexpected scalar gather", node=label)
        if new_size == 1:
            # drop the atom entirely; renumber
            atoms.pop(atom)
            sizes.pop(atom)
            dims = [[i if i < atom else i - 1 for i in gg if i != atom] for gg in dims]
        if not keep_dim:
            dims.pop(axis)
        return Sym(v, tuple(atoms), tuple(tuple(gg) for gg in dims), tuple(sizes))

    def op_Concat(self, node, label, ins):
        parts = [v for v in ins if v is not None]
        if not all(isinstance(v, Sym) for v in parts):
            raise UnsupportedModelError(
                "Concat of model data with constants is not supported", node=label
            )
        axis = args.axis(required(node, "axis", INT), parts[0].rank, label)
        merged = self._concat_features(parts, axis, label)
        if merged is not None:
            return [merged]
        return [SymStack(tuple(parts), axis, label)]

    def _concat_features(self, parts: list[Sym], axis: int, label: str) -> Sym | None:
        """Concat on the feature axis of views of one value (e.g. cat(h_n[-2], h_n[-1])):
        a single feature gather of that value. None when the pattern does not apply."""
        layout = None
        picks: list[np.ndarray] = []
        base = None
        for p in parts:
            if sorted(p.dims[axis]) != p.feature_atoms():
                return None
            others = tuple(tuple(p.atoms[i].label for i in g) for d, g in enumerate(p.dims) if d != axis)
            if layout is None:
                layout = others
            elif others != layout:
                return None
            v = self.features_in_order(p, list(p.dims[axis]), label)
            idx = np.arange(self.nodes[v].features)
            while isinstance(self.nodes[v], FeatureGatherNode):
                idx = self.nodes[v].indices[idx]
                v = self.nodes[v].src
            if base is None:
                base = v
            elif v != base:
                return None
            picks.append(idx)
        assert base is not None
        idx = np.concatenate(picks)
        g = self.add(FeatureGatherNode(label, base, idx, kind=self.nodes[base].kind))
        return self.new_value(g, parts[0], axis, int(idx.size))

    def op_Gather(self, node, label, ins):
        s = ins[0]
        if isinstance(s, SymStack):
            idx = self._indices(ins[1], label)
            axis = args.axis(attr(node, "axis", INT, 0), s.rank, label)
            part, local = s.pick(axis, idx.reshape(-1), label)
            return [self.select_axis(part, axis, local, keep_dim=idx.ndim == 1, label=label,
                                     what="Gather")]
        if not isinstance(s, Sym):
            raise UnsupportedModelError("Gather with computed indices is not supported", node=label)
        idx = self._indices(ins[1], label)
        axis = attr(node, "axis", INT, 0)
        if idx.ndim > 1:
            raise UnsupportedModelError("Gather with multi-dimensional indices", node=label)
        return [self.select_axis(s, axis, idx, keep_dim=idx.ndim == 1, label=label, what="Gather")]

    def _indices(self, v, label: str) -> np.ndarray:
        idx = self.const(v, label, "indices")
        args.ints(idx, label, "indices")
        return idx.astype(np.int64)

    def op_Slice(self, node, label, ins):
        s = ins[0]
        if isinstance(s, SymStack):
            stack = s
            params = slice_params(node, ins, self.opset, stack.shape)
            if stack.axis not in [p[0] for p in params]:
                raise UnsupportedModelError(stack.refusal(), node=stack.label)
            s = None
            for ax, start, stop, step in params:
                if ax == stack.axis:
                    s, local = stack.pick(ax, range(start, stop, step), label)
                    s = self.select_axis(s, ax, local, keep_dim=True, label=label, what="Slice")
            for ax, start, stop, step in params:
                if ax != stack.axis:
                    s = self.select_axis(s, ax, range(start, stop, step), keep_dim=True,
                                         label=label, what="Slice")
            return [s]
        if any(isinstance(v, Sym) for v in ins[1:]):
            raise UnsupportedModelError("Slice bounds computed from model data", node=label)
        for ax, start, stop, step in slice_params(node, ins, self.opset, s.shape):
            s = self.select_axis(s, ax, range(start, stop, step), keep_dim=True, label=label,
                                 what="Slice")
        return [s]

    # ---------------------------------------------------------------------------------
    # model ops
    def _dense(self, s: Sym, weight: np.ndarray, bias: np.ndarray, label: str, feat_axis: int) -> Sym:
        fa = self.feature_dim(s, feat_axis, label, "a dense layer")
        nfeat = math.prod(s.sizes[i] for i in fa)
        if weight.ndim != 2 or weight.shape[1] != nfeat:
            raise UnsupportedModelError(
                f"the weight of shape {list(weight.shape)} does not take the input's {nfeat} "
                f"features ({s.describe()})",
                node=label,
                field="B",
            )
        src = self.features_in_order(s, fa, label)
        check_finite(weight, f"weight of node '{label}'")
        check_finite(bias, f"bias of node '{label}'")
        kind = self.nodes[s.value].kind
        v = self.add(
            DenseNode(label, src, weight.astype(np.float32), bias.astype(np.float32), kind=kind)
        )
        return self.new_value(v, s, feat_axis % s.rank, int(weight.shape[0]))

    def op_Gemm(self, node, label, ins):
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if not isinstance(a, Sym) or isinstance(b, Sym) or isinstance(c, Sym):
            raise UnsupportedModelError(
                "Gemm must multiply model data (A) by constant weights (B, C)", node=label
            )
        if attr(node, "transA", INT, 0):
            raise UnsupportedModelError("Gemm transA=1 is not supported", node=label, field="transA")
        if a.rank != 2:
            raise UnsupportedModelError(f"Gemm input A has rank {a.rank}", node=label)
        alpha = attr(node, "alpha", FLOAT, 1.0)
        beta = attr(node, "beta", FLOAT, 1.0)
        w = self.const(b, label, "B").astype(np.float64)
        if w.ndim != 2:
            raise UnsupportedModelError("Gemm B must be a matrix", node=label, field="B")
        w = w if attr(node, "transB", INT, 0) else w.T  # (N_out, K)
        if w.shape[1] != a.shape[1]:
            raise UnsupportedModelError(
                f"Gemm B has {w.shape[1]} inputs but A has {a.shape[1]} features", node=label,
                field="B",
            )
        bias = np.zeros(w.shape[0])
        if c is not None:
            c = self.const(c, label, "C").astype(np.float64)
            if c.size == 1:
                bias = np.full(w.shape[0], float(c.reshape(-1)[0]))
            elif c.shape[-1] == w.shape[0] and math.prod(c.shape[:-1]) == 1:
                bias = c.reshape(-1)
            else:
                raise UnsupportedModelError(
                    f"Gemm C of shape {list(c.shape)} is not a per-output bias", node=label,
                    field="C",
                )
        return [self._dense(a, alpha * w, beta * bias, label, 1)]

    def op_MatMul(self, node, label, ins):
        a, b = ins
        if not isinstance(a, Sym) or isinstance(b, Sym):
            raise UnsupportedModelError(
                "MatMul must multiply model data by a constant weight matrix", node=label
            )
        w = self.const(b, label, "B").astype(np.float64)
        if w.ndim != 2:
            raise UnsupportedModelError("MatMul weight must be 2-D", node=label, field="B")
        return [self._dense(a, w.T, np.zeros(w.shape[1]), label, -1)]

    def op_Add(self, node, label, ins):
        a, b = ins
        if isinstance(b, Sym) and not isinstance(a, Sym):
            a, b = b, a
        if isinstance(b, Sym):
            raise UnsupportedModelError(
                "Add of two model tensors (e.g. a residual connection) is not supported", node=label
            )
        s: Sym = a
        c = self.const(b, label, "B").astype(np.float64)
        nfeat = math.prod(s.sizes[i] for i in s.feature_atoms())
        last = s.dims[-1]
        ok = (
            c.ndim <= s.rank
            and math.prod(c.shape[:-1]) == 1
            and c.shape[-1:] in ((nfeat,), (1,))
            and sorted(last) == s.feature_atoms()
        ) or c.size == 1
        if not ok:
            raise UnsupportedModelError(
                f"Add of a constant of shape {list(c.shape)} to {s.describe()}: only a per-feature "
                "bias on the last axis is supported",
                node=label,
            )
        bias = np.broadcast_to(c.reshape(-1), (nfeat,)) if c.size != nfeat else c.reshape(-1)
        prev = self.nodes[s.value]
        if (
            isinstance(prev, DenseNode)
            and s.value == len(self.nodes) - 1
            and list(last) == s.feature_atoms()
            and self._single_use_dense(s.value)
        ):
            self.nodes[s.value] = DenseNode(
                prev.name, prev.src, prev.weight,
                (prev.bias.astype(np.float64) + bias).astype(np.float32), kind=prev.kind,
            )
            return [s]
        return [self._dense(s, np.eye(nfeat), bias, label, -1)]

    def _single_use_dense(self, value: int) -> bool:
        # a Dense value just created by MatMul: fold the bias into it when nothing else saw it
        return self.sym_uses.get(value, 0) <= 1

    def _activation(self, s: Sym, act: Activation, label: str) -> Sym:
        feats = s.feature_atoms()
        nfeat = math.prod(s.sizes[i] for i in feats)
        kind = self.nodes[s.value].kind
        v = self.add(ActivationNode(label, s.value, act, nfeat, kind=kind))
        return Sym(v, s.atoms, s.dims, s.sizes)

    def _elementwise(self, node, label, ins):
        params = ELEMENTWISE[node.op_type]
        vals = {}
        for pname, default in params:
            vals[pname] = attr(node, pname, FLOAT, default)
        act = Activation(node.op_type, vals.get("alpha"), vals.get("beta"))
        return [self._activation(ins[0], act, label)]

    op_Relu = op_Tanh = op_Sigmoid = op_Softsign = op_Softplus = _elementwise
    op_LeakyRelu = op_Elu = op_HardSigmoid = _elementwise

    def _softmax(self, node, label, ins):
        s: Sym = ins[0]
        default_axis = -1 if self.opset >= 13 else 1
        axis = args.axis(attr(node, "axis", INT, default_axis), s.rank, label)
        if self.opset < 13 and axis != s.rank - 1:
            # older opsets flatten [axis:] into one: that must be exactly the features
            tail = [i for g in s.dims[axis:] for i in g]
            if sorted(tail) != s.feature_atoms():
                raise UnsupportedModelError(
                    f"{node.op_type} over axes {axis}.. of {s.describe()} is not over the features",
                    node=label,
                    field="axis",
                )
        else:
            self.feature_dim(s, axis, label, node.op_type)
        return [self._activation(s, Activation(node.op_type), label)]

    op_Softmax = op_LogSoftmax = _softmax

    # ---------------------------------------------------------------------------------
    def op_LSTM(self, node, label, ins):
        lstm_mod.check_attributes(node)
        ins = ins + [None] * (8 - len(ins))
        x, w, r, b, seq_lens, init_h, init_c, p = ins[:8]
        if not isinstance(x, Sym):
            raise UnsupportedModelError("LSTM input X must come from the graph input", node=label,
                                        field="X")
        w = self.const(w, label, "W")
        r = self.const(r, label, "R")
        hidden = attr(node, "hidden_size", INT)
        direction = attr(node, "direction", STRING, "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise UnsupportedModelError(
                f"direction '{direction}' is not one of forward, reverse, bidirectional",
                node=label,
                field="direction",
            )
        num_dir = 2 if direction == "bidirectional" else 1
        layout = attr(node, "layout", INT, 0)
        if layout not in (0, 1):
            raise UnsupportedModelError(f"layout {layout} is not 0 or 1", node=label, field="layout")
        # onnxruntime treats any non-zero value as 1
        input_forget = attr(node, "input_forget", INT, 0) != 0
        clip = attr(node, "clip", FLOAT)
        if clip is not None:
            if not clip > 0:
                raise UnsupportedModelError(f"clip {clip} must be a positive number", node=label,
                                            field="clip")
        if w.ndim != 3 or w.shape[0] != num_dir or w.shape[1] % 4:
            raise UnsupportedModelError(
                f"W has shape {list(w.shape)}; expected [num_directions={num_dir}, 4*hidden_size, "
                "input_size]",
                node=label,
                field="W",
            )
        if hidden is None:
            hidden = w.shape[1] // 4
        if hidden <= 0 or w.shape[1] != 4 * hidden:
            raise UnsupportedModelError(
                f"hidden_size {hidden} does not match W of shape {list(w.shape)} (4*hidden_size "
                "rows); projections (proj_size) are not part of the ONNX LSTM",
                node=label,
                field="hidden_size",
            )
        in_size = int(w.shape[2])
        if r.shape != (num_dir, 4 * hidden, hidden):
            raise UnsupportedModelError(
                f"R has shape {list(r.shape)}; expected {[num_dir, 4 * hidden, hidden]}",
                node=label,
                field="R",
            )
        if b is not None:
            b = self.const(b, label, "B")
            if b.shape != (num_dir, 8 * hidden):
                raise UnsupportedModelError(
                    f"B has shape {list(b.shape)}; expected {[num_dir, 8 * hidden]}", node=label,
                    field="B",
                )
        if p is not None:
            p = self.const(p, label, "P")
            if p.shape != (num_dir, 3 * hidden):
                raise UnsupportedModelError(
                    f"P has shape {list(p.shape)}; expected {[num_dir, 3 * hidden]}", node=label,
                    field="P",
                )
        for nm, arr in (("W", w), ("R", r), ("B", b), ("P", p)):
            if arr is not None:
                check_finite(np.asarray(arr), f"node '{label}' input {nm}")

        # X layout: [T, B, F] (layout 0) or [B, T, F] (layout 1)
        if x.rank != 3:
            raise UnsupportedModelError(
                f"X has rank {x.rank} ({x.describe()}); expected 3", node=label, field="X"
            )
        want = ("T", "B") if layout == 0 else ("B", "T")
        for d, lab in enumerate(want):
            g = [x.atoms[i].label for i in x.dims[d] if x.sizes[i] != 1]
            # an axis of size 1 holds a static batch (or time) of 1, wherever the exporter put it
            size_one = x.sizes[[i for i, a in enumerate(x.atoms) if a.label == lab][0]] == 1
            if g != [lab] and not (size_one and not g):
                raise UnsupportedModelError(
                    f"X is laid out {x.describe()} but layout={layout} expects "
                    f"[{', '.join('time' if v == 'T' else 'batch' for v in want)}, features]",
                    node=label,
                    field="layout",
                )
        feat_atoms = list(x.dims[2])
        if sorted(feat_atoms) != x.feature_atoms():
            raise UnsupportedModelError(f"X axis 2 is not the feature axis ({x.describe()})",
                                        node=label, field="X")
        nfeat = math.prod(x.sizes[i] for i in feat_atoms)
        if nfeat != in_size:
            raise UnsupportedModelError(
                f"X has {nfeat} features but W expects input_size {in_size}", node=label, field="W"
            )
        if self.nodes[x.value].kind != SEQ:
            raise UnsupportedModelError("X must be a sequence", node=label, field="X")
        src = self.features_in_order(x, feat_atoms, label)

        batch_size = x.sizes[[i for i, a in enumerate(x.atoms) if a.label == "B"][0]]
        batch_fixed = [a for a in x.atoms if a.label == "B"][0].size
        # sequence_lens
        lens_const = None
        lens_is_input = False
        if isinstance(seq_lens, _SeqLensInput):
            lens_is_input = True
        elif seq_lens is not None:
            lens_const = self.const(seq_lens, label, "sequence_lens").astype(np.int64).reshape(-1)
            lens_const = self._per_batch_rows(lens_const, batch_size, batch_fixed, label,
                                              "sequence_lens", axis=0)
            if (lens_const < 0).any():
                raise UnsupportedModelError("sequence_lens has negative entries", node=label,
                                            field="sequence_lens")
        states = []
        for nm, st in (("initial_h", init_h), ("initial_c", init_c)):
            if st is None:
                states.append(np.zeros((1, num_dir, hidden), dtype=np.float32))
                continue
            st = self.const(st, label, nm)
            if st.ndim != 3:
                raise UnsupportedModelError(f"{nm} has rank {st.ndim}; expected 3", node=label,
                                            field=nm)
            if layout == 1:
                st = np.swapaxes(st, 0, 1)
            if st.shape[0] != num_dir or st.shape[2] != hidden:
                raise UnsupportedModelError(
                    f"{nm} has shape {list(st.shape)}; expected [num_directions={num_dir}, batch, "
                    f"hidden_size={hidden}]" + (" (layout=1: [batch, num_directions, hidden])"
                                                 if layout == 1 else ""),
                    node=label,
                    field=nm,
                )
            check_finite(st, f"node '{label}' input {nm}")
            states.append(self._per_batch_rows(st, batch_size, batch_fixed, label, nm, axis=1))
        dirs = lstm_mod.build_directions(
            node, w, r, b, p, states[0], states[1], hidden, num_dir, direction == "reverse"
        )
        lstm = LstmNode(
            name=label,
            src=src,
            input_size=in_size,
            hidden_size=hidden,
            directions=dirs,
            clip=clip,
            input_forget=bool(input_forget),
            sequence_lens=lens_const,
            sequence_lens_is_input=lens_is_input,
        )
        v = self.add(lstm)
        # outputs: Y [T, D, B, H] (layout 0) / [B, T, D, H]; Y_h, Y_c [D, B, H] / [B, D, H]
        b_atom = [a for a in x.atoms if a.label == "B"][0]
        t_atom = [a for a in x.atoms if a.label == "T"][0]
        t_size = x.sizes[[i for i, a in enumerate(x.atoms) if a.label == "T"][0]]
        atoms = [b_atom, t_atom]
        sizes = [batch_size, t_size]
        d_idx = None
        if num_dir > 1:
            atoms.append(Atom("D", num_dir))
            sizes.append(num_dir)
            d_idx = 2
        atoms.append(Atom("H", hidden))
        sizes.append(hidden)
        h_idx = len(atoms) - 1
        dd = (d_idx,) if d_idx is not None else ()
        if layout == 0:
            y_dims = ((1,), dd, (0,), (h_idx,))
        else:
            y_dims = ((0,), (1,), dd, (h_idx,))
        y = Sym(v, tuple(atoms), y_dims, tuple(sizes))
        outs: list[object] = [y]
        for which in ("h", "c"):
            sv = self.add(LstmStateNode(f"{label}:Y_{which}", v, which, num_dir * hidden))
            s_atoms = [b_atom] + atoms[2:]
            s_sizes = [batch_size] + sizes[2:]
            sd = (d_idx - 1,) if d_idx is not None else ()
            hh = (len(s_atoms) - 1,)
            s_dims = (sd, (0,), hh) if layout == 0 else ((0,), sd, hh)
            outs.append(Sym(sv, tuple(s_atoms), s_dims, tuple(s_sizes)))
        return outs

    def _per_batch_rows(self, a: np.ndarray, batch_size: int, batch_fixed: int | None, label: str,
                        what: str, axis: int) -> np.ndarray:
        """Constant per-batch-row data -> rows on axis 0: one row when it is the same for every
        row of the batch (exporters' zero initial states), else one per row of a static batch
        (or row :attr:`batch_row` alone, when the caller picked one)."""
        n = a.shape[axis]
        rows = np.moveaxis(a, axis, 0)
        if n != 1 and n != batch_size:
            raise UnsupportedModelError(
                f"{what} has {n} batch rows but the input batch is "
                f"{batch_fixed if batch_fixed is not None else 'dynamic'}",
                node=label,
                field=what,
            )
        if (rows == rows[0:1]).all():
            return np.ascontiguousarray(rows[0:1])
        if batch_fixed is None:
            # sized from the dynamic batch (e.g. ConstantOfShape of Shape(X)) yet not uniform
            raise UnsupportedModelError(
                f"{what} depends on the batch row in a dynamic-batch model", node=label,
                field=what,
            )
        if self.batch_row is not None:
            if not 0 <= self.batch_row < n:
                raise UnsupportedModelError(
                    f"batch row {self.batch_row} does not exist: {what} has {n} rows (0..{n - 1})",
                    node=label, field=what)
            return np.ascontiguousarray(rows[self.batch_row : self.batch_row + 1])
        return np.ascontiguousarray(rows)


class BakedTimeError(Exception):
    """The graph fixes the time axis to a literal (PyTorch dynamo export, batch_first=False)."""

    def __init__(self, node: str, candidates: list[int]):
        super().__init__(node)
        self.node = node
        self.candidates = candidates


class SymStack:
    """Model tensors concatenated on one axis (PyTorch's h_n of stacked layers).

    Only a later Gather/Slice that picks from exactly one of the parts is supported.
    """

    def __init__(self, parts: tuple[Sym, ...], axis: int, label: str):
        self.parts = parts
        self.axis = axis
        self.label = label
        shapes = [list(p.shape) for p in parts]
        for sh in shapes[1:]:
            if sh[:axis] + sh[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
                raise UnsupportedModelError("Concat of tensors with different shapes", node=label)
        shape = list(shapes[0])
        shape[axis] = sum(sh[axis] for sh in shapes)
        self.shape = tuple(shape)
        self.rank = len(shape)

    def refusal(self) -> str:
        return (
            "Concat of model tensors is only supported when a later Gather/Slice picks from "
            "one of them (e.g. PyTorch's h_n[-1])"
        )

    def pick(self, axis: int, picks: Picks, label: str) -> tuple[Sym, Picks]:
        """The part holding every index of ``picks`` on ``axis``, and the indices within it."""
        if axis != self.axis:
            raise UnsupportedModelError(self.refusal(), node=self.label)
        picks = _from_end(picks, self.shape[self.axis])
        if len(picks):
            lo, hi = (min(picks[0], picks[-1]), max(picks[0], picks[-1])) if isinstance(
                picks, range) else (int(picks.min()), int(picks.max()))
            start = 0
            for p in self.parts:
                n = p.shape[self.axis]
                if start <= lo and hi < start + n:
                    return p, _shifted(picks, -start)
                start += n
        raise UnsupportedModelError(self.refusal(), node=self.label)


def _from_end(picks: Picks, size: int) -> Picks:
    """Negative indices counted from the end (a Slice's range is already normalized)."""
    if isinstance(picks, range):
        return picks
    p = np.asarray(picks, dtype=np.int64).reshape(-1)
    return np.where(p < 0, p + size, p)


def _picks_all(picks: Picks, size: int) -> bool:
    """``picks`` is 0, 1, ..., size - 1 (compared without building that sequence)."""
    if isinstance(picks, range):
        return picks == range(size)
    return picks.size == size and np.array_equal(picks, np.arange(size))


def _shifted(picks: Picks, by: int) -> Picks:
    if isinstance(picks, range):
        return range(picks.start + by, picks.stop + by, picks.step)
    return picks + by


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


class ExtraInput:
    """A graph input besides the model input and sequence_lens: refused where it is used."""

    def __init__(self, name: str):
        self.name = name


class _SeqLensInput:
    """Marker for a graph input that feeds LSTM sequence_lens at run time."""

    def __init__(self, name: str):
        self.name = name
