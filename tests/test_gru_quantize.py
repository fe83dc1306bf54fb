"""The integer GRU (docs/quantization.md §16, issue #18 phase 2a): the quantizer, the checked kernels
against a scalar reference written from the spec text, the fast path against the checked kernels,
accuracy against the float model (random and trained models), the overflow proof at its worst
case, the ``.tlq`` file and its checker."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_simulate import r_lut, r_requant, r_sat, r_shift, r_standard, rand_direction, seq_view, vec_view

import tinylstm
from tinylstm.data import tasks
from tinylstm.data.taskfiles import load_task_file
from tinylstm.errors import ModelFormatError
from tinylstm.ir import (
    SIGMOID,
    TANH,
    Activation,
    ActivationNode,
    DenseNode,
    FloatModel,
    GruDirection,
    GruNode,
    InputNode,
    LstmNode,
    LstmStateNode,
    SelectStepNode,
)
from tinylstm.qmodel import QGru, QuantizedModel
from tinylstm.qmodel.bounds import gru_gate_sum_bound, state_acc_bound, widened_acc_bound
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked, gru_checked, gru_fast

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


# ---------------------------------------------------------------------------------------
# random float GRU models in the IR
# ---------------------------------------------------------------------------------------
def rand_gru(rng: np.random.Generator, I: int, H: int, *, reverse: bool = False, lbr: bool = True,
             init: bool = False, acts: tuple[Activation, Activation] = (SIGMOID, TANH), gain: float = 1.5,
             bias: float = 0.5) -> GruDirection:
    w = rng.normal(0, gain / np.sqrt(I), (3 * H, I))
    r = rng.normal(0, gain / np.sqrt(H), (3 * H, H))
    b = rng.normal(0, bias, 3 * H)
    rb = rng.normal(0, bias, H) if lbr else np.zeros(H)
    h0 = rng.uniform(-0.5, 0.5, (1, H)) if init else np.zeros((1, H))
    return GruDirection(w, r, b, rb, h0, reverse, acts)


def _dense(rng, name: str, src: int, fin: int, fout: int, kind: str = "vec") -> DenseNode:
    return DenseNode(name, src, rng.normal(0, 1 / np.sqrt(fin), (fout, fin)), rng.normal(0, 0.2, fout), kind=kind)


HARD, SCALED = Activation("HardSigmoid", 0.2, 0.5), Activation("ScaledTanh", 1.5, 0.7)
#: update/reset gates beyond [0, 1] (q_f = 14); a small beta keeps them near 0, so the state stays bounded
WIDE = Activation("ScaledTanh", 1.5, 0.25)
SHAPES = ("last_dense", "lstm_gru_seq", "bidir_clip_yh", "reverse_lens_init", "gru_gru_softmax", "gate_acts",
          "relu_clip", "scaled_f")


def make_gru_model(shape: str, seed: int = 0, I: int = 3, H: int = 8, O: int = 4) -> FloatModel:
    """One random float model per shape: every GRU attribute the integer GRU handles (directions,
    linear_before_reset 0 and 1, clip, sequence_lens, initial_h, custom activations, Y and Y_h) in
    stacks with LSTMs and heads."""
    rng = np.random.default_rng(seed)
    nodes: list = [InputNode("x", I)]
    lens_input, seq_out = None, False
    if shape == "last_dense":
        nodes += [GruNode("gru", 0, I, H, (rand_gru(rng, I, H),), linear_before_reset=True),
                  SelectStepNode("last", 1, -1, H), _dense(rng, "fc", 2, H, O)]
    elif shape == "lstm_gru_seq":
        nodes += [LstmNode("lstm", 0, I, H, (rand_direction(rng, I, H),)),
                  GruNode("gru", 1, H, H, (rand_gru(rng, H, H, lbr=False),)), _dense(rng, "fc", 2, H, O, kind="seq")]
        seq_out = True
    elif shape == "bidir_clip_yh":
        dirs = (rand_gru(rng, I, H), rand_gru(rng, I, H, reverse=True))
        nodes += [GruNode("gru", 0, I, H, dirs, clip=2.5, linear_before_reset=True),
                  LstmStateNode("yh", 1, "h", 2 * H), _dense(rng, "fc", 2, 2 * H, O)]
    elif shape == "reverse_lens_init":
        nodes += [GruNode("gru", 0, I, H, (rand_gru(rng, I, H, reverse=True, lbr=False, init=True),),
                          sequence_lens_is_input=True)]
        lens_input, seq_out = "lens", True
    elif shape == "gru_gru_softmax":
        d2 = (rand_gru(rng, H, H), rand_gru(rng, H, H, reverse=True))
        nodes += [GruNode("g1", 0, I, H, (rand_gru(rng, I, H, lbr=False, init=True),)),
                  GruNode("g2", 1, H, H, d2, linear_before_reset=True), LstmStateNode("yh", 2, "h", 2 * H),
                  _dense(rng, "fc", 3, 2 * H, O), ActivationNode("sm", 4, Activation("Softmax"), O)]
    elif shape == "gate_acts":  # custom tables, q_f = 15, q_g = 14
        nodes += [GruNode("gru", 0, I, H, (rand_gru(rng, I, H, lbr=False, acts=(HARD, SCALED)),)),
                  SelectStepNode("last", 1, -1, H), _dense(rng, "fc", 2, H, O), ActivationNode("sig", 3, SIGMOID, O)]
    elif shape == "relu_clip":  # an unbounded candidate bounded by clip: the state reaches 3 (Q(13))
        nodes += [GruNode("gru", 0, I, H, (rand_gru(rng, I, H, lbr=False, acts=(SIGMOID, Activation("Relu"))),),
                          clip=3.0), SelectStepNode("first", 1, 0, H), _dense(rng, "fc", 2, H, O)]
    elif shape == "scaled_f":  # gate values beyond [0, 1] (q_f = 14): the reset product's 2^(15 - q_f), a
        # state range from calibration
        d = rand_gru(rng, I, H, acts=(WIDE, TANH), gain=1.0)
        nodes += [GruNode("gru", 0, I, H, (d,), linear_before_reset=True), SelectStepNode("last", 1, -1, H),
                  _dense(rng, "fc", 2, H, O)]
    else:
        raise ValueError(shape)
    F = nodes[-1].features
    return FloatModel(tuple(nodes), "x", "y", seq_view(I), seq_view(F) if seq_out else vec_view(F),
                      sequence_lens_input=lens_input)


def data_for(model: FloatModel, seed: int, batch: int = 8, steps: int = 12):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (batch, steps, model.input_features)).astype(np.float32)
    lens = None
    if model.sequence_lens_input is not None:
        lens = rng.integers(0, steps + 1, batch).astype(np.int32)
        lens[0] = steps
    return x, lens


def quantized(shape: str, seed: int = 0, data_seed: int = 7):
    m = make_gru_model(shape, seed)
    x, lens = data_for(m, data_seed)
    return m, quantize(m, calibrate(m, x, sequence_lens=lens))


def _grus(q: QuantizedModel) -> list[QGru]:
    return [n for n in q.nodes if isinstance(n, QGru)]


# ---------------------------------------------------------------------------------------
# accuracy vs float
# ---------------------------------------------------------------------------------------
#: Max |integer - float| in output LSB on random models calibrated on the data they run on, the
#: LSTM's budget (tests/test_simulate.py). Measured over seeds 0-5 of every shape (docs/quantization.md
#: §16.9): <= 3.1 LSB, and 5.5 on one relu_clip model, of which 4.1 is the int8 input's rounding alone.
BUDGET_LSB = 6.0


@pytest.mark.parametrize("shape", SHAPES)
def test_gru_tracks_float(shape: str) -> None:
    for seed in range(2):
        m, q = quantized(shape, seed)
        assert _grus(q)
        x, lens = data_for(m, 7)
        yf = m.run(x, sequence_lens=lens).astype(np.float64)
        yq = q.run(x, sequence_lens=lens).astype(np.float64)
        err = np.abs(yq - yf).max() / q.output_scale
        assert err <= BUDGET_LSB, f"{shape} seed {seed}: {err:.2f} LSB"


def test_shift_half_up_rounds_half_up() -> None:
    """``shift_half_up(x, s)`` (§16.1) is ``x / 2^s`` rounded to the nearest integer, ties up."""
    from fractions import Fraction
    from math import floor

    from tinylstm.fixedpoint import shift_half_up

    rng = np.random.default_rng(2)
    x = np.concatenate([rng.integers(-(2**31), 2**31, 2000), np.arange(-40, 41)])
    for s in (0, 1, 3, 15, 20):
        want = [floor(Fraction(int(v), 1 << s) + Fraction(1, 2)) for v in x]
        assert shift_half_up(x, s).tolist() == want


def test_calibration_observes_gru_layers() -> None:
    """calibrate() records a GRU's pre-activations per gate (z, r, h), its gates, the candidate's
    recurrent product and its state, as it does an LSTM's (it raised KeyError before)."""
    m = make_gru_model("lstm_gru_seq")
    cal = calibrate(m, data_for(m, 1)[0])
    names = {name for k, name in cal.ranges if k == 2}
    assert {"pre0.z", "pre0.r", "pre0.h", "gates0", "rh0", "h0", "output"} <= names
    assert {"pre0.i", "pre0.f", "pre0.g", "pre0.o", "c0"} <= {name for k, name in cal.ranges if k == 1}


