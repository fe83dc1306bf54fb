"""The float model: the IR's nodes and views, ready to run (its reference run), inspect or quantize."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .macs import macs_per_step
from .nodes import RECURRENT, GruNode, LstmNode, Node, SelectStepNode, batch_dependence
from .reference import run_float
from .view import SEQ, View


@dataclass(frozen=True, eq=False)
class FloatModel:
    """A float LSTM / GRU model, ready to run (``run``), inspect or quantize."""

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
    def gru_layers(self) -> list[GruNode]:
        return [n for n in self.nodes if isinstance(n, GruNode)]

    @property
    def recurrent_layers(self) -> list[LstmNode | GruNode]:
        """The LSTM and GRU layers, in order."""
        return [n for n in self.nodes if isinstance(n, RECURRENT)]

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
        """True when every LSTM / GRU runs forward only: the model can stream step by step."""
        return all(n.direction == "forward" for n in self.recurrent_layers) and not any(
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
        from ..digest import tree_sha256

        return tree_sha256((self.nodes, self.input_view, self.output_view),
                           lambda obj, name: name == "name" and hasattr(obj, "kind"))

    @property
    def parameters(self) -> int:
        return sum(getattr(n, "parameters", 0) for n in self.nodes)

    @property
    def macs_per_step(self) -> int:
        """Weight multiply-accumulates of one time step of batch 1 (:data:`~.macs.MACS_DEFINITION`)."""
        return macs_per_step(self)

    def run(self, x: np.ndarray, sequence_lens: np.ndarray | None = None) -> np.ndarray:
        """Float reference run: ONNX-shaped input -> ONNX-shaped first output (float32)."""
        return run_float(self, x, sequence_lens=sequence_lens)
