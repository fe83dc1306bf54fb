"""tinylstm.ir.reference.lstm_forward against onnxruntime, one LSTM node, every attribute.

The LstmNode is built by hand here (an independent ONNX -> IR conversion: gate order
i, o, f, c -> i, f, g, o, bias folding, peephole order i, o, f -> i, f, o, onnxruntime's
activation defaults), so this checks the reference's equations without the importer.
Y, Y_h and Y_c must all agree within 1e-5.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from onnx_builders import (
    ACTIVATION_USES,
    ORT_ACTIVATION_DEFAULTS,
    ORT_LSTM_ACTIVATIONS,
    GraphBuilder,
    LstmSpec,
    LstmWeights,
    random_input,
    run_ort,
)

from tinylstm.ir import Activation, LstmDirection, LstmNode
from tinylstm.ir.reference import lstm_forward

ATOL = 1e-5
BATCH, TIME = 3, 6
ONNX_TO_IFGO = [0, 2, 3, 1]  # blocks of W/R/B rows: i, o, f, c -> i, f, c(g), o
ONNX_P_TO_IFO = [0, 2, 1]  # P blocks: i, o, f -> i, f, o


def _blocks(a: np.ndarray, order: list[int]) -> np.ndarray:
    """Reorder the 4 gate blocks of the rows of ``a``."""
    parts = np.split(a, 4, axis=0)
    return np.concatenate([parts[k] for k in order], axis=0)


def resolve_activations(spec: LstmSpec) -> list[Activation]:
    """activations / activation_alpha / activation_beta as onnxruntime reads them: lists
    consumed in order by the functions that take a parameter, missing ones defaulted."""
    names = list(spec.activations or ("Sigmoid", "Tanh", "Tanh") * spec.num_directions)
    alphas = list(spec.activation_alpha or ())
    betas = list(spec.activation_beta or ())
    out = []
    for n in names:
        canon = {k.lower(): k for k in ORT_LSTM_ACTIVATIONS}[n.lower()]
        uses_a, uses_b = ACTIVATION_USES[canon]
        da, db = ORT_ACTIVATION_DEFAULTS[canon]
        a = b = None
        if uses_a:
            a = alphas.pop(0) if alphas else da
        if uses_b:
            b = betas.pop(0) if betas else db
        out.append(Activation(canon, a, b))
    return out


def to_ir(spec: LstmSpec, wts: LstmWeights) -> LstmNode:
    """ONNX tensors of a layout-0 LSTM -> the float IR's LstmNode."""
    h = spec.hidden_size
    acts = resolve_activations(spec)
    dirs = []
    for d in range(spec.num_directions):
        bias = np.zeros(4 * h, np.float32)
        if wts.b is not None:
            bias = (wts.b[d, : 4 * h].astype(np.float64) + wts.b[d, 4 * h :]).astype(np.float32)
        p = None
        if wts.p is not None:
            p = wts.p[d].reshape(3, h)[ONNX_P_TO_IFO]
        zeros = np.zeros((1, h), np.float32)
        dirs.append(
            LstmDirection(
                w=_blocks(wts.w[d], ONNX_TO_IFGO),
                r=_blocks(wts.r[d], ONNX_TO_IFGO),
                b=_blocks(bias, ONNX_TO_IFGO),
                p=p,
                initial_h=wts.initial_h[d] if wts.initial_h is not None else zeros,
                initial_c=wts.initial_c[d] if wts.initial_c is not None else zeros,
                reverse=d == 1 or spec.direction == "reverse",
                activations=tuple(acts[3 * d : 3 * d + 3]),  # type: ignore[arg-type]
            )
        )
    return LstmNode(
        name="lstm_1",
        src=0,
        input_size=spec.input_size,
        hidden_size=h,
        directions=tuple(dirs),
        clip=spec.clip,
        input_forget=spec.input_forget,
        sequence_lens=wts.lens,
    )


def compare(spec: LstmSpec, *, seed: int = 0, x_scale: float = 1.0) -> None:
    spec = replace(spec, outputs=("Y", "Y_h", "Y_c"))
    b = GraphBuilder(seed=seed)
    x_name = b.sequence_input("x", layout=0, batch=BATCH, time=TIME, features=spec.input_size)
    out = b.lstm(x_name, spec, batch=BATCH)
    model = b.build([out.y, out.y_h, out.y_c])
    x = random_input(model, BATCH, TIME, seed=seed + 1, scale=x_scale)
    y, yh, yc = run_ort(model, x)
    wts = out.weights
    node = to_ir(spec, wts)
    lens = wts.lens.astype(np.int64) if wts.lens is not None else np.full(BATCH, TIME)
    ry, rh, rc = lstm_forward(node, x.transpose(1, 0, 2).astype(np.float64), lens)
    d, h = spec.num_directions, spec.hidden_size
    want_y = y.transpose(2, 0, 1, 3).reshape(BATCH, TIME, d * h)  # [T, D, B, H] -> (B, T, D*H)
    want_h = yh.transpose(1, 0, 2).reshape(BATCH, d * h)
    want_c = yc.transpose(1, 0, 2).reshape(BATCH, d * h)
    assert np.isfinite(want_y).all()
    for what, got, want in (("Y", ry, want_y), ("Y_h", rh, want_h), ("Y_c", rc, want_c)):
        err = float(np.abs(got - want).max())
        assert err <= ATOL, f"{what}: max |reference - onnxruntime| = {err:.3g}"


SCALES = {"realistic": None, "saturating": 3.0}
DIRECTIONS = ("forward", "reverse", "bidirectional")


