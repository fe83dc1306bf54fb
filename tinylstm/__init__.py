"""tinylstm: trained LSTMs from ONNX to bit-exact integer C for microcontrollers.

Pipeline (one way): ONNX -> float IR (:func:`load_onnx`) -> calibration ranges ->
integer model (:func:`quantize`) -> {simulator, C emitter} -> validation report.

``tinylstm.quantize`` and ``tinylstm.calibrate`` are both a submodule and that submodule's main
function. The attribute is the submodule, made callable: ``tinylstm.quantize(fm, calib)`` calls
``tinylstm.quantize.quantize(fm, calib)``, while ``import tinylstm.quantize as qmod``,
``tinylstm.quantize.Calibration`` and dotted patch targets (``"tinylstm.quantize.INT32_MAX"``)
reach the module. Every other submodule (``tinylstm.validate``, ``tinylstm.codegen``...) is
imported on first attribute access.
"""

from __future__ import annotations

import importlib
import inspect
import os
import types
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import onnx


class _CallableModule(types.ModuleType):
    """A submodule that is also its main function: calling ``tinylstm.<name>(...)`` calls
    ``tinylstm.<name>.<name>(...)``; everything else is the module."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _callable_submodule(name: str) -> types.ModuleType:
    mod = importlib.import_module(f"{__name__}.{name}")
    if not isinstance(mod, _CallableModule):
        mod.__class__ = _CallableModule
        mod.__signature__ = inspect.signature(getattr(mod, name))  # type: ignore[attr-defined]
    return mod


if TYPE_CHECKING:
    from .calibrate import calibrate
    from .quantize import quantize
else:
    calibrate = _callable_submodule("calibrate")
    quantize = _callable_submodule("quantize")


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


def load_onnx(path: str | os.PathLike | onnx.ModelProto | bytes, *, check_weights: bool = True,
              batch_row: int | None = None) -> FloatModel:
    """Import an ONNX file holding LSTM layers into the float IR.

    A static batch or sequence length declared by the file is a default, not a constraint,
    wherever the graph allows. ``batch_row``: for a static batch whose rows hold different
    initial states or ``sequence_lens``, keep row ``batch_row``'s.

    Raises :class:`ModelFormatError` for unreadable files and
    :class:`UnsupportedModelError` naming the node and field for anything not supported.
    """
    from .onnx_import import load_onnx as _load

    return _load(path, check_weights=check_weights, batch_row=batch_row)


def generate_c(qmodel: QuantizedModel, out_dir: str | os.PathLike, prefix: str = "model", **kwargs):
    """Write the C99 library of an integer model (see :func:`tinylstm.codegen.emit.generate_c`)."""
    from .codegen import generate_c as _generate_c

    return _generate_c(qmodel, out_dir, prefix, **kwargs)


def __getattr__(name: str) -> types.ModuleType:
    """``tinylstm.<submodule>`` after a plain ``import tinylstm`` (imported on first use)."""
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

