"""One integer LSTM layer lowered for the C runtime: everything the emitter prints for it
(weights in their storage and layout, per-unit constants, table shifts, step function, scratch),
decided here once per layer, for the portable kernels or (``kernels="mve"``, :mod:`.mve`) the
Helium ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qmodel import QLstm, QLstmDirection
from .layout import quad_layout, scratch_bytes, unit_constants, weight_ctype
from .mve import STEP_MVE, kernels_for, mve_layout, mve_scratch_bytes, mve_step_reason, mve_unit_constants
from .steps import step_choice, table_shifts


@dataclass(frozen=True, eq=False)
class LoweredDirection:
    """One direction as the runtime's ``tl_lstm_params_t`` holds it (H hidden, I input)."""

    wx_ctype: str  # "int8_t", or "int16_t" (stored as TL_W16 words)
    wh_ctype: str
    wx: np.ndarray = field(repr=False)  # (H, ceil(I/4), 4, 4) int64  W in the quad layout (Helium: see .mve)
    wh: np.ndarray = field(repr=False)  # (H, ceil(H/4), 4, 4) int64  R in the quad layout (Helium: see .mve)
    units: np.ndarray = field(repr=False)  # (H, 4, 3) int64  tl_lstm_unit_t per unit and gate (Helium: see .mve)
    gate_shift: int  # P - table_frac (standard table), 0 with custom tables
    cell_shift: int  # k - table_frac (standard table), 0 with custom tables
    layout: str = "quad"  # "quad" (docs/quantization.md §5) or "mve" (the Helium layout, .mve)


@dataclass(frozen=True, eq=False)
class LoweredLstm:
    """A layer: its directions, the step function every direction runs (and why), its scratch."""

    directions: tuple[LoweredDirection, ...]
    step: str  # "tl_lstm_step_fast" | "tl_lstm_step_s8" | "tl_lstm_step_mve"
    why: str  # the reason for the step, in words (a comment in the generated C)
    scratch_bytes: int  # TL_LSTM_SCRATCH_BYTES(I, H) (Helium: TL_LSTM_MVE_SCRATCH_BYTES(I, H))


def lower_direction(layer: QLstm, d: QLstmDirection) -> LoweredDirection:
    """Direction ``d`` of ``layer`` in the runtime's storage."""
    H, inputs = layer.hidden_size, layer.input_size
    tx, th = weight_ctype(d.w), weight_ctype(d.r)
    wx = quad_layout(d.w, H, inputs, tx == "int16_t")
    wh = quad_layout(d.r, H, H, th == "int16_t")
    gate, cell = table_shifts(layer, d) or (0, 0)
    return LoweredDirection(tx, th, wx, wh, unit_constants(d, H), gate, cell)


def lower_direction_mve(layer: QLstm, d: QLstmDirection) -> LoweredDirection:
    """Direction ``d`` of ``layer`` in the Helium layout (:mod:`.mve`)."""
    H, inputs = layer.hidden_size, layer.input_size
    gate, cell = table_shifts(layer, d) or (0, 0)
    return LoweredDirection(weight_ctype(d.w), weight_ctype(d.r), mve_layout(d.w, H, inputs), mve_layout(d.r, H, H),
                            mve_unit_constants(d, H), gate, cell, "mve")


def lower_lstm(layer: QLstm, kernels: str = "portable") -> LoweredLstm:
    """Every direction of ``layer``, and the step function they share; ``kernels`` ("portable" or
    "mve", :func:`.mve.kernels_for`): with "mve" a layer the Helium step computes takes it."""
    step, why = step_choice(layer)
    if kernels_for(kernels) == "mve":
        reason = mve_step_reason(layer)
        if reason is None:
            dirs = tuple(lower_direction_mve(layer, d) for d in layer.directions)
            return LoweredLstm(dirs, STEP_MVE, "Helium kernels, standard table",
                               mve_scratch_bytes(layer.input_size, layer.hidden_size))
        why = f"{why}; not on the Helium step: {reason}"
    dirs = tuple(lower_direction(layer, d) for d in layer.directions)
    return LoweredLstm(dirs, step, why, scratch_bytes(layer.input_size, layer.hidden_size))
