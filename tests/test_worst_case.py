"""Worst-case arithmetic: models built to sit at the overflow proof's limits (docs/quantization.md
§11, integer spec v2), fed adversarial int8 inputs, through the checked simulator (every stored
value checked against its C type: no ``SimulatorOverflow``; forced for this module) and the
generated C built with ASan+UBSan (signed overflow, shifts, bounds), compared exactly: outputs and
every LSTM state of every step, run() and step().

Limits: every LSTM weight at +-max of its type in every row (int16 and int8; §11.1 widened
accumulators with their pre-shifts), fan-in at the largest the quantizer accepts (asked by
bisection: one more input must be refused with a QuantizationError naming the node), biases so
large that the gate sum t sits at its int32 bound (§11.3), peepholes at +-32767, clip, saturated
gates, cells driven to both int16 limits, heads with extreme weights, softmax over 1 and many
classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, stacked_model
from tinylstm.codegen.emit import emit_model

import tinylstm
from tinylstm.cbuild import emulated as ctarget
from tinylstm.cbuild.host import HostExe, build_host, run_c
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.errors import QuantizationError
from tinylstm.fixedpoint import INT32_MAX
from tinylstm.ir import DenseNode, FloatModel, LstmNode
from tinylstm.qmodel import QLstm, QuantizedModel
from tinylstm.qmodel.bounds import gate_sum_bound
from tinylstm.quantize.quantizer import DEFAULT_PRE_FRAC, quantize

T_ADV = 24  # steps of the adversarial inputs
CELL_LIMITS = (-32768, 32767)


@pytest.fixture(scope="module", autouse=True)
def checked_simulator():
    """The checked simulator: every stored value range-checked (the point of these cases)."""
    from tinylstm.simulate import checked

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checked, "CHECKED", True)
        yield


# ---------------------------------------------------------------------------------------------
# model construction: seeded ONNX graph, then the float IR's weights replaced by extreme ones
# ---------------------------------------------------------------------------------------------
def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=shape)


def _patch(fm: FloatModel, lstm: Callable[[LstmNode], LstmNode] | None = None,
           dense: Callable[[DenseNode], DenseNode] | None = None) -> FloatModel:
    nodes = []
    for n in fm.nodes:
        if isinstance(n, LstmNode) and lstm is not None:
            n = lstm(n)
        elif isinstance(n, DenseNode) and dense is not None:
            n = dense(n)
        nodes.append(n)
    return dataclasses.replace(fm, nodes=tuple(nodes))


def _extreme_lstm(rng: np.random.Generator, w: float, r: float, b: float, p: float | None = None,
                  same_sign: bool = False) -> Callable[[LstmNode], LstmNode]:
    """Every weight of magnitude ``w`` / ``r`` (so every row quantizes to +-max of its type),
    biases +-``b``, peepholes +-``p``."""

    def f(node: LstmNode) -> LstmNode:
        dirs = []
        for d in node.directions:
            sw = np.ones(d.w.shape) if same_sign else _signs(rng, d.w.shape)
            sr = np.ones(d.r.shape) if same_sign else _signs(rng, d.r.shape)
            dirs.append(dataclasses.replace(
                d, w=(w * sw).astype(np.float32), r=(r * sr).astype(np.float32),
                b=(b * _signs(rng, d.b.shape)).astype(np.float32),
                p=None if d.p is None or p is None else (p * _signs(rng, d.p.shape)).astype(np.float32)))
        return dataclasses.replace(node, directions=tuple(dirs))

    return f


def _gate_bias(bi: float, bf: float, bg: float, bo: float, w: float = 0.01) -> Callable[[LstmNode], LstmNode]:
    """Tiny weights, per-gate biases (rows i, f, g, o): drives gates and the cell deterministically."""

    def f(node: LstmNode) -> LstmNode:
        H = node.hidden_size
        dirs = [dataclasses.replace(d, w=np.full(d.w.shape, w, np.float32), r=np.full(d.r.shape, w, np.float32),
                                    b=np.repeat(np.array([bi, bf, bg, bo], np.float32), H))
                for d in node.directions]
        return dataclasses.replace(node, directions=tuple(dirs))

    return f


def _extreme_dense(rng: np.random.Generator, w: float, b: float) -> Callable[[DenseNode], DenseNode]:
    def f(node: DenseNode) -> DenseNode:
        return dataclasses.replace(node, weight=(w * _signs(rng, node.weight.shape)).astype(np.float32),
                                   bias=(b * _signs(rng, node.bias.shape)).astype(np.float32))

    return f


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    name: str
    qmodel: QuantizedModel
    inputs: tuple[np.ndarray, ...]  # int8, ONNX layout


def adversarial_inputs(q: QuantizedModel, rows: int, steps: int, seed: int) -> tuple[np.ndarray, ...]:
    """All +127, all -128, alternating +127/-128 in time and feature, random extremes, uniform."""
    rng = np.random.default_rng(seed)
    shape = q.input_view.onnx_shape(rows, steps)
    canon = (rows, steps, q.nodes[0].features)
    alt = np.where((np.arange(steps)[:, None] + np.arange(canon[2])[None, :]) % 2 == 0, 127, -128)
    alt_t = np.where(np.arange(steps) % 2 == 0, 127, -128)[:, None].repeat(canon[2], axis=1)
    xs = [np.full(canon, 127), np.full(canon, -128), np.broadcast_to(alt, canon), np.broadcast_to(alt_t, canon),
          rng.choice(np.array([-128, 127]), size=canon), rng.integers(-128, 128, canon)]
    out = tuple(q.input_view.from_canonical(np.ascontiguousarray(x)).astype(np.int8) for x in xs)
    assert all(x.shape == shape for x in out)
    return out


def _build(name: str, specs: list[LstmSpec], head: HeadSpec, *, lstm=None, dense=None, calib_scale: float = 1.0,
           calib_steps: int = 8, nonneg: bool = False, seed: int = 0, **opts) -> tuple[FloatModel, QuantizedModel]:
    fm = _patch(tinylstm.load_onnx(stacked_model(specs, head=head, seed=seed)), lstm, dense)
    rng = np.random.default_rng(seed + 1)
    shape = fm.input_view.onnx_shape(3, calib_steps)
    x = rng.uniform(0.0, calib_scale, shape) if nonneg else rng.normal(0.0, calib_scale, shape)
    return fm, quantize(fm, [x.astype(np.float32)], **opts)


def _case(name: str, q: QuantizedModel, rows: int = 2, steps: int = T_ADV, seed: int = 0) -> Case:
    return Case(name, q, adversarial_inputs(q, rows, steps, seed))


def _lstms(q: QuantizedModel) -> list[QLstm]:
    return [n for n in q.nodes if isinstance(n, QLstm)]


# ---------------------------------------------------------------------------------------------
# the fan-in limit, asked of the quantizer
# ---------------------------------------------------------------------------------------------
def _fanin_model(inputs: int) -> FloatModel:
    spec = LstmSpec(input_size=inputs, hidden_size=1)
    return _patch(tinylstm.load_onnx(stacked_model([spec], head=HeadSpec("last_gemm", out_features=1))),
                  _extreme_lstm(np.random.default_rng(0), 1.0, 1.0, 0.5, same_sign=True))


def _fanin_quantize(inputs: int) -> QuantizedModel:
    """Same-sign weights, calibration in [0, 1] (input zero point -128): the matvec bound is tight."""
    fm = _fanin_model(inputs)
    x = np.random.default_rng(1).uniform(0.0, 1.0, fm.input_view.onnx_shape(1, 2)).astype(np.float32)
    return quantize(fm, [x])


def largest_fanin(lo: int, hi: int) -> int:
    """The largest input size in [lo, hi) the quantizer accepts (it accepts lo, refuses hi)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _fanin_quantize(mid)
            lo = mid
        except QuantizationError:
            hi = mid
    return lo


