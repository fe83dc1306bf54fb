"""The simulate stage: the integer model run in numpy, bit-exact with the generated C.

:mod:`.checked` holds the per-step kernels, mirrored by name by the C runtime
(``lstm_step`` <-> ``tl_lstm_step_s8``), computed in int64 with a check at every point where the C
stores a value; :mod:`.fast` is the vectorised path for whole test sets (the same integers, its
exactness conditions checked per layer). The GRU's kernels (``gru_step`` <-> ``tl_gru_step_s8``) are
:mod:`.gru_checked`, its vectorised path :mod:`.gru_fast`. Importing this package makes it the engine behind
:meth:`tinylstm.qmodel.QuantizedModel.run_int`.
"""

from __future__ import annotations

from ..qmodel import register_engine
from .checked import (
    LstmTrace,
    SimulatorOverflow,
    check_int8_input,
    dense,
    lstm_cell,
    lstm_gates,
    lstm_step,
    lut,
    matvec_acc,
    run_canonical_int,
    run_int,
    softmax,
    store,
)
from .gru_checked import GruTrace, gru_step  # importing it registers the GRU runner with .checked

register_engine(run_int)

__all__ = ["GruTrace", "LstmTrace", "SimulatorOverflow", "check_int8_input", "dense", "gru_step", "lstm_cell",
           "lstm_gates", "lstm_step", "lut", "matvec_acc", "run_canonical_int", "run_int", "softmax", "store"]
