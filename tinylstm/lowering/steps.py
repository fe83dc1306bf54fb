"""Which C step an LSTM layer takes: the ``TL_LSTM_FAST_*`` flags of each direction (the fast
paths the runtime may use because they are exact for its constants) and the step function of
the layer (``tl_lstm_step_fast`` or ``tl_lstm_step_s8``). The conditions are those of
``codegen/runtime/tl_lstm.h`` and docs/quantization.md §9."""

from __future__ import annotations

import numpy as np

from ..fixedpoint import Lut
from ..qmodel import QLstm, QLstmDirection
from ..qmodel.bounds import lut_interp_bound
from .layout import table_ctype, weight_ctype

#: ``TL_LSTM_FAST_REQUANT``: every gate-row and h multiplier is odd (or 0) with shift >= 33
FAST_REQUANT = 1
#: ``TL_LSTM_FAST_LUT``: lut_f, lut_g, lut_h are symmetric uint16 tables with a short interpolation sum
FAST_LUT = 2
#: ``TL_LSTM_FAST_CELL``: Q(15) gate tables, so the cell update has its short form
FAST_CELL = 4
FAST_ALL = FAST_REQUANT | FAST_LUT | FAST_CELL
STEP_FAST = "tl_lstm_step_fast"
STEP_GENERAL = "tl_lstm_step_s8"


def fast_requant_ok(mult: np.ndarray, shift: np.ndarray) -> bool:
    """True when ``tl_requant_odd`` is exact for every pair: mult odd with shift in [33, 62], or mult 0."""
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    return bool(np.all((m == 0) | (((m & 1) == 1) & (s >= 33) & (s <= 62))))


def fast_lut_ok(lut: Lut) -> bool:
    """True when a table suits the fast paths (TL_LSTM_FAST_LUT): a point-symmetric table stored
    as uint16 whose interpolation sum ``|T[j+1] - T[j]| * (2^shift - 1)`` (§11.4) plus the rounding
    addend ``2^(shift-1)`` stays below 2^31 (the Armv7E-M kernel rounds on that sum in one
    register; ``2^shift`` bounds the addend)."""
    if not lut.sym or table_ctype(lut.table, "int32_t") != "uint16_t":
        return False
    return lut_interp_bound(lut.table, lut.shift) + (1 << lut.shift) < 2**31


def fast_cell_ok(q_f: int, q_g: int, a_fc: int, a_ig: int, s_c: int) -> bool:
    """True when the cell update has the short form of the fast paths (TL_LSTM_FAST_CELL): gate
    tables in Q(15), so c << a_fc and g << a_ig fit int32, 1 <= s_c <= 31, and the rounded
    quotient (at most 2^15 + 2^23 + 1 in magnitude, spec sec. 7) fits int32."""
    return q_f == 15 and q_g == 15 and 0 <= a_fc <= 15 and 0 <= a_ig <= 15 and 1 <= s_c <= 31


def direction_flags(d: QLstmDirection) -> int:
    """The ``TL_LSTM_FAST_*`` flags of one direction."""
    fast = 0
    if all(fast_requant_ok(m, s) for m, s in ((d.mult_x, d.shift_x), (d.mult_h, d.shift_h),
                                               (d.h_mult, d.h_shift))):
        fast |= FAST_REQUANT
    if all(fast_lut_ok(lut) for lut in (d.lut_f, d.lut_g, d.lut_h)):
        fast |= FAST_LUT
    if fast_cell_ok(d.lut_f.q, d.lut_g.q, d.a_fc, d.a_ig, d.s_c):
        fast |= FAST_CELL
    return fast


def fast_note(fast: int) -> str:
    """The flags in words (the comment beside ``.fast`` in the generated C)."""
    parts = [n for bit, n in ((FAST_REQUANT, "odd multipliers, shift >= 33"), (FAST_LUT, "symmetric uint16 tables"),
                              (FAST_CELL, "Q(15) gates, short cell update")) if fast & bit]
    return "; ".join(parts) or "general paths"


def step_function(layer: QLstm, flags: tuple[int, ...]) -> str:
    """``tl_lstm_step_fast`` when every direction of the layer allows it (tl_lstm.h: all three
    fast flags, int16 weights, no peepholes, clip or coupled gates), else the general step."""
    fast = (all(f == FAST_ALL and d.peep is None and weight_ctype(d.w) == weight_ctype(d.r) == "int16_t"
                for d, f in zip(layer.directions, flags, strict=True))
            and not layer.input_forget and layer.clip_q is None)
    return STEP_FAST if fast else STEP_GENERAL
