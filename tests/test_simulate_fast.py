"""The simulator's fast path (tinylstm/simfast.py) against its checked reference kernels
(simulate.run_lstm_checked): the same integers exactly, i.e. the same output and the same traced
pre-activations, gates, cells and hidden states at every step, on every model shape, adversarial
inputs, variable lengths, int8 and int16 weights, the worst-case models, and with the exact
fallback of near-ties forced on for a large share of the elements."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_simulate import SHAPES, data_for, make_model, quantized

from tinylstm.fixedpoint import lut_eval, requant, sat
from tinylstm.ir import SIGMOID, TANH, Activation
from tinylstm.qmodel import QuantizedModel
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.luts import build_lut
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked as simulate
from tinylstm.simulate import fast as simfast
from tinylstm.simulate import fastplan

FIELDS = ("pre", "gates", "c", "h", "valid")


def _run(q: QuantizedModel, x: np.ndarray, lens: np.ndarray | None, checked: bool):
    old = simulate.CHECKED
    simulate.CHECKED = checked
    try:
        return q.run_int(x, sequence_lens=lens, trace=True)
    finally:
        simulate.CHECKED = old


def assert_fast_equals_checked(q: QuantizedModel, x: np.ndarray, lens: np.ndarray | None = None) -> None:
    for layer in q.lstm_layers:  # the fast path is really taken
        assert all(p is not None for p in fastplan.plans(layer)), layer.name
    yf, tf = _run(q, x, lens, checked=False)
    yc, tc = _run(q, x, lens, checked=True)
    assert yf.dtype == yc.dtype and np.array_equal(yf, yc), "output"
    assert tf.keys() == tc.keys()
    for name in tc:
        for d, (a, b) in enumerate(zip(tf[name], tc[name], strict=True)):
            for f in FIELDS:
                u, v = getattr(a, f), getattr(b, f)
                assert u.dtype == v.dtype and u.shape == v.shape, (name, d, f)
                bad = [tuple(i) for i in np.argwhere(u != v)[:1]]
                assert not bad, f"{name}[{d}].{f} first differs at {bad[0]}: {u[bad[0]]} != {v[bad[0]]}"


def extreme_inputs(q: QuantizedModel, rows: int, steps: int, seed: int) -> list[np.ndarray]:
    """All +127, all -128, alternating in time and feature, random extremes, uniform (int8)."""
    rng = np.random.default_rng(seed)
    F = q.nodes[0].features
    canon = (rows, steps, F)
    alt = np.where((np.arange(steps)[:, None] + np.arange(F)[None, :]) % 2 == 0, 127, -128)
    xs = [np.full(canon, 127), np.full(canon, -128), np.broadcast_to(alt, canon),
          rng.choice(np.array([-128, 127]), size=canon), rng.integers(-128, 128, canon)]
    return [q.input_view.from_canonical(np.ascontiguousarray(x)).astype(np.int8) for x in xs]


def _lens(q: QuantizedModel, rng: np.random.Generator, rows: int, steps: int) -> np.ndarray | None:
    if q.sequence_lens_input is None:
        return None
    lens = rng.integers(0, steps + 1, rows).astype(np.int32)
    lens[:3] = (steps, 0, 1)
    return lens


# ---------------------------------------------------------------------------------------
# every model shape, float-calibrated data and adversarial int8 inputs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_equals_checked_on_every_shape(shape: str, seed: int) -> None:
    m, q = quantized(shape, seed=seed)
    x, lens = data_for(m, 7)
    assert_fast_equals_checked(q, q.quantize_input(x), lens)
    rng = np.random.default_rng(seed)
    for xi in extreme_inputs(q, 6, 12, seed):
        assert_fast_equals_checked(q, xi, _lens(q, rng, 6, 12))


@pytest.mark.parametrize("shape", ["bidir_peep_clip_yh", "input_forget_softmax", "stacked_seq"])
def test_fast_equals_checked_with_int8_weights(shape: str) -> None:
    m = make_model(shape, 2)
    x, lens = data_for(m, 7)
    q = quantize(m, calibrate(m, x, sequence_lens=lens), lstm_weight_bits=8)
    assert all(d.w.dtype == np.int8 for layer in q.lstm_layers for d in layer.directions)
    assert_fast_equals_checked(q, q.quantize_input(x), lens)
    for xi in extreme_inputs(q, 6, 12, 3):
        assert_fast_equals_checked(q, xi)


@pytest.mark.parametrize("opts", [{"lut_interp": False}, {"pre_frac": 12, "lut_size": 256}, {"cell_headroom": 2.0},
                                  {"pre_frac": 9, "lut_size": 64, "observer": "mse"}])
def test_fast_equals_checked_with_quantizer_options(opts: dict) -> None:
    m = make_model("bidir_peep_clip_yh", 3)
    x, _ = data_for(m, 7)
    q = quantize(m, calibrate(m, x), **opts)
    assert_fast_equals_checked(q, q.quantize_input(x))
    for xi in extreme_inputs(q, 6, 12, 4)[:3]:
        assert_fast_equals_checked(q, xi)


def test_long_sequences() -> None:
    """400 steps through bidirectional peephole/clip layers and a reverse layer with lengths."""
    rng = np.random.default_rng(4)
    for shape in ("bidir_peep_clip_yh", "reverse_lens_init_yc"):
        m, q = quantized(shape, seed=5)
        x = rng.normal(0, 1.5, (6, 400, m.input_features)).astype(np.float32)
        lens = np.array([400, 0, 1, 399, 200, 17], np.int32) if q.sequence_lens_input else None
        assert_fast_equals_checked(q, q.quantize_input(x), lens)


@pytest.mark.parametrize("shape", ["bidir_peep_clip_yh", "bidir_stacked_tanh_gather", "input_forget_softmax"])
def test_variable_lengths_on_every_layer(shape: str) -> None:
    """run_lstm with per-row lengths (padding, reverse starting at each row's length, length 0)
    on layers whose model has no lengths input: fast path vs checked kernels."""
    m, q = quantized(shape, seed=1)
    rng = np.random.default_rng(9)
    x = q.quantize_input(rng.normal(0, 1, (7, 15, m.input_features)).astype(np.float32)).astype(np.int64)
    lens = np.array([15, 0, 1, 7, 15, 3, 14])
    layer = q.lstm_layers[0]
    assert all(p is not None for p in fastplan.plans(layer))
    yf, hf, cf, tf = simulate.run_lstm(layer, x, lens, trace=True)
    yc, hc, cc, tc = simulate.run_lstm_checked(layer, x, lens, trace=True)
    assert np.array_equal(yf, yc)
    for a, b in zip(hf + cf, hc + cc, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(tf, tc, strict=True):
        for f in FIELDS:
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
    # without Y (its consumer reads only the final states): same states
    y_none, h2, c2, _ = simulate.run_lstm(layer, x, lens, need_y=False)
    assert y_none is None and all(np.array_equal(a, b) for a, b in zip(h2 + c2, hc + cc, strict=True))


# ---------------------------------------------------------------------------------------
# the worst-case arithmetic models (tests/test_worst_case.py)
# ---------------------------------------------------------------------------------------
def test_fast_equals_checked_on_worst_case_models() -> None:
    """Every model at the proof's limits (max weights, fan-in 256 and the int8 limit, peepholes at
    +-32767, cells at both int16 limits, saturated and clipped gates) runs fast and exactly."""
    from test_worst_case import cases

    assert len(cases()) == 11
    for c in cases():
        for x in c.inputs:
            assert_fast_equals_checked(c.qmodel, x)


# ---------------------------------------------------------------------------------------
# the exact fallback of near-ties
# ---------------------------------------------------------------------------------------
def test_forced_fallback_equals_checked(monkeypatch) -> None:
    """Thresholds lowered to 0.3: every element with |y - rint(y)| > 0.3 (about 40 %) takes the
    exact int64 recomputation; the results must not change. Every fallback site is exercised."""
    calls: dict[str, int] = {}

    def counting(name, fn):
        def wrapped(*a):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a)

        return wrapped

    for name in ("_exact_x", "_exact_h", "_exact_o", "requant"):
        monkeypatch.setattr(simfast, name, counting(name, getattr(simfast, name)))
    for shape in ("bidir_peep_clip_yh", "input_forget_softmax", "reverse_lens_init_yc"):
        m, q = quantized(shape, seed=2)
        for layer in q.lstm_layers:
            fastplan._plans[layer] = tuple(
                dataclasses.replace(p, thr_x=0.3, thr_h=0.3, thr_o=0.3, thr_p=0.3) for p in fastplan.plans(layer))
        x, lens = data_for(m, 3)
        calls.clear()
        assert_fast_equals_checked(q, q.quantize_input(x), lens)
        assert calls["_exact_x"] >= 1 and calls["_exact_h"] >= 10 and calls["_exact_o"] >= 10, calls
        sites = calls["_exact_x"] + calls["_exact_h"] + calls["_exact_o"]
        if shape != "reverse_lens_init_yc":  # peepholes: their own exact site (requant directly)
            assert calls["requant"] >= sites + 10, calls
        for layer in q.lstm_layers:
            del fastplan._plans[layer]


def test_rint_rounds_ties_to_even_and_defers_near_ties() -> None:
    y = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 3.2, -7.7, 2**30 + 0.5, 0.4999]])
    want = np.array([[0, 2, 2, 0, -2, 3, -8, 2**30, 0]], dtype=np.float64)
    r = np.empty_like(y)
    seen = []

    def exact(rows, cols):
        seen.extend(cols.tolist())
        return np.rint(want[rows, cols]).astype(np.int64)

    simfast._rint(y.copy(), r, 0.49, exact)
    assert np.array_equal(r, want)
    assert seen == [0, 1, 2, 3, 4, 7, 8]  # ties and the near-tie went to the exact path
    r2 = np.empty_like(y)
    simfast._rint(y.copy(), r2, 0.5, None)  # rint alone: IEEE ties to even
    assert np.array_equal(r2, want)


def test_magic_constant_rounds_half_to_even() -> None:
    y = np.array([0.5, 1.5, 2.5, -2.5, -3.5, 1e9 + 0.5, 2.0**50 + 0.5, -(2.0**50) - 1.5])
    t = y + fastplan.MAGIC
    got = t.view(np.int64) - fastplan.MAGIC_BITS
    assert got.tolist() == [0, 2, 2, -2, -4, 10**9, 2**50, -(2**50) - 2]
    assert np.array_equal(t - fastplan.MAGIC, got.astype(np.float64))


# ---------------------------------------------------------------------------------------
# table memos and requant factors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("act", "in_frac", "clamp"),
    [(SIGMOID, 16, None), (TANH, 16, None), (TANH, 12, 3000), (Activation("HardSigmoid", 0.3, 0.2), 13, None),
     (Activation("Softsign"), 14, 40000), (SIGMOID, 10, 7)],  # the last one: nearest entry, no interpolation
)
def test_lut_memo_equals_lut_eval(act: Activation, in_frac: int, clamp: int | None) -> None:
    lut = build_lut(act, in_frac, limit=4.0 if clamp else float("inf"), interp=clamp != 7)
    L, memo = fastplan.lut_memo(lut, clamp)
    assert memo.dtype == np.int32 and memo.shape == (2 * L + 1,)
    rng = np.random.default_rng(0)
    ends = [-(2**31) + 1, 2**31 - 1]
    x = np.concatenate([np.arange(-L - 3000, L + 3000), rng.integers(-(2**31), 2**31, 10000), ends])
    got = np.take(memo, x + L, mode="clip")
    want = lut_eval(sat(x, -clamp, clamp) if clamp is not None else x, lut)
    assert np.array_equal(got, want)
    cm = fastplan.cell_memo(lut)  # every int16 input
    c = np.arange(-32768, 32768)
    assert np.array_equal(cm[c + 32768], lut_eval(c, lut))


def test_real_factor_matches_requant_on_exact_products() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        mult, shift = int(rng.integers(2**30, 2**31)), int(rng.integers(0, 63))
        acc = rng.integers(-(2**20), 2**20, 50)  # |acc * mult| < 2^51: exact in float64
        y = acc.astype(np.float64) * fastplan.real_factor(mult, shift)
        assert np.array_equal(np.rint(y).astype(np.int64), requant(acc, mult, shift))


# ---------------------------------------------------------------------------------------
# the proof: refused plans fall back to the checked kernels
# ---------------------------------------------------------------------------------------
def test_unproven_layers_run_checked() -> None:
    _, q = quantized("last_dense")
    layer = q.nodes[1]
    d = layer.directions[0]
    assert fastplan.plan_direction(layer, d) is not None
    bad_bias = dataclasses.replace(layer, directions=(dataclasses.replace(d, bias=np.full_like(d.bias, 2**31 - 10)),))
    assert fastplan.plan_direction(bad_bias, bad_bias.directions[0]) is None
    bad_effb = dataclasses.replace(layer, directions=(dataclasses.replace(d, effb_h=d.effb_h + 1),))
    assert fastplan.plan_direction(bad_effb, bad_effb.directions[0]) is None  # zp not foldable
    x = np.random.default_rng(0).integers(-128, 128, (3, 5, layer.input_size))
    y1, _, _, _ = simulate.run_lstm(bad_effb, x, np.full(3, 5))
    y2, _, _, _ = simulate.run_lstm_checked(bad_effb, x, np.full(3, 5))
    assert np.array_equal(y1, y2)
    with pytest.raises(simulate.SimulatorOverflow, match="z"):
        simulate.run_lstm(bad_bias, x, np.full(3, 5))
