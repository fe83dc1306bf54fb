"""The C kernels' layout and constants (docs/quantization.md §2 high-word requant, §5 quad layout,
§6 packed gate constants) and the choice of step.

The bit-exactness tests (test_c_bitexact.py, test_c_fixedpoint.py, test_c_target.py) prove the
compiled kernels equal the simulator; these check the facts those kernels rely on, in Python, so
a quantizer or emitter change that breaks a precondition fails here by name.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx_builders import LstmSpec, random_input, single_lstm_model
from tinylstm.codegen.emit import emit_model

import tinylstm
from tinylstm.fixedpoint import mul16, requant
from tinylstm.lowering import (
    STEP_FAST,
    STEP_GENERAL,
    UNIT_FIELDS,
    lower_lstm,
    quad_layout,
    scratch_bytes,
    step_choice,
    unit_constants,
)
from tinylstm.qmodel.nodes import MAX_GATE_SHIFT, S_MIN
from tinylstm.quantize.quantizer import quantize


def test_high_word_requant_equals_requant() -> None:
    """§2: with shift >= 33, (hi + 2^(shift-33)) >> (shift-32) is requant (round half up) for any
    multiplier, even or odd: the form tl_requant and the steps' hidden requantization use."""
    rng = np.random.default_rng(0)
    n = 400_000
    acc = rng.integers(-(2**31) + 1, 2**31, n, dtype=np.int64)
    acc[:7] = [-(2**31) + 1, 2**31 - 1, 0, 1, -1, 2**30, -(2**30)]
    # accumulators with many trailing zeros: products landing exactly half-way (ties)
    acc[8:100_000] = rng.integers(-(2**10), 2**10, 99_992) << rng.integers(0, 21, 99_992)
    mult = rng.integers(2**30, 2**31, n, dtype=np.int64)
    mult[: n // 2] &= ~np.int64(0xFFFF)  # even multipliers with many trailing zeros: more ties
    shift = rng.integers(33, 63, n, dtype=np.int64)
    hi = (acc * mult) >> 32
    assert np.array_equal((hi + (np.int64(1) << (shift - 33))) >> (shift - 32), requant(acc, mult, shift))
    prod = acc * mult
    ties = (prod & ((np.int64(1) << shift) - 1)) == (np.int64(1) << (shift - 1))
    assert ties.sum() > 1000  # the ties are there, and they round up
    assert np.array_equal(requant(acc, mult, shift)[ties], (prod[ties] >> shift[ties]) + 1)


def _layer(spec: LstmSpec, **opts):
    m = single_lstm_model(spec)
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 4, 9, seed=3, scale=2.0)], **opts)
    (layer,) = q.lstm_layers
    return q, layer


@pytest.mark.parametrize("bits", [16, 8])
def test_unit_constants_pack_the_gate_rows(bits: int) -> None:
    """tl_lstm_unit_t: per unit and gate (row g H + j) the bias, mx | mh << 16 (both halves below 2^15,
    so SMLAWB / SMLAWT read them as non-negative int16) and the shift; t from the packed word is t."""
    _, layer = _layer(LstmSpec(input_size=5, hidden_size=7, direction="bidirectional", peepholes=True),
                      lstm_weight_bits=bits)
    H = layer.hidden_size
    rng = np.random.default_rng(1)
    for d in layer.directions:
        u = unit_constants(d, H)
        assert u.shape == (H, 4, len(UNIT_FIELDS)) and UNIT_FIELDS == ("bias", "mult", "shift")
        rows = np.arange(4)[None, :] * H + np.arange(H)[:, None]  # (unit, gate) -> gate row
        assert np.array_equal(u[..., 0], d.bias[rows]) and np.array_equal(u[..., 2], d.shift[rows])
        lo, hi = u[..., 1] & 0xFFFF, u[..., 1] >> 16
        assert np.array_equal(lo, d.mult_x[rows]) and np.array_equal(hi, d.mult_h[rows])
        assert lo.max() < 2**15 and hi.max() < 2**15 and u[..., 1].min() >= 0
        assert S_MIN <= u[..., 2].min() and u[..., 2].max() <= MAX_GATE_SHIFT
        ax = rng.integers(-(2**30), 2**30, (H, 4))
        ah = rng.integers(-(2**30), 2**30, (H, 4))
        t_packed = u[..., 0] + mul16(ax, lo) + mul16(ah, hi)
        t_rows = d.bias[rows].astype(np.int64) + mul16(ax, d.mult_x[rows]) + mul16(ah, d.mult_h[rows])
        assert np.array_equal(t_packed, t_rows)


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


@pytest.mark.parametrize("spec,opts,step", [
    (LstmSpec(input_size=4, hidden_size=6), {}, STEP_FAST),
    (LstmSpec(input_size=4, hidden_size=6), {"lstm_weight_bits": 8}, STEP_FAST),
    (LstmSpec(input_size=4, hidden_size=6, peepholes=True), {}, STEP_FAST),
    (LstmSpec(input_size=4, hidden_size=6, clip=3.0), {}, STEP_FAST),
    (LstmSpec(input_size=4, hidden_size=6, input_forget=True, direction="bidirectional"), {}, STEP_FAST),
    (LstmSpec(input_size=4, hidden_size=6, activations=("HardSigmoid", "Tanh", "Tanh")), {}, STEP_GENERAL),
    (LstmSpec(input_size=4, hidden_size=6), {"pre_frac": 8, "lut_size": 8192}, STEP_GENERAL),
], ids=["plain", "int8", "peepholes", "clip", "input_forget-bidirectional", "custom-tables", "coarse-gates"])
def test_step_choice(spec: LstmSpec, opts: dict, step: str) -> None:
    """The fast step runs every standard-table layer whose gate inputs and cell are finer than the
    table's grid, whatever its weights and features; the general step the rest (and says why)."""
    q, layer = _layer(spec, **opts)
    chosen, why = step_choice(layer)
    assert chosen == step and lower_lstm(layer).step == step
    assert _kernels(q) == {step}
    src = emit_model(q, "m")["m.c"]
    assert f"/* step: {step} ({why}) */" in src
    if step == STEP_GENERAL:
        assert ("custom" in why) == (not layer.directions[0].standard)
    if opts.get("lstm_weight_bits") == 8:
        assert re.search(r"static const int8_t m_\w+_wx\[", src)  # int8 weights: plain int8_t arrays
        assert "TL_W16(" not in src


def test_standard_table_emitted_once() -> None:
    """One standard table per model, shared by every layer and direction that uses it (spec §8.1)."""
    from onnx_builders import HeadSpec, stacked_model

    m = stacked_model([LstmSpec(input_size=3, hidden_size=5, direction="bidirectional"),
                       LstmSpec(input_size=10, hidden_size=4)], head=HeadSpec("last_gemm", 2))
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 3, 7, seed=0)])
    src = emit_model(q, "m")["m.c"]
    assert src.count("standard table D[j]") == 1
    assert len(re.findall(r"\.table = m_table0,", src)) == 3
