"""tinylstm: trained LSTMs from ONNX to bit-exact integer C for microcontrollers.

Pipeline (one way): ONNX -> float IR (:func:`load_onnx`) -> calibration ranges ->
integer model (:func:`quantize`) -> {simulator, C emitter} -> validation report.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import (
    DataError,
    ModelFormatError,
    OutputPathError,
    QuantizationError,
    TinyLstmError,
    UnsupportedModelError,
)
from .ir import FloatModel

if TYPE_CHECKING:
    import onnx

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "FloatModel",
    "ModelFormatError",
    "OutputPathError",
    "QuantizationError",
    "TinyLstmError",
    "UnsupportedModelError",
    "load_onnx",
    "__version__",
]


def load_onnx(path: str | os.PathLike | onnx.ModelProto | bytes, *, check_weights: bool = True) -> FloatModel:
    """Import an ONNX file holding LSTM layers into the float IR.

    Raises :class:`ModelFormatError` for unreadable files and
    :class:`UnsupportedModelError` naming the node and field for anything not supported.
    """
    from .onnx_import import load_onnx as _load

    return _load(path, check_weights=check_weights)