@pytest.mark.parametrize("scale", SCALES.values(), ids=SCALES.keys())
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_plain(direction: str, scale: float | None) -> None:
    compare(LstmSpec(direction=direction, scale=scale))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_no_bias(direction: str) -> None:
    compare(LstmSpec(direction=direction, bias=False))


@pytest.mark.parametrize("scale", SCALES.values(), ids=SCALES.keys())
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_peepholes(direction: str, scale: float | None) -> None:
    compare(LstmSpec(direction=direction, peepholes=True, scale=scale))


@pytest.mark.parametrize("clip", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("peepholes", [False, True], ids=["no-peep", "peep"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_clip(direction: str, peepholes: bool, clip: float) -> None:
    """clip on i, f, g after the i/f peepholes; on o after its peephole on the new cell;
    the cell itself is not clipped (saturating weights so the clip matters)."""
    compare(LstmSpec(direction=direction, peepholes=peepholes, clip=clip, scale=3.0), x_scale=2.0)


@pytest.mark.parametrize("peepholes", [False, True], ids=["no-peep", "peep"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_input_forget(direction: str, peepholes: bool) -> None:
    """input_forget=1: f = 1 - i (i after its peephole); the forget weights are unused."""
    compare(LstmSpec(direction=direction, peepholes=peepholes, input_forget=True, scale=2.0))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_initial_states(direction: str) -> None:
    compare(LstmSpec(direction=direction, initial_h="initializer", initial_c="initializer"))


@pytest.mark.parametrize("which", ["initial_h", "initial_c"])
def test_one_initial_state(which: str) -> None:
    compare(replace(LstmSpec(), **{which: "initializer"}))


@pytest.mark.parametrize("lens", [(6, 3, 1), (2, 6, 4), (6, 6, 6)], ids=str)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sequence_lens(direction: str, lens: tuple[int, ...]) -> None:
    """Past a row's length: Y = 0, Y_h/Y_c = the state after the last processed step;
    reverse starts at each row's len - 1."""
    compare(
        LstmSpec(
            direction=direction,
            sequence_lens="initializer",
            lens=lens,
            initial_h="initializer",
            initial_c="initializer",
            peepholes=True,
        )
    )


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sequence_lens_zero_zero_state(direction: str) -> None:
    """A row of length 0 with zero initial state: Y, Y_h, Y_c all 0."""
    compare(LstmSpec(direction=direction, sequence_lens="initializer", lens=(6, 0, 2)))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sequence_lens_zero_with_initial_state(direction: str) -> None:
    """onnxruntime: a row of length 0 gives Y_h = Y_c = 0, NOT the initial state."""
    compare(
        LstmSpec(
            direction=direction,
            sequence_lens="initializer",
            lens=(6, 0, 2),
            initial_h="initializer",
            initial_c="initializer",
        )
    )


def _explicit_params(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    uses_a, uses_b = ACTIVATION_USES[name]
    return ((0.7,) if uses_a else ()), ((0.3,) if uses_b else ())


@pytest.mark.parametrize("slot", [0, 1, 2], ids=["f", "g", "h"])
@pytest.mark.parametrize("name", ORT_LSTM_ACTIVATIONS)
def test_activation_explicit_params(name: str, slot: int) -> None:
    acts = ["Sigmoid", "Tanh", "Tanh"]
    acts[slot] = name
    alpha, beta = _explicit_params(name)
    compare(
        LstmSpec(
            activations=tuple(acts),
            activation_alpha=alpha or None,
            activation_beta=beta or None,
            peepholes=True,
        )
    )


@pytest.mark.parametrize("slot", [0, 1, 2], ids=["f", "g", "h"])
@pytest.mark.parametrize("name", [n for n in ORT_LSTM_ACTIVATIONS if any(ACTIVATION_USES[n])])
def test_activation_default_params(name: str, slot: int) -> None:
    """alpha/beta absent: onnxruntime's own defaults (Affine/ScaledTanh/ThresholdedRelu: 0)."""
    acts = ["Sigmoid", "Tanh", "Tanh"]
    acts[slot] = name
    compare(LstmSpec(activations=tuple(acts)))


def test_activation_params_consumed_in_order() -> None:
    """Only functions that take alpha (beta) consume the next activation_alpha (beta) value;
    a list that runs short leaves the rest at their defaults (HardSigmoid's beta: 0.5)."""
    compare(
        LstmSpec(
            activations=("HardSigmoid", "LeakyRelu", "Elu"),
            activation_alpha=(0.3, 0.05),
            activation_beta=(),
        )
    )
    compare(
        LstmSpec(
            activations=("HardSigmoid", "ScaledTanh", "Affine"),
            activation_alpha=(0.3, 1.5, 0.7),
            activation_beta=(0.6, 0.8, 0.1),
        )
    )


def test_activation_names_case_insensitive() -> None:
    compare(LstmSpec(activations=("sigmoid", "TANH", "relu")))


def test_bidirectional_activations_per_direction() -> None:
    compare(
        LstmSpec(
            direction="bidirectional",
            activations=("Sigmoid", "Tanh", "Tanh", "HardSigmoid", "Softsign", "Relu"),
            activation_alpha=(0.25,),
            activation_beta=(0.45,),
        )
    )


def test_everything_at_once() -> None:
    compare(
        LstmSpec(
            direction="bidirectional",
            peepholes=True,
            clip=1.5,
            input_forget=True,
            sequence_lens="initializer",
            lens=(5, 6, 2),
            initial_h="initializer",
            initial_c="initializer",
            scale=2.0,
            activations=("Sigmoid", "Tanh", "Softsign", "HardSigmoid", "Tanh", "Tanh"),
            activation_alpha=(0.3,),
            activation_beta=(0.55,),
        )
    )
