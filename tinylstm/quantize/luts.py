"""Lookup-table construction (in float64, once, at quantize time) and measured table error.

The tables built here are stored in the integer model and emitted verbatim into C, so the
simulator and the C runtime index the very same integers (docs/quantization.md §8, §10).
"""

from __future__ import annotations

import math

import numpy as np

from ..fixedpoint import INT32_MAX, Lut, lut_eval
from ..ir import Activation
from ..ir.reference import apply_activation

#: Activations bounded on the whole real line: they get a table in any slot.
BOUNDED = ("Sigmoid", "Tanh", "ScaledTanh", "HardSigmoid", "Softsign")
#: Largest table half-width (real input units) accepted.
MAX_DOMAIN = 64.0
#: Default number of segments per half table.
DEFAULT_SIZE = 512
#: Output bits of gate tables for functions bounded by 1: 1.0 == 2^15.
GATE_Q = 15

_SCAN_STEP = 1.0 / 256
_SCAN_END = 1024.0


class LutError(ValueError):
    """A table cannot be built honestly (the caller turns it into a QuantizationError)."""


def _f(act: Activation, x: np.ndarray) -> np.ndarray:
    return apply_activation(act, np.asarray(x, dtype=np.float64))


def output_frac(max_abs: float) -> int:
    """``q = 15 - max(0, ceil(log2 M))``: the fraction bits keeping ``|2^q f| <= 2^15``."""
    if max_abs <= 1.0:
        return GATE_Q
    return GATE_Q - math.ceil(math.log2(max_abs))


def saturation_point(act: Activation, q: int) -> float:
    """Smallest ``X`` with ``rint(2^q f(x))`` constant on ``x >= X`` and on ``x <= -X``
    (``inf`` when that does not happen within ±1024, e.g. Softsign or unbounded functions)."""
    xs = np.arange(0.0, _SCAN_END + _SCAN_STEP, _SCAN_STEP)
    worst = 0.0
    for sign in (1.0, -1.0):
        far = _f(act, np.array([sign * 1e6]))[0]
        if not np.isfinite(far):
            return math.inf
        v = np.rint(_f(act, sign * xs) * 2.0**q)
        diff = np.nonzero(v != np.rint(far * 2.0**q))[0]
        if diff.size == 0:
            continue
        last = int(diff[-1])
        if last == xs.size - 1:
            return math.inf
        worst = max(worst, float(xs[last + 1]))
    return worst


def is_point_symmetric(act: Activation, x_max: float) -> bool:
    """``f(-x) == 2 f(0) - f(x)`` (to 1e-12) on [0, x_max]: a half table suffices."""
    xs = np.linspace(0.0, x_max, 4097)
    f0 = _f(act, np.zeros(1))[0]
    return bool(np.max(np.abs(_f(act, -xs) - (2 * f0 - _f(act, xs)))) < 1e-12)


