"""The one exception family of tinylstm.

Every error a user can provoke with a model, data or options is a :class:`TinyLstmError`.
The CLI prints ``error: <message>`` on one line and exits non-zero for these; anything
else is a bug in tinylstm.
"""

from __future__ import annotations


class TinyLstmError(Exception):
    """Base class of every error tinylstm raises on purpose."""


class ModelFormatError(TinyLstmError):
    """The file is not a readable, well-formed ONNX model (or `.tlq` integer model)."""


class UnsupportedModelError(TinyLstmError):
    """The model is valid ONNX but uses something tinylstm does not implement.

    The message names the node, the op type or attribute, and what is supported.
    """

    def __init__(self, message: str, node: str | None = None, field: str | None = None):
        self.node = node
        self.field = field
        where = [f"node '{node}'"] if node is not None else []
        if field is not None:
            where.append(field)
        prefix = ", ".join(where) + ": " if where else ""
        super().__init__(prefix + message)


class QuantizationError(TinyLstmError):
    """The float model cannot be turned into the integer model safely."""


class DataError(TinyLstmError):
    """Calibration or evaluation data has the wrong shape, dtype or values."""


class OutputPathError(TinyLstmError):
    """An output location cannot be written."""
