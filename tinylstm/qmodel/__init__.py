"""The integer model: its nodes (:mod:`.nodes`), the whole model (:mod:`.model`), the ``.tlq``
file (:mod:`.tlq`), the checker of loaded files (:mod:`.check`) and the §11 overflow bounds
(:mod:`.bounds`). Running it is :mod:`tinylstm.simulate`'s job; emitting C, :mod:`tinylstm.codegen`'s."""

from __future__ import annotations

from .bounds import acc_bound, encoded_factors, log_softmax_bound, state_c_bound
from .check import check_model
from .model import QuantizedModel, register_engine
from .nodes import (
    QDense,
    QFeatureGather,
    QGru,
    QGruDirection,
    QInput,
    QLstm,
    QLstmDirection,
    QLstmState,
    QNode,
    QSelectStep,
    QSoftmax,
    QTable,
)
from .tlq import FORMAT_NAME, FORMAT_VERSION

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "QDense", "QFeatureGather", "QGru", "QGruDirection", "QInput", "QLstm",
    "QLstmDirection", "QLstmState", "QNode", "QSelectStep", "QSoftmax", "QTable", "QuantizedModel", "acc_bound",
    "check_model", "encoded_factors", "log_softmax_bound", "register_engine", "state_c_bound",
]
