"""The lowering stage: the per-layer decisions about how the integer model runs in C, made once
and read by the C emitter (:mod:`tinylstm.codegen`), its tests and benchmarks.

- :mod:`.layout`: weight storage (int8 or ``TL_W16`` words) and the quad layout, table storage
  (uint16 or int32), the per-unit constants (``tl_lstm_unit_t``) and the step's scratch size;
- :mod:`.steps`: the step function of each layer (``tl_lstm_step_fast`` or ``tl_lstm_step_s8``)
  and why, and the standard table's shifts;
- :mod:`.lstm`: one layer lowered (:func:`lower_lstm`).

It reads the integer model only; the numbers are the model's, the choices the runtime's
(``codegen/runtime/tl_lstm.h``). What the generated C schedules and where its memory lies is the
C plan (:mod:`tinylstm.codegen.plan`).
"""

from __future__ import annotations

from .layout import UNIT_FIELDS, quad_layout, scratch_bytes, scratch_halves, table_ctype, unit_constants, weight_ctype
from .lstm import LoweredDirection, LoweredLstm, lower_lstm
from .steps import STEP_FAST, STEP_GENERAL, slow_reason, step_choice, table_shifts

__all__ = ["STEP_FAST", "STEP_GENERAL", "UNIT_FIELDS", "LoweredDirection", "LoweredLstm", "lower_lstm",
           "quad_layout", "scratch_bytes", "scratch_halves", "slow_reason", "step_choice", "table_ctype",
           "table_shifts", "unit_constants", "weight_ctype"]
