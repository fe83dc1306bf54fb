"""The small float -> int choices every layer makes: int8 scales and zero points (§4), symmetric
per-row weights (§5) and requantization multipliers (§2.1)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import QuantizationError
from ..fixedpoint import INT32_MAX, quantize_multiplier


def int8_params(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric per-tensor int8 ``(scale, zero_point)`` for a range (widened to hold 0), §4."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QuantizationError(f"tensor range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-8:
        return 1.0 / 128.0, 0
    s = (hi - lo) / 255.0
    zp = int(np.clip(np.rint(-128.0 - lo / s), -128, 127))
    return s, zp


def int8_params_min_scale(lo: float, hi: float, s_min: float) -> tuple[float, int]:
    """``int8_params`` with the scale raised to at least ``s_min`` (zero point from the same ``lo``):
    for outputs whose requantization would overflow int32 at the calibrated scale (§11.8, §11.9)."""
    s, zp = int8_params(lo, hi)
    if s >= s_min:
        return s, zp
    return s_min, int(np.clip(np.rint(-128.0 - min(float(lo), 0.0) / s_min), -128, 127))


#: Output ranges of the bounded elementwise activations (the margin never widens past them).
_ACT_BOUNDS = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Softsign": (-1.0, 1.0), "HardSigmoid": (0.0, 1.0)}


def head_range(lo: float, hi: float, margin: float, act: str | None = None) -> tuple[float, float]:
    """A calibrated range (LSTM hidden state, head output) widened by ``margin * (hi - lo)`` on each side that is
    not exactly 0 (a sample's extremes underestimate the population's, §4), clamped to the
    activation's own bounds."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    span = hi - lo
    lo2 = lo - margin * span if lo < 0 else lo
    hi2 = hi + margin * span if hi > 0 else hi
    if act in _ACT_BOUNDS:
        b0, b1 = _ACT_BOUNDS[act]
        lo2, hi2 = max(lo2, min(b0, lo)), min(hi2, max(b1, hi))
    return lo2, hi2


def quantize_rows(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row weights in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``:
    ``(wq (R, K) int8 (bits <= 8) or int16, scale (R,))``."""
    w = np.asarray(w, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    amax = np.max(np.abs(w), axis=1) if w.shape[1] else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / qmax, 1.0)
    wq = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8 if bits <= 8 else np.int16)
    return wq, scale


def multiplier(factor: float, where: str) -> tuple[int, int]:
    """``quantize_multiplier`` (spec §2: ``mult`` in [2^30, 2^31), relative error <= 2^-31), with a
    failure turned into a QuantizationError naming ``where``."""
    try:
        return quantize_multiplier(factor)
    except ValueError as e:
        raise QuantizationError(f"{where}: {e}") from None


def multipliers(factors: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`multiplier` of every factor: ``(mult, shift)``, both (N,) int32."""
    pairs = [multiplier(float(f), where) for f in factors]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def as_int32(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` as int32, refused (``QuantizationError``) when a value does not fit."""
    a = np.asarray(a)
    if a.size and (np.abs(a).max() > INT32_MAX):
        raise QuantizationError(f"{what} does not fit int32")
    return a.astype(np.int32)
