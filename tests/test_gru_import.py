"""tinylstm.load_onnx(model).run(x) against the oracles for every attribute of the ONNX GRU.

Each case builds a model in-process (tests/gru_builders.py), imports it, and runs several batch
sizes and sequence lengths through it: same output shape as onnxruntime's first output and max
|difference| <= 1e-5 (:data:`ATOL`).

onnxruntime 1.32 refuses ``layout=1`` for GRU ("Batchwise recurrent operations (layout == 1) are
not supported"): layout-1 cases compare against onnxruntime on a twin model that wraps a layout-0
GRU in Transposes (same weights and graph shapes), and the plain layout-1 cases also against
``onnx.reference`` run on the layout-1 file itself (it implements ``layout``, ``direction``,
``linear_before_reset`` and ``initial_h``, and ignores ``clip``, ``activations`` and
``sequence_lens``, so it is the oracle only where it reads every attribute of the node).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx
import pytest
from gru_builders import GruSpec, single_gru_model, stacked_rnn_model
from onnx.reference import ReferenceEvaluator
from onnx_builders import (
    ACTIVATION_USES,
    ORT_LSTM_ACTIVATIONS,
    HeadSpec,
    LstmSpec,
    input_shape,
    ort_session,
    random_input,
    random_lengths,
    run_ort,
)

import tinylstm

ATOL = 1e-5
#: (batch, time) runs for dynamic models; static dims keep their declared size
SIZES = ((1, 1), (3, 7), (2, 16), (4, 33))
DIRECTIONS = ("forward", "reverse", "bidirectional")
SATURATING = 3.0  # weight scale: gates saturate
Build = Callable[[bool], onnx.ModelProto]  # emulate_layout1 -> model


@dataclass(frozen=True)
class Case:
    build: Build
    x_scale: float = 1.0
    #: lengths for a sequence_lens graph input: None (no such input) or the minimum length
    lens_min: int | None = None
    #: skip SIZES longer than this (unbounded activations grow without limit)
    max_time: int | None = None


def _layout_of(model: onnx.ModelProto) -> int:
    for n in model.graph.node:
        if n.op_type in ("GRU", "LSTM"):
            return next((int(a.i) for a in n.attribute if a.name == "layout"), 0)
    return 0


def max_error(case: Case, seed: int = 0) -> float:
    """Import, then compare with onnxruntime over SIZES; returns the largest |difference|."""
    model = case.build(False)
    twin = case.build(True)  # identical unless the model has a layout-1 layer
    imported = tinylstm.load_onnx(model)
    session = ort_session(twin)
    seen, worst = set(), 0.0
    layout = _layout_of(model)
    for k, (batch, time) in enumerate(SIZES):
        shape = input_shape(model, batch, time)
        if shape in seen or (case.max_time is not None and time > case.max_time):
            continue
        seen.add(shape)
        x = random_input(model, batch, time, seed=seed + k, scale=case.x_scale)
        lens = None
        if case.lens_min is not None:
            n_batch, n_time = (shape[1], shape[0]) if layout == 0 else (shape[0], shape[1])
            lens = random_lengths(n_batch, n_time, seed=seed + k, min_len=case.lens_min)
        want = run_ort(twin, x, lens, session=session)[0]
        got = imported.run(x, sequence_lens=lens) if lens is not None else imported.run(x)
        assert np.isfinite(want).all(), "onnxruntime output not finite: bad test case"
        assert got.shape == want.shape, f"input {shape}: shape {got.shape} != {want.shape}"
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= ATOL, f"input {shape}: max |tinylstm - onnxruntime| = {err:.3g}"
        worst = max(worst, err)
    return worst


def single(spec: GruSpec, **kw) -> Build:
    return lambda emulate: single_gru_model(spec, emulate_layout1=emulate, **kw)


def stacked(specs: list, head: HeadSpec | None = None, **kw) -> Build:
    return lambda emulate: stacked_rnn_model(specs, head=head, emulate_layout1=emulate, **kw)


def _cases() -> list:
    p = []

    def add(id_: str, build: Build, **kw) -> None:
        p.append(pytest.param(Case(build, **kw), id=id_))

    for d in DIRECTIONS:
        for lbr in (0, 1):
            g = GruSpec(direction=d, linear_before_reset=lbr)
            for layout in (0, 1):
                add(f"{d}-lbr{lbr}-layout{layout}", single(replace(g, layout=layout)))
            add(f"{d}-lbr{lbr}-saturating", single(replace(g, scale=SATURATING)), x_scale=2.0)
            add(f"{d}-lbr{lbr}-no-bias", single(replace(g, bias=False)))
            for clip in (0.3, 2.0):
                add(f"{d}-lbr{lbr}-clip-{clip}", single(replace(g, clip=clip, scale=SATURATING)), x_scale=2.0)
            add(f"{d}-lbr{lbr}-sequence_lens-graph-input", single(replace(g, sequence_lens="input")), lens_min=1)
            add(f"{d}-lbr{lbr}-sequence_lens-zero-lengths", single(replace(g, sequence_lens="input")), lens_min=0)
            add(f"{d}-lbr{lbr}-sequence_lens-initializer-initial_h-output-Y_h-first",
                single(replace(g, sequence_lens="initializer", lens=(7, 0, 3), initial_h="initializer",
                               outputs=("Y", "Y_h")), batch=3, time=7, graph_outputs=("Y_h", "Y")))
            add(f"{d}-lbr{lbr}-initial_h-initializer", single(replace(g, initial_h="initializer"), batch=3))
            add(f"{d}-lbr{lbr}-initial_h-ConstantOfShape-zeros-output-Y_h",
                single(replace(g, initial_h="zeros", outputs=("Y_h",))))
            add(f"{d}-lbr{lbr}-layout1-initial_h-sequence_lens-output-Y_h",
                single(replace(g, layout=1, initial_h="initializer", sequence_lens="input", outputs=("Y", "Y_h")),
                       batch=3, graph_outputs=("Y_h", "Y")), lens_min=1)
    add("lbr-2-acts-as-1", single(GruSpec(linear_before_reset=2, scale=2.0)))
    for batch, time in ((3, 5), (3, "time"), ("batch", 5), (1, "time")):
        add(f"dims-batch-{batch}-time-{time}", single(GruSpec(linear_before_reset=1), batch=batch, time=time))
        add(f"dims-batch-{batch}-time-{time}-layout1",
            single(GruSpec(layout=1, direction="bidirectional"), batch=batch, time=time))

    # --- activations: each of onnxruntime's eleven in f and in g, with alpha/beta -----------------
    for name in ORT_LSTM_ACTIVATIONS:
        uses_a, uses_b = ACTIVATION_USES[name]
        for slot, slot_name in enumerate("fg"):
            acts = ["Sigmoid", "Tanh"]
            acts[slot] = name
            spec = GruSpec(activations=tuple(acts), activation_alpha=(0.7,) if uses_a else None,
                           activation_beta=(0.3,) if uses_b else None, linear_before_reset=slot)
            # unbounded gate functions (z > 1) make the state grow exponentially in time
            unbounded_f = slot_name == "f" and name in ("Softplus", "Relu", "Affine", "LeakyRelu", "Elu",
                                                        "ThresholdedRelu")
            add(f"activation-{name}-as-{slot_name}-explicit-params", single(spec),
                max_time=7 if unbounded_f else None)
    for name in ("LeakyRelu", "HardSigmoid", "Elu"):  # onnxruntime = ONNX operator defaults
        add(f"activation-{name}-as-g-default-params", single(GruSpec(activations=("Sigmoid", name))))
    add("activation-HardSigmoid-alpha-only-beta-default",
        single(GruSpec(activations=("HardSigmoid", "Tanh"), activation_alpha=(0.3,))))
    add("activation-params-consumed-in-order",
        single(GruSpec(activations=("HardSigmoid", "ScaledTanh"), activation_alpha=(0.3, 1.5),
                       activation_beta=(0.6, 0.8), linear_before_reset=1)))
    add("activation-names-lowercase", single(GruSpec(activations=("sigmoid", "TANH"))))
    add("activation-bidirectional-per-direction",
        single(GruSpec(direction="bidirectional", activations=("Sigmoid", "Tanh", "HardSigmoid", "Softsign"),
                       activation_alpha=(0.25,), activation_beta=(0.45,), linear_before_reset=1)))
    add("everything-bidirectional",
        single(GruSpec(direction="bidirectional", linear_before_reset=1, clip=1.5, sequence_lens="input",
                       initial_h="zeros", scale=2.0, activations=("HardSigmoid", "Softsign", "Sigmoid", "Tanh"),
                       activation_alpha=(0.3,), activation_beta=(0.55,))), lens_min=1)

    # --- stacks (GRU, mixed GRU / LSTM) and heads ---------------------------------------------------
    bi = GruSpec(direction="bidirectional", initial_h="zeros", linear_before_reset=1)
    fw = GruSpec(linear_before_reset=1)
    lstm = LstmSpec(input_size=4, hidden_size=5, initial_h="zeros", initial_c="zeros")
    add("stacked-2-bidirectional-last-step-gemm", stacked([bi, replace(bi, input_size=8)], HeadSpec("last_gemm")))
    add("stacked-2-bidirectional-layout1-last-step-gemm",
        stacked([replace(bi, layout=1), replace(bi, layout=1, input_size=8)], HeadSpec("last_gemm")))
    add("stacked-3-forward-lbr-0-1-0", stacked([replace(fw, linear_before_reset=0), replace(fw, input_size=4),
                                               replace(fw, input_size=4, linear_before_reset=0)]))
    add("stacked-forward-then-reverse-Y_h-head",
        stacked([fw, replace(fw, input_size=4, direction="reverse")], HeadSpec("state_matmul")))
    add("mixed-gru-then-lstm-last-step-gemm-softmax",
        stacked([fw, lstm], HeadSpec("last_gemm", out_features=3, activations=("Softmax",))))
    add("mixed-lstm-then-bidirectional-gru-Y_h-flatten-gemm",
        stacked([LstmSpec(input_size=3, hidden_size=4), replace(bi, input_size=4)],
                HeadSpec("state_flatten_gemm", out_features=3)))
    add("mixed-gru-lstm-gru-per-step-relu", stacked([fw, lstm, replace(fw, input_size=5, hidden_size=3)],
                                                    HeadSpec("per_step", out_features=4, activations=("Relu",))))
    add("mixed-layout1-lstm-gru-per-step-logsoftmax",
        stacked([LstmSpec(layout=1, direction="bidirectional"), replace(bi, layout=1, input_size=8)],
                HeadSpec("per_step", out_features=3, activations=("LogSoftmax",))))
    add("head-Y_h-squeeze-matmul-add", stacked([fw], HeadSpec("state_matmul", out_features=3)))
    add("head-sequence_lens-input-bidirectional-Y_h",
        stacked([replace(bi, sequence_lens="input")], HeadSpec("state_flatten_gemm")), lens_min=1)
    return p


@pytest.mark.parametrize("case", _cases())
def test_matches_onnxruntime(case: Case) -> None:
    max_error(case)


@pytest.mark.parametrize("opset", [9, 13, 14, 17, 21])
def test_opsets(opset: int) -> None:
    """A stacked GRU classifier written for several opsets (GRU-7 up to 13, GRU-14 with layout)."""
    fw = GruSpec(linear_before_reset=1, initial_h="zeros")
    max_error(Case(stacked([fw, replace(fw, input_size=4, direction="bidirectional")],
                           HeadSpec("last_gemm", activations=("Softmax",)), opset=opset)))


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("what", ["layout1", "layout1-initial_h", "hidden_size-omitted"])
def test_onnxruntime_refusals_match_onnx_reference(direction: str, lbr: int, what: str) -> None:
    """Where onnxruntime refuses the file (``layout=1``: "Batchwise recurrent operations are not
    supported"; no ``hidden_size``: required by its kernel, optional in ONNX), onnx.reference runs
    it as written."""
    spec = GruSpec(direction=direction, linear_before_reset=lbr, outputs=("Y", "Y_h"), scale=1.5,
                   layout=0 if what == "hidden_size-omitted" else 1,
                   initial_h="initializer" if what == "layout1-initial_h" else "none",
                   hidden_size_attr=0 if what == "hidden_size-omitted" else None)
    batch = 3 if spec.initial_h == "initializer" else "batch"
    for outputs in (("Y", "Y_h"), ("Y_h", "Y")):
        model = single_gru_model(spec, batch=batch, graph_outputs=outputs)
        ref = ReferenceEvaluator(model)
        imported = tinylstm.load_onnx(model)
        for k, (b, t) in enumerate(((3, 1), (3, 9))):
            x = random_input(model, b, t, seed=k, scale=1.5)
            want = ref.run(None, {"x": x})[0]
            got = imported.run(x)
            assert got.shape == want.shape
            err = float(np.abs(got.astype(np.float64) - want).max())
            assert err <= ATOL, f"{outputs[0]} at {x.shape}: max |tinylstm - onnx.reference| = {err:.3g}"


@pytest.mark.parametrize("name,slot", [("Affine", 1), ("ScaledTanh", 1), ("ThresholdedRelu", 0)])
def test_activation_ort_specific_default_params_refused(name: str, slot: int) -> None:
    """Without activation_alpha/beta onnxruntime runs these with alpha = beta = 0, not the ONNX
    operators' defaults: refused (node and field named), as for the LSTM."""
    acts = ["Sigmoid", "Tanh"]
    acts[slot] = name
    with pytest.raises(tinylstm.UnsupportedModelError, match="node 'gru_1', activation_alpha"):
        tinylstm.load_onnx(single_gru_model(GruSpec(activations=tuple(acts))))


# --------------------------------------------------------------------------------------
# Errors: each names the node and the field
# --------------------------------------------------------------------------------------
def _refused(model: onnx.ModelProto, exc: type[tinylstm.TinyLstmError], *fragments: str) -> None:
    with pytest.raises(exc) as info:
        tinylstm.load_onnx(model)
    for f in fragments:
        assert f in str(info.value), f"{f!r} missing from the error message: {info.value}"


@pytest.mark.parametrize("spec, fragments", [
    (GruSpec(extra_attrs=(("input_forget", 1),)), ("node 'gru_1', input_forget:", "attribute 'input_forget'")),
    (GruSpec(direction="Forward"), ("node 'gru_1', direction:", "'Forward'")),
    (GruSpec(extra_attrs=(("layout", 2),)), ("node 'gru_1', layout:", "layout 2")),
    (GruSpec(clip=0.0), ("node 'gru_1', clip:", "positive")),
    (GruSpec(clip=-1.0), ("node 'gru_1', clip:",)),
    (GruSpec(hidden_size_attr=5), ("node 'gru_1', hidden_size:", "3*hidden_size")),
    (GruSpec(extra_attrs=(("linear_before_reset", 1.0),)), ("node 'gru_1', linear_before_reset:", "a float")),
    (GruSpec(activations=("Sigmoid", "Tanh", "Tanh")), ("node 'gru_1', activations:", "expected 2 (f, g")),
    (GruSpec(direction="bidirectional", activations=("Sigmoid", "Tanh")),
     ("node 'gru_1', activations:", "expected 4")),
    (GruSpec(activations=("Sigmoid", "Gelu")), ("node 'gru_1', activations:", "'Gelu'")),
    (GruSpec(activation_alpha=(0.5,)), ("node 'gru_1', activation_alpha:", "without activations")),
    (GruSpec(activations=("Sigmoid", "LeakyRelu"), activation_alpha=(0.5, 0.2)),
     ("node 'gru_1', activation_alpha:", "use 1")),
], ids=["unknown-attribute", "direction", "layout", "clip-0", "clip-negative", "hidden_size", "lbr-type",
        "activations-3", "activations-2-bidirectional", "activation-unknown", "alpha-without-activations",
        "alpha-unused"])
def test_attribute_errors(spec: GruSpec, fragments: tuple[str, ...]) -> None:
    _refused(single_gru_model(spec), tinylstm.UnsupportedModelError, *fragments)


def _with_weights(**arrays) -> onnx.ModelProto:
    from gru_builders import add_gru, gru_weights
    from onnx_builders import GraphBuilder

    spec = GruSpec(initial_h="initializer")
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch=3, time="time", features=spec.input_size)
    wts = replace(gru_weights(spec, b.rng, 3), **arrays)
    return b.build([add_gru(b, x, spec, weights=wts).get("Y")])


