"""One integer LSTM layer lowered for the C runtime: everything the emitter prints for it
(weights in their storage and layout, per-unit constants, table shifts, step function, scratch),
decided here once per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qmodel import QLstm, QLstmDirection
from .layout import quad_layout, scratch_bytes, unit_constants, weight_ctype
from .steps import step_choice, table_shifts


@dataclass(frozen=True, eq=False)
class LoweredDirection:
    """One direction as the runtime's ``tl_lstm_params_t`` holds it (H hidden, I input)."""

    wx_ctype: str  # "int8_t", or "int16_t" (stored as TL_W16 words)
    wh_ctype: str
    wx: np.ndarray = field(repr=False)  # (H, ceil(I/4), 4, 4) int64  W in the quad layout
    wh: np.ndarray = field(repr=False)  # (H, ceil(H/4), 4, 4) int64  R in the quad layout
    units: np.ndarray = field(repr=False)  # (H, 4, 3) int64  tl_lstm_unit_t per unit and gate
    gate_shift: int  # P - table_frac (standard table), 0 with custom tables
    cell_shift: int  # k - table_frac (standard table), 0 with custom tables


@dataclass(frozen=True, eq=False)
class LoweredLstm:
    """A layer: its directions, the step function every direction runs (and why), its scratch."""

    directions: tuple[LoweredDirection, ...]
    step: str  # "tl_lstm_step_fast" | "tl_lstm_step_s8"
    why: str  # the reason for the step, in words (a comment in the generated C)
    scratch_bytes: int  # TL_LSTM_SCRATCH_BYTES(I, H)


def lower_direction(layer: QLstm, d: QLstmDirection) -> LoweredDirection:
    """Direction ``d`` of ``layer`` in the runtime's storage."""
    H, inputs = layer.hidden_size, layer.input_size
    tx, th = weight_ctype(d.w), weight_ctype(d.r)
    wx = quad_layout(d.w, H, inputs, tx == "int16_t")
    wh = quad_layout(d.r, H, H, th == "int16_t")
    gate, cell = table_shifts(layer, d) or (0, 0)
    return LoweredDirection(tx, th, wx, wh, unit_constants(d, H), gate, cell)


def lower_lstm(layer: QLstm) -> LoweredLstm:
    """Every direction of ``layer``, and the step function they share."""
    dirs = tuple(lower_direction(layer, d) for d in layer.directions)
    step, why = step_choice(layer)
    return LoweredLstm(dirs, step, why, scratch_bytes(layer.input_size, layer.hidden_size))
