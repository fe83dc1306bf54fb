"""The overflow bounds of docs/quantization.md §11, computed one way for everyone who needs them:
the quantizer (to choose widths and scales), the ``.tlq`` checker and the fast simulator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def encoded_factors(mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The real factors of (mult, shift) pairs, computed as the quantizer computes them."""
    return mult.astype(np.float64) * np.exp2(-shift.astype(np.float64))


def acc_bound(wq: np.ndarray, zp: int) -> np.ndarray:
    """max |sum_k wq[r, k] (x_k - zp)| over int8 x (§11.1), as the quantizer computes it."""
    return np.abs(wq.astype(np.int64)).sum(axis=1) * max(128 + zp, 127 - zp)


def state_c_bound(mult: Sequence[int], shift: Sequence[int], zero_point: int) -> float:
    """Largest ``|zp + requant(c, mult, shift)|`` of a Y_c output over every int16 cell (§11.9)."""
    f = encoded_factors(np.asarray(mult, np.int64), np.asarray(shift, np.int64))
    return float(f.max()) * 32768.0 + 1 + abs(zero_point) if f.size else 0.0


def log_softmax_bound(l_mult: int, l_shift: int, d_mult: int, d_shift: int) -> float:
    """Largest ``|127 + D − L|`` of LogSoftmax (§10, §11.8): ``|x − xm| ≤ 255``, ``0 ≤ l2 ≤ 2^20``."""
    f = encoded_factors(np.array([l_mult, d_mult], np.int64), np.array([l_shift, d_shift], np.int64))
    return 127 + (2.0**20 * f[0] + 1) + (255.0 * f[1] + 1)
