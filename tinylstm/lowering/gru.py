"""One integer GRU layer lowered for the C runtime (``codegen/runtime/tl_gru.h``, docs/quantization.md
§16): its weight layout, per-unit constants, scratch and step function, decided here once per layer.

- **Block layout.** The runtime's matrix-vector products are the LSTM's quad kernels, which compute
  four rows at once over inputs in quads. The LSTM gives them a unit's four gates; a GRU unit has
  three, so the GRU takes *four units* at a time (a block; H padded to a multiple of 4 with zero
  rows) and gives a kernel call the four units' rows of one gate group: ``[block][group z, r, h]
  [quad][unit][4]``. No row is padded when H is a multiple of 4, and without linear_before_reset
  the candidate rows (read in a second pass, after every reset gate) are one call per block too.
- **Per-unit constants** (``tl_gru_unit_t``, 32 bytes): the LSTM's bias ``B`` and packed multipliers
  ``mx | mh << 16`` of the three rows of a unit side by side (one LDRD each on Armv7E-M), the
  candidate's recurrent bias ``Bu`` (linear_before_reset; 0 otherwise) and the three shifts ``s``.
- **Step.** The fast steps inline the standard table's sigmoid and tanh in their short forms (gate
  inputs at least one bit finer than the table grid, ``P - frac >= 1``), the update on 32-bit words
  (``q_f = q_g = 15`` and a state format ``k <= 15``, so only ``z h`` is shifted: ``a_n = 0``) and
  the output's requantization on the high word of its product (``y_shift >= 33``, every output
  scale above 2^-13 of the state's); int8 weights and clip are on them. One per
  linear_before_reset form, and one of each for the common case, no clip, ``a_h = 0`` (a state
  bounded by 1: Q(15)) and ``y_shift - 32 <= 22`` (PyTorch's ``nn.GRU``), whose block loop is
  assembly on Armv7E-M: a model links only the code its layers take. ``tl_gru_step_s8`` runs every
  layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qmodel import QGru, QGruDirection
from .layout import gru_scratch_bytes, unit_constants, weight_ctype

GRU_STEP_GENERAL = "tl_gru_step_s8"
GRU_STEP_FAST = "tl_gru_step_fast"
#: the fast steps: (linear_before_reset, the common case) -> C function (codegen/runtime/tl_gru.h)
GRU_FAST_STEPS = {(True, False): GRU_STEP_FAST, (False, False): "tl_gru_step_fast_lbr0",
                  (True, True): "tl_gru_step_fast_q15", (False, True): "tl_gru_step_fast_q15_lbr0"}
#: hidden units per block of the weight layout (the quad kernels' rows per call)
BLOCK = 4
#: the per-row fields of :func:`gru_unit_constants` (``tl_gru_unit_t``: ``row[g].bias``, ``row[g].mult``,
#: ``shift[g]``; codegen/runtime/tl_gru.h)
GRU_UNIT_FIELDS = ("bias", "mult", "shift")


def block_layout(w: np.ndarray, hidden: int, inputs: int, wide: bool) -> np.ndarray:
    """Gate rows (3H, K) in z, r, h order -> the runtime's block layout (ceil(H/4), 3, ceil(K/4), 4
    units, 4): units and inputs zero-padded to multiples of 4; int16 weights (``wide``) in quad order
    (k0, k2, k1, k3) to pair with the step's widened inputs, int8 weights in natural order."""
    hp, k4 = -(-hidden // BLOCK) * BLOCK, (inputs + 3) // 4 * 4
    g = np.zeros((3, hp, k4), dtype=np.int64)
    g[:, :hidden, :inputs] = np.asarray(w, dtype=np.int64).reshape(3, hidden, inputs)
    q = g.reshape(3, hp // BLOCK, BLOCK, k4 // 4, 4).transpose(1, 0, 3, 2, 4)  # (blocks, gate, quads, unit, 4)
    if wide:
        q = q[..., [0, 2, 1, 3]]
    return q


def gru_unit_constants(d: QGruDirection, hidden: int) -> np.ndarray:
    """``tl_gru_unit_t`` of every hidden unit: (H, 3 rows z, r, h, 3) int64 with the fields of
    :data:`GRU_UNIT_FIELDS` (spec §16.3 with §6), as the LSTM's per-gate constants."""
    return unit_constants(d, hidden, gates=3)


def gru_slow_reason(layer: QGru, d: QGruDirection) -> str | None:
    """Why direction ``d`` needs the general step, or None when the fast step computes it."""
    if not d.standard:
        return "custom activation tables"
    if layer.pre_frac - layer.table_frac < 1:
        return f"gate inputs Q({layer.pre_frac}) not finer than the table grid (2^-{layer.table_frac})"
    if d.a_n != 0 or d.s_u != 15 + d.a_h:
        return f"state Q({d.state_frac}) finer than Q(15)"
    if d.y_shift < 33:
        return "output scale tiny against the state's (requantization shift below 33)"
    return None


def gru_step_choice(layer: QGru) -> tuple[str, str]:
    """``(step function, why)`` of a layer: every direction runs the same step."""
    reasons = [r for r in (gru_slow_reason(layer, d) for d in layer.directions) if r is not None]
    if reasons:
        return GRU_STEP_GENERAL, reasons[0]
    common = layer.clip_q is None and all(d.a_h == 0 and d.y_shift - 32 <= 22 for d in layer.directions)
    lbr = bool(layer.linear_before_reset)
    why = "standard table" + (", no clip, state Q(15)" if common else "")
    return GRU_FAST_STEPS[(lbr, common)], why + ("" if lbr else ", linear_before_reset = 0")


@dataclass(frozen=True, eq=False)
class LoweredGruDirection:
    """One direction as the runtime's ``tl_gru_params_t`` holds it (H hidden, I input)."""

    wx_ctype: str  # "int8_t", or "int16_t" (stored as TL_W16 words)
    wh_ctype: str
    wx: np.ndarray = field(repr=False)  # (ceil(H/4), 3, ceil(I/4), 4, 4) int64  W in the block layout
    wh: np.ndarray = field(repr=False)  # (ceil(H/4), 3, ceil(H/4), 4, 4) int64  R in the block layout
    units: np.ndarray = field(repr=False)  # (H, 3, 3) int64  tl_gru_unit_t per unit and row
    gate_shift: int  # P - table_frac (standard table), 0 with custom tables


@dataclass(frozen=True, eq=False)
class LoweredGru:
    """A layer: its directions, the step function every direction runs (and why), its scratch."""

    directions: tuple[LoweredGruDirection, ...]
    step: str  # a value of GRU_FAST_STEPS, or "tl_gru_step_s8"
    why: str
    scratch_bytes: int  # TL_GRU_SCRATCH_BYTES(I, H, linear_before_reset)


def lower_gru_direction(layer: QGru, d: QGruDirection) -> LoweredGruDirection:
    """Direction ``d`` of ``layer`` in the runtime's storage."""
    H, inputs = layer.hidden_size, layer.input_size
    tx, th = weight_ctype(d.w), weight_ctype(d.r)
    gate = layer.pre_frac - layer.table_frac if d.standard else 0
    return LoweredGruDirection(tx, th, block_layout(d.w, H, inputs, tx == "int16_t"),
                               block_layout(d.r, H, H, th == "int16_t"), gru_unit_constants(d, H), gate)


def lower_gru(layer: QGru) -> LoweredGru:
    """Every direction of ``layer``, and the step function they share."""
    dirs = tuple(lower_gru_direction(layer, d) for d in layer.directions)
    step, why = gru_step_choice(layer)
    return LoweredGru(dirs, step, why,
                      gru_scratch_bytes(layer.input_size, layer.hidden_size, layer.linear_before_reset))
