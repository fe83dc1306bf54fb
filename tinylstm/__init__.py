"""tinylstm: trained LSTMs from ONNX to bit-exact integer C for microcontrollers.

Pipeline (one way): ONNX -> float IR (:func:`load_onnx`) -> calibration ranges ->
integer model (:func:`quantize`) -> {simulator, C emitter} -> validation report.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .calibrate import calibrate
from .errors import (
    DataError,
    ModelFormatError,
    OutputPathError,
    QuantizationError,
    TinyLstmError,
    UnsupportedModelError,
)
from .ir import FloatModel
from .qmodel import QuantizedModel
from .quantize import quantize

if TYPE_CHECKING:
    import onnx

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "FloatModel",
    "QuantizedModel",
    "ModelFormatError",
    "OutputPathError",
    "QuantizationError",
    "TinyLstmError",
    "UnsupportedModelError",
    "calibrate",
    "generate_c",
    "load_onnx",
    "quantize",
    "__version__",
]


def load_onnx(path: str | os.PathLike | onnx.ModelProto | bytes, *, check_weights: bool = True) -> FloatModel:
    """Import an ONNX file holding LSTM layers into the float IR.

    Raises :class:`ModelFormatError` for unreadable files and
    :class:`UnsupportedModelError` naming the node and field for anything not supported.
    """
    from .onnx_import import load_onnx as _load

    return _load(path, check_weights=check_weights)


def generate_c(qmodel: QuantizedModel, out_dir: str | os.PathLike, prefix: str = "model", **kwargs):
    """Write the C99 library of an integer model (see :func:`tinylstm.codegen.emit.generate_c`)."""
    from .codegen import generate_c as _generate_c

    return _generate_c(qmodel, out_dir, prefix, **kwargs)
