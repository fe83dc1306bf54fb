"""The Helium (Armv8.1-M MVE) lowering of an LSTM layer: which code a generation target gets, the
Helium weight layout and per-block constants, and which layers the Helium step
(``tl_lstm_step_mve``, ``codegen/runtime/tl_lstm_mve.c``) computes.

- **Kernels per target.** ``generate_c(..., target=...)`` names a core; :func:`kernels_for` maps it
  to a kernel family: ``"portable"`` (the quad layout of docs/quantization.md §5, which every
  runtime runs) or ``"mve"`` (the Helium layout below, which only a runtime compiled for MVE runs:
  the generated ``model.c`` refuses to compile elsewhere and links against ``tl_lstm_layout_mve``,
  defined by the MVE runtime only).
- **Blocks of four units.** The Helium step computes four hidden units at once, one per 32-bit
  lane. Its matrix-vector kernel (VMLADAVA.S16, eight MACs per instruction) runs over four weight
  rows per pass, the rows of one gate of the four units, with one gate's inputs contiguous:
  ``W`` is stored as ``[block][gate i, f, g, o][chunk of 8 inputs][unit][8]`` (inputs in natural
  order, each matrix zero-padded to a multiple of 8 inputs and H to a multiple of 4 units);
  int8 weights in the same order are widened by the load (VLDRB.S16).
- **Per-block constants.** The step's ``tl_lstm_unit_t`` array holds one entry per block and
  gate (``units[4 b + g]``), its fields indexed by the unit: ``bias[u]``, ``mult[u]`` (mx | mh << 16)
  and ``shift[u]`` of gate ``g`` of unit ``4 b + u`` (zero for padding units, shift 4), so each
  field is one vector load. Same 36 bytes per unit as the portable layout.
- **Scope.** The standard table's layers of the fast step (spec §8.1, gate and cell inputs at
  least one bit finer than the grid) with int8 or int16 weights, without peepholes, clip or a
  coupled input/forget gate, whose hidden requantization needs only the high word
  (``h_shift >= 33``). Other layers of a Helium model keep the portable layout and their step
  (``tl_lstm_step_fast`` or ``tl_lstm_step_s8``; on Cortex-M55 their Armv7E-M kernels).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedModelError
from ..qmodel import QLstm, QLstmDirection
from .layout import unit_constants

STEP_MVE = "tl_lstm_step_mve"
#: kernel families of the generated C
KERNELS = ("portable", "mve")
#: the cores a generation target may name (tinylstm.cbuild.cores.TARGETS) -> their kernel family
TARGET_KERNELS = {
    "cortex-m0plus": "portable",
    "cortex-m3": "portable",
    "cortex-m4": "portable",
    "cortex-m7": "portable",
    "cortex-m33": "portable",
    "cortex-m55": "mve",
}
#: units per block (32-bit lanes of a Helium vector) and inputs per chunk (16-bit lanes)
BLOCK = 4
CHUNK = 8


def kernels_for(target: str | None) -> str:
    """The kernel family of a generation target: ``None`` -> ``"portable"``; a family passes through; a
    core name -> its family (``"cortex-m55"`` -> ``"mve"``). Raises UnsupportedModelError naming the supported
    ones."""
    if target is None:
        return "portable"
    if target in KERNELS:
        return target
    try:
        return TARGET_KERNELS[target]
    except KeyError:
        raise UnsupportedModelError(f"unknown generation target {target!r}; supported: {', '.join(TARGET_KERNELS)} "
                                    f"(or a kernel family: {', '.join(KERNELS)})", field="target") from None


def mve_layout(w: np.ndarray, hidden: int, inputs: int) -> np.ndarray:
    """Gate rows (4H, K) in i, f, g, o order -> the Helium layout (ceil(H/4), 4 gates, ceil(K/8), 4 units,
    8), zero-padded (module docstring)."""
    hp, k8 = -(-hidden // BLOCK) * BLOCK, -(-inputs // CHUNK) * CHUNK
    g = np.zeros((4, hp, k8), dtype=np.int64)
    g[:, :hidden, :inputs] = np.asarray(w, dtype=np.int64).reshape(4, hidden, inputs)
    return g.reshape(4, hp // BLOCK, BLOCK, k8 // CHUNK, CHUNK).transpose(1, 0, 3, 2, 4)


def mve_unit_constants(d: QLstmDirection, hidden: int) -> np.ndarray:
    """The Helium step's ``tl_lstm_unit_t`` entries: (4 ceil(H/4), 4 units, 3 fields bias, mult, shift),
    entry ``4 b + g`` holding gate ``g`` of units ``4 b .. 4 b + 3`` (module docstring)."""
    u = unit_constants(d, hidden)  # (H, 4 gates, 3)
    hp = -(-hidden // BLOCK) * BLOCK
    pad = np.zeros((hp, 4, 3), dtype=np.int64)
    pad[..., 2] = 4  # a valid shift for the padding units, whose results are never stored
    pad[:hidden] = u
    return pad.reshape(hp // BLOCK, BLOCK, 4, 3).transpose(0, 2, 1, 3).reshape(hp, BLOCK, 3)


def mve_scratch_bytes(inputs: int, hidden: int) -> int:
    """TL_LSTM_MVE_SCRATCH_BYTES(I, H): x and h widened to int16, each padded to a multiple of 8."""
    return 16 * (-(-inputs // CHUNK)) + 16 * (-(-hidden // CHUNK))


def mve_slow_reason(layer: QLstm, d: QLstmDirection) -> str | None:
    """Why direction ``d`` cannot take the Helium step, or None when it can."""
    if not d.standard or layer.table is None:
        return "custom activation tables"
    if layer.pre_frac - layer.table_frac < 1 or d.cell_frac - layer.table_frac < 1:
        return "gate or cell inputs not finer than the table grid"
    if d.peep is not None:
        return "peepholes"
    if layer.clip_q is not None:
        return "clip"
    if layer.input_forget:
        return "coupled input/forget gate"
    if d.h_shift < 33:
        return "hidden scale tiny against the gates' (requantization shift below 33)"
    table = np.asarray(layer.table)
    if table.shape[0] < 3 or int(table[-2]) != int(table[-1]):
        return "a standard table whose last two entries differ"  # the vector lookup clamps to segment n - 1
    short_k = d.a_ig == 0 and 0 <= d.a_fc <= 15 and d.s_c == 15 + d.a_fc  # k <= 15: f c shifted
    short_b = d.a_fc == 0 and 1 <= d.a_ig <= 14 and d.s_c == 15  # k > 15: i g shifted
    if not (short_k or short_b):
        return "cell shifts outside the standard table's two forms"
    return None


def mve_step_reason(layer: QLstm) -> str | None:
    """Why ``layer`` cannot take the Helium step (the first direction's reason), or None."""
    for d in layer.directions:
        why = mve_slow_reason(layer, d)
        if why is not None:
            return why
    return None