@pytest.mark.parametrize("arrays, exc, fragments", [
    ({"w": np.zeros((1, 15, 3), np.float32)}, tinylstm.UnsupportedModelError, ("node 'gru_1', hidden_size:",)),
    ({"w": np.zeros((2, 12, 3), np.float32)}, tinylstm.UnsupportedModelError, ("node 'gru_1', W:", "[2, 12, 3]")),
    ({"r": np.zeros((1, 12, 3), np.float32)}, tinylstm.UnsupportedModelError, ("node 'gru_1', R:",)),
    ({"b": np.zeros((1, 32), np.float32)}, tinylstm.UnsupportedModelError, ("node 'gru_1', B:", "[1, 24]")),
    ({"initial_h": np.zeros((1, 3, 5), np.float32)}, tinylstm.UnsupportedModelError,
     ("node 'gru_1', initial_h:",)),
    ({"initial_h": np.zeros((1, 2, 4), np.float32)}, tinylstm.UnsupportedModelError,
     ("node 'gru_1', initial_h:", "2 batch rows")),
    ({"r": np.full((1, 12, 4), np.nan, np.float32)}, tinylstm.ModelFormatError, ("'gru_1_R'", "NaN")),
], ids=["W-rows", "W-directions", "R-shape", "B-shape", "initial_h-hidden", "initial_h-batch", "R-NaN"])
def test_weight_errors(arrays: dict, exc: type[tinylstm.TinyLstmError], fragments: tuple[str, ...]) -> None:
    _refused(_with_weights(**arrays), exc, *fragments)


