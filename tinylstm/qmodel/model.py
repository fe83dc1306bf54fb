"""The integer model as a whole: its nodes and views, run by the simulator, stored as ``.tlq``.

:class:`QuantizedModel` is data. Running it (``run_int``, ``run``) is the simulator's job
(:mod:`tinylstm.simulate`), which registers itself here as the model's engine
(:func:`register_engine`): the model never imports the engine that runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from ..ir import View
from .nodes import QLstm, QNode
from .tlq import load_model, save_model

#: run_int(model, x_int8, sequence_lens=None, trace=False) of the simulator
Engine = Callable[..., Any]
_engine: list[Engine] = []


def register_engine(run_int: Engine) -> None:
    """Called by :mod:`tinylstm.simulate` on import: the function behind :meth:`QuantizedModel.run_int`."""
    _engine[:] = [run_int]


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """An integer LSTM model: run it bit-exactly (``run_int``), save it (``.tlq``)."""

    nodes: tuple[QNode, ...]
    input_name: str
    output_name: str
    input_view: View
    output_view: View
    sequence_lens_input: str | None = None
    source: str = ""
    #: the quantize() options used (JSON scalars)
    options: tuple[tuple[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    #: ``FloatModel.fingerprint()`` of the float model quantized ("" in files of older tinylstm)
    float_fingerprint: str = ""
    #: ``load_onnx(batch_row=)`` of that float model, and the static length its file declares
    batch_row: int | None = None
    export_time: int | None = None
    #: the longest calibration sequence (steps): the default bound of buffered C runs
    longest_calibration: int = 0

    # ---- I/O scales -------------------------------------------------------------------
    @property
    def input_scale(self) -> float:
        return self.nodes[0].scale

    @property
    def input_zero_point(self) -> int:
        return self.nodes[0].zero_point

    @property
    def output_scale(self) -> float:
        return self.nodes[-1].scale

    @property
    def output_zero_point(self) -> int:
        return self.nodes[-1].zero_point

    @property
    def lstm_layers(self) -> list[QLstm]:
        return [n for n in self.nodes if isinstance(n, QLstm)]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input (ONNX layout) -> int8: ``sat8(rint(x / s) + zp)`` in float64."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise DataError("input contains NaN or Inf")
        q = np.rint(x / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        """int8 output -> float32 ``scale * (y - zp)``."""
        y = np.asarray(y, dtype=np.float64)
        return (self.output_scale * (y - self.output_zero_point)).astype(np.float32)

    def run_int(self, x_int8: np.ndarray, sequence_lens: np.ndarray | None = None, trace: bool = False):
        """Bit-exact integer run: int8 input (ONNX layout) -> int8 output (ONNX layout).

        With ``trace=True`` returns ``(y, trace)`` where ``trace[layer_name][d]`` holds the
        per-step integer gate pre-activations, gates, cell and hidden state (simulate.LstmTrace).
        """
        if not _engine:  # tinylstm/__init__ imports the simulator, which registers itself
            raise RuntimeError("no integer engine registered: import tinylstm.simulate")
        return _engine[0](self, x_int8, sequence_lens=sequence_lens, trace=trace)

    def run(self, x: np.ndarray, sequence_lens: np.ndarray | None = None) -> np.ndarray:
        """Float in, float out: quantize the input, ``run_int``, dequantize the output."""
        return self.dequantize_output(self.run_int(self.quantize_input(x), sequence_lens=sequence_lens))

    # ---- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a ``.tlq`` file (npz + JSON header, no pickle; docs/quantization.md §14)."""
        save_model(self, path)

    @staticmethod
    def load(path: str | os.PathLike) -> QuantizedModel:
        """Read a ``.tlq`` file written by :meth:`save` (checked: :func:`~.check.check_model`)."""
        from .check import check_model

        model = load_model(path, QuantizedModel)
        where = os.fspath(path)
        try:
            check_model(model)
        except Exception as e:
            raise type(e)(f"'{where}': {e}") from None
        return model