_FANIN: dict[str, int] = {}


def fanin_limit() -> int:
    if "k" not in _FANIN:
        _FANIN["k"] = largest_fanin(256, 1 << 17)
    return _FANIN["k"]


def test_fanin_limit_is_the_proofs_bound() -> None:
    """8-bit weights, widened inputs |x - zp| <= 255 at pre-shift 0 (§11.1): 255 * 127 * K <= 2^31 - 1."""
    k = fanin_limit()
    assert k == INT32_MAX // (255 * 127)
    assert _lstms(_fanin_quantize(k))[0].directions[0].pre_x == 0
    q = _fanin_quantize(k)
    w = _lstms(q)[0].directions[0].w
    assert w.dtype == np.int8 and np.all(np.abs(w) == 127)
    assert _lstms(q)[0].pre_frac < DEFAULT_PRE_FRAC  # the pre-activation bound (§11.3) lowered P too
    with pytest.raises(QuantizationError, match="lstm_1") as e:
        _fanin_quantize(k + 1)
    assert "input matmul" in str(e.value)


def test_int16_weights_kept_up_to_fanin_257() -> None:
    """int16 weights hold for fan-in 257 (255 * 32767 * 257 <= 2^31 - 1, §11.1), one bit less at 258."""
    w257 = _lstms(_fanin_quantize(257))[0].directions[0].w
    assert w257.dtype == np.int16 and np.all(np.abs(w257) == 32767)
    w258 = _lstms(_fanin_quantize(258))[0].directions[0].w
    assert np.all(np.abs(w258) == 16383)


