"""The overflow bounds of docs/quantization.md §11, written once for everyone who needs them: the
quantizer (to choose widths, ``P`` and scales), the ``.tlq`` checker (to refuse files that break
them) and the fast simulator (to drop its per-value checks where they hold).

Each function returns the bound; the caller compares it with the limit of the C type it stores
into (``INT32_MAX`` or ``2^15``). Floating-point bounds are computed in one fixed order of
operations, so the quantizer and the checker get the same number from the same integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def encoded_factors(mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The real factors ``mult * 2^-shift`` of (mult, shift) pairs (float64, exact)."""
    return mult.astype(np.float64) * np.exp2(-shift.astype(np.float64))


def acc_bound(wq: np.ndarray, zp: int) -> np.ndarray:
    """§11.1 (Dense): ``max |sum_k wq[r, k] (x_k - zp)|`` over int8 x, per row (int64)."""
    return np.abs(wq.astype(np.int64)).sum(axis=1) * max(128 + zp, 127 - zp)


def partial_sum_bound(wq: np.ndarray, eff_bias: np.ndarray) -> np.ndarray:
    """§11.1 (Dense): the largest partial sum of ``eff_bias[r] + sum_k wq[r, k] x_k`` (bias first)
    over int8 x, per row (int64): ``|eff_bias[r]| + 128 sum_k |wq[r, k]|``."""
    return np.abs(eff_bias.astype(np.int64)) + 128 * np.abs(wq.astype(np.int64)).sum(axis=1)


#: largest |x - zp| of an int8 value and its zero point
WIDENED_MAX = 255


def widened_acc_bound(wq: np.ndarray, pre: int) -> np.ndarray:
    """§11.1 (LSTM): ``max |sum_k wq[r, k] v_k|`` over widened inputs ``|v| <= 255 << pre``, per
    row (int64); every partial sum is bounded by it too."""
    return np.abs(wq.astype(np.int64)).sum(axis=1) * (WIDENED_MAX << pre)