# ---------------------------------------------------------------------------------------
# the checked kernels against a scalar reference written from the spec text (§16)
# ---------------------------------------------------------------------------------------
def scalar_gru_step(layer: QGru, d, x: list[int], h: list[int]) -> tuple[list[int], list[int]]:
    """docs/quantization.md §16 for one batch row, with Python ints (like the C loops)."""
    H, P, q = layer.hidden_size, layer.pre_frac, d.state_shift
    assert all(-(2**15) <= v < 2**15 for v in h)
    vx = [(v - layer.input_zero_point) << d.pre_x for v in x]
    vh = [(v + ((1 << q) >> 1)) >> q for v in h]  # shift_half_up(h, q)

    def act(z: int, which: str) -> int:
        if d.standard:
            return r_standard(z, layer.table, P - layer.table_frac, which == "g")
        return r_lut(z, d.lut_f if which == "f" else d.lut_g)

    def dot(row: int, v: list[int], m) -> int:
        a = sum(int(m[row, k]) * v[k] for k in range(len(v)))
        assert -(2**31) <= a < 2**31
        return a

    def finish(row: int, t: int) -> int:
        assert -(2**31) <= t < 2**31
        z = t >> int(d.shift[row])
        return z if layer.clip_q is None else r_sat(z, -layer.clip_q, layer.clip_q)

    def x_side(row: int) -> int:
        return int(d.bias[row]) + (dot(row, vx, d.w) * int(d.mult_x[row]) >> 16)

    gate = []
    for row in range(2 * H):  # z, r: t = B + mul16(acc_x, mx) + mul16(acc_h, mh); z = t >> s
        gate.append(act(finish(row, x_side(row) + (dot(row, vh, d.r) * int(d.mult_h[row]) >> 16)), "f"))
    gz, gr = gate[:H], gate[H:]
    if not layer.linear_before_reset:  # the matvec reads shift_half_up(r h, 15 + q)
        vr = [(gr[k] * h[k] + (1 << (14 + q))) >> (15 + q) for k in range(H)]
        assert all(-(2**15) <= v < 2**15 for v in vr)
    n = []
    for j in range(H):
        row = 2 * H + j
        if layer.linear_before_reset:  # u = rbias + mul16(R_h v_h, mh); t = .. + shift_half_up(r u, 15)
            u = int(d.rbias[j]) + (dot(row, vh, d.r) * int(d.mult_h[row]) >> 16)
            assert -(2**31) <= u < 2**31
            rec = (gr[j] * u + (1 << 14)) >> 15
        else:
            rec = dot(row, vr, d.r) * int(d.mult_h[row]) >> 16
        n.append(act(finish(row, x_side(row) + rec), "g"))
    one = 1 << d.gate_q[0]
    h2 = [r_sat(r_shift((gz[j] * h[j] << d.a_h) + ((one - gz[j]) * n[j] << d.a_n), d.s_u), -32768, 32767)
          for j in range(H)]
    y2 = [r_sat(layer.zero_point + r_requant(v, d.y_mult, d.y_shift), -128, 127) for v in h2]
    return h2, y2