def test_negative_sequence_lens_refused() -> None:
    spec = GruSpec(sequence_lens="initializer", lens=(3, -1, 2))
    _refused(single_gru_model(spec, batch=3), tinylstm.UnsupportedModelError, "node 'gru_1', sequence_lens:")


@pytest.mark.parametrize("slot", ["W", "initial_h"])
def test_graph_input_as_weight_or_state_refused(slot: str) -> None:
    """Only X and sequence_lens may be graph inputs; others must be constants."""
    from onnx_builders import GraphBuilder

    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch=2, time="time", features=3)
    extra = b.add_input("extra", [1, 12, 3] if slot == "W" else [1, 2, 4])
    w = extra if slot == "W" else b.const(np.zeros((1, 12, 3), np.float32), "W")
    ins = [x, w, b.const(np.zeros((1, 12, 4), np.float32), "R"), "", "", extra if slot == "initial_h" else ""]
    while ins[-1] == "":
        ins.pop()
    y = b.op("GRU", ins, name="gru_1", hidden_size=4)
    _refused(b.build([y]), tinylstm.UnsupportedModelError, f"node 'gru_1', {slot}:", "graph input 'extra'")


def test_gru_on_a_constant_input_refused() -> None:
    """A GRU whose X does not come from the model input (here a constant) is named, not folded."""
    from onnx_builders import GraphBuilder

    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    c = b.const(np.ones((2, 1, 3), np.float32), "c")
    y = b.op("GRU", [c, b.const(np.zeros((1, 12, 3), np.float32), "W"),
                     b.const(np.zeros((1, 12, 4), np.float32), "R")], name="gru_c", hidden_size=4)
    s = b.op("Add", [x, b.reshape(y, [2, 1, 4])], name="add")
    _refused(b.build([s]), tinylstm.UnsupportedModelError, "node 'gru_c', X:", "GRU input X")


def test_no_recurrent_layer_message_names_both() -> None:
    from onnx_builders import GraphBuilder

    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    _refused(b.build([b.op("Relu", [x], name="r")]), tinylstm.UnsupportedModelError, "no LSTM or GRU node")
