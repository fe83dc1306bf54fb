"""GRU models for the C tests (tests/test_gru_c.py, tests/test_gru_c_target.py) and the QEMU fuzz
(bench/fuzz_target.py --cell gru): hand-picked integer models that reach every path of the C runtime
(``tl_gru_step_fast`` with and without its Armv7E-M block loop, ``tl_gru_step_s8`` for each of its
reasons) and a random generator of ONNX GRU stacks (mixed with LSTM layers, heads, every GRU
attribute the quantizer accepts, quantize options).

Hand-picked models are built in the float IR (tests/test_gru_quantize.py's ``make_gru_model`` shapes
plus the variants below) and quantized on their own data; the random ones go through ONNX
(tests/gru_builders.py) like tests/test_c_fuzz.py's LSTM recipes, and give that module's ``Case``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from gru_builders import GruSpec, stacked_rnn_model
from onnx_builders import ACTIVATION_USES, HeadSpec, LstmSpec
from test_c_fuzz import Case, Picker, quantized_case
from test_gru_quantize import SHAPES, data_for, make_gru_model, rand_gru, seq_view, vec_view

from tinylstm.ir import SIGMOID, TANH, Activation, FloatModel, GruNode, InputNode, SelectStepNode
from tinylstm.qmodel import QGru, QuantizedModel
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.quantizer import quantize


# ---------------------------------------------------------------------------------------------
# hand-picked integer models
# ---------------------------------------------------------------------------------------------
def _single(seed: int, I: int, H: int, *, lbr: bool, clip: float | None = None, h0: float = 0.0,
            acts: tuple[Activation, Activation] = (SIGMOID, TANH), reverse: bool = False) -> FloatModel:
    """x -> one GRU direction -> its last output (a vector)."""
    rng = np.random.default_rng(seed)
    d = rand_gru(rng, I, H, lbr=lbr, acts=acts, reverse=reverse)
    if h0:
        d = dataclasses.replace(d, initial_h=rng.uniform(-h0, h0, (1, H)))
    nodes = (InputNode("x", I), GruNode("gru", 0, I, H, (d,), clip=clip, linear_before_reset=lbr),
             SelectStepNode("last", 1, -1, H))
    return FloatModel(nodes, "x", "y", seq_view(I), vec_view(H))


#: (name, float model maker, quantize options): every C path. The fast step: both linear_before_reset
#: forms, int8 weights, clip, a state Q(14) (a_h = 1: initial_h beyond 1); the general step: custom
#: tables (q_f = 15 and 14, a Relu candidate), gate inputs coarser than the table grid, a state Q(16)
#: (a_n = 1: the candidate bounded by a small clip).
SPECIAL = (
    ("fast-lbr1-H9", lambda: _single(11, 5, 9, lbr=True), {}),
    ("fast-lbr0-H6", lambda: _single(12, 4, 6, lbr=False), {}),
    ("fast-lbr1-int8", lambda: _single(13, 6, 8, lbr=True), {"lstm_weight_bits": 8}),
    ("fast-lbr0-int8-clip", lambda: _single(14, 3, 7, lbr=False, clip=1.5), {"lstm_weight_bits": 8}),
    ("fast-lbr1-clip", lambda: _single(15, 4, 5, lbr=True, clip=2.0), {}),
    ("fast-lbr1-state-q14", lambda: _single(16, 3, 6, lbr=True, h0=1.8), {}),
    ("fast-lbr0-state-q14", lambda: _single(17, 3, 5, lbr=False, h0=1.8, reverse=True), {}),
    ("general-coarse-gates-P8-table8192", lambda: _single(18, 4, 6, lbr=True), {"pre_frac": 8, "lut_size": 8192}),
    ("general-state-q16", lambda: _single(19, 4, 5, lbr=False, clip=0.5), {}),
    ("general-hardsigmoid-softsign-clip", lambda: _single(
        20, 3, 6, lbr=True, clip=2.0, acts=(Activation("HardSigmoid", 0.25, 0.5), Activation("Softsign"))), {}),
)


def quantized_model(make, opts: dict, seed: int = 7) -> QuantizedModel:
    m = make()
    x, lens = data_for(m, seed)
    return quantize(m, calibrate(m, x, sequence_lens=lens), **opts)


def tie_model(q: QuantizedModel, seed: int) -> QuantizedModel:
    """``q`` (one GRU direction) with zero weights, update-gate rows at z = 0 (bias 0: gz = 2^14
    exactly, so the update sum z h + (1 - z) n sits on a rounding tie whenever h + n is odd, resp. n is
    odd for a_h = 1), random reset and candidate biases and a random int16 initial state: the update's
    round half to even exercised at every step (the hand models above almost never meet a tie)."""
    layer = gru_layers(q)[0]
    d = layer.directions[0]
    rng = np.random.default_rng(seed)
    H = layer.hidden_size
    bias = np.asarray(d.bias, np.int64).copy()
    bias[:H] = 0
    bias[H:] = rng.integers(-(1 << 20), 1 << 20, 2 * H)
    rbias = rng.integers(-(1 << 20), 1 << 20, H) if layer.linear_before_reset else np.zeros(H, np.int64)
    d2 = dataclasses.replace(d, w=np.zeros_like(d.w), r=np.zeros_like(d.r), bias=bias.astype(np.int32),
                             rbias=rbias.astype(np.int32),
                             initial_h=rng.integers(-32768, 32768, (1, H)).astype(np.int16))
    nodes = tuple(dataclasses.replace(n, directions=(d2,)) if n is layer else n for n in q.nodes)
    return dataclasses.replace(q, nodes=nodes)


def hand_models() -> list[tuple[str, QuantizedModel, FloatModel]]:
    """The 8 shapes of tests/test_gru_quantize.py (int16 weights; int8 for every other one),
    :data:`SPECIAL` and three tie models (:func:`tie_model`: linear_before_reset 1 and 0, a_h = 1)."""
    out = []
    for i, shape in enumerate(SHAPES):
        opts = {"lstm_weight_bits": 8} if i % 2 else {}
        out.append((f"{shape}{'-int8' if opts else ''}", quantized_model(lambda s=shape: make_gru_model(s), opts),
                    make_gru_model(shape)))
    special = {}
    for name, make, opts in SPECIAL:
        special[name] = (quantized_model(make, opts), make())
        out.append((name, *special[name]))
    for k, name in enumerate(("fast-lbr1-H9", "fast-lbr0-H6", "fast-lbr1-state-q14")):
        q, fm = special[name]
        out.append((f"ties-{name}", tie_model(q, 30 + k), fm))
    return out


def gru_layers(q: QuantizedModel) -> list[QGru]:
    return [n for n in q.nodes if isinstance(n, QGru)]


def hand_inputs(q: QuantizedModel, fm: FloatModel, seed: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Random data (with lengths when the model takes them), and saturating extremes, as int8."""
    out = []
    for k, steps in enumerate((1, 7, 23)):
        x, lens = data_for(fm, seed + k, batch=3, steps=steps)
        out.append((q.quantize_input(x * 1.5), lens))
    x, lens = data_for(fm, seed, batch=2, steps=12)
    x8 = q.quantize_input(x)
    full = None if lens is None else np.full(2, 12, np.int32)
    out.append((np.full_like(x8, 127), full))
    out.append((np.full_like(x8, -128), full))
    out.append((np.where(np.arange(x8.size).reshape(x8.shape) % 2 == 0, 127, -128).astype(np.int8), full))
    return out


