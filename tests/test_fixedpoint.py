"""Integer primitives (docs/quantization.md §2, §8) against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from tinylstm.fixedpoint import (
    div_round,
    lut_eval,
    mul16,
    multiplier_value,
    quantize_multiplier,
    requant,
    round_shift,
    sat8,
    sat16,
    sigmoid_q15,
    tanh_q15,
)
from tinylstm.ir import SIGMOID, TANH, Activation
from tinylstm.quantize.luts import (
    LutError,
    build_lut,
    exp_table,
    int8_table,
    log2_table,
    lut_error,
    saturation_point,
    standard_table,
)


def _ties_and_random(rng: np.random.Generator, s: int, n: int = 3000) -> np.ndarray:
    base = rng.integers(-(2**40), 2**40, n)
    if s > 0:  # exact ties x = q * 2^s + 2^(s-1), both parities of q, both signs
        q = rng.integers(-1000, 1000, n // 3)
        base[: n // 3] = q * 2**s + 2 ** (s - 1)
    return base


@pytest.mark.parametrize("s", [0, 1, 2, 3, 7, 15, 31, 40])
def test_round_shift_is_round_half_even(s: int) -> None:
    rng = np.random.default_rng(s)
    x = _ties_and_random(rng, s)
    got = round_shift(x, s)
    want = np.array([round(Fraction(int(v), 2**s)) for v in x])  # Python rounds half to even
    assert np.array_equal(got, want)
    # per-element shift arrays give the same result as a scalar shift
    assert np.array_equal(round_shift(x, np.full(x.shape, s)), got)


def test_round_shift_mixed_shifts_and_ties_to_even() -> None:
    x = np.array([1, 3, 5, -1, -3, -5, 2, 6, -2, -6])
    assert round_shift(x, 1).tolist() == [0, 2, 2, 0, -2, -2, 1, 3, -1, -3]
    assert round_shift(np.array([7, 7, 7]), np.array([0, 1, 2])).tolist() == [7, 4, 2]


def test_requant_matches_exact_rational() -> None:
    rng = np.random.default_rng(1)
    acc = rng.integers(-(2**31) + 1, 2**31 - 1, 2000)
    for factor in (0.75, 1e-3, 3.1e-7, 0.99999, 1.5, 1234.5):
        mult, shift = quantize_multiplier(factor)
        assert 2**30 <= mult < 2**31 and 0 <= shift <= 62
        assert abs(multiplier_value(mult, shift) / factor - 1) <= 2.0**-31
        got = requant(acc, mult, shift)
        # round half up: floor(q + 1/2) of the exact quotient (spec §2)
        want = [math.floor(Fraction(int(a) * mult, 2**shift) + Fraction(1, 2)) for a in acc[:300]]
        assert got[:300].tolist() == want


@pytest.mark.parametrize("shift", [1, 2, 31, 33, 40, 62])
def test_requant_rounds_ties_up(shift: int) -> None:
    # acc * mult exactly half-way between two integers: the larger one, for either sign
    mult = 2**30 + 1
    half = Fraction(1, 2)
    for k in (-5, -2, -1, 0, 1, 2, 5):
        for acc in (k, -k):
            q = Fraction(acc * mult, 2**shift)
            assert requant(np.array([acc]), mult, shift).tolist() == [math.floor(q + half)]


def test_mul16_is_floor() -> None:
    rng = np.random.default_rng(3)
    acc = np.concatenate([rng.integers(-(2**31), 2**31, 3000), [-(2**31), 2**31 - 1, -1, 0, 1]])
    for m in (0, 1, 2**14, 2**15 - 1, 12345):
        got = mul16(acc, m)
        want = [math.floor(Fraction(int(a) * m, 2**16)) for a in acc]
        assert got.tolist() == want


# (table size, shift = input fraction bits - table fraction bits, budget of sigmoid, of tanh in LSB of
# Q(15)): measured 1.03 / 1.55 (512 entries), 0.81 / 1.11 (1024); inputs coarser than the grid read
# table entries as they are (<= 0.75 LSB).
@pytest.mark.parametrize(("size", "shift", "budget_s", "budget_t"), [
    (512, 11, 1.05, 1.55), (512, 4, 1.05, 1.55), (512, 1, 1.05, 0.75), (512, 0, 0.75, 0.5),
    (512, -3, 0.75, 0.5), (1024, 10, 0.81, 1.11),
])
def test_standard_table_sigmoid_and_tanh(size: int, shift: int, budget_s: float, budget_t: float) -> None:
    d, frac = standard_table(size)
    assert d[0] == 2**15 and d[-1] == 0 and d.dtype == np.uint16
    p = frac + shift  # fraction bits of the input
    lim = 17 * 2**p if p >= 0 else 17
    z = np.arange(-lim, lim + 1, dtype=np.int64)  # every input out to beyond the grid
    x = z * 2.0**-p
    s, t = sigmoid_q15(z, d, shift), tanh_q15(z, d, shift)
    assert np.abs(s - 2**15 / (1 + np.exp(-x))).max() <= budget_s
    assert np.abs(t - 2**15 * np.tanh(x)).max() <= budget_t
    # monotone, exactly point-symmetric, exact at 0 and saturated to exactly +-1.0 at the far end
    assert (np.diff(s) >= 0).all() and (np.diff(t) >= 0).all()
    assert (s + s[::-1] == 2**15).all() and (t == -t[::-1]).all()
    assert s[lim] == 2**14 and t[lim] == 0
    assert s[-1] == 2**15 and s[0] == 0 and t[-1] == 2**15 and t[0] == -(2**15)


def test_quantize_multiplier_edges() -> None:
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # every result would round to 0
    assert requant(np.array([2**31 - 1]), 0, 0).tolist() == [0]
    assert quantize_multiplier(0.5) == (2**30, 31)
    # m * 2^31 rounding up to 2^31 renormalizes
    mult, shift = quantize_multiplier(1.0 - 2.0**-40)
    assert (mult, shift) == (2**30, 30)
    with pytest.raises(ValueError):
        quantize_multiplier(2.0**31)
    with pytest.raises(ValueError):
        quantize_multiplier(float("nan"))


def test_div_round_half_even() -> None:
    rng = np.random.default_rng(2)
    num = rng.integers(0, 2**23, 3000)
    den = rng.integers(1, 2**20, 3000)
    num[:4], den[:4] = [1, 3, 5, 7], [2, 2, 2, 2]
    got = div_round(num, den)
    assert got[:4].tolist() == [0, 2, 2, 4]
    assert got.tolist() == [round(Fraction(int(a), int(b))) for a, b in zip(num, den, strict=True)]


def test_saturation() -> None:
    assert sat8(np.array([-1000, -128, 0, 127, 1000])).tolist() == [-128, -128, 0, 127, 127]
    assert sat16(np.array([-40000, 40000, 5])).tolist() == [-32768, 32767, 5]


# ---------------------------------------------------------------------------------------
# lookup tables
# ---------------------------------------------------------------------------------------
def test_sigmoid_table_saturates_exactly_and_is_symmetric() -> None:
    lut = build_lut(SIGMOID, 16)
    assert (lut.sym, lut.q, lut.n, lut.domain) == (1, 15, 512, 16.0)
    x = np.arange(-(20 << 16), (20 << 16), 997, dtype=np.int64)
    v = lut_eval(x, lut)
    assert np.array_equal(v + lut_eval(-x, lut), np.full(x.shape, 32768))  # sigma(-x) = 1 - sigma(x)
    # the forget gate reaches exactly 1.0 (constant error carousel), not 32767
    assert lut_eval(np.array([12 << 16, 2**31 - 1]), lut).tolist() == [32768, 32768]
    assert lut_eval(np.array([-(12 << 16)]), lut).tolist() == [0]
    # domain covers where sigmoid is not yet saturated at 15 bits (TFLM clamps at 8)
    assert 11.0 < saturation_point(SIGMOID, 15) < 11.2
    assert lut_eval(np.array([8 << 16]), lut)[0] < 32768


def test_lut_exact_at_grid_points() -> None:
    lut = build_lut(TANH, 12)
    j = np.arange(lut.n + 1, dtype=np.int64)
    assert np.array_equal(lut_eval(j << lut.shift, lut), lut.table.astype(np.int64))
    assert np.array_equal(lut_eval(-(j << lut.shift), lut), -lut.table.astype(np.int64))


@pytest.mark.parametrize(
    ("act", "size", "budget"),
    [(SIGMOID, 512, 1.3), (TANH, 512, 1.6), (SIGMOID, 1024, 1.05), (TANH, 1024, 1.15)],
)
def test_lut_error_budget(act: Activation, size: int, budget: float) -> None:
    """Measured max error in LSB of Q0.15 at P = 12 (docs/quantization.md §13)."""
    lut = build_lut(act, 12, size=size)
    err = lut_error(lut, act)
    assert err <= budget
    assert err >= 0.5  # entries are rounded: the bound is not vacuous


def test_interpolation_beats_nearest() -> None:
    on = build_lut(TANH, 12, size=256)
    off = build_lut(TANH, 12, size=256, interp=False)
    assert lut_error(on, TANH) < lut_error(off, TANH) / 5


def test_full_table_for_asymmetric_function() -> None:
    hs = Activation("HardSigmoid", 0.25, 0.25)  # not point-symmetric about 0; kinks on the grid
    lut = build_lut(hs, 12)
    assert lut.sym == 0
    assert lut_error(lut, hs) <= 0.5
    x = np.array([-(100 << 12), 0, 100 << 12])
    assert lut_eval(x, lut).tolist() == [0, 8192, 32768]
    # a kink between grid points costs about slope * step / 4 (here 0.3 / 128 / 4 = 19 LSB)
    off = Activation("HardSigmoid", 0.3, 0.2)
    assert 10 < lut_error(build_lut(off, 12), off) < 20


def test_bounded_output_scale() -> None:
    st = Activation("ScaledTanh", 2.0, 0.5)
    lut = build_lut(st, 12)
    assert lut.q == 14 and int(lut.table.max()) == 32768
    assert lut_error(lut, st) <= 2.0


@pytest.mark.parametrize(("alpha", "beta", "limit"), [(0.5, 0.25, 3.01), (0.3, 0.0, 2.1), (1.0, 0.0, 0.9)])
def test_unbounded_function_with_a_bound_that_is_not_a_power_of_two(alpha: float, beta: float,
                                                                   limit: float) -> None:
    # the grid reaches the power-of-two domain past the limit: q must hold those entries too
    act = Activation("Affine", alpha, beta)
    lut = build_lut(act, 10, limit=limit, size=64)
    assert np.abs(lut.table).max() <= 2**15
    assert lut_error(lut, act, limit=limit) <= 1.0


def test_unbounded_or_slow_functions_need_a_bound() -> None:
    with pytest.raises(LutError, match="Softsign"):
        build_lut(Activation("Softsign"), 12)
    with pytest.raises(LutError, match="Relu"):
        build_lut(Activation("Relu"), 12)
    relu = build_lut(Activation("Relu"), 12, limit=3.0)  # e.g. an LSTM with clip = 3
    assert relu.q == 13 and relu.sym == 0
    assert lut_error(relu, Activation("Relu"), limit=3.0) <= 0.5
    soft = build_lut(Activation("Softsign"), 12, limit=4.0)
    assert lut_error(soft, Activation("Softsign"), limit=4.0) <= 1.5


def test_table_narrower_than_input_resolution() -> None:
    # cell Q(2): inputs are coarser than a 512-segment grid; the grid follows the input
    lut = build_lut(TANH, 2)
    assert lut.shift == 0 and lut.x_frac == 2
    assert lut_error(lut, TANH) <= 0.5


def test_int8_and_softmax_tables() -> None:
    t = int8_table(TANH, 0.05, 3, 1 / 128, 0)
    assert t.dtype == np.int8 and t.shape == (256,)
    assert t[3 + 128] == 0 and t[127 + 128] == round(math.tanh(0.05 * 124) * 128) - 0 or t[255] == 127
    e = exp_table(0.1)
    assert e[0] == 32768 and e[10] == round(32768 * math.exp(-1.0))
    lg = log2_table()
    assert lg[0] == 0 and lg[256] == 65536 and lg[128] == round(65536 * math.log2(1.5))