@pytest.mark.parametrize("shape", ["bidir_clip_yh", "reverse_lens_init", "gate_acts", "relu_clip", "scaled_f",
                                   "lstm_gru_seq"])
@pytest.mark.parametrize("fast", [False, True])
def test_simulator_equals_scalar_reference(shape: str, fast: bool, monkeypatch) -> None:
    m, q = quantized(shape, seed=3)
    layer = _grus(q)[0]
    assert layer.linear_before_reset == (shape in ("bidir_clip_yh", "scaled_f"))
    monkeypatch.setattr(checked, "CHECKED", not fast)
    assert all(p is not None for p in gru_fast.plans(layer))
    rng = np.random.default_rng(11)
    xi = rng.integers(-128, 128, (4, 9, layer.input_size)).astype(np.int64)
    _, _, _, tr = gru_checked.run_gru(layer, xi, np.full(4, 9), trace=True)
    for di, d in enumerate(layer.directions):
        for b in range(2):
            h = [int(v) for v in d.initial_h[0]]
            for t in (range(8, -1, -1) if d.reverse else range(9)):
                h, y = scalar_gru_step(layer, d, [int(v) for v in xi[b, t]], h)
                assert tr[di].state[b, t].tolist() == h, (shape, di, b, t)
                assert tr[di].h[b, t].tolist() == y, (shape, di, b, t)