# ---------------------------------------------------------------------------------------------
# random ONNX recipes
# ---------------------------------------------------------------------------------------------
GATE_ACTS = ("Sigmoid", "HardSigmoid", "ScaledTanh")
CAND_ACTS = ("Tanh", "Sigmoid", "HardSigmoid", "ScaledTanh")
CLIPPED_ONLY = ("Softsign", "Relu", "LeakyRelu", "Affine")
HEADS = ("none", "last_gemm", "state_matmul", "state_flatten_gemm", "per_step")
HEAD_ACTS = ((), ("Relu",), ("Tanh",), ("Softmax",), ("LogSoftmax",))


@dataclass(frozen=True)
class GruRecipe:
    """A random GRU (or mixed GRU / LSTM) stack and what to feed it."""

    specs: tuple[GruSpec | LstmSpec, ...]
    head: HeadSpec
    batch: int | str  # static batch (1) or "batch"
    seed: int
    options: tuple[tuple[str, Any], ...]  # quantize() keyword arguments
    times: tuple[int, ...]
    rows: int


def _alpha_beta(pick: Picker, names: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    alpha, beta = [], []
    for a in names:
        ua, ub = ACTIVATION_USES[a]
        if a == "HardSigmoid":
            alpha.append(round(pick.float(0.1, 0.5), 3))
            beta.append(round(pick.float(0.3, 0.7), 3))
        elif a == "ScaledTanh":
            alpha.append(round(pick.float(0.5, 2.0), 3))
            beta.append(round(pick.float(0.2, 1.0), 3))
        else:
            if ua:
                alpha.append(round(pick.float(0.1, 1.5), 3))
            if ub:
                beta.append(round(pick.float(-0.5, 0.5), 3))
    return tuple(alpha), tuple(beta)


def random_gru_recipe(pick: Picker) -> GruRecipe:
    layers = pick.pick((1, 1, 2, 2, 3))
    layout = pick.pick((0, 0, 1))
    static = pick.bool(0.25)
    lens_kind = pick.pick(("none", "none", "input") + (("initializer",) if static else ()))
    const_len = pick.int(1, 6)
    gru_at = pick.int(0, layers - 1)  # at least one GRU
    specs: list[GruSpec | LstmSpec] = []
    in_size = pick.int(1, 9)
    for k in range(layers):
        direction = pick.pick(("forward", "forward", "reverse", "bidirectional"))
        nd = 2 if direction == "bidirectional" else 1
        lens = (lens_kind if (k == 0 or pick.bool(0.5)) else "none")
        common = dict(input_size=in_size, hidden_size=pick.int(1, 12), direction=direction, layout=layout,
                      bias=pick.bool(0.8), sequence_lens=lens, lens=(const_len,) if lens == "initializer" else None,
                      initial_h=pick.pick(("none", "zeros") + (("initializer",) if static else ())),
                      scale=pick.pick((None, None, 0.3, 2.0, 4.0)), state_scale=pick.float(0.1, 1.5))
        if k == gru_at or pick.bool(0.6):
            clip = round(pick.float(0.3, 4.0), 3) if pick.bool(0.3) else None
            acts, alpha, beta = None, (), ()
            if pick.bool(0.35):
                f = pick.pick(GATE_ACTS)
                g = pick.pick(CAND_ACTS + (CLIPPED_ONLY if clip is not None else ()))
                alpha, beta = _alpha_beta(pick, (f, g))
                acts = (f, g)
            spec: GruSpec | LstmSpec = GruSpec(
                **common, linear_before_reset=pick.pick((None, 0, 1, 1)), clip=clip,
                activations=acts * nd if acts else None, activation_alpha=alpha * nd if alpha else None,
                activation_beta=beta * nd if beta else None)
        else:
            spec = LstmSpec(**common, initial_c=pick.pick(("none", "zeros")), clip=None)
        specs.append(spec)
        in_size = spec.features
    head_kind = pick.pick(HEADS)
    if head_kind in ("state_matmul", "state_flatten_gemm") and layout == 1:
        head_kind = "last_gemm"
    head = HeadSpec(head_kind, out_features=pick.int(1, 6),
                    activations=pick.pick(HEAD_ACTS) if head_kind != "none" else pick.pick(((), ("Tanh",))))
    lo = const_len if lens_kind == "initializer" else 1
    times = tuple(sorted({max(lo, t) for t in (pick.pick((1, 2, 3)), pick.int(4, 12), pick.int(13, 60))}))
    options = (("pre_frac", pick.pick((16, 16, 8, 12, 20))), ("lut_size", pick.pick((512, 512, 16, 64, 2048))),
               ("cell_headroom", pick.pick((1.0, 1.0, 1.5, 3.0))), ("lstm_weight_bits", pick.pick((16, 16, 8))))
    return GruRecipe(tuple(specs), head, 1 if static else "batch", pick.int(0, 2**31 - 1), options, times,
                     1 if static else pick.int(1, 4))


def make_gru_case(recipe: GruRecipe) -> Case | None:
    """Build, import and quantize; None when the importer or the quantizer (rightly) refuses it."""
    m = stacked_rnn_model(list(recipe.specs), head=recipe.head, batch=recipe.batch, seed=recipe.seed,
                          emulate_layout1=True)
    return quantized_case(recipe, m)
