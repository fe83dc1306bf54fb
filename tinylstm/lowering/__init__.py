"""The lowering stage: the per-layer decisions about how the integer model runs in C, made once
and read by the C emitter (:mod:`tinylstm.codegen`), its tests and benchmarks.

- :mod:`.layout`: weight storage (int8 or ``TL_W16`` words) and the quad layout, table storage
  (uint16 or int32), the per-unit constants (``tl_lstm_unit_t``) and the step's scratch size;
- :mod:`.steps`: the ``TL_LSTM_FAST_*`` flags of each direction and the step function of each
  layer (``tl_lstm_step_fast`` or ``tl_lstm_step_s8``);
- :mod:`.lstm`: one layer lowered (:func:`lower_lstm`).

It reads the integer model only; the numbers are the model's, the choices the runtime's
(``codegen/runtime/tl_lstm.h``). What the generated C schedules and where its memory lies is the
C plan (:mod:`tinylstm.codegen.plan`).
"""

from __future__ import annotations

from .layout import quad_layout, scratch_bytes, scratch_halves, table_ctype, weight_ctype
from .lstm import LoweredDirection, LoweredLstm, lower_lstm
from .steps import fast_cell_ok, fast_lut_ok, fast_note, fast_requant_ok, step_function

__all__ = ["LoweredDirection", "LoweredLstm", "fast_cell_ok", "fast_lut_ok", "fast_note", "fast_requant_ok",
           "lower_lstm", "quad_layout", "scratch_bytes", "scratch_halves", "step_function", "table_ctype",
           "weight_ctype"]
