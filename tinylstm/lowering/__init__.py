"""The lowering stage: the per-layer decisions about how the integer model runs in C, made once
and read by the C emitter (:mod:`tinylstm.codegen`), its tests and benchmarks.

- :mod:`.layout`: weight storage (int8 or ``TL_W16`` words) and the quad layout, table storage
  (uint16 or int32), the per-unit constants (``tl_lstm_unit_t``) and the step's scratch size;
- :mod:`.steps`: the step function of each layer (``tl_lstm_step_fast`` or ``tl_lstm_step_s8``)
  and why, and the standard table's shifts;
- :mod:`.lstm`: one layer lowered (:func:`lower_lstm`);
- :mod:`.mve`: the Helium (Cortex-M55 MVE) kernels: which targets get them (:func:`kernels_for`), their
  weight layout and per-block constants, and which layers ``tl_lstm_step_mve`` computes;
- :mod:`.gru`: one GRU layer lowered (:func:`lower_gru`): its block layout, ``tl_gru_unit_t``
  constants, scratch and step (a fast step ``tl_gru_step_fast[_q15][_lbr0]`` or ``tl_gru_step_s8``) and why.

It reads the integer model only; the numbers are the model's, the choices the runtime's
(``codegen/runtime/tl_lstm.h``). What the generated C schedules and where its memory lies is the
C plan (:mod:`tinylstm.codegen.plan`).
"""

from __future__ import annotations

from .gru import (
    GRU_FAST_STEPS,
    GRU_STEP_FAST,
    GRU_STEP_GENERAL,
    GRU_UNIT_FIELDS,
    LoweredGru,
    LoweredGruDirection,
    block_layout,
    gru_slow_reason,
    gru_step_choice,
    gru_unit_constants,
    lower_gru,
)
from .layout import (
    UNIT_FIELDS,
    gru_scratch_bytes,
    layer_scratch_bytes,
    quad_layout,
    scratch_bytes,
    scratch_halves,
    table_ctype,
    unit_constants,
    weight_ctype,
)
from .lstm import LoweredDirection, LoweredLstm, lower_lstm
from .mve import STEP_MVE, kernels_for, mve_layout, mve_step_reason
from .steps import STEP_FAST, STEP_GENERAL, slow_reason, step_choice, table_shifts

__all__ = ["GRU_FAST_STEPS", "GRU_STEP_FAST", "GRU_STEP_GENERAL", "GRU_UNIT_FIELDS", "STEP_FAST", "STEP_GENERAL",
           "UNIT_FIELDS", "LoweredDirection", "LoweredGru", "LoweredGruDirection", "LoweredLstm", "block_layout",
           "gru_scratch_bytes", "gru_slow_reason", "gru_step_choice", "gru_unit_constants", "layer_scratch_bytes",
           "lower_gru", "lower_lstm", "quad_layout", "scratch_bytes", "scratch_halves", "slow_reason", "step_choice",
           "table_ctype", "table_shifts", "unit_constants", "weight_ctype",
           "STEP_MVE", "kernels_for", "mve_layout", "mve_step_reason"]
