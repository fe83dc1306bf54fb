"""One integer LSTM layer lowered for the C runtime: everything the emitter prints for it
(weights in their storage and layout, per-unit constants, fast flags, step function, scratch),
decided here once per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qmodel import QLstm, QLstmDirection
from .layout import quad_layout, scratch_bytes, unit_constants, weight_ctype
from .steps import direction_flags, step_function


@dataclass(frozen=True, eq=False)
class LoweredDirection:
    """One direction as the runtime's ``tl_lstm_params_t`` holds it (H hidden, I input)."""

    wx_ctype: str  # "int8_t", or "int16_t" (stored as TL_W16 words)
    wh_ctype: str
    wx: np.ndarray = field(repr=False)  # (H, ceil(I/4), 4, 4) int64  W in the quad layout
    wh: np.ndarray = field(repr=False)  # (H, ceil(H/4), 4, 4) int64  R in the quad layout
    units: np.ndarray = field(repr=False)  # (H, 4, 7) int64  tl_lstm_unit_t per unit and gate
    fast: int  # TL_LSTM_FAST_* flags


@dataclass(frozen=True, eq=False)
class LoweredLstm:
    """A layer: its directions, the step function every direction runs, its scratch bytes."""

    directions: tuple[LoweredDirection, ...]
    step: str  # "tl_lstm_step_fast" | "tl_lstm_step_s8"
    scratch_bytes: int  # TL_LSTM_SCRATCH_BYTES(I, H)


def lower_direction(layer: QLstm, d: QLstmDirection) -> LoweredDirection:
    """Direction ``d`` of ``layer`` in the runtime's storage."""
    H, inputs = layer.hidden_size, layer.input_size
    tx, th = weight_ctype(d.w), weight_ctype(d.r)
    wx = quad_layout(d.w, H, inputs, tx == "int16_t")
    wh = quad_layout(d.r, H, H, th == "int16_t")
    return LoweredDirection(tx, th, wx, wh, unit_constants(d, H), direction_flags(d))


def lower_lstm(layer: QLstm) -> LoweredLstm:
    """Every direction of ``layer``, and the step function they share."""
    dirs = tuple(lower_direction(layer, d) for d in layer.directions)
    return LoweredLstm(dirs, step_function(layer, tuple(d.fast for d in dirs)),
                       scratch_bytes(layer.input_size, layer.hidden_size))
