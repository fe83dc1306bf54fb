"""The simulator's fast path (tinylstm/simulate/fast.py, fastplan.py) against its checked reference
kernels (simulate.checked): the same integers exactly, i.e. the same output and the same traced
pre-activations, gates, cells and hidden states at every step, on seeded random models covering
int8 and int16 weights, pre-shifts, peepholes, clip, input_forget, custom gate tables,
bidirectional and reverse layers, variable lengths and initial states; on the trained example
models; and a layer whose proof fails runs checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_simulate import SHAPES, data_for, quantized, seq_view, vec_view

import tinylstm
from tinylstm.data.dataset import load_dataset, to_model_layout
from tinylstm.fixedpoint import lut_eval, sat, sigmoid_q15, tanh_q15
from tinylstm.ir import SIGMOID, TANH, Activation, DenseNode, FloatModel, InputNode, LstmNode, LstmStateNode
from tinylstm.ir import LstmDirection as FloatDirection
from tinylstm.qmodel import QuantizedModel
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.luts import build_lut, standard_table
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked as simulate
from tinylstm.simulate import fastplan

FIELDS = ("pre", "gates", "c", "h", "valid")
MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


def _run(q: QuantizedModel, x: np.ndarray, lens: np.ndarray | None, checked: bool):
    old = simulate.CHECKED
    simulate.CHECKED = checked
    try:
        return q.run_int(x, sequence_lens=lens, trace=True)
    finally:
        simulate.CHECKED = old


def _same_traces(tf, tc, where: str) -> None:
    for d, (a, b) in enumerate(zip(tf, tc, strict=True)):
        for f in FIELDS:
            u, v = getattr(a, f), getattr(b, f)
            assert u.dtype == v.dtype and u.shape == v.shape, (where, d, f)
            bad = [tuple(i) for i in np.argwhere(u != v)[:1]]
            assert not bad, f"{where}[{d}].{f} first differs at {bad[0]}: {u[bad[0]]} != {v[bad[0]]}"


def assert_fast_equals_checked(q: QuantizedModel, x: np.ndarray, lens: np.ndarray | None = None) -> None:
    for layer in q.lstm_layers:  # the fast path is really taken
        assert all(p is not None for p in fastplan.plans(layer)), layer.name
    yf, tf = _run(q, x, lens, checked=False)
    yc, tc = _run(q, x, lens, checked=True)
    assert yf.dtype == yc.dtype and np.array_equal(yf, yc), "output"
    assert tf.keys() == tc.keys()
    for name in tc:
        _same_traces(tf[name], tc[name], name)


def assert_layer_fast_equals_checked(layer, x: np.ndarray, lens: np.ndarray) -> None:
    """run_lstm on one layer (any lengths, also on layers whose model has no lengths input)."""
    assert all(p is not None for p in fastplan.plans(layer)), layer.name
    yf, hf, cf, tf = simulate.run_lstm(layer, x, lens, trace=True)
    yc, hc, cc, tc = simulate.run_lstm_checked(layer, x, lens, trace=True)
    assert np.array_equal(yf, yc)
    for a, b in zip(hf + cf, hc + cc, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    _same_traces(tf, tc, layer.name)
    y_none, h2, c2, _ = simulate.run_lstm(layer, x, lens, need_y=False)  # only the final states
    assert y_none is None and all(np.array_equal(a, b) for a, b in zip(h2 + c2, hc + cc, strict=True))


def extreme_inputs(q: QuantizedModel, rows: int, steps: int, seed: int) -> list[np.ndarray]:
    """All +127, all -128, alternating in time and feature, random extremes, uniform (int8)."""
    rng = np.random.default_rng(seed)
    F = q.nodes[0].features
    canon = (rows, steps, F)
    alt = np.where((np.arange(steps)[:, None] + np.arange(F)[None, :]) % 2 == 0, 127, -128)
    xs = [np.full(canon, 127), np.full(canon, -128), np.broadcast_to(alt, canon),
          rng.choice(np.array([-128, 127]), size=canon), rng.integers(-128, 128, canon)]
    return [q.input_view.from_canonical(np.ascontiguousarray(x)).astype(np.int8) for x in xs]


def _lens(rng: np.random.Generator, rows: int, steps: int) -> np.ndarray:
    lens = rng.integers(0, steps + 1, rows)
    lens[: min(rows, 3)] = (steps, 0, 1)[: min(rows, 3)]
    return lens


# ---------------------------------------------------------------------------------------
# seeded random models
# ---------------------------------------------------------------------------------------
HSIG, STANH, SOFTSIGN = Activation("HardSigmoid", 0.2, 0.5), Activation("ScaledTanh", 1.5, 0.7), Activation("Softsign")
#: (f, g, h) activation triples; UNBOUNDED is unbounded in f or g, so it gets a power-of-two clip (and
#: Affine slopes small enough that |f| <= 1 on any domain: the quantizer picks a table's output format
#: from |f| on [-clip, clip], not on the table's wider power-of-two domain, and refuses such tables)
BOUNDED = [(SIGMOID, TANH, TANH)] * 3 + [(HSIG, STANH, SOFTSIGN), (SIGMOID, TANH, SOFTSIGN),
                                         (Activation("HardSigmoid", 0.3, 0.2), TANH, TANH)]
UNBOUNDED = [(SIGMOID, Activation("Affine", 0.01, 0.25), TANH), (Activation("Affine", 0.007, 0.5), TANH, TANH),
             (SIGMOID, Activation("LeakyRelu", 0.1), TANH), (HSIG, Activation("Relu"), STANH)]


def _direction(rng: np.random.Generator, I: int, H: int, reverse: bool, peep: bool, init: bool, acts,
               gain: float) -> FloatDirection:
    w = rng.normal(0, gain / np.sqrt(I), (4 * H, I)).astype(np.float32)
    r = rng.normal(0, gain / np.sqrt(H), (4 * H, H)).astype(np.float32)
    b = rng.normal(0, 0.5 * gain, 4 * H).astype(np.float32)
    b[H : 2 * H] += 1.0
    p = rng.normal(0, 0.5 * gain, (3, H)).astype(np.float32) if peep else None
    ih = rng.uniform(-0.5, 0.5, (1, H)).astype(np.float32) if init else np.zeros((1, H), np.float32)
    ic = rng.uniform(-1.5, 1.5, (1, H)).astype(np.float32) if init else np.zeros((1, H), np.float32)
    return FloatDirection(w, r, b, p, ih, ic, reverse, acts)


def random_model(seed: int) -> tuple[FloatModel, dict]:
    """A random stack of 1-2 LSTM layers (random sizes, directions and attributes) and quantizer
    options; seed 0 mod 4 gets int8 weights, 1 mod 4 a gain that saturates the gates."""
    rng = np.random.default_rng(seed)
    I = int(rng.integers(1, 7))
    nodes: list = [InputNode("x", I)]
    lens_input = bool(rng.random() < 0.4)
    gain = 6.0 if seed % 4 == 1 else float(rng.uniform(0.5, 2.5))
    src, fin = 0, I
    for k in range(int(rng.integers(1, 3))):
        H = int(rng.integers(1, 11))
        kind = rng.choice(["forward", "reverse", "bidirectional"])
        unbounded = rng.random() < 0.25
        acts = UNBOUNDED[rng.integers(len(UNBOUNDED))] if unbounded else BOUNDED[rng.integers(len(BOUNDED))]
        # unbounded f or g: a power-of-two clip (the table's domain is the clip, its format fits)
        clip = float(rng.choice([1.0, 2.0, 4.0])) if unbounded else float(rng.uniform(0.5, 6.0)) \
            if rng.random() < 0.3 else None
        peep, init = bool(rng.random() < 0.4), bool(rng.random() < 0.4)
        revs = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}[str(kind)]
        dirs = tuple(_direction(rng, fin, H, rv, peep, init, acts, gain) for rv in revs)
        nodes.append(LstmNode(f"l{k}", src, fin, H, dirs, clip=clip, input_forget=bool(rng.random() < 0.3),
                              sequence_lens_is_input=lens_input))
        src, fin = len(nodes) - 1, len(dirs) * H
    head = rng.choice(["h", "c", "seq"])
    if head == "seq":
        w = rng.normal(0, 1 / np.sqrt(fin), (2, fin)).astype(np.float32)
        nodes.append(DenseNode("fc", src, w, np.zeros(2, np.float32), kind="seq"))
        view = seq_view(2)
    else:
        nodes.append(LstmStateNode("y", src, str(head), fin))
        view = vec_view(fin)
    model = FloatModel(tuple(nodes), "x", "y", seq_view(I), view, sequence_lens_input="lens" if lens_input else None)
    opts = {"lstm_weight_bits": 8 if seed % 4 == 0 else 16,
            "pre_frac": int(rng.choice([16, 16, 12, 18, 10])),
            "lut_size": int(rng.choice([512, 512, 256, 64, 2048])),
            "cell_headroom": float(rng.choice([1.0, 1.0, 2.0])),
            "lut_interp": bool(rng.random() > 0.1)}
    return model, opts


@pytest.mark.parametrize("seed", range(48))
def test_fast_equals_checked_on_random_models(seed: int) -> None:
    m, opts = random_model(seed)
    rng = np.random.default_rng(1000 + seed)
    steps = int(rng.integers(1, 24))
    x = rng.normal(0, 1.5, (5, steps, m.input_features)).astype(np.float32)
    lens = rng.integers(1, steps + 1, 5) if m.sequence_lens_input else None
    q = quantize(m, calibrate(m, x, sequence_lens=lens), **opts)
    assert_fast_equals_checked(q, q.quantize_input(2 * x), None if lens is None else _lens(rng, 5, steps))
    for xi in extreme_inputs(q, 4, steps, seed)[seed % 3 :: 2]:
        assert_fast_equals_checked(q, xi, None if lens is None else _lens(rng, 4, steps))
    # the last layer alone, with per-row lengths (reverse starts at each row's length, length 0)
    layer = q.lstm_layers[-1]
    xl = rng.integers(-128, 128, (6, steps + 3, layer.input_size))
    assert_layer_fast_equals_checked(layer, xl, _lens(rng, 6, steps + 3))


def test_random_models_cover_the_features() -> None:
    """The seeds above reach every feature the fast path has a branch for."""
    seen: set[str] = set()
    for seed in range(48):
        m, opts = random_model(seed)
        layers = [n for n in m.nodes if isinstance(n, LstmNode)]
        seen |= {f"bits{opts['lstm_weight_bits']}", f"interp{opts['lut_interp']}"}
        for n in layers:
            seen |= {n.direction, f"if{n.input_forget}", f"clip{n.clip is not None}", f"lens{m.sequence_lens_input}"}
            for d in n.directions:
                seen |= {f"peep{d.p is not None}", f"init{bool(d.initial_c.any())}", d.activations[1].name}
    want = {"bits8", "bits16", "interpFalse", "forward", "reverse", "bidirectional", "ifTrue", "clipTrue",
            "lenslens", "peepTrue", "initTrue", "Tanh", "ScaledTanh", "Affine", "LeakyRelu", "Relu"}
    assert want <= seen, want - seen


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_equals_checked_on_every_shape(shape: str) -> None:
    m, q = quantized(shape, seed=3)
    x, lens = data_for(m, 7)
    assert_fast_equals_checked(q, q.quantize_input(x), lens)
    pre = {layer.name: [(d.pre_x, d.pre_h) for d in layer.directions] for layer in q.lstm_layers}
    assert all(p > 0 for v in pre.values() for pair in v for p in pair), pre  # pre-shifts in use


def test_long_sequences() -> None:
    """400 steps through bidirectional peephole/clip layers and a reverse layer with lengths."""
    rng = np.random.default_rng(4)
    for shape in ("bidir_peep_clip_yh", "reverse_lens_init_yc"):
        m, q = quantized(shape, seed=5)
        x = rng.normal(0, 1.5, (6, 400, m.input_features)).astype(np.float32)
        lens = np.array([400, 0, 1, 399, 200, 17], np.int32) if q.sequence_lens_input else None
        assert_fast_equals_checked(q, q.quantize_input(x), lens)


def test_fast_equals_checked_on_worst_case_models() -> None:
    """Every model at the proof's limits (weights at the limits of their type, the largest fan-ins,
    peepholes at +-32767, cells at both int16 limits, saturated and clipped gates) runs fast and
    exactly on its adversarial inputs."""
    from test_worst_case import cases

    assert len(cases()) >= 11
    for c in cases():
        for x in c.inputs:
            assert_fast_equals_checked(c.qmodel, x)


# ---------------------------------------------------------------------------------------
# the trained example models
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "rows"), [("japanese_vowels", 48), ("adding_T100", 24), ("temporal_order_6a", 16),
                                            ("adding_T400", 6)])
def test_fast_equals_checked_on_trained_models(name: str, rows: int) -> None:
    fm = tinylstm.load_onnx(MODELS / f"{name}.onnx")
    q = quantize(fm, calibrate(fm, load_dataset(MODELS / f"{name}_calib.npz", fm)))
    test = load_dataset(MODELS / f"{name}_test.npz", fm)
    seqs = test.sequences[:rows]
    for _, batch in load_dataset(seqs, fm).groups()[:3]:
        assert_fast_equals_checked(q, q.quantize_input(to_model_layout(fm, batch)))
    # the whole subset padded into one batch, with its lengths, through the first layer
    T = max(len(s) for s in seqs)
    xp = np.zeros((len(seqs), T, fm.input_features), np.float32)
    for i, s in enumerate(seqs):
        xp[i, : len(s)] = s
    xi = q.input_view.to_canonical(q.quantize_input(to_model_layout(fm, xp))).astype(np.int64)
    lens = np.array([len(s) for s in seqs])
    lens[:2] = (0, 1)
    assert_layer_fast_equals_checked(q.lstm_layers[0], xi, lens)


# ---------------------------------------------------------------------------------------
# memos and the proof
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "pre_frac", "clip"), [(512, 16, None), (512, 12, 70000), (64, 9, None),
                                                        (2048, 8, None), (16, 10, 5), (8192, 8, None)])
def test_standard_memos_equal_the_table_functions(size: int, pre_frac: int, clip: int | None) -> None:
    """gate_memo equals sigmoid_q15 / tanh_q15 (after clip) at every input, far beyond its ends
    included; cell_memo equals tanh_q15 at every int16 cell."""
    table, frac = standard_table(size)
    layer = type("L", (), {"pre_frac": pre_frac, "table_frac": frac, "table": table, "clip_q": clip})()
    d = type("D", (), {"standard": True, "cell_frac": pre_frac - 4})()
    sh = pre_frac - frac
    rng = np.random.default_rng(size)
    for which, fn in (("f", sigmoid_q15), ("g", tanh_q15)):
        L, memo = fastplan.gate_memo(layer, d, which)
        x = np.concatenate([np.arange(-L - 5000, L + 5000), rng.integers(-(2**31) + 1, 2**31, 5000)])
        want = fn(sat(x, -clip, clip) if clip is not None else x, table, sh)
        assert np.array_equal(np.take(memo, x + L, mode="clip"), want), which
    c = np.arange(-32768, 32768)
    assert np.array_equal(fastplan.cell_memo(layer, d), tanh_q15(c, table, d.cell_frac - frac))


@pytest.mark.parametrize(
    ("act", "in_frac", "clamp", "interp"),
    [(SIGMOID, 16, None, True), (TANH, 16, None, True), (TANH, 12, 3000, True), (Activation("HardSigmoid", 0.3, 0.2),
     13, None, True), (Activation("Softsign"), 14, 40000, True), (SIGMOID, 10, 7, False),
     (Activation("LeakyRelu", 0.1), 12, 9000, True)],  # the last one: a full (non-symmetric) table
)
def test_lut_memos_equal_lut_eval(act: Activation, in_frac: int, clamp: int | None, interp: bool) -> None:
    lut = build_lut(act, in_frac, limit=4.0 if clamp else float("inf"), interp=interp)
    layer = type("L", (), {"clip_q": clamp})()
    d = type("D", (), {"standard": False, "lut_f": lut, "lut_g": lut, "lut_h": lut})()
    L, memo = fastplan.gate_memo(layer, d, "f")
    assert memo.dtype in (np.uint16, np.int32) and memo.shape == (2 * L + 1,)
    rng = np.random.default_rng(0)
    ends = [-(2**31) + 1, 2**31 - 1]
    x = np.concatenate([np.arange(-L - 3000, L + 3000), rng.integers(-(2**31), 2**31, 10000), ends])
    want = lut_eval(sat(x, -clamp, clamp) if clamp is not None else x, lut)
    assert np.array_equal(np.take(memo, x + L, mode="clip"), want)
    c = np.arange(-32768, 32768)
    assert np.array_equal(fastplan.cell_memo(None, d), lut_eval(c, lut))


def test_magic_constant_rounds_half_to_even_and_indexes() -> None:
    y = np.array([0.5, 1.5, 2.5, -2.5, -3.5, 1e9 + 0.5, 2.0**50 + 0.5, -(2.0**50) - 1.5])
    t = y + fastplan.MAGIC
    got = t.view(np.int64) - fastplan.MAGIC_BITS
    assert got.tolist() == [0, 2, 2, -2, -4, 10**9, 2**50, -(2**50) - 2]
    assert np.array_equal(t - fastplan.MAGIC, got.astype(np.float64))


def test_unproven_layers_run_checked(monkeypatch) -> None:
    """A plan that cannot be proven is None and the checked kernels run instead: with the same
    result where nothing overflows, with SimulatorOverflow where something does."""
    _, q = quantized("last_dense")
    layer = q.nodes[1]
    d = layer.directions[0]
    x = np.random.default_rng(0).integers(-128, 128, (3, 5, layer.input_size))
    assert fastplan.plan_direction(layer, d) is not None
    bad_bias = dataclasses.replace(layer, directions=(dataclasses.replace(d, bias=np.full_like(d.bias, 2**31 - 10)),))
    assert fastplan.plan_direction(bad_bias, bad_bias.directions[0]) is None
    with pytest.raises(simulate.SimulatorOverflow, match="t"):
        simulate.run_lstm(bad_bias, x, np.full(3, 5))
    # memos refused (as for a table too wide to memoise): the checked path, the same integers
    monkeypatch.setattr(fastplan, "MEMO_LIMIT", 10)
    fresh = dataclasses.replace(layer)
    assert fastplan.plans(fresh) == (None,)
    monkeypatch.setattr(simulate, "run_direction", None)  # the fast loop must not run
    yf, hf, cf, _ = simulate.run_lstm(fresh, x, np.array([5, 0, 3]))
    yc, hc, cc, _ = simulate.run_lstm_checked(layer, x, np.array([5, 0, 3]))
    assert np.array_equal(yf, yc) and all(np.array_equal(a, b) for a, b in zip(hf + cf, hc + cc, strict=True))


def test_checked_switch_forces_the_checked_kernels(monkeypatch) -> None:
    m, q = quantized("stacked_seq")
    x = q.quantize_input(data_for(m, 2)[0])
    calls = []
    real = simulate.run_direction
    monkeypatch.setattr(simulate, "run_direction", lambda *a, **k: calls.append(1) or real(*a, **k))
    y_fast = q.run_int(x)
    assert len(calls) == 2
    monkeypatch.setattr(simulate, "CHECKED", True)
    assert np.array_equal(q.run_int(x), y_fast) and len(calls) == 2
