"""Walk the ONNX graph once, folding constants and turning data-carrying tensors into IR.

Every tensor becomes a numpy constant or a :class:`Sym` (a view of an IR value). Ops on
constants are folded (:mod:`.fold`); ops on Syms are dispatched through the table :data:`OPS`
to the supported model ops (:mod:`.op_lstm`, :mod:`.op_gru`; dense heads and activations, :mod:`.op_heads`) or
glue that only moves data (:mod:`.op_views`, :mod:`.op_select`), which becomes a change of view
or a small data-movement node.
"""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedModelError
from ..ir import VEC, Atom, FeatureGatherNode, InputNode, Node
from . import op_gru, op_heads, op_lstm, op_select, op_views
from .attrs import node_label
from .fold import fold
from .optable import Op
from .symbolic import BATCH_SENTINEL, TIME_SENTINEL, Sym, feature_index_grid
from .values import ExtraInput, SeqLensInput, SymStack

#: Ops that only move or reshape data, accepted on model tensors (as error messages list them).
GLUE_OPS = (
    "Identity", "Cast", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Gather",
    "Slice", "Shape", "Expand", "Dropout",
)
MODEL_OPS = ("LSTM", "GRU", "Gemm", "MatMul", "Add", "Relu", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
             "LeakyRelu", "HardSigmoid", "Elu", "Softsign", "Softplus")
#: op type -> its handler on model data and the attributes it understands
OPS: dict[str, Op] = {**op_views.OPS, **op_select.OPS, **op_heads.OPS, **op_lstm.OPS, **op_gru.OPS}
#: the recurrent ops: they read sequence_lens, and run even on a constant input (to refuse it)
RECURRENT_INPUTS = {"LSTM": op_lstm.LSTM_INPUTS, "GRU": op_gru.GRU_INPUTS}


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
            self.env[seq_lens_input] = SeqLensInput(seq_lens_input)

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
                names = RECURRENT_INPUTS.get(node.op_type, ())
                slot = names[k] if k < len(names) else "input"
                raise UnsupportedModelError(
                    f"graph input '{n}' is used as {slot}; the only graph inputs supported are the "
                    "model input and LSTM / GRU sequence_lens (others must be initializers or constants)",
                    node=label,
                    field=slot,
                )
        if any(isinstance(v, SeqLensInput) for v in ins) and node.op_type not in RECURRENT_INPUTS:
            raise UnsupportedModelError(
                f"graph input '{self.seq_lens_input}' may only feed LSTM / GRU sequence_lens",
                node=label,
            )
        for v in ins:
            if isinstance(v, SymStack) and node.op_type not in ("Gather", "Slice", "Identity"):
                raise UnsupportedModelError(v.refusal(), node=v.label)
        syms = [v for v in ins if isinstance(v, (Sym, SymStack))]
        if not syms and node.op_type not in RECURRENT_INPUTS:
            outs = fold(node, ins, self.opset)
            for name, val in zip(node.output, outs, strict=False):
                if name:
                    self.env[name] = val
            return
        op = node.op_type
        entry = OPS.get(op)
        if entry is None:
            raise UnsupportedModelError(
                f"op {op} on model data is not supported; supported model ops: "
                f"{', '.join(MODEL_OPS)}; glue: {', '.join(GLUE_OPS)} and constant-only "
                "shape arithmetic",
                node=label,
                field="op_type",
            )
        if entry.attrs is not None:  # never silently ignore an attribute
            for a in node.attribute:
                if a.name not in entry.attrs:
                    raise UnsupportedModelError(
                        f"attribute '{a.name}' of {op} is not supported",
                        node=label,
                        field=a.name,
                    )
        outs = entry.run(self, node, label, ins)
        for name, val in zip(node.output, outs, strict=False):
            if name and val is not None:
                self.env[name] = val
                if isinstance(val, Sym):
                    self.sym_uses[val.value] = self.sym_uses.get(val.value, 0) + 1

    def add(self, n: Node) -> int:
        self.nodes.append(n)
        return len(self.nodes) - 1

    # ---------------------------------------------------------------------------------
    # building IR for the op handlers
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
