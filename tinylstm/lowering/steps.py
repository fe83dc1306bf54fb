"""Which C step an LSTM layer takes (``codegen/runtime/tl_lstm.h``, docs/quantization.md §9), and why.

``tl_lstm_step_s8`` runs every layer. ``tl_lstm_step_fast`` computes the same integers with the
standard table's sigmoid and tanh inlined in their short forms, which need the gate inputs and
the cell at least one bit finer than the table's grid (``P - frac >= 1``, ``k - frac >= 1``); int8
or int16 weights, peepholes, clip and coupled gates are all on the fast step.
"""

from __future__ import annotations

from ..qmodel import QLstm, QLstmDirection

STEP_FAST = "tl_lstm_step_fast"
STEP_GENERAL = "tl_lstm_step_s8"


def table_shifts(layer: QLstm, d: QLstmDirection) -> tuple[int, int] | None:
    """``(gate_shift, cell_shift) = (P - frac, k - frac)``: the fraction bits of the gate inputs and
    of the cell below the standard table's grid (spec §8.1), or None for a direction with custom
    tables."""
    if not d.standard:
        return None
    return layer.pre_frac - layer.table_frac, d.cell_frac - layer.table_frac


def slow_reason(layer: QLstm, d: QLstmDirection) -> str | None:
    """Why direction ``d`` needs the general step, or None when the fast step computes it."""
    shifts = table_shifts(layer, d)
    if shifts is None:
        return "custom activation tables"
    gate, cell = shifts
    if gate < 1:
        return f"gate inputs Q({layer.pre_frac}) not finer than the table grid (2^-{layer.table_frac})"
    if cell < 1:
        return f"cell Q({d.cell_frac}) not finer than the table grid (2^-{layer.table_frac})"
    return None


def step_choice(layer: QLstm) -> tuple[str, str]:
    """``(step function, why)`` of a layer: every direction runs the same step, the fast one when
    :func:`slow_reason` finds nothing in any direction."""
    reasons = [r for r in (slow_reason(layer, d) for d in layer.directions) if r is not None]
    if reasons:
        return STEP_GENERAL, reasons[0]
    return STEP_FAST, "standard table"
