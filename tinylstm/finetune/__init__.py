"""Integer-aware fine-tuning (issue #16): train a float LSTM through the integer arithmetic it
will run, so that narrow weights (int8 LSTM matrices) keep its accuracy.

:func:`finetune` (:mod:`.api`) is the entry point, also as ``tinylstm.finetune(...)`` (this
package is callable, like ``tinylstm.quantize``). PyTorch is needed only when it runs
(``pip install 'tinylstm[train]'``), not to import this package. Modules: :mod:`.intops` (the
spec's integer primitives in torch, with straight-through gradients), :mod:`.forward` (the
integer model run in torch) and :mod:`.fused` (its LSTM recurrence as one autograd function),
:mod:`.trainer` (the loop and checkpoint choice), :mod:`.score` (float and simulator scores),
:mod:`.data`, :mod:`.weights`, :mod:`.onnx_write`, :mod:`.report`, :mod:`.agreement`,
:mod:`.progress`; :mod:`.weight_bits` chooses 8 or 16 bits per weight matrix (``--lstm-weight-bits auto``).
"""

from __future__ import annotations

import sys
import types

from .api import INSTALL_HINT, FinetuneResult, finetune, require_torch

__all__ = ["INSTALL_HINT", "FinetuneResult", "finetune", "require_torch"]


class _CallablePackage(types.ModuleType):
    """``tinylstm.finetune(...)`` calls :func:`finetune`; everything else is the package."""

    def __call__(self, *args, **kwargs):
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