# ---------------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------------
def _cases() -> list[Case]:
    rng = np.random.default_rng(2026)
    cases = []
    # every LSTM weight at +-32767 (int16) / +-127 (int8), huge biases, extreme head
    for bits in (16, 8):
        _, q = _build(f"w{bits}", [LstmSpec(input_size=5, hidden_size=6), LstmSpec(input_size=6, hidden_size=4)],
                      HeadSpec("last_gemm", out_features=3), lstm=_extreme_lstm(rng, 2.0, 2.0, 40.0),
                      dense=_extreme_dense(rng, 50.0, 300.0), lstm_weight_bits=bits)
        for layer in _lstms(q):
            for d in layer.directions:
                qmax = 32767 if bits == 16 else 127
                assert np.all(np.abs(d.w) == qmax) and np.all(np.abs(d.r) == qmax)
        cases.append(_case(f"weights_int{bits}_at_max", q))
    # peepholes at +-32767 with clip, bidirectional, saturated gates; softmax over 1 class
    _, q = _build("peep", [LstmSpec(input_size=3, hidden_size=5, peepholes=True, clip=2.0,
                                    direction="bidirectional")],
                  HeadSpec("last_gemm", out_features=1, activations=("Softmax",)),
                  lstm=_extreme_lstm(rng, 3.0, 3.0, 10.0, p=8.0))
    assert all(np.all(np.abs(d.peep) == 32767) for d in _lstms(q)[0].directions)
    cases.append(_case("peepholes_max_clip_softmax1", q))
    # peepholes without clip, huge biases, many-class softmax and log-softmax heads
    for act, classes in (("Softmax", 300), ("LogSoftmax", 257)):
        _, q = _build(act, [LstmSpec(input_size=4, hidden_size=6, peepholes=True)],
                      HeadSpec("last_gemm", out_features=classes, activations=("Relu", act) if act == "Softmax"
                               else (act,)),
                      lstm=_extreme_lstm(rng, 4.0, 4.0, 60.0, p=20.0), dense=_extreme_dense(rng, 30.0, 100.0))
        cases.append(_case(f"peepholes_max_{act.lower()}{classes}", q))
    # cells driven to each int16 limit: i, f, g saturated, calibrated on 3 steps (c <= 3), run 24
    for sign in (1.0, -1.0):
        _, q = _build("cell", [LstmSpec(input_size=2, hidden_size=4)],
                      HeadSpec("per_step", out_features=2, activations=("Tanh",)),
                      lstm=_gate_bias(30.0, 30.0, 30.0 * sign, 30.0), calib_steps=3)
        cases.append(_case(f"cell_to_{'max' if sign > 0 else 'min'}", q))
    # saturated gates everywhere: huge input and recurrent weights, 8-bit
    _, q = _build("sat", [LstmSpec(input_size=3, hidden_size=3, clip=0.5)], HeadSpec("none"),
                  lstm=_extreme_lstm(rng, 200.0, 200.0, 500.0), calib_scale=5.0, lstm_weight_bits=8)
    cases.append(_case("gates_saturated_clip", q))
    # fan-in: input 257 at int16 (the widest int16 row), recurrent 257, and the quantizer's maximum
    _, q = _build("fanin257", [LstmSpec(input_size=257, hidden_size=2)], HeadSpec("last_gemm", out_features=2),
                  lstm=_extreme_lstm(rng, 1.0, 1.0, 0.5, same_sign=True), nonneg=True)
    d = _lstms(q)[0].directions[0]
    assert d.w.dtype == np.int16 and np.all(np.abs(d.w) == 32767) and d.pre_x == 0
    cases.append(_case("fanin_input_257_int16", q, steps=6))
    _, q = _build("rec257", [LstmSpec(input_size=1, hidden_size=257)], HeadSpec("last_gemm", out_features=2),
                  lstm=_extreme_lstm(rng, 1.0, 1.0, 1.0, same_sign=True))
    d = _lstms(q)[0].directions[0]
    assert d.r.dtype == np.int16 and np.all(np.abs(d.r) == 32767) and d.pre_h == 0
    cases.append(_case("fanin_recurrent_257_int16", q, rows=1, steps=6))
    # biases so large that the gate sum t reaches its int32 bound (§11.3): shifts lowered per row
    _, q = _build("bias", [LstmSpec(input_size=3, hidden_size=4, peepholes=True)], HeadSpec("last_gemm", 2),
                  lstm=_extreme_lstm(rng, 0.05, 0.05, 3000.0, p=0.5))
    layer = _lstms(q)[0]
    d = layer.directions[0]
    tb = gate_sum_bound(d.w, d.r, d.pre_x, d.pre_h, d.mult_x, d.mult_h, d.bias)
    assert tb.max() > 2**30 and tb.max() <= INT32_MAX and int(np.abs(d.bias.astype(np.int64)).max()) > 2**30
    cases.append(_case("bias_at_gate_sum_limit", q))
    k = fanin_limit()
    cases.append(_case(f"fanin_input_{k}_int8_limit", _fanin_quantize(k), rows=1, steps=3))
    return cases


