"""Integer primitives shared by the simulator and (by name) the C runtime.

Every function here mirrors one C function of the runtime (``round_shift`` <-> ``tl_round_shift``
and so on) and is defined in docs/quantization.md §2 and §8. They work elementwise on int64
numpy arrays (or Python ints) so the simulator can run a whole batch at once.

Two roundings, each with one job (spec §2): ``round_shift`` rounds half to even (the cell update,
whose ties must not drift; the custom tables); ``requant``, the gate sums and the standard table
round half up (a constant added before a shift: cheap on every core).
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
    """``(acc * mult + 2^(shift-1)) >> shift``: the product rounded half up, in int64 (``tl_requant``).

    ``mult`` in [2^30, 2^31) or 0, ``shift`` in [0, 62] (0: no rounding); the caller guarantees
    ``|acc| < 2^31``. With ``shift >= 33`` only the product's high word matters (spec §2).
    """
    prod = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    half = (np.int64(1) << s) >> 1  # 2^(s-1), 0 for s == 0
    return (prod + half) >> s


def mul16(acc: ArrayLike, mult: ArrayLike) -> np.ndarray:
    """``(acc * mult) >> 16`` (floor) for int32 ``acc`` and ``mult`` in [0, 2^15) (``tl_mul16``:
    one SMULWB on Armv7E-M). The gate arithmetic's product (spec §6)."""
    return (np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64)) >> 16


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


# ---------------------------------------------------------------------------------------
# The standard gate table (spec §8): sigmoid and tanh from one table of 1 - sigmoid
# ---------------------------------------------------------------------------------------
#: 1.0 in the gates' format Q(15)
ONE_Q15 = 1 << 15


def lut_u16(table: np.ndarray, u: ArrayLike, shift: int) -> np.ndarray:
    """The standard table interpolated at ``u >= 0``, **not rounded** (``tl_lut_u16``): ``u`` has
    ``shift`` fraction bits below the grid, ``j = u >> shift``, ``r = u & (2^shift - 1)``;
    ``V = D[j] 2^shift + (D[j+1] - D[j]) r``, and ``D[n] 2^shift`` beyond the grid (``j >= n``).
    The caller rounds ``V`` once to its own format. ``shift <= 0`` (an input coarser than the grid)
    reads ``D[min(u << -shift, n)]`` as is."""
    d = np.asarray(table, dtype=np.int64)
    n = d.shape[0] - 1
    u = np.asarray(u, dtype=np.int64)
    if shift <= 0:
        return d[np.minimum(u << -shift, n)]
    j = u >> shift
    jc = np.minimum(j, n - 1)
    r = u & ((1 << shift) - 1)
    v = (d[jc] << shift) + (d[jc + 1] - d[jc]) * r
    return np.where(j >= n, d[n] << shift, v)


def sigmoid_q15(z: ArrayLike, table: np.ndarray, shift: int) -> np.ndarray:
    """``sigma(z)`` in Q(15) from the standard table ``D = 2^16 (1 - sigma)`` (``tl_sigmoid_q15``):
    ``d = (V + 2^s) >> (s + 1)`` with ``V = lut_u16(|z|)``, ``s = max(shift, 0)`` (one rounding,
    half up); ``2^15 - d`` for ``z >= 0``, ``d`` below. Exactly 1.0 where ``1 - sigma`` rounds to
    0 (a saturated forget gate keeps the cell)."""
    z = np.asarray(z, dtype=np.int64)
    s = max(shift, 0)
    d = (lut_u16(table, np.abs(z), shift) + (1 << s)) >> (s + 1)
    return np.where(z >= 0, ONE_Q15 - d, d)


def tanh_q15(z: ArrayLike, table: np.ndarray, shift: int) -> np.ndarray:
    """``tanh(z) = 2 sigma(2z) - 1`` in Q(15) from the standard table (``tl_tanh_q15``):
    ``d = (V + 2^(s-1)) >> s`` with ``V = lut_u16(2 min(|z|, n 2^shift))`` (one rounding, half up;
    none for ``s = max(shift, 0) = 0``), ``v = 2^15 - d``; ``v`` for ``z >= 0``, ``-v`` below. The
    table's Q(16) is exactly tanh's Q(15)."""
    z = np.asarray(z, dtype=np.int64)
    n = np.asarray(table).shape[0] - 1
    cap = n << shift if shift > 0 else n >> -shift
    s = max(shift, 0)
    v = lut_u16(table, 2 * np.minimum(np.abs(z), cap), shift)
    t = ONE_Q15 - ((v + ((1 << s) >> 1)) >> s)
    return np.where(z >= 0, t, -t)


def shift_half_up(x: ArrayLike, s: int) -> np.ndarray:
    """``(x + 2^(s-1)) >> s``: ``x / 2^s`` rounded half up (``tl_shift_half_up``); ``s`` >= 0, 0 is
    identity. The GRU's narrowings of its int16 state and its gate products (spec §16)."""
    x = np.asarray(x, dtype=np.int64)
    return (x + ((1 << s) >> 1)) >> s
