"""The float IR: nodes and views (:mod:`.nodes`, :mod:`.view`), the whole model (:mod:`.model`)
and its reference run in numpy (:mod:`.reference`), the one MAC count (:mod:`.macs`) and the
``inspect`` summary (:mod:`.summary`)."""

from __future__ import annotations

from .model import FloatModel
from .nodes import (
    LSTM_ACTIVATIONS,
    RECURRENT,
    SIGMOID,
    TANH,
    Activation,
    ActivationNode,
    DenseNode,
    FeatureGatherNode,
    GruDirection,
    GruNode,
    InputNode,
    LstmDirection,
    LstmNode,
    LstmStateNode,
    Node,
    Recurrent,
    SelectStepNode,
    batch_dependence,
)
from .view import SEQ, VEC, Atom, ValueKind, View

__all__ = [
    "LSTM_ACTIVATIONS", "RECURRENT", "SEQ", "SIGMOID", "TANH", "VEC", "Activation", "ActivationNode", "Atom",
    "DenseNode", "FeatureGatherNode", "FloatModel", "GruDirection", "GruNode", "InputNode", "LstmDirection",
    "LstmNode", "LstmStateNode", "Node", "Recurrent", "SelectStepNode", "ValueKind", "View", "batch_dependence",
]