def test_saturated_update_gate_keeps_the_state_exactly() -> None:
    """z = 2^15 exactly (its pre-activation past the table's end) keeps h bit for bit, whatever the
    candidate: the GRU's long-lag memory, like the LSTM's saturated forget gate (§16)."""
    rng = np.random.default_rng(5)
    d = rand_gru(rng, 2, 4, init=True)
    b = d.b.copy()
    b[:4] = 20.0  # update gate pre-activation >= 20 - |W x + R h|: sigma rounds to 1.0
    fm = FloatModel((InputNode("x", 2), GruNode("g", 0, 2, 4, (dataclasses.replace(d, b=b),))), "x", "y",
                    seq_view(2), seq_view(4))
    x = rng.normal(0, 1, (3, 50, 2))
    q = quantize(fm, x)
    layer = q.nodes[1]
    _, _, _, tr = gru_checked.run_gru(layer, q.quantize_input(x).astype(np.int64), np.full(3, 50), trace=True)
    assert (tr[0].gates[:, :, :4] == 1 << 15).all()
    assert (tr[0].state == layer.directions[0].initial_h[0]).all()


# ---------------------------------------------------------------------------------------
# fast path == checked kernels
# ---------------------------------------------------------------------------------------
def _same(a, b, where: str) -> None:
    for f in ("pre", "gates", "state", "h", "valid"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f"{where}: {f}"


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_equals_checked(shape: str, monkeypatch) -> None:
    """Exact equality of outputs and every traced value, on adversarial inputs (int8 extremes,
    random, and runs of one value) with variable lengths (zero included), per layer and through
    the whole model."""
    for seed in range(3):
        m, q = quantized(shape, seed)
        rng = np.random.default_rng(100 + seed)
        for layer in _grus(q):
            assert all(p is not None for p in gru_fast.plans(layer)), shape
            x = np.concatenate([rng.choice([-128, 127], (5, 14, layer.input_size)),
                                rng.integers(-128, 128, (5, 14, layer.input_size)),
                                np.repeat(rng.integers(-128, 128, (5, 1, layer.input_size)), 14, axis=1)])
            lens = rng.integers(0, 15, 15)
            monkeypatch.setattr(checked, "CHECKED", True)
            yc, hc, _, tc = gru_checked.run_gru(layer, x, lens, trace=True)
            monkeypatch.setattr(checked, "CHECKED", False)
            yf, hf, _, tf = gru_checked.run_gru(layer, x, lens, trace=True)
            assert np.array_equal(yc, yf) and all(np.array_equal(u, v) for u, v in zip(hc, hf, strict=True))
            for d, (a, b) in enumerate(zip(tf, tc, strict=True)):
                _same(a, b, f"{shape} seed {seed} {layer.name} direction {d}")
        x, lens = data_for(m, 9)
        xi = q.quantize_input(x)
        outs = []
        for flag in (True, False):
            monkeypatch.setattr(checked, "CHECKED", flag)
            outs.append(q.run_int(xi, sequence_lens=lens))
        assert np.array_equal(*outs)


# ---------------------------------------------------------------------------------------
# the overflow proof (§16) at its worst case
# ---------------------------------------------------------------------------------------
def test_worst_case_inputs_stay_within_the_proof(monkeypatch) -> None:
    """Large weights and biases, inputs and states at the int8 / int16 extremes chosen per row to
    maximise the accumulators: every actual value lies within its bound, the bounds within int32,
    and the checked kernels (every stored value range-checked) do not overflow."""
    monkeypatch.setattr(checked, "CHECKED", True)
    for lbr in (True, False):
        rng = np.random.default_rng(21)
        I, H = 5, 16
        d = rand_gru(rng, I, H, lbr=lbr, gain=6.0, bias=4.0)
        fm = FloatModel((InputNode("x", I), GruNode("g", 0, I, H, (d,), linear_before_reset=lbr)), "x", "y",
                        seq_view(I), seq_view(H))
        q = quantize(fm, rng.normal(0, 3, (8, 10, I)))
        layer = q.nodes[1]
        dq = layer.directions[0]
        zp = layer.input_zero_point
        a_x, a_h = widened_acc_bound(dq.w, dq.pre_x), state_acc_bound(dq.r, dq.state_shift)
        tb = gru_gate_sum_bound(dq.w, dq.r, dq.pre_x, dq.state_shift, dq.mult_x, dq.mult_h, dq.bias, dq.rbias)
        assert tb.max() <= 2**31 - 1
        for row in range(3 * H):
            for sign in (1, -1):  # every (x - zp) and h term of the row's sums with one sign
                x = np.where(np.sign(dq.w[row]) * sign >= 0, 127, -128).astype(np.int64)
                h = np.where(np.sign(dq.r[row]) * sign >= 0, 32767, -32768).astype(np.int64)
                vx = (x - zp) << dq.pre_x
                vh = gru_checked.state_input(dq, h[None])[0]
                assert abs(int(dq.w[row].astype(np.int64) @ vx)) <= a_x[row]
                assert abs(int(dq.r[row].astype(np.int64) @ vh)) <= a_h[row]
                tx = checked.input_side(layer, dq, x[None, None])[:, 0]
                assert abs(int(tx[0, row])) <= tb[row]
                hn, y, z, g = gru_checked.gru_step(layer, dq, None, h[None], tx=tx)  # checked: raises on overflow
                assert (np.abs(hn) <= 32768).all()


# ---------------------------------------------------------------------------------------
# the .tlq file and its checker
# ---------------------------------------------------------------------------------------
def test_tlq_round_trip_and_checker(tmp_path) -> None:
    m, q = quantized("gru_gru_softmax")
    path = tmp_path / "m.tlq"
    q.save(path)
    q2 = QuantizedModel.load(path)
    x, _ = data_for(m, 3)
    xi = q.quantize_input(x)
    assert np.array_equal(q.run_int(xi), q2.run_int(xi))
    assert not q.nodes[1].linear_before_reset and q.nodes[2].linear_before_reset
    bad = {  # (node, field, value, message)
        "rbias without linear_before_reset": (1, "rbias", np.ones(8, np.int32), "'rbias' must be zero"),
        "state_shift": (2, "state_shift", 0, "'state_shift' = 0 must lie in [1, 15]"),
        "mult_h": (2, "mult_h", np.full(24, 2**15, np.int32), "'mult_h' must lie in [0, 2^15)"),
        "bias": (1, "bias", np.full(24, 2**31 - 1, np.int32), "gate sums t could overflow"),
        "update shifts": (2, "a_n", 3, "update shifts (a_h, a_n, s_u)"),
    }
    for what, (node, field, value, msg) in bad.items():
        layer = q.nodes[node]
        dd = dataclasses.replace(layer.directions[0], **{field: value})
        nodes = list(q.nodes)
        nodes[node] = dataclasses.replace(layer, directions=(dd,) + layer.directions[1:])
        dataclasses.replace(q, nodes=tuple(nodes)).save(tmp_path / "bad.tlq")
        with pytest.raises(ModelFormatError, match=re.escape(msg)):
            QuantizedModel.load(tmp_path / "bad.tlq")
        assert what


# ---------------------------------------------------------------------------------------
# exported models and the trained ones
# ---------------------------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch"


@pytest.mark.parametrize("name", ["lstm_gru_last_bf_legacy", "gru_seq_l2bi_bf_dynamo", "gru_hn_l2_bf_legacy"])
def test_exported_gru_models_end_to_end(name: str) -> None:
    """PyTorch exports (mixed LSTM/GRU stacks, bidirectional, Y_h heads) through quantize -> simulate."""
    fm = tinylstm.load_onnx(FIXTURES / f"{name}.onnx")
    data = np.load(FIXTURES / f"{name}.npz")
    xs = [data["x0"], data["x1"]]
    q = quantize(fm, xs)
    for x in xs:
        err = np.abs(q.run(x).astype(np.float64) - fm.run(x)).max() / q.output_scale
        assert err <= BUDGET_LSB, f"{name}: {err:.2f} LSB"


def _trained(name: str):
    onnx_path = MODELS / f"{name}.onnx"
    if not onnx_path.exists():
        pytest.skip(f"{onnx_path.name} not trained yet")
    fm = tinylstm.load_onnx(onnx_path)
    q = quantize(fm, calibrate(fm, MODELS / f"{name}_calib.npz", progress=False))
    return q, load_task_file(MODELS / f"{name}_test.npz"), json.loads((MODELS / f"{name}.json").read_text())


def test_trained_adding_gru() -> None:
    """Issue #18: adding T = 100, at most max(3, float wrong) of 2560 sequences wrong."""
    q, test, info = _trained("adding_gru_T100")
    s = tasks.score(tasks.predict_by_length(q.run, test), test)
    assert s.n == 2560 and s.wrong <= max(3, info["float_test_score"]["wrong"]), s


def test_trained_gru_classifier() -> None:
    """Issue #18: the JapaneseVowels GRU at most 0.5 points below float."""
    q, test, info = _trained("japanese_vowels_gru")
    s = tasks.score(tasks.predict_by_length(q.run, test), test)
    assert s.accuracy >= info["float_test_score"]["accuracy"] - 0.005, s


# ---------------------------------------------------------------------------------------
# C generation (phase 2b; the C itself: tests/test_gru_c.py)
# ---------------------------------------------------------------------------------------
def test_c_generation_takes_a_gru(tmp_path, capsys) -> None:
    """Phase 2b: the check that used to refuse a GRU passes it, and ``generate`` writes its C."""
    from tinylstm.cli import main
    from tinylstm.pipeline import check_c_generation

    _, q = quantized("last_dense")
    check_c_generation(q)
    q.save(tmp_path / "g.tlq")
    assert main(["generate", str(tmp_path / "g.tlq"), "-o", str(tmp_path / "out")]) == 0
    # linear_before_reset = 1, no clip, state Q(15): the common case's fast step, and no other GRU step
    c = (tmp_path / "out" / "model.c").read_text()
    assert set(re.findall(r"\b(tl_gru_step_\w+)\(", c)) == {"tl_gru_step_fast_q15"}
