"""Hand-built ONNX GRU graphs for the importer's tests, on top of tests/onnx_builders.py.

:func:`add_gru` emits one ONNX ``GRU`` node into a :class:`~onnx_builders.GraphBuilder` from a
:class:`GruSpec` covering every attribute and optional input of the ONNX GRU (direction,
linear_before_reset, clip, sequence_lens as initializer or graph input, initial_h as initializer
or PyTorch-legacy-style ``ConstantOfShape`` zeros, layout, activations with alpha/beta, Y and/or
Y_h). :func:`single_gru_model` and :func:`stacked_rnn_model` (GRU and LSTM layers in any mix,
with the heads of :class:`~onnx_builders.HeadSpec`) build whole models.

onnxruntime refuses ``layout=1`` for GRU as for LSTM: with ``emulate_layout1`` a layout-1 GRU is
emitted as Transpose -> layout-0 GRU -> Transpose (same weights, names and graph shapes).

ONNX conventions: W, R rows stacked ``z, r, h``; B is ``[Wb | Rb]`` ``(D, 6H)``; Y is
``[T, D, B, H]`` (layout 0) or ``[B, T, D, H]`` (layout 1); Y_h is ``[D, B, H]`` / ``[B, D, H]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx_builders import (
    DEFAULT_OPSET,
    LSTM_OUTPUTS,
    Dim,
    GraphBuilder,
    HeadSpec,
    LensSource,
    LstmOutputs,
    LstmSpec,
    StateSource,
)

GRU_OUTPUTS = ("Y", "Y_h")


@dataclass(frozen=True)
class GruSpec:
    """Everything one ONNX GRU node can carry. Defaults: a plain forward GRU with bias, written
    without ``linear_before_reset`` (ONNX default 0)."""

    input_size: int = 3
    hidden_size: int = 4
    direction: str = "forward"  # forward | reverse | bidirectional (anything else: for errors)
    layout: int = 0
    bias: bool = True
    #: the attribute written (None: omitted, i.e. 0)
    linear_before_reset: int | None = None
    clip: float | None = None
    activations: tuple[str, ...] | None = None  # 2 per direction, f, g
    activation_alpha: tuple[float, ...] | None = None
    activation_beta: tuple[float, ...] | None = None
    sequence_lens: LensSource = "none"
    lens: tuple[int, ...] | None = None  # (B,) for sequence_lens="initializer"
    initial_h: StateSource = "none"
    outputs: tuple[str, ...] = ("Y",)
    #: weights uniform in +-scale; None: +-1/sqrt(hidden_size) (PyTorch's init)
    scale: float | None = None
    state_scale: float = 0.5
    #: the hidden_size attribute written; None: ``hidden_size``; 0: omit the attribute
    hidden_size_attr: int | None = None
    extra_attrs: tuple[tuple[str, object], ...] = ()

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def weight_scale(self) -> float:
        return self.scale if self.scale is not None else 1.0 / float(np.sqrt(self.hidden_size))

    @property
    def features(self) -> int:
        return self.num_directions * self.hidden_size


@dataclass(frozen=True)
class GruWeights:
    """ONNX-layout tensors of one GRU node (gate order z, r, h)."""

    w: np.ndarray  # (D, 3H, I)
    r: np.ndarray  # (D, 3H, H)
    b: np.ndarray | None  # (D, 6H) [Wb | Rb]
    initial_h: np.ndarray | None  # (D, B, H) canonical (layout-0) order
    lens: np.ndarray | None  # (B,) int32


def gru_weights(spec: GruSpec, rng: np.random.Generator, batch: int | None = None) -> GruWeights:
    d, h, i = spec.num_directions, spec.hidden_size, spec.input_size
    s = spec.weight_scale

    def u(shape: tuple[int, ...], scale: float) -> np.ndarray:
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    w, r = u((d, 3 * h, i), s), u((d, 3 * h, h), s)
    b = u((d, 6 * h), s) if spec.bias else None
    h0 = None
    if spec.initial_h == "initializer":
        if not isinstance(batch, int):
            raise ValueError("an initializer initial_h needs a static batch")
        h0 = u((d, batch, h), spec.state_scale)
    lens = None
    if spec.sequence_lens == "initializer":
        if spec.lens is None:
            raise ValueError("sequence_lens='initializer' needs spec.lens")
        lens = np.asarray(spec.lens, dtype=np.int32)
    return GruWeights(w, r, b, h0, lens)


def add_gru(
    b: GraphBuilder,
    x: str,
    spec: GruSpec,
    *,
    name: str = "gru_1",
    batch: int | None = None,
    weights: GruWeights | None = None,
    output_names: dict[str, str] | None = None,
) -> LstmOutputs:
    """Emit one GRU node reading ``x``; returns its output names (``y_c`` None) and weights."""
    wts = weights if weights is not None else gru_weights(spec, b.rng, batch)
    emulate = spec.layout == 1 and b.emulate_layout1
    layout = 0 if emulate else spec.layout
    x_in = b.transpose(x, [1, 0, 2], name=b.fresh(f"{name}_x_tbf")) if emulate else x
    ins = [x_in, b.const(wts.w, f"{name}_W"), b.const(wts.r, f"{name}_R")]
    ins.append(b.const(wts.b, f"{name}_B") if wts.b is not None else "")
    if spec.sequence_lens == "initializer":
        ins.append(b.const(wts.lens, f"{name}_sequence_lens"))
    else:
        ins.append(b.lens_input() if spec.sequence_lens == "input" else "")
    if spec.initial_h == "initializer":
        h0 = wts.initial_h if layout == 0 else np.ascontiguousarray(wts.initial_h.transpose(1, 0, 2))
        ins.append(b.const(h0, f"{name}_initial_h"))
    elif spec.initial_h == "zeros":
        ins.append(b.zeros_state(x_in, 1 if layout == 0 else 0, spec.num_directions, spec.hidden_size))
        if layout == 1:
            ins[-1] = b.transpose(ins[-1], [1, 0, 2], name=b.fresh("initial_h_bdh"))
    while ins and ins[-1] == "":
        ins.pop()

    attrs: dict[str, object] = {}
    hs = spec.hidden_size if spec.hidden_size_attr is None else spec.hidden_size_attr
    if hs != 0:
        attrs["hidden_size"] = hs
    if spec.direction != "forward":
        attrs["direction"] = spec.direction
    if layout != 0:
        attrs["layout"] = layout
    if spec.linear_before_reset is not None:
        attrs["linear_before_reset"] = spec.linear_before_reset
    if spec.clip is not None:
        attrs["clip"] = float(spec.clip)
    if spec.activations is not None:
        attrs["activations"] = list(spec.activations)
    if spec.activation_alpha:
        attrs["activation_alpha"] = [float(v) for v in spec.activation_alpha]
    if spec.activation_beta:
        attrs["activation_beta"] = [float(v) for v in spec.activation_beta]
    attrs.update(dict(spec.extra_attrs))

    final = dict(output_names or {})
    names: dict[str, str | None] = {}
    raw: list[str] = []
    for which in GRU_OUTPUTS:
        if which in spec.outputs:
            target = final.get(which, f"{name}_{which}")
            raw.append(f"{target}_tbdh" if emulate else target)
            names[which] = target
        else:
            raw.append("")
            names[which] = None
    while raw and raw[-1] == "":
        raw.pop()
    b.op_multi("GRU", ins, name=name, outputs=raw, **attrs)
    if emulate:
        for k, which in enumerate(GRU_OUTPUTS):
            if names[which] is not None:
                b.op("Transpose", [raw[k]], name=b.fresh(f"{name}_{which}_layout1"),
                     outputs=[names[which]], perm=[2, 0, 1, 3] if which == "Y" else [1, 0, 2])
    return LstmOutputs(names["Y"], names["Y_h"], None, wts, name)  # type: ignore[arg-type]


def single_gru_model(
    spec: GruSpec,
    *,
    batch: Dim = "batch",
    time: Dim = "time",
    graph_outputs: Sequence[str] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    emulate_layout1: bool = False,
) -> onnx.ModelProto:
    """One GRU; its outputs (``graph_outputs``, default ``spec.outputs``) are the graph
    outputs, named ``Y`` / ``Y_h``."""
    b = GraphBuilder(opset, seed, emulate_layout1=emulate_layout1)
    x = b.sequence_input("x", layout=spec.layout, batch=batch, time=time, features=spec.input_size)
    out = add_gru(b, x, spec, batch=batch if isinstance(batch, int) else None,
                  output_names={k: k for k in GRU_OUTPUTS})
    order = list(graph_outputs) if graph_outputs is not None else list(spec.outputs)
    return b.build([out.get(k) for k in order])


def stacked_rnn_model(
    specs: Sequence[GruSpec | LstmSpec],
    *,
    head: HeadSpec | None = None,
    batch: Dim = "batch",
    time: Dim = "time",
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    emulate_layout1: bool = False,
) -> onnx.ModelProto:
    """GRU and LSTM layers stacked (Y -> Squeeze, or Transpose + Reshape when bidirectional ->
    the next layer) and a head: ``none``, ``last_gemm``, ``state_matmul`` (the last layer's
    Y_h), ``state_flatten_gemm`` or ``per_step`` (+ ``head.activations``)."""
    head = head or HeadSpec("none")
    layout = specs[0].layout
    if any(s.layout != layout for s in specs):
        raise ValueError("all layers must share one layout")
    b = GraphBuilder(opset, seed, emulate_layout1=emulate_layout1)
    seq = b.sequence_input("x", layout=layout, batch=batch, time=time, features=specs[0].input_size)
    static_batch = batch if isinstance(batch, int) else None
    out = None
    for k, spec in enumerate(specs):
        want = {"Y", "Y_h"} if k == len(specs) - 1 else {"Y"}
        spec = replace(spec, outputs=tuple(sorted(set(spec.outputs) | want, key=LSTM_OUTPUTS.index)))
        if isinstance(spec, GruSpec):
            out = add_gru(b, seq, spec, name=f"gru_{k + 1}", batch=static_batch)
        else:
            out = b.lstm(seq, spec, name=f"lstm_{k + 1}", batch=static_batch)
        seq = b.y_to_sequence(out.get("Y"), spec)  # type: ignore[arg-type]
    assert out is not None
    last = specs[-1]
    kind = head.kind
    if kind == "none":
        y = seq
    elif kind == "last_gemm":
        v = b.last_step(seq, 0 if layout == 0 else 1)
        y = b.dense(v, last.features, head.out_features, name="head")
    elif kind in ("state_matmul", "state_flatten_gemm"):
        flat = kind == "state_flatten_gemm"
        v = b.state_to_vector(out.get("Y_h"), last, "flatten" if flat else "squeeze")  # type: ignore[arg-type]
        y = b.dense(v, last.features, head.out_features, how="gemm_t1" if flat else "matmul_add",
                    name="head")
    elif kind == "per_step":
        y = b.dense(seq, last.features, head.out_features, how="matmul_add", name="head")
    else:
        raise ValueError(kind)
    for act in head.activations:
        y = b.activation(y, act, axis=-1 if act in ("Softmax", "LogSoftmax") else None)
    return b.build([y])