def build_lut(
    act: Activation,
    in_frac: int,
    *,
    limit: float = math.inf,
    size: int = DEFAULT_SIZE,
    interp: bool = True,
) -> Lut:
    """A table for ``act`` on inputs in ``Q(in_frac)`` whose magnitude never exceeds ``limit``.

    The half-width is ``X = 2^ceil(log2 R)`` with ``R = min(saturation point, limit)``
    (§8). Raises :class:`LutError` when ``R`` exceeds :data:`MAX_DOMAIN`.
    """
    if size < 2 or size & (size - 1):
        raise LutError(f"table size {size} must be a power of two >= 2")
    # q from the function's range on the region it can be evaluated on
    probe_r = min(limit, _SCAN_END)
    probe = np.linspace(-probe_r, probe_r, 1 << 16)
    m = float(np.max(np.abs(_f(act, probe))))
    if math.isinf(limit):
        m = max(m, float(np.max(np.abs(_f(act, np.array([-1e6, 1e6]))))))
    if not np.isfinite(m):
        raise LutError(f"{act} is not finite on [-{probe_r:g}, {probe_r:g}]")
    q = output_frac(m)
    r = min(saturation_point(act, q), limit)
    if r > MAX_DOMAIN:
        raise LutError(
            f"{act} does not saturate at 15 bits within |x| <= {MAX_DOMAIN:g} and its input is not "
            "bounded (set the LSTM 'clip' attribute, or use Sigmoid/Tanh/HardSigmoid/ScaledTanh)"
        )
    r = max(r, 2.0**-in_frac)
    x_dom = 2.0 ** math.ceil(math.log2(r))
    sym = 1 if is_point_symmetric(act, x_dom) else 0
    half_segments = size
    x_frac = int(round(math.log2(half_segments / x_dom)))
    if x_frac > in_frac:
        x_frac = in_frac
        half_segments = max(1, int(x_dom * 2**in_frac))
    n = half_segments if sym else 2 * half_segments
    j = np.arange(n + 1, dtype=np.float64)
    xj = j * 2.0**-x_frac if sym else (j - n // 2) * 2.0**-x_frac
    fj = _f(act, xj)
    # the grid reaches past ``limit`` up to the power-of-two domain: its entries must fit too
    # (an unbounded function, e.g. Affine, with a limit that is not a power of two)
    q = min(q, output_frac(float(np.max(np.abs(fj)))))
    table = np.rint(fj * 2.0**q).astype(np.int64)
    if np.max(np.abs(table)) > 2**15:
        raise LutError(f"{act} table exceeds 2^15 (internal)")  # pragma: no cover - q prevents it
    shift = in_frac - x_frac
    dmax = int(np.max(np.abs(np.diff(table)))) if n > 0 else 0
    if dmax * ((1 << shift) - 1) > INT32_MAX:
        raise LutError(f"{act}: interpolation product overflows int32 (step {dmax}, shift {shift})")
    return Lut(str(act), table.astype(np.int32), sym, x_frac, shift, q, interp)


def lut_error(lut: Lut, act: Activation, limit: float = math.inf) -> float:
    """Max ``|lut_eval(x) - 2^q f(x)|`` in output LSB over every representable input
    ``x`` in ``Q(in_frac)`` with ``|x| <= min(limit, 2 * domain)``."""
    r = min(limit, 2.0 * lut.domain)
    hi = int(math.floor(r * 2.0**lut.in_frac))
    worst = 0.0
    chunk = 1 << 21
    for start in range(-hi, hi + 1, chunk):
        x = np.arange(start, min(start + chunk, hi + 1), dtype=np.int64)
        got = lut_eval(x, lut).astype(np.float64)
        want = _f(act, x * 2.0**-lut.in_frac) * 2.0**lut.q
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


# ---------------------------------------------------------------------------------------
# the standard table (sigmoid and tanh gates, spec §8)
# ---------------------------------------------------------------------------------------
#: Domain [0, STANDARD_DOMAIN] of the standard table: 1 - sigmoid(16) = 1.1e-7 rounds to 0 in Q(16).
STANDARD_DOMAIN = 16
#: The activations (f, g, h) the standard table serves, without alpha/beta.
STANDARD = ("Sigmoid", "Tanh", "Tanh")


def standard_table(size: int = DEFAULT_SIZE) -> tuple[np.ndarray, int]:
    """``D[j] = rint(2^16 (1 - sigmoid(j 2^-frac)))``, j = 0..size, uint16 (``D[0] = 2^15``,
    ``D[size] = 0``), and ``frac = log2(size / 16)``: the grid step of ``size`` segments over [0, 16]."""
    if size < STANDARD_DOMAIN or size & (size - 1):
        raise LutError(f"table size {size} must be a power of two >= {STANDARD_DOMAIN}")
    frac = int(round(math.log2(size / STANDARD_DOMAIN)))
    x = np.arange(size + 1, dtype=np.float64) * 2.0**-frac
    d = np.rint(2.0**16 * (1.0 - 1.0 / (1.0 + np.exp(-x))))
    return d.astype(np.uint16), frac


def is_standard(activations: tuple[Activation, Activation, Activation]) -> bool:
    """(f, g, h) = (Sigmoid, Tanh, Tanh) without alpha/beta: the standard table serves them."""
    return tuple((a.name, a.alpha, a.beta) for a in activations) == tuple((n, None, None) for n in STANDARD)


# ---------------------------------------------------------------------------------------
# int8 -> int8 tables for heads
# ---------------------------------------------------------------------------------------
def int8_table(act: Activation, s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """``T8[v + 128] = sat8(rint(f(s_in (v - zp_in)) / s_out) + zp_out)``, (256,) int8 (§10)."""
    v = np.arange(-128, 128, dtype=np.float64)
    y = np.rint(_f(act, s_in * (v - zp_in)) / s_out) + zp_out
    return np.clip(y, -128, 127).astype(np.int8)


def exp_table(s_in: float) -> np.ndarray:
    """``E[n] = rint(2^15 exp(-n s_in))``, n = 0..255, (256,) int32 (softmax, §10)."""
    n = np.arange(256, dtype=np.float64)
    return np.rint(2.0**15 * np.exp(-n * s_in)).astype(np.int32)


def log2_table() -> np.ndarray:
    """``LOG2[t] = rint(2^16 log2(1 + t/256))``, t = 0..256, (257,) int32 (log-softmax, §10)."""
    t = np.arange(257, dtype=np.float64)
    return np.rint(2.0**16 * np.log2(1.0 + t / 256.0)).astype(np.int32)
