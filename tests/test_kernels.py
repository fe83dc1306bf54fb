"""The C kernels' layout and fast paths (docs/quantization.md §2 odd multipliers, §5 quad layout).

The bit-exactness tests (test_c_bitexact.py, test_c_target.py) prove the compiled kernels equal the
simulator; these check the facts those kernels rely on, in Python, so a quantizer or emitter change
that breaks a precondition fails here by name.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx_builders import LstmSpec, random_input, single_lstm_model
from tinylstm.codegen.emit import emit_model

import tinylstm
from tinylstm.fixedpoint import requant
from tinylstm.lowering import fast_requant_ok, quad_layout, scratch_bytes
from tinylstm.quantize.quantizer import quantize


def _requant_odd(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """tl_requant_odd: round half up on the product's high word."""
    hi = (acc.astype(np.int64) * mult.astype(np.int64)) >> 32
    half_up = (hi + (np.int64(1) << (shift - 33))) >> (shift - 32)
    two_shifts = ((hi >> (shift - 33)) + 1) >> 1  # the form the C uses
    assert np.array_equal(half_up, two_shifts)
    return two_shifts


def test_odd_multiplier_requant_equals_round_half_even() -> None:
    rng = np.random.default_rng(0)
    n = 400_000
    acc = rng.integers(-(2**31), 2**31, n, dtype=np.int64)
    acc[:8] = [-(2**31), 2**31 - 1, 0, 1, -1, 2**30, -(2**30), 12345]
    # accumulators with many trailing zeros: the ones that would tie with an even multiplier
    acc[8:100_000] = rng.integers(-(2**10), 2**10, 99_992) << rng.integers(0, 21, 99_992)
    mult = rng.integers(2**29, 2**30, n, dtype=np.int64) * 2 + 1  # odd, in [2^30, 2^31)
    shift = rng.integers(33, 63, n, dtype=np.int64)
    assert np.array_equal(_requant_odd(acc, mult, shift), requant(acc, mult, shift))
    # the precondition matters: an even multiplier meets ties, and half up then differs
    even = np.full(n, 2**30, dtype=np.int64)
    assert not np.array_equal(_requant_odd(acc, even, shift), requant(acc, even, shift))


def test_quantized_multipliers_are_odd() -> None:
    spec = LstmSpec(input_size=5, hidden_size=7, peepholes=True, clip=2.0)
    m = single_lstm_model(spec)
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 4, 9, seed=3)])
    (layer,) = q.lstm_layers
    for d in layer.directions:
        for mult in (d.mult_x, d.mult_h, d.peep_mult, d.h_mult):
            v = np.asarray(mult, dtype=np.int64).reshape(-1)
            assert np.all((v == 0) | ((v & 1) == 1)), v
        assert fast_requant_ok(np.r_[d.mult_x, d.mult_h, d.h_mult], np.r_[d.shift_x, d.shift_h, d.h_shift])


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("inputs", [1, 3, 4, 6, 13])
def test_quad_layout_round_trip(wide: bool, inputs: int) -> None:
    H = 3
    rng = np.random.default_rng(inputs)
    w = rng.integers(-300, 300, (4 * H, inputs))
    q = quad_layout(w, H, inputs, wide)  # (H, quads, gate, 4)
    k4 = (inputs + 3) // 4 * 4
    assert q.shape == (H, k4 // 4, 4, 4)
    order = [0, 2, 1, 3] if wide else [0, 1, 2, 3]
    back = np.zeros((4, H, k4), dtype=np.int64)
    for pos, k in enumerate(order):
        back[:, :, k::4] = q[:, :, :, pos].transpose(2, 0, 1)
    assert np.array_equal(back[:, :, :inputs].reshape(4 * H, inputs), w)
    assert not back[:, :, inputs:].any()  # padding weights are zero


def test_scratch_within_goal() -> None:
    assert scratch_bytes(12, 32) == 120
    for h in (8, 32, 64, 128):
        assert scratch_bytes(2 * h, h) <= 8 * h


def _kernels(q) -> set[str]:
    return set(re.findall(r"\b(tl_lstm_step_(?:fast|s8))\(", emit_model(q, "m")["m.c"]))


def test_step_kernel_choice() -> None:
    plain = single_lstm_model(LstmSpec(input_size=4, hidden_size=6))
    q = quantize(tinylstm.load_onnx(plain), [random_input(plain, 4, 9, seed=1)])
    assert _kernels(q) == {"tl_lstm_step_fast"}
    peep = single_lstm_model(LstmSpec(input_size=4, hidden_size=6, peepholes=True))
    q = quantize(tinylstm.load_onnx(peep), [random_input(peep, 4, 9, seed=1)])
    assert _kernels(q) == {"tl_lstm_step_s8"}
    clip = single_lstm_model(LstmSpec(input_size=4, hidden_size=6, clip=3.0))
    q = quantize(tinylstm.load_onnx(clip), [random_input(clip, 4, 9, seed=1)])
    assert _kernels(q) == {"tl_lstm_step_s8"}
    q8 = quantize(tinylstm.load_onnx(plain), [random_input(plain, 4, 9, seed=1)], lstm_weight_bits=8)
    assert _kernels(q8) == {"tl_lstm_step_s8"}  # the fast step's Armv7E-M loop reads int16 weights only
    src = emit_model(q8, "m")["m.c"]
    assert re.search(r"static const int8_t m_\w+_wx\[", src)  # int8 weights: plain int8_t arrays
    assert "TL_W16(" not in src
