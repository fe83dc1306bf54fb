"""Differential fuzzing: random models -> quantize -> generate C -> compile -> exact equality with
the simulator (output and every LSTM state), through run() and step().

Random shapes (1-3 layers, H 1-12, I 1-9), every LSTM attribute the quantizer accepts
(directions, peepholes, clip, input_forget, bias, activations with alpha/beta, initial states,
sequence_lens as initializer or input, layout), heads (last / first step, Y_h, per step; Relu,
Tanh, Sigmoid, Softmax, LogSoftmax), quantize options (pre_frac, lut_size, cell_headroom), and
inputs including all 127 / all -128 / uniform int8 and longer sequences. Each hypothesis example
is a batch of models compiled into ONE harness (compiling is the slow part).

bench/fuzz_c_long.py runs the same generator for hundreds of models and millions of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from onnx_builders import ACTIVATION_USES, HeadSpec, LstmSpec, stacked_model

import tinylstm
from tinylstm.cbuild.host import HostExe, build_host, run_c
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.errors import TinyLstmError
from tinylstm.qmodel import QuantizedModel
from tinylstm.quantize.quantizer import quantize

pytestmark = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))

GATE_ACTS = ("Sigmoid", "HardSigmoid", "Tanh", "ScaledTanh")
CELL_ACTS = ("Tanh", "Sigmoid", "HardSigmoid", "ScaledTanh", "Softsign")
CLIPPED_ONLY = ("Relu", "LeakyRelu", "Affine", "Elu", "Softsign", "ThresholdedRelu", "Softplus")
HEADS = ("none", "last_gemm", "last_slice_gemm_t0", "first_gemm", "state_matmul", "state_flatten_gemm", "per_step")
HEAD_ACTS = ((), ("Relu",), ("Tanh",), ("Sigmoid",), ("Softmax",), ("LogSoftmax",), ("Relu", "Softmax"))


class Picker(Protocol):
    """Where random choices come from: hypothesis (``DataPicker``) or numpy (``RngPicker``)."""

    def int(self, lo: int, hi: int) -> int: ...
    def float(self, lo: float, hi: float) -> float: ...
    def pick(self, options: tuple | list) -> Any: ...
    def bool(self, p: float = 0.5) -> bool: ...


class RngPicker:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def float(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, options):
        return options[int(self.rng.integers(0, len(options)))]

    def bool(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)


class DataPicker:
    def __init__(self, data):
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def float(self, lo: float, hi: float) -> float:
        return self.data.draw(st.floats(lo, hi, allow_nan=False))

    def pick(self, options):
        return self.data.draw(st.sampled_from(list(options)))

    def bool(self, p: float = 0.5) -> bool:
        return self.data.draw(st.booleans())


@dataclass(frozen=True)
class Recipe:
    """A random model and what to feed it."""

    specs: tuple[LstmSpec, ...]
    head: HeadSpec
    batch: int | str  # static batch (1) or "batch"
    glue: str
    seed: int
    options: tuple[tuple[str, Any], ...]  # quantize() keyword arguments
    times: tuple[int, ...]  # sequence lengths of the test inputs
    rows: int  # rows per test input


def _activations(pick: Picker, clip: float | None) -> tuple[tuple[str, str, str], tuple[float, ...], tuple[float, ...]]:
    f = pick.pick(GATE_ACTS)
    g = pick.pick(CELL_ACTS + (CLIPPED_ONLY if clip is not None else ()))
    if g == "Softsign" and clip is None:
        g = "Tanh"
    h = pick.pick(CELL_ACTS)
    alpha, beta = [], []
    for a in (f, g, h):
        ua, ub = ACTIVATION_USES[a]
        if a == "HardSigmoid":
            alpha.append(round(pick.float(0.1, 0.5), 3))
            beta.append(round(pick.float(0.3, 0.7), 3))
            continue
        if ua:
            alpha.append(round(pick.float(0.2, 2.0), 3) if a != "ThresholdedRelu" else round(pick.float(0.0, 0.5), 3))
        if ub:
            beta.append(round(pick.float(-0.5, 1.5), 3) if a != "ScaledTanh" else round(pick.float(0.3, 1.5), 3))
    return (f, g, h), tuple(alpha), tuple(beta)


def random_recipe(pick: Picker) -> Recipe:
    layers = pick.pick((1, 1, 2, 2, 3))
    layout = pick.pick((0, 0, 1))
    static = pick.bool(0.25)  # batch fixed at 1: initial states and constant lengths allowed
    lens_kind = pick.pick(("none", "none", "none", "input") + (("initializer",) if static else ()))
    const_len = pick.int(1, 6)
    specs = []
    in_size = pick.int(1, 9)
    for k in range(layers):
        direction = pick.pick(("forward", "forward", "reverse", "bidirectional"))
        clip = round(pick.float(0.3, 4.0), 3) if pick.bool(0.3) else None
        acts, alpha, beta = _activations(pick, clip) if pick.bool(0.4) else (None, (), ())
        nd = 2 if direction == "bidirectional" else 1
        spec = LstmSpec(
            input_size=in_size,
            hidden_size=pick.int(1, 12),
            direction=direction,
            layout=layout,
            bias=pick.bool(0.8),
            peepholes=pick.bool(0.3),
            clip=clip,
            input_forget=pick.bool(0.15),
            activations=acts * nd if acts else None,
            activation_alpha=alpha * nd if alpha else None,
            activation_beta=beta * nd if beta else None,
            sequence_lens=(lens_kind if (k == 0 or pick.bool(0.5)) else "none"),
            lens=(const_len,) if lens_kind == "initializer" else None,
            initial_h=pick.pick(("none", "zeros") + (("initializer",) if static else ())),
            initial_c=pick.pick(("none", "zeros") + (("initializer",) if static else ())),
            scale=pick.pick((None, None, 0.3, 2.0, 4.0)),
            state_scale=pick.float(0.1, 1.5),
        )
        specs.append(spec)
        in_size = spec.features
    head_kind = pick.pick(HEADS)
    head = HeadSpec(head_kind, out_features=pick.int(1, 6), activations=pick.pick(HEAD_ACTS) if head_kind != "none"
                    else pick.pick(((), ("Tanh",))), trans_b=pick.pick((0, 1)))
    lo = const_len if lens_kind == "initializer" else 1
    times = tuple(sorted({max(lo, t) for t in (pick.pick((1, 2, 3)), pick.int(4, 12), pick.int(13, 60))}))
    options = (("pre_frac", pick.pick((16, 16, 8, 12, 20))), ("lut_size", pick.pick((512, 512, 16, 64, 2048))),
               ("cell_headroom", pick.pick((1.0, 1.0, 1.5, 3.0))), ("lstm_weight_bits", pick.pick((16, 16, 8))))
    return Recipe(tuple(specs), head, 1 if static else "batch", pick.pick(("squeeze", "reshape")),
                  pick.int(0, 2**31 - 1), options, times, 1 if static else pick.int(1, 4))


@dataclass(frozen=True, eq=False)
class Case:
    recipe: Recipe
    onnx_model: onnx.ModelProto
    qmodel: QuantizedModel
    inputs: tuple[tuple[np.ndarray, np.ndarray | None], ...]  # int8 ONNX layout, sequence_lens


def make_case(recipe: Recipe) -> Case | None:
    """Build, import and quantize; None when the quantizer (rightly) refuses the random model."""
    head = recipe.head
    if head.kind in ("state_matmul", "state_flatten_gemm") and any(s.layout == 1 for s in recipe.specs):
        head = replace(head, kind="last_gemm")
    m = stacked_model(list(recipe.specs), head=head, batch=recipe.batch, seed=recipe.seed, glue=recipe.glue)
    return quantized_case(recipe, m)


def quantized_case(recipe: Any, m: onnx.ModelProto) -> Case | None:
    """Import and quantize model ``m`` of ``recipe`` (its seed, rows, times and quantize options) and
    draw its int8 inputs: per length a quantized normal and a uniform batch, then the extremes; None
    when the importer (glue its own tests cover) or the quantizer (rightly) refuses it."""
    rng = np.random.default_rng(recipe.seed)
    try:
        fm = tinylstm.load_onnx(m)
    except TinyLstmError:
        return None
    lens_input = fm.sequence_lens_input is not None
    rows = recipe.rows
    calib_t = max(recipe.times[0], 6)

    def shape(t: int) -> tuple[int, ...]:
        return fm.input_view.onnx_shape(rows, t)

    try:
        calib = [rng.normal(0, rng.uniform(0.3, 3.0), shape(calib_t)).astype(np.float32) for _ in range(2)]
        q = quantize(fm, calib, **dict(recipe.options))  # lengths input: calibrated at full length
    except TinyLstmError:
        return None
    inputs = []
    for t in recipe.times:
        lens = rng.integers(0, t + 1, rows).astype(np.int32) if lens_input else None
        inputs.append((q.quantize_input(rng.normal(0, 1.5, shape(t))), lens))
        inputs.append((rng.integers(-128, 128, shape(t)).astype(np.int8), lens))
    t = recipe.times[-1]
    lens = np.full(rows, t, np.int32) if lens_input else None
    inputs.append((np.full(shape(t), 127, np.int8), lens))
    inputs.append((np.full(shape(t), -128, np.int8), lens))
    return Case(recipe, m, q, tuple(inputs))


@dataclass
class Tally:
    models: int = 0
    refused: int = 0
    sequences: int = 0
    steps: int = 0  # time steps fed to C (rows x steps, each mode)
    mismatches: int = 0


def check_cases(exe: HostExe, cases: list[Case], tally: Tally, trace: bool = True) -> list[str]:
    """Compare every case through run (and step when available); returns mismatch descriptions."""
    problems = []
    for i, c in enumerate(cases):
        for x, lens in c.inputs:
            y_sim, tr_sim = c.qmodel.run_int(x, sequence_lens=lens, trace=True)
            modes = ["run"] + (["step"] if exe.plans[i].has_step and lens is None else [])
            for mode in modes:
                y_c, tr_c = run_c(exe, x, mode, trace=trace, model=i, sequence_lens=lens)
                rows, steps = c.qmodel.input_view.to_canonical(x).shape[:2]
                tally.sequences += rows
                tally.steps += rows * steps
                ok = y_c.shape == y_sim.shape and np.array_equal(y_c, y_sim)
                if tr_c is not None:
                    for name, dirs in tr_c.items():
                        for d, ct in enumerate(dirs):
                            st_ = tr_sim[name][d]
                            ok = ok and np.array_equal(ct.valid, st_.valid) and np.array_equal(ct.h, st_.h) \
                                and np.array_equal(ct.c, st_.c)
                if not ok:
                    tally.mismatches += 1
                    problems.append(f"model {i} {mode} x{tuple(x.shape)} recipe={c.recipe}")
    return problems


def build_cases(recipes: list, workdir: Path, tally: Tally, max_steps: int = 64,
                make: Callable[..., Case | None] | None = None, **kw) -> tuple[HostExe | None, list[Case]]:
    """Make the cases (``make``: the recipe's builder, default ``make_case``) and one host harness for them."""
    cases = []
    for r in recipes:
        c = (make or make_case)(r)
        if c is None:
            tally.refused += 1
        else:
            cases.append(c)
    tally.models += len(cases)
    if not cases:
        return None, cases
    return build_host([c.qmodel for c in cases], workdir, max_steps=max_steps, **kw), cases


_counter = {"n": 0}


@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure prints its recipe
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_models_bit_exact(tmp_path_factory, data) -> None:
    pick = DataPicker(data)
    recipes = [random_recipe(pick) for _ in range(6)]
    _counter["n"] += 1
    tally = Tally()
    exe, cases = build_cases(recipes, tmp_path_factory.mktemp(f"fuzz{_counter['n']}"), tally)
    if exe is None:
        return
    problems = check_cases(exe, cases, tally)
    assert not problems, "\n".join(problems[:3])
    assert tally.steps > 0


def test_generator_is_not_mostly_refused(tmp_path: Path) -> None:
    """The random generator mostly makes models the quantizer accepts, of every kind."""
    pick = RngPicker(np.random.default_rng(2024))
    cases = [make_case(random_recipe(pick)) for _ in range(30)]
    ok = [c for c in cases if c is not None]
    assert len(ok) >= 20
    from tinylstm.codegen.plan import make_plan

    plans = [make_plan(c.qmodel, 64) for c in ok]
    assert any(p.streaming for p in plans) and any(not p.streaming for p in plans)
    assert any(p.output_seq for p in plans) and any(not p.output_seq for p in plans)