def requant_bound(a: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """§11.2: ``|requant(acc, mult, shift)| <= a F + 1`` for ``|acc| <= a`` (float64)."""
    return np.asarray(a).astype(np.float64) * encoded_factors(np.asarray(mult), np.asarray(shift)) + 1


def mul16_bound(a: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """§11.3: ``|mul16(acc, mult)| <= floor(a mult / 2^16) + 1`` for ``|acc| <= a`` (int64)."""
    return (np.asarray(a, np.int64) * np.asarray(mult, np.int64) >> 16) + 1


def peephole_bound(peep: np.ndarray, peep_mult: np.ndarray, peep_shift: np.ndarray) -> np.ndarray:
    """§11.3: the peephole term ``Pk[g] = max_j |pq[g][j]| * 32768 * F_p[g] + 1`` of gates i, f, o
    over every int16 cell (3,) float64."""
    return np.abs(peep.astype(np.float64)).max(axis=1) * 32768.0 * encoded_factors(peep_mult, peep_shift) + 1


def gate_sum_bound(w: np.ndarray, r: np.ndarray, pre_x: int, pre_h: int, mult_x: np.ndarray,
                   mult_h: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """§11.3: ``T[r] = |bias[r]| + mul16 bound (x side) + mul16 bound (h side)``, per gate row (4H,)
    int64: every partial sum of ``t`` over every int8 input and hidden state."""
    return (np.abs(np.asarray(bias, np.int64)) + mul16_bound(widened_acc_bound(w, pre_x), mult_x)
            + mul16_bound(widened_acc_bound(r, pre_h), mult_h))


def pre_activation_bound(t_bound: np.ndarray, shift: np.ndarray, peep: np.ndarray | None,
                         peep_mult: np.ndarray, peep_shift: np.ndarray) -> np.ndarray:
    """§11.3: ``Z[r] = (T[r] >> shift[r]) + 1 + Pk`` per gate row (4H,) float64: every partial sum
    of the pre-activation ``z`` (after the peephole) over every int8 input and hidden state and
    every int16 cell."""
    z = (np.asarray(t_bound, np.int64) >> np.asarray(shift, np.int64)).astype(np.float64) + 1
    if peep is not None:
        pk = peephole_bound(peep, peep_mult, peep_shift)
        H = peep.shape[1]
        z = z + np.concatenate([np.full(H, pk[0]), np.full(H, pk[1]), np.zeros(H), np.full(H, pk[2])])
    return z


def lut_interp_bound(table: np.ndarray, shift: int) -> int:
    """§11.4: the interpolation product ``max_j |T[j+1] - T[j]| * (2^shift - 1)`` of a table."""
    t = np.asarray(table, np.int64)
    step = int(np.abs(np.diff(t)).max()) if t.size > 1 else 0
    return step * ((1 << shift) - 1)


def lut_value_bound(table: np.ndarray, sym: int) -> int:
    """§11.5: the largest ``|value|`` a table gives (a half table also gives ``2 T[0] - T[j]``)."""
    t = np.asarray(table, np.int64)
    vals = np.concatenate([t, 2 * t[0] - t]) if sym else t
    return int(np.abs(vals).max())


def hidden_bound(h_mult: int, h_shift: int, zero_point: int, oa_max: int = 2**30) -> float:
    """§11.6: ``|zp_h + requant(o a, h_mult, h_shift)|`` for ``|o a| <= oa_max`` (``2^15 2^15`` for
    any tables; the fast simulator passes its tables' actual maxima)."""
    return float(oa_max) * (h_mult * 2.0**-h_shift) + 1 + abs(zero_point)


def dense_bound(w: np.ndarray, eff_bias: np.ndarray, zp_x: int, mult: np.ndarray, shift: np.ndarray,
                zero_point: int) -> np.ndarray:
    """§11.7: ``|zp_y + requant(acc)|`` of a Dense row over int8 x (F_out,) float64."""
    return (np.abs(eff_bias.astype(np.float64)) + acc_bound(w, zp_x)) * encoded_factors(mult, shift) \
        + 1 + abs(zero_point)


def log_softmax_bound(l_mult: int, l_shift: int, d_mult: int, d_shift: int) -> float:
    """§11.8: largest ``|127 + D − L|`` of LogSoftmax: ``|x − xm| ≤ 255``, ``0 ≤ l2 ≤ 2^20``."""
    f = encoded_factors(np.array([l_mult, d_mult], np.int64), np.array([l_shift, d_shift], np.int64))
    return 127 + (2.0**20 * f[0] + 1) + (255.0 * f[1] + 1)


def state_c_bound(mult: Sequence[int], shift: Sequence[int], zero_point: int) -> float:
    """§11.9: largest ``|zp + requant(c, mult, shift)|`` of a Y_c output over every int16 cell."""
    f = encoded_factors(np.asarray(mult, np.int64), np.asarray(shift, np.int64))
    return float(f.max()) * 32768.0 + 1 + abs(zero_point) if f.size else 0.0


def cell_sum_bound(f_max: int, i_max: int, g_max: int, a_fc: int, a_ig: int) -> int:
    """§11.5: the largest ``|(f c << a_fc) + (i g << a_ig)|`` of the cell update over every int16
    cell ``|c| <= 2^15``, for gate values ``|f| <= f_max``, ``|i| <= i_max``, ``|g| <= g_max``
    (int; the C holds it in int64)."""
    return ((f_max << 15) << a_fc) + ((i_max * g_max) << a_ig)


def state_acc_bound(wq: np.ndarray, state_shift: int) -> np.ndarray:
    """§16 (GRU): ``max |sum_k wq[r, k] v_k|`` over the narrowed int16 state, per row (int64):
    ``|shift_half_up(h, q)| <= 2^(15 - q)`` for every int16 ``h``, and the reset product
    ``|shift_half_up(r h, 15 + q)| <= 2^(15 - q)`` for every gate value ``|r| <= 2^15`` (``q >= 1``:
    both fit int16)."""
    return np.abs(wq.astype(np.int64)).sum(axis=1) * (1 << (15 - state_shift))


def gru_gate_sum_bound(w: np.ndarray, r: np.ndarray, pre_x: int, state_shift: int, mult_x: np.ndarray,
                       mult_h: np.ndarray, bias: np.ndarray, rbias: np.ndarray) -> np.ndarray:
    """§16 (GRU): every partial sum of ``t`` per gate row (3H,) int64, over every int8 input,
    int16 state and gate value: ``|bias| + mul16 bound (x side) + U`` with the recurrent part
    ``U = |rbias| + mul16 bound (h side)`` (``rbias`` only on the candidate rows; the reset gate's
    product ``shift_half_up(r u, 15)`` stays within ``U`` for ``|r| <= 2^15``)."""
    rb = np.zeros(np.asarray(bias).shape[0], np.int64)
    rbias = np.abs(np.asarray(rbias, np.int64))
    if rbias.size:
        rb[-rbias.size:] = rbias
    return (np.abs(np.asarray(bias, np.int64)) + mul16_bound(widened_acc_bound(w, pre_x), mult_x)
            + mul16_bound(state_acc_bound(r, state_shift), mult_h) + rb)
