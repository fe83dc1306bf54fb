"""tinylstm.load_onnx(model).run(x) against onnxruntime for every LSTM attribute and glue/head.

Each case builds a model in-process (tests/onnx_builders.py), imports it, and runs several
batch sizes and sequence lengths through it (dynamic axes): same output shape as
onnxruntime's first output and max |difference| <= 1e-5.

onnxruntime refuses ``layout=1``; layout-1 cases compare against a twin model that wraps a
layout-0 LSTM in Transposes (same weights and graph shapes), see docs/ort-lstm-facts.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx
import pytest
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
    save_model,
    single_lstm_model,
    stacked_model,
)

import tinylstm

ATOL = 1e-5
#: (batch, time) runs for dynamic models; static dims keep their declared size
SIZES = ((1, 1), (3, 7), (2, 16), (4, 33))
DIRECTIONS = ("forward", "reverse", "bidirectional")
REALISTIC, SATURATING = None, 3.0  # weight scale: +-1/sqrt(H), or +-3 (gates saturate)

Build = Callable[[bool], onnx.ModelProto]  # emulate_layout1 -> model


@dataclass(frozen=True)
class Case:
    build: Build
    x_scale: float = 1.0
    #: lengths for a sequence_lens graph input: None (no such input) or the minimum length
    lens_min: int | None = None
    #: skip SIZES longer than this (unbounded gate activations grow without limit, and the
    #: float32-vs-float64 difference with them)
    max_time: int | None = None


def check(case: Case, seed: int = 0) -> None:
    """Import, then compare with onnxruntime over SIZES."""
    model = case.build(False)
    twin = case.build(True)  # identical unless the model has a layout-1 LSTM
    imported = tinylstm.load_onnx(model)
    session = ort_session(twin)
    seen = set()
    for k, (batch, time) in enumerate(SIZES):
        shape = input_shape(model, batch, time)
        if shape in seen or (case.max_time is not None and time > case.max_time):
            continue
        seen.add(shape)
        x = random_input(model, batch, time, seed=seed + k, scale=case.x_scale)
        lens = None
        if case.lens_min is not None:
            n_batch = shape[1] if _layout_of(model) == 0 else shape[0]
            n_time = shape[0] if _layout_of(model) == 0 else shape[1]
            lens = random_lengths(n_batch, n_time, seed=seed + k, min_len=case.lens_min)
        want = run_ort(twin, x, lens, session=session)[0]
        got = imported.run(x, sequence_lens=lens) if lens is not None else imported.run(x)
        assert np.isfinite(want).all(), "onnxruntime output not finite: bad test case"
        assert got.shape == want.shape, f"input {shape}: shape {got.shape} != {want.shape}"
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= ATOL, f"input {shape}: max |tinylstm - onnxruntime| = {err:.3g}"


def _layout_of(model: onnx.ModelProto) -> int:
    for n in model.graph.node:
        if n.op_type == "LSTM":
            for a in n.attribute:
                if a.name == "layout":
                    return int(a.i)
            return 0
    return 0


def single(spec: LstmSpec, **kw) -> Build:
    return lambda emulate: single_lstm_model(spec, emulate_layout1=emulate, **kw)


def stacked(specs: list[LstmSpec], head: HeadSpec | None = None, **kw) -> Build:
    return lambda emulate: stacked_model(specs, head=head, emulate_layout1=emulate, **kw)


def _cases() -> list:
    p = []

    def add(id_: str, build: Build, **kw) -> None:
        p.append(pytest.param(Case(build, **kw), id=id_))

    # --- one attribute at a time, each direction ---------------------------------------------
    for d in DIRECTIONS:
        for sname, scale in (("realistic", REALISTIC), ("saturating", SATURATING)):
            add(f"{d}-{sname}-weights", single(LstmSpec(direction=d, scale=scale)))
            add(f"{d}-peepholes-{sname}", single(LstmSpec(direction=d, peepholes=True, scale=scale)))
        add(f"{d}-no-bias", single(LstmSpec(direction=d, bias=False)))
        for clip in (0.3, 2.0):
            add(
                f"{d}-clip-{clip}-peepholes",
                single(LstmSpec(direction=d, clip=clip, peepholes=True, scale=SATURATING)),
                x_scale=2.0,
            )
        add(f"{d}-input_forget", single(LstmSpec(direction=d, input_forget=True, scale=2.0)))
        add(
            f"{d}-sequence_lens-initializer",
            single(LstmSpec(direction=d, sequence_lens="initializer", lens=(7, 3, 1)), batch=3, time=7),
        )
        add(
            f"{d}-sequence_lens-graph-input",
            single(LstmSpec(direction=d, sequence_lens="input")),
            lens_min=1,
        )
        add(
            f"{d}-sequence_lens-graph-input-with-zero-lengths",
            single(LstmSpec(direction=d, sequence_lens="input")),
            lens_min=0,
        )
        add(
            f"{d}-sequence_lens-zero-length-with-initial-states-output-Y_h",
            single(
                LstmSpec(
                    direction=d,
                    sequence_lens="initializer",
                    lens=(7, 0, 3),
                    initial_h="initializer",
                    initial_c="initializer",
                    outputs=("Y_h", "Y", "Y_c"),
                ),
                batch=3,
                time=7,
            ),
        )
        for which in ("initial_h", "initial_c"):
            add(f"{d}-{which}-initializer", single(replace(LstmSpec(direction=d), **{which: "initializer"}), batch=3))
        add(
            f"{d}-initial-states-initializer-output-Y_c",
            single(LstmSpec(direction=d, initial_h="initializer", initial_c="initializer", outputs=("Y_c",)), batch=3),
        )
        add(
            f"{d}-initial-states-ConstantOfShape-zeros",
            single(LstmSpec(direction=d, initial_h="zeros", initial_c="zeros")),
        )
        # layout 1
        add(f"{d}-layout1", single(LstmSpec(direction=d, layout=1)))
        add(
            f"{d}-layout1-initial-states-initializer",
            single(
                LstmSpec(direction=d, layout=1, initial_h="initializer", initial_c="initializer", outputs=("Y", "Y_h")),
                batch=3,
            ),
        )
        add(
            f"{d}-layout1-initial-states-zeros-output-Y_h",
            single(LstmSpec(direction=d, layout=1, initial_h="zeros", initial_c="zeros", outputs=("Y_h",))),
        )
        add(
            f"{d}-layout1-sequence_lens-input",
            single(LstmSpec(direction=d, layout=1, sequence_lens="input")),
            lens_min=1,
        )

    # --- which output is the graph's first, and subsets ------------------------------------
    for d in ("forward", "bidirectional"):
        for outs, order in (
            (("Y_h",), ("Y_h",)),
            (("Y_c",), ("Y_c",)),
            (("Y", "Y_h", "Y_c"), ("Y_h", "Y", "Y_c")),
            (("Y", "Y_h", "Y_c"), ("Y_c", "Y_h")),
            (("Y", "Y_c"), ("Y", "Y_c")),
        ):
            add(
                f"{d}-outputs-{'+'.join(outs)}-first-{order[0]}",
                single(LstmSpec(direction=d, outputs=outs), graph_outputs=order),
            )

    # --- static and dynamic dims --------------------------------------------------------------
    for batch, time in ((3, 5), (3, "time"), ("batch", 5), (1, "time")):
        add(f"dims-batch-{batch}-time-{time}", single(LstmSpec(), batch=batch, time=time))
        add(
            f"dims-batch-{batch}-time-{time}-layout1",
            single(LstmSpec(layout=1, direction="bidirectional"), batch=batch, time=time),
        )

    # --- activations ----------------------------------------------------------------------------
    for name in ORT_LSTM_ACTIVATIONS:
        uses_a, uses_b = ACTIVATION_USES[name]
        for slot, slot_name in enumerate("fgh"):
            acts = ["Sigmoid", "Tanh", "Tanh"]
            acts[slot] = name
            spec = LstmSpec(
                activations=tuple(acts),
                activation_alpha=(0.7,) if uses_a else None,
                activation_beta=(0.3,) if uses_b else None,
                peepholes=True,
            )
            # Softplus as the gate function: gates > 1, the cell grows exponentially in time
            max_time = 16 if (name, slot_name) == ("Softplus", "f") else None
            add(
                f"activation-{name}-as-{slot_name}-explicit-params",
                single(spec),
                max_time=max_time,
            )
    for name in ("LeakyRelu", "HardSigmoid", "Elu"):  # onnxruntime = ONNX operator defaults
        add(f"activation-{name}-as-g-default-params", single(LstmSpec(activations=("Sigmoid", name, "Tanh"))))
    add(
        "activation-HardSigmoid-alpha-only-beta-default",
        single(LstmSpec(activations=("HardSigmoid", "Tanh", "Tanh"), activation_alpha=(0.3,))),
    )
    add(
        "activation-params-consumed-in-order",
        single(
            LstmSpec(
                activations=("HardSigmoid", "ScaledTanh", "Affine"),
                activation_alpha=(0.3, 1.5, 0.7),
                activation_beta=(0.6, 0.8, 0.1),
            )
        ),
    )
    add("activation-names-lowercase", single(LstmSpec(activations=("sigmoid", "tanh", "relu"))))
    add(
        "activation-bidirectional-per-direction",
        single(
            LstmSpec(
                direction="bidirectional",
                activations=("Sigmoid", "Tanh", "Tanh", "HardSigmoid", "Softsign", "Elu"),
                activation_alpha=(0.25, 0.9),
                activation_beta=(0.45,),
            )
        ),
    )

    # --- combinations ---------------------------------------------------------------------------
    add(
        "bidirectional+peepholes+sequence_lens-input",
        single(LstmSpec(direction="bidirectional", peepholes=True, sequence_lens="input")),
        lens_min=1,
    )
    add(
        "bidirectional+peepholes+sequence_lens-initializer+initial-states-output-Y_h",
        single(
            LstmSpec(
                direction="bidirectional",
                peepholes=True,
                sequence_lens="initializer",
                lens=(6, 2, 4),
                initial_h="initializer",
                initial_c="initializer",
                outputs=("Y_h",),
            ),
            batch=3,
            time=6,
        ),
    )
    add(
        "layout1+bidirectional+initial-states+peepholes",
        single(
            LstmSpec(
                layout=1, direction="bidirectional", peepholes=True, initial_h="initializer", initial_c="initializer"
            ),
            batch=2,
        ),
    )
    add(
        "reverse+clip+input_forget+peepholes",
        single(LstmSpec(direction="reverse", clip=0.8, input_forget=True, peepholes=True, scale=SATURATING)),
        x_scale=2.0,
    )
    add(
        "everything",
        single(
            LstmSpec(
                direction="bidirectional",
                peepholes=True,
                clip=1.5,
                input_forget=True,
                sequence_lens="input",
                initial_h="zeros",
                initial_c="zeros",
                scale=2.0,
                activations=("Sigmoid", "Tanh", "Softsign", "HardSigmoid", "Tanh", "Tanh"),
                activation_alpha=(0.3,),
                activation_beta=(0.55,),
            )
        ),
        lens_min=1,
    )

    # --- stacks and heads -----------------------------------------------------------------------
    bi = LstmSpec(direction="bidirectional", initial_h="zeros", initial_c="zeros")
    add(
        "stacked-2-bidirectional-torch-glue-last-step-gemm",
        stacked([bi, replace(bi, input_size=8)], HeadSpec("last_gemm")),
    )
    add(
        "stacked-2-bidirectional-layout1-last-step-gemm",
        stacked([replace(bi, layout=1), replace(bi, layout=1, input_size=8)], HeadSpec("last_gemm")),
    )
    fw = LstmSpec()
    add("stacked-3-forward-squeeze-glue", stacked([fw, replace(fw, input_size=4), replace(fw, input_size=4)]))
    add(
        "stacked-3-forward-reshape-glue",
        stacked([fw, replace(fw, input_size=4), replace(fw, input_size=4)], glue="reshape"),
    )
    add(
        "stacked-forward-then-reverse-state-head",
        stacked([fw, replace(fw, input_size=4, direction="reverse")], HeadSpec("state_matmul")),
    )
    add("head-last-gather-gemm-transB1-alpha-beta", stacked([fw], HeadSpec("last_gemm", alpha=0.5, beta=2.0)))
    add("head-last-gather-gemm-transB0", stacked([fw], HeadSpec("last_gemm", trans_b=0)))
    add(
        "head-last-slice-squeeze-gemm-transB0-alpha-beta",
        stacked([fw], HeadSpec("last_slice_gemm_t0", alpha=1.5, beta=0.25)),
    )
    add("head-first-step-of-reverse-gemm", stacked([replace(fw, direction="reverse")], HeadSpec("first_gemm")))
    add("head-Y_h-squeeze-matmul-add", stacked([fw], HeadSpec("state_matmul", out_features=3)))
    add("head-Y_h-transpose-flatten-gemm-bidirectional", stacked([bi], HeadSpec("state_flatten_gemm", out_features=3)))
    add("head-Y_h-flatten-layout1", stacked([replace(bi, layout=1)], HeadSpec("state_flatten_gemm", out_features=3)))
    add("head-identity-cast-last-gemm", stacked([fw], HeadSpec("last_gemm", identity_cast=True)))
    for act in ("Relu", "Tanh", "Sigmoid", "Softmax", "LogSoftmax"):
        add(f"head-last-gemm-then-{act}", stacked([fw], HeadSpec("last_gemm", out_features=4, activations=(act,))))
        add(
            f"many-to-many-per-step-matmul-add-then-{act}",
            stacked([bi], HeadSpec("per_step", out_features=4, activations=(act,))),
        )
    add("many-to-many-layout1-per-step", stacked([replace(bi, layout=1)], HeadSpec("per_step", out_features=3)))
    add(
        "many-to-many-stacked-relu-then-softmax",
        stacked([fw, replace(fw, input_size=4)], HeadSpec("per_step", out_features=5, activations=("Relu", "Softmax"))),
    )
    add(
        "head-sequence_lens-input-last-step-gemm",
        stacked([replace(bi, sequence_lens="input")], HeadSpec("state_flatten_gemm")),
        lens_min=1,
    )
    return p


@pytest.mark.parametrize("case", _cases())
def test_matches_onnxruntime(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("opset", [11, 13, 14, 17, 21])
def test_opsets(opset: int) -> None:
    """The same stacked bidirectional classifier written for several opsets (Squeeze/Unsqueeze
    axes as attribute before 13, as input from 13)."""
    bi = LstmSpec(direction="bidirectional", initial_h="zeros", initial_c="zeros")
    check(Case(stacked([bi, replace(bi, input_size=8)], HeadSpec("last_gemm", activations=("Softmax",)), opset=opset)))


@pytest.mark.parametrize(
    "name,slot",
    [("Affine", 2), ("ScaledTanh", 1), ("ThresholdedRelu", 2)],
    ids=["Affine-as-h", "ScaledTanh-as-g", "ThresholdedRelu-as-h"],
)
def test_activation_ort_specific_default_params_match_or_refuse(name: str, slot: int) -> None:
    """Without activation_alpha/beta, onnxruntime runs Affine, ScaledTanh and ThresholdedRelu
    with alpha = beta = 0 (not the stand-alone ONNX operators' defaults). The importer must
    reproduce that or refuse clearly; it must never silently differ."""
    acts = ["Sigmoid", "Tanh", "Tanh"]
    acts[slot] = name
    case = Case(single(LstmSpec(activations=tuple(acts))))
    try:
        tinylstm.load_onnx(case.build(False))
    except tinylstm.UnsupportedModelError as e:
        assert "node 'lstm_1'" in str(e) and "activation" in str(e), str(e)
        return
    check(case)


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
def test_load_from_file(tmp_path, external: bool) -> None:
    """A saved model (optionally with its weights in an external data file) loads by path."""
    bi = LstmSpec(direction="bidirectional", initial_h="zeros", initial_c="zeros")
    model = stacked_model([bi, replace(bi, input_size=8)], head=HeadSpec("last_gemm"))
    path = save_model(model, tmp_path / "model.onnx", external=external)
    if external:
        assert (tmp_path / "model.onnx.data").is_file()
    imported = tinylstm.load_onnx(path)
    x = random_input(model, 2, 9, seed=3)
    want = run_ort(model, x)[0]
    got = imported.run(x)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= ATOL


def test_same_model_many_shapes() -> None:
    """One import, many (batch, time) pairs, including long sequences."""
    model = stacked_model([LstmSpec(direction="bidirectional", peepholes=True)], head=HeadSpec("last_gemm"))
    imported = tinylstm.load_onnx(model)
    session = ort_session(model)
    for k, (batch, time) in enumerate(((1, 1), (1, 2), (5, 3), (4, 64), (2, 200))):
        x = random_input(model, batch, time, seed=k)
        want = run_ort(model, x, session=session)[0]
        got = imported.run(x)
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) <= ATOL, (batch, time)