_CASES: dict[str, list[Case]] = {}


def cases() -> list[Case]:
    if "c" not in _CASES:
        _CASES["c"] = _cases()
    return _CASES["c"]


def test_simulator_checks_pass_on_every_adversarial_input() -> None:
    """No SimulatorOverflow anywhere, and the limits are really reached."""
    reached: set[int] = set()
    clipped: set[int] = set()
    for c in cases():
        for x in c.inputs:
            y, tr = c.qmodel.run_int(x, trace=True)  # raises SimulatorOverflow on any unfit value
            for t in tr.values():
                for d in t:
                    reached |= {v for v in CELL_LIMITS if (d.c == v).any()}
                    if c.name == "gates_saturated_clip":  # o pre-activation clipped at +-clip
                        layer = _lstms(c.qmodel)[0]
                        H = layer.hidden_size
                        clipped |= {int(v) for v in np.abs(d.pre[..., 3 * H:]).ravel()} & {layer.clip_q}
    assert reached == set(CELL_LIMITS)
    assert len(clipped) == 1


@pytest.fixture(scope="module", params=[("gcc", "-O1"), ("clang", "-O2")], ids=["gcc-O1", "clang-O2"])
def sanitized(request, tmp_path_factory) -> HostExe:
    """Every case in one harness, built with ASan+UBSan (UBSan halts on the first report)."""
    compiler, opt = request.param
    reason = missing_reason(compiler)
    if reason is not None:
        pytest.skip(reason)
    return build_host([c.qmodel for c in cases()], tmp_path_factory.mktemp(f"worst_{compiler}"), compiler=compiler,
                      opt=opt, sanitize=True, max_steps=T_ADV)


