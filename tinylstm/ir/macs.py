"""The one definition of "MACs per step" in every tinylstm report (inspect, analyze, benchmarks).

Works on the nodes of the float IR and of the integer model alike (a recurrent node has
``input_size``, ``hidden_size`` and ``directions``, and ``gates`` = 3 for a GRU (4 when absent:
an LSTM); a dense node a 2-D ``weight``).
"""

from __future__ import annotations

from collections.abc import Iterable

#: What "MACs per step" means (one line, printed under the tables). A head on the last step only is
#: counted as if it ran every step; peephole products (3*H per direction) are reported apart as
#: ``peephole_mults_per_step``.
MACS_DEFINITION = ("MACs/step = 4*H*(I+H) per LSTM direction (3*H*(I+H) per GRU direction) + out*in "
                   "per dense layer (weight multiply-accumulates; no bias, peephole or elementwise "
                   "products)")


def lstm_macs(input_size: int, hidden_size: int, num_directions: int = 1) -> int:
    """Weight MACs of one LSTM step: W (4H, I) @ x plus R (4H, H) @ h, per direction."""
    return 4 * hidden_size * (input_size + hidden_size) * num_directions


def gru_macs(input_size: int, hidden_size: int, num_directions: int = 1) -> int:
    """Weight MACs of one GRU step: W (3H, I) @ x plus R (3H, H) @ h, per direction."""
    return 3 * hidden_size * (input_size + hidden_size) * num_directions


def _is_recurrent(node: object) -> bool:
    return all(hasattr(node, a) for a in ("input_size", "hidden_size", "directions"))


def _is_lstm(node: object) -> bool:
    return _is_recurrent(node) and getattr(node, "gates", 4) == 4


def node_macs(node: object) -> int:
    """Weight MACs per step of one float-IR or integer-model node (0 for nodes without weights)."""
    if _is_recurrent(node):
        count = gru_macs if getattr(node, "gates", 4) == 3 else lstm_macs
        return count(node.input_size, node.hidden_size, len(node.directions))  # type: ignore[attr-defined]
    weight = getattr(node, "weight", None)
    return int(weight.size) if weight is not None and weight.ndim == 2 else 0


def peephole_mults(node: object) -> int:
    """Peephole multiplies per step (p (3, H) times the cell, per LSTM direction); 0 without
    peepholes (and for a GRU)."""
    if not _is_lstm(node):
        return 0
    d = node.directions[0]  # type: ignore[attr-defined]
    has = (getattr(d, "p", None) if hasattr(d, "p") else getattr(d, "peep", None)) is not None
    return 3 * node.hidden_size * len(node.directions) if has else 0  # type: ignore[attr-defined]


def macs_per_step(model: object) -> int:
    """Weight MACs of one time step of batch 1 (:data:`MACS_DEFINITION`) of a float or integer
    model (or of its nodes)."""
    nodes: Iterable[object] = getattr(model, "nodes", model)  # type: ignore[assignment]
    return sum(node_macs(n) for n in nodes)
