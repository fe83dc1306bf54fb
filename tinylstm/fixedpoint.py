"""Integer primitives shared by the simulator and (by name) the C runtime.

Every function here mirrors one C function of the runtime (``round_shift`` <-> ``tl_round_shift``
and so on) and is defined in docs/quantization.md §2 and §8. They work elementwise on int64
numpy arrays (or Python ints) so the simulator can run a whole batch at once.

One rounding rule everywhere: round half to even.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Largest shift ``round_shift`` accepts (``requant`` products are < 2^62).
MAX_SHIFT = 62

ArrayLike = np.ndarray | int


def round_shift(x: ArrayLike, s: ArrayLike) -> np.ndarray:
    """``x / 2^s`` rounded half to even, on int64 (``tl_round_shift``); ``s`` >= 0, 0 is identity.

    ``(x + 2^(s-1) - 1 + ((x >> s) & 1)) >> s`` for s > 0 (docs/quantization.md §2).
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    if s.ndim == 0:
        si = int(s)
        if si == 0:
            return x
        return (x + ((1 << (si - 1)) - 1) + ((x >> si) & 1)) >> si
    # per-element shifts (usually one per row, broadcast): where s == 0 both corrections vanish
    en = (s > 0).astype(np.int64)
    half_m1 = ((np.int64(1) << s) >> 1) - en
    return (x + half_m1 + ((x >> s) & en)) >> s


def _round_shift_inplace(x: np.ndarray, s: ArrayLike) -> np.ndarray:
    """``round_shift`` overwriting a fresh int64 array ``x`` (fewer temporaries, same result)."""
    s = np.asarray(s, dtype=np.int64)
    if s.ndim == 0:
        si = int(s)
        if si == 0:
            return x
        t = x >> si
        t &= 1
        x += (1 << (si - 1)) - 1
        x += t
        x >>= si
        return x
    en = (s > 0).astype(np.int64)
    t = x >> s
    t &= en
    x += ((np.int64(1) << s) >> 1) - en
    x += t
    x >>= s
    return x


def sat(x: ArrayLike, lo: int, hi: int) -> np.ndarray:
    """``min(max(x, lo), hi)`` (``tl_sat``)."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def sat8(x: ArrayLike) -> np.ndarray:
    """Saturate to int8 (``tl_sat8``); the result stays int64 for further integer work."""
    return sat(x, INT8_MIN, INT8_MAX)


def sat16(x: ArrayLike) -> np.ndarray:
    """Saturate to int16 (``tl_sat16``)."""
    return sat(x, INT16_MIN, INT16_MAX)


def requant(acc: ArrayLike, mult: ArrayLike, shift: ArrayLike) -> np.ndarray:
    """``round_shift(acc * mult, shift)`` with the product in int64 (``tl_requant``).

    ``mult`` in [2^30, 2^31) or 0, ``shift`` in [0, 62]; the caller guarantees ``|acc| < 2^31``.
    """
    prod = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64)
    return _round_shift_inplace(np.asarray(prod, dtype=np.int64), shift)


def div_round(num: ArrayLike, den: ArrayLike) -> np.ndarray:
    """``num / den`` rounded half to even, for num >= 0, den > 0 (``tl_div_round``)."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    q = num // den
    r = num - q * den
    up = (2 * r > den) | ((2 * r == den) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def quantize_multiplier(factor: float) -> tuple[int, int]:
    """Encode a real factor > 0 as ``(mult, shift)`` with ``mult`` in [2^30, 2^31) (§2).

    Returns ``(0, 0)`` for factors below 2^-31 (every requant result would be 0). Raises
    ``ValueError`` for factors >= 2^31 (the caller turns it into a QuantizationError) and for
    non-finite or negative factors.
    """
    import math

    if not math.isfinite(factor) or factor < 0:
        raise ValueError(f"requantization factor {factor!r} must be a finite number >= 0")
    if factor == 0.0:
        return 0, 0
    m, e = math.frexp(factor)
    mult = round(m * 2.0**31)  # Python's round(): half to even
    if mult == 2**31:
        mult = 2**30
        e += 1
    shift = 31 - e
    if shift > MAX_SHIFT:
        return 0, 0
    if shift < 0:
        raise ValueError(f"requantization factor {factor:g} is too large (>= 2^31)")
    return int(mult), int(shift)


def multiplier_value(mult: int, shift: int) -> float:
    """The real factor ``mult * 2^-shift`` an encoded pair stands for."""
    return float(mult) * 2.0 ** (-shift)


@dataclass(frozen=True, eq=False)
class Lut:
    """A lookup table with linear interpolation (docs/quantization.md §8).

    ``sym == 1``: point-symmetric half table on ``x_j = j * 2^-x_frac``, ``j = 0..n``, and
    ``f(-x) = 2*T[0] - f(x)``. ``sym == 0``: full table on ``x_j = (j - n/2) * 2^-x_frac``.
    Inputs are ``Q(x_frac + shift)``; outputs ``Q(q)``.
    """

    function: str  # the activation, e.g. "Sigmoid" or "ScaledTanh(alpha=2, beta=0.5)"
    table: np.ndarray = field(repr=False)  # (n + 1,) int32
    sym: int  # 1: point-symmetric half table, 0: full table
    x_frac: int  # grid step 2^-x_frac
    shift: int  # input fraction bits minus x_frac (>= 0)
    q: int  # output fraction bits
    interp: bool = True  # False only for the ablation (simulator only; C always interpolates)

    @property
    def n(self) -> int:
        return int(self.table.shape[0]) - 1

    @property
    def in_frac(self) -> int:
        return self.x_frac + self.shift

    @property
    def domain(self) -> float:
        """Largest |x| (real) the grid covers; outside, the end value is returned."""
        return self.n * 2.0 ** (-self.x_frac) / (1 if self.sym else 2)


def lut_eval(x: ArrayLike, lut: Lut) -> np.ndarray:
    """Evaluate a table at int32 inputs ``x`` in ``Q(lut.in_frac)`` (``tl_lut_eval``)."""
    x = np.asarray(x, dtype=np.int64)
    t = lut.table.astype(np.int64)
    n, sh = lut.n, lut.shift
    if lut.sym:
        u = np.abs(x)
    else:
        u = x + ((n // 2) << sh)
    if not lut.interp:
        j = np.minimum(round_shift(np.maximum(u, 0), sh), n)
        v = t[j]
    else:
        uc = np.clip(u, 0, n << sh)  # u >= n << sh gives j = n, r = 0: T[n]; u < 0 gives T[0]
        j = uc >> sh
        r = uc & ((1 << sh) - 1)
        jn = np.minimum(j + 1, n)
        v = t[j] + round_shift((t[jn] - t[j]) * r, sh)
    if lut.sym:
        v = np.where(x >= 0, v, 2 * t[0] - v)
    return v
