"""tinylstm: trained LSTMs from ONNX to bit-exact integer C for microcontrollers.

The package is the pipeline, one folder per stage, dependencies pointing one way
(docs/architecture.md):

    onnx_import -> ir -> data -> quantize -> qmodel <- {simulate, codegen} <- cbuild <- validate
    <- pipeline <- cli

This module is the public facade: :func:`load_onnx`, :func:`quantize`, :func:`calibrate`,
:func:`generate_c`, :class:`FloatModel`, :class:`QuantizedModel` and the
error family. ``tinylstm.quantize`` is also the quantize stage (a package), made callable:
``tinylstm.quantize(fm, calib)`` calls ``tinylstm.quantize.quantize(fm, calib)``, while
``tinylstm.quantize.calibration`` and dotted patch targets reach its modules. Every other stage
(``tinylstm.validate``, ``tinylstm.codegen``, ...) is imported on first attribute access.
Internal modules never import this facade.
"""

from __future__ import annotations

import importlib
import inspect
import os
import types
from typing import TYPE_CHECKING, Any

from . import simulate as _simulate  # noqa: F401  (the engine behind QuantizedModel.run / run_int)
from ._version import __version__
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
from .quantize import calibrate

if TYPE_CHECKING:
    import onnx


class _CallableModule(types.ModuleType):
    """A stage package that is also its main function: calling ``tinylstm.<name>(...)`` calls
    ``tinylstm.<name>.<name>(...)``; everything else is the package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _callable_stage(name: str) -> types.ModuleType:
    mod = importlib.import_module(f"{__name__}.{name}")
    if not isinstance(mod, _CallableModule):
        mod.__class__ = _CallableModule
        mod.__signature__ = inspect.signature(getattr(mod, name))  # type: ignore[attr-defined]
    return mod


if TYPE_CHECKING:
    from .quantize import quantize
else:
    quantize = _callable_stage("quantize")


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


def __getattr__(name: str) -> Any:
    """``tinylstm.<stage>`` after a plain ``import tinylstm`` (imported on first use)."""
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
