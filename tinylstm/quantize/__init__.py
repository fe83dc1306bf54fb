"""The quantize stage: every float -> int decision of tinylstm.

:mod:`.calibration` runs the float reference over representative data and records ranges;
:mod:`.quantizer` turns the float IR and those ranges into the integer model
(docs/quantization.md); :mod:`.luts` builds the fixed-point lookup tables.
"""

from __future__ import annotations

from .calibration import OBSERVERS, CalibData, Calibration, TensorRange, calibrate
from .quantizer import cell_frac, int8_params, quantize, quantize_rows

__all__ = ["OBSERVERS", "CalibData", "Calibration", "TensorRange", "calibrate", "cell_frac", "int8_params",
           "quantize", "quantize_rows"]