def _same(c: Case, i: int, exe: HostExe, x: np.ndarray, mode: str) -> list[str]:
    y_sim, tr_sim = c.qmodel.run_int(x, trace=True)
    y_c, tr_c = run_c(exe, x, mode, trace=True, model=i)
    bad = []
    if y_c.shape != y_sim.shape or not np.array_equal(y_c, y_sim):
        bad.append("output")
    assert tr_c is not None
    for name, dirs in tr_c.items():
        for d, ct in enumerate(dirs):
            st = tr_sim[name][d]
            for field in ("valid", "h", "c"):
                if not np.array_equal(getattr(ct, field), getattr(st, field)):
                    bad.append(f"{name}[{d}].{field}")
    return [f"{c.name} {mode} x{x.shape} (first value {int(x.flat[0])}): {', '.join(bad)}"] if bad else []


def test_c_with_sanitizers_equals_simulator(sanitized: HostExe) -> None:
    problems: list[str] = []
    runs = 0
    for i, c in enumerate(cases()):
        modes = ["run"] + (["step"] if sanitized.plans[i].has_step else [])
        for x in c.inputs:
            for mode in modes:
                problems += _same(c, i, sanitized, x, mode)
                runs += 1
    assert runs >= 2 * len(cases()) * 6 - 6 * sum(not p.has_step for p in sanitized.plans)
    assert not problems, "\n".join(problems[:5])


def test_case_names_are_unique() -> None:
    names = [c.name for c in cases()]
    assert len(names) == len(set(names)) == 12


def test_negative_control_without_the_proof_the_simulator_overflows(monkeypatch) -> None:
    """The checks can fail: with the quantizer's int32 bounds switched off, fan-in 300 keeps
    int16 weights and all +127 overflows the accumulator, which the simulator reports."""
    import importlib

    from tinylstm.simulate.checked import SimulatorOverflow

    monkeypatch.setattr(importlib.import_module("tinylstm.quantize.lstm"), "INT32_MAX", 2**40)
    q = _fanin_quantize(300)  # 300 * 32767 * (127 + 128) > 2^31 - 1
    assert np.all(np.abs(_lstms(q)[0].directions[0].w) == 32767)
    with pytest.raises(SimulatorOverflow, match="input matvec"):
        q.run_int(np.full(q.input_view.onnx_shape(1, 2), 127, np.int8))


_ARM_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm", "gcc")


@pytest.mark.cross
@pytest.mark.skipif(_ARM_MISSING is not None, reason=_ARM_MISSING or "")
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_fast_step_cases_on_target(target: str, tmp_path) -> None:
    """The cases whose layers take ``tl_lstm_step_fast`` (every standard-table case: cells at both
    int16 limits, every weight at +-max in int16 and int8, peepholes at +-32767 with and without
    clip, fan-in 257, the gate sum at its bound) on an emulated core: SMLAWB / SMLAWT gate sums (M4)
    and the 16-bit-half products (M0+), every adversarial input, outputs and every LSTM state equal
    to the simulator's."""
    fast = [c for c in cases() if "tl_lstm_step_fast(" in emit_model(c.qmodel, "m")["m.c"]]
    assert {"cell_to_max", "cell_to_min", "weights_int16_at_max", "weights_int8_at_max",
            "peepholes_max_clip_softmax1", "bias_at_gate_sum_limit"} <= {c.name for c in fast}
    problems: list[str] = []
    for c in fast:
        exe = ctarget.build_target(c.qmodel, target, tmp_path / c.name, "-Os", trace=True, max_steps=T_ADV)
        for x in c.inputs:
            y_sim, tr_sim = c.qmodel.run_int(x, trace=True)
            r = ctarget.run_target(exe, x, "run", trace=True)
            same = np.array_equal(r.y, y_sim) and all(
                np.array_equal(getattr(ct, f), getattr(tr_sim[name][d], f))
                for name, dirs in (r.trace or {}).items() for d, ct in enumerate(dirs) for f in ("valid", "h", "c"))
            if not same:
                problems.append(f"{c.name} x{x.shape} (first value {int(x.flat[0])})")
    assert not problems, problems
