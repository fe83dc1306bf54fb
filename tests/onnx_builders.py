"""Hand-built ONNX LSTM graphs for the importer's tests: seeded, in-process, ``onnx.helper`` only.

A :class:`GraphBuilder` accumulates nodes, initializers and graph inputs; :meth:`GraphBuilder.lstm`
emits one ONNX ``LSTM`` node from an :class:`LstmSpec` covering every attribute and optional
input of the ONNX LSTM (direction, peepholes, clip, sequence_lens as initializer or graph input,
initial states as initializers or as PyTorch-legacy-style ``ConstantOfShape`` zeros, layout,
input_forget, activations with alpha/beta, any subset of Y / Y_h / Y_c). Glue and head helpers
(stacking, last-step selection, Gemm / MatMul+Add, activations, Flatten, Squeeze, Identity, Cast)
compose on top. Model-level shortcuts (:func:`single_lstm_model`, :func:`stacked_model`) cover
the common shapes.

onnxruntime's CPU LSTM refuses ``layout=1`` (see docs/ort-lstm-facts.md). Every builder takes
``emulate_layout1``: with it, a layout-1 LSTM is emitted as Transpose -> layout-0 LSTM ->
Transpose, with the same weights, tensor names and graph shapes, so onnxruntime can produce the
expected outputs of the layout-1 model.

ONNX conventions used here: gates are stacked ``i, o, f, c`` in W, R and B; P is ``i, o, f``;
B is ``[Wb | Rb]``; Y is ``[T, D, B, H]`` (layout 0) or ``[B, T, D, H]`` (layout 1); Y_h and
Y_c are ``[D, B, H]`` or ``[B, D, H]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_OPSET = 17

#: A graph dimension: an int is static, a str is a ``dim_param`` (dynamic), None is unknown.
Dim = int | str | None

#: The activations onnxruntime executes inside LSTM (case-insensitive there).
ORT_LSTM_ACTIVATIONS = (
    "Sigmoid",
    "Tanh",
    "Relu",
    "Affine",
    "LeakyRelu",
    "ThresholdedRelu",
    "ScaledTanh",
    "HardSigmoid",
    "Elu",
    "Softsign",
    "Softplus",
)
#: (uses alpha, uses beta) for each activation, in the order ONNX consumes activation_alpha/beta.
ACTIVATION_USES: dict[str, tuple[bool, bool]] = {
    "Sigmoid": (False, False),
    "Tanh": (False, False),
    "Relu": (False, False),
    "Softsign": (False, False),
    "Softplus": (False, False),
    "Affine": (True, True),
    "LeakyRelu": (True, False),
    "ThresholdedRelu": (True, False),
    "ScaledTanh": (True, True),
    "HardSigmoid": (True, True),
    "Elu": (True, False),
}
#: onnxruntime 1.32's values when activation_alpha/beta are absent or too short (measured,
#: docs/ort-lstm-facts.md). Affine, ThresholdedRelu and ScaledTanh get 0.0, not the defaults of
#: the stand-alone ONNX operators.
ORT_ACTIVATION_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "Sigmoid": (None, None),
    "Tanh": (None, None),
    "Relu": (None, None),
    "Softsign": (None, None),
    "Softplus": (None, None),
    "Affine": (0.0, 0.0),
    "LeakyRelu": (0.01, None),
    "ThresholdedRelu": (0.0, None),
    "ScaledTanh": (0.0, 0.0),
    "HardSigmoid": (0.2, 0.5),
    "Elu": (1.0, None),
}

StateSource = Literal["none", "initializer", "zeros"]
LensSource = Literal["none", "initializer", "input"]
LSTM_OUTPUTS = ("Y", "Y_h", "Y_c")


# --------------------------------------------------------------------------------------
# LSTM description and weights
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LstmSpec:
    """Everything one ONNX LSTM node can carry. Defaults: a plain forward LSTM with bias."""

    input_size: int = 3
    hidden_size: int = 4
    direction: str = "forward"  # forward | reverse | bidirectional (anything else: for errors)
    layout: int = 0
    bias: bool = True
    peepholes: bool = False
    clip: float | None = None
    input_forget: bool = False
    activations: tuple[str, ...] | None = None  # 3 per direction, f, g, h
    activation_alpha: tuple[float, ...] | None = None
    activation_beta: tuple[float, ...] | None = None
    sequence_lens: LensSource = "none"
    #: (B,) lengths for ``sequence_lens="initializer"`` (needs a static batch of that size)
    lens: tuple[int, ...] | None = None
    initial_h: StateSource = "none"
    initial_c: StateSource = "none"
    outputs: tuple[str, ...] = ("Y",)  # which of Y, Y_h, Y_c the node produces
    #: weights uniform in +-scale; None: +-1/sqrt(hidden_size) (PyTorch's init)
    scale: float | None = None
    #: initial states uniform in +-state_scale
    state_scale: float = 0.5
    #: the hidden_size attribute written; None: ``hidden_size``; 0: omit the attribute
    hidden_size_attr: int | None = None
    #: extra attributes written verbatim (for error tests: unknown attributes, bad values)
    extra_attrs: tuple[tuple[str, object], ...] = ()

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def weight_scale(self) -> float:
        return self.scale if self.scale is not None else 1.0 / float(np.sqrt(self.hidden_size))

    @property
    def features(self) -> int:
        """Features of the sequence this layer hands to the next: D * H."""
        return self.num_directions * self.hidden_size


@dataclass(frozen=True)
class LstmWeights:
    """ONNX-layout tensors of one LSTM node (gate order i, o, f, c)."""

    w: np.ndarray  # (D, 4H, I)
    r: np.ndarray  # (D, 4H, H)
    b: np.ndarray | None  # (D, 8H) [Wb | Rb]
    p: np.ndarray | None  # (D, 3H) i, o, f
    initial_h: np.ndarray | None  # (D, B, H) canonical (layout-0) order, even for layout 1
    initial_c: np.ndarray | None  # (D, B, H)
    lens: np.ndarray | None  # (B,) int32 when sequence_lens is an initializer


def lstm_weights(spec: LstmSpec, rng: np.random.Generator, batch: int | None = None) -> LstmWeights:
    """Seeded weights for ``spec``. ``batch`` is needed for initializer states."""
    d, h, i = spec.num_directions, spec.hidden_size, spec.input_size
    s = spec.weight_scale

    def u(shape: tuple[int, ...], scale: float) -> np.ndarray:
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    w = u((d, 4 * h, i), s)
    r = u((d, 4 * h, h), s)
    b = u((d, 8 * h), s) if spec.bias else None
    p = u((d, 3 * h), s) if spec.peepholes else None
    states = []
    for src in (spec.initial_h, spec.initial_c):
        if src == "initializer":
            if not isinstance(batch, int):
                raise ValueError("initializer initial states need a static batch")
            states.append(u((d, batch, h), spec.state_scale))
        else:
            states.append(None)
    lens = None
    if spec.sequence_lens == "initializer":
        if spec.lens is None:
            raise ValueError("sequence_lens='initializer' needs spec.lens")
        lens = np.asarray(spec.lens, dtype=np.int32)
    return LstmWeights(w, r, b, p, states[0], states[1], lens)


@dataclass(frozen=True)
class LstmOutputs:
    """Tensor names of one emitted LSTM node (None: not produced) and its weights."""

    y: str | None
    y_h: str | None
    y_c: str | None
    weights: LstmWeights = field(repr=False)
    node_name: str = ""

    def get(self, which: str) -> str:
        name = {"Y": self.y, "Y_h": self.y_h, "Y_c": self.y_c}[which]
        if name is None:
            raise KeyError(f"LSTM output {which} was not produced")
        return name


# --------------------------------------------------------------------------------------
# The graph builder
# --------------------------------------------------------------------------------------
class GraphBuilder:
    """Accumulates an ONNX graph. Names are unique; every node gets a readable name."""

    def __init__(self, opset: int = DEFAULT_OPSET, seed: int = 0, *, emulate_layout1: bool = False):
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.emulate_layout1 = emulate_layout1
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._used: set[str] = set()  # tensor names and generated names
        self._node_names: set[str] = set()
        self._count: dict[str, int] = {}
        self.batch: Dim = None  # the batch dim of the first graph input (for sequence_lens)

    # names ------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        k = self._count.get(base, 0)
        while True:
            name = base if k == 0 else f"{base}_{k}"
            k += 1
            if name not in self._used:
                self._count[base] = k
                self._used.add(name)
                return name

    def _claim(self, name: str) -> str:
        if name in self._used:
            raise ValueError(f"name {name!r} already used")
        self._used.add(name)
        return name

    # graph inputs and constants ---------------------------------------------------------
    def add_input(self, name: str, shape: Sequence[Dim] | None, elem_type: int = TensorProto.FLOAT) -> str:
        self._claim(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def sequence_input(
        self,
        name: str,
        *,
        layout: int,
        batch: Dim,
        time: Dim,
        features: int,
        elem_type: int = TensorProto.FLOAT,
    ) -> str:
        """The model input ``[T, B, F]`` (layout 0) or ``[B, T, F]`` (layout 1)."""
        self.batch = batch
        shape = [time, batch, features] if layout == 0 else [batch, time, features]
        return self.add_input(name, shape, elem_type)

    def const(self, array: np.ndarray, name: str | None = None, *, base: str = "const") -> str:
        """An initializer named ``name`` (or a fresh name from ``base``)."""
        name = self._claim(name) if name is not None else self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values: Sequence[int], name: str | None = None) -> str:
        return self.const(np.asarray(values, dtype=np.int64), name, base="shape")

    # nodes ------------------------------------------------------------------------------
    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        *,
        name: str | None = None,
        outputs: int | Sequence[str] = 1,
        domain: str = "",
        **attrs: object,
    ) -> str:
        """Append a node; returns its first output name (all outputs in :meth:`op_multi`)."""
        return self.op_multi(op_type, inputs, name=name, outputs=outputs, domain=domain, **attrs)[0]

    def op_multi(
        self,
        op_type: str,
        inputs: Sequence[str],
        *,
        name: str | None = None,
        outputs: int | Sequence[str] = 1,
        domain: str = "",
        **attrs: object,
    ) -> list[str]:
        node_name = name if name is not None else self.fresh(op_type.lower())
        if node_name in self._node_names:
            raise ValueError(f"node name {node_name!r} already used")
        self._node_names.add(node_name)
        self._used.add(node_name)
        if isinstance(outputs, int):
            outs = [self.fresh(f"{node_name}_out") for _ in range(outputs)]
        else:
            outs = [self._claim(o) if o else "" for o in outputs]
        kw = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=node_name, domain=domain or None, **kw))
        return outs

    # opset-dependent glue ---------------------------------------------------------------
    def squeeze(self, x: str, axes: Sequence[int], name: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Squeeze", [x, self.ints(axes)], name=name)
        return self.op("Squeeze", [x], name=name, axes=list(axes))

    def unsqueeze(self, x: str, axes: Sequence[int], name: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.ints(axes)], name=name)
        return self.op("Unsqueeze", [x], name=name, axes=list(axes))

    def transpose(self, x: str, perm: Sequence[int], name: str | None = None) -> str:
        return self.op("Transpose", [x], name=name, perm=list(perm))

    def reshape(self, x: str, shape: Sequence[int], name: str | None = None) -> str:
        return self.op("Reshape", [x, self.ints(shape)], name=name)

    def slice(
        self,
        x: str,
        starts: Sequence[int],
        ends: Sequence[int],
        axes: Sequence[int],
        name: str | None = None,
    ) -> str:
        if self.opset >= 10:
            return self.op("Slice", [x, self.ints(starts), self.ints(ends), self.ints(axes)], name=name)
        return self.op("Slice", [x], name=name, starts=list(starts), ends=list(ends), axes=list(axes))

    def gather(self, x: str, index: int | Sequence[int], axis: int, name: str | None = None) -> str:
        """Gather with a scalar index (drops the axis) or a 1-D list (keeps it)."""
        idx = np.asarray(index, dtype=np.int64)
        return self.op("Gather", [x, self.const(idx, base="index")], name=name, axis=axis)

    # the LSTM ---------------------------------------------------------------------------
    def zeros_state(self, x: str, batch_axis: int, num_directions: int, hidden: int) -> str:
        """Zeros like PyTorch's legacy exporter makes them:
        Shape(x) -> Gather(batch) -> Unsqueeze -> Concat -> ConstantOfShape."""
        shape = self.op("Shape", [x], name=self.fresh("state_shape"))
        batch = self.op(
            "Gather",
            [shape, self.const(np.asarray(batch_axis, dtype=np.int64), base="batch_axis")],
            name=self.fresh("state_batch"),
            axis=0,
        )
        batch1 = self.unsqueeze(batch, [0], name=self.fresh("state_batch_1d"))
        full = self.op(
            "Concat",
            [self.ints([num_directions]), batch1, self.ints([hidden])],
            name=self.fresh("state_dims"),
            axis=0,
        )
        return self.op(
            "ConstantOfShape",
            [full],
            name=self.fresh("state_zeros"),
            value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]),
        )

    def lens_input(self, name: str = "seq_lens") -> str:
        """The int32 ``[batch]`` graph input feeding sequence_lens (shared by every LSTM)."""
        if name in self._used:
            return name
        return self.add_input(name, [self.batch], TensorProto.INT32)

    def lstm(
        self,
        x: str,
        spec: LstmSpec,
        *,
        name: str = "lstm_1",
        batch: int | None = None,
        weights: LstmWeights | None = None,
        output_names: dict[str, str] | None = None,
    ) -> LstmOutputs:
        """Emit one LSTM node reading ``x`` (``[T, B, I]`` or ``[B, T, I]`` per spec.layout).

        ``batch``: the static batch size, when initializer states or lengths need it.
        ``weights``: override the seeded weights (e.g. to plant a NaN).
        ``output_names``: graph-level names for Y / Y_h / Y_c (default ``<name>_Y`` ...).
        """
        wts = weights if weights is not None else lstm_weights(spec, self.rng, batch)
        emulate = spec.layout == 1 and self.emulate_layout1
        layout = 0 if emulate else spec.layout
        x_in = self.transpose(x, [1, 0, 2], name=self.fresh(f"{name}_x_tbf")) if emulate else x
        d, h = spec.num_directions, spec.hidden_size

        ins = [x_in, self.const(wts.w, f"{name}_W"), self.const(wts.r, f"{name}_R")]
        ins.append(self.const(wts.b, f"{name}_B") if wts.b is not None else "")
        if spec.sequence_lens == "initializer":
            ins.append(self.const(wts.lens, f"{name}_sequence_lens"))
        elif spec.sequence_lens == "input":
            ins.append(self.lens_input())
        else:
            ins.append("")
        batch_axis = 1 if layout == 0 else 0
        for which, src, arr in (
            ("initial_h", spec.initial_h, wts.initial_h),
            ("initial_c", spec.initial_c, wts.initial_c),
        ):
            if src == "initializer":
                a = arr if layout == 0 else np.ascontiguousarray(arr.transpose(1, 0, 2))
                ins.append(self.const(a, f"{name}_{which}"))
            elif src == "zeros":
                ins.append(self.zeros_state(x_in, batch_axis, d, h))
                if layout == 1:  # zeros_state builds [D, B, H]; layout 1 wants [B, D, H]
                    ins[-1] = self.transpose(ins[-1], [1, 0, 2], name=self.fresh(f"{which}_bdh"))
            else:
                ins.append("")
        ins.append(self.const(wts.p, f"{name}_P") if wts.p is not None else "")
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
        if spec.clip is not None:
            attrs["clip"] = float(spec.clip)
        if spec.input_forget:
            attrs["input_forget"] = 1
        if spec.activations is not None:
            attrs["activations"] = list(spec.activations)
        if spec.activation_alpha:  # an empty list cannot be written: omitted
            attrs["activation_alpha"] = [float(v) for v in spec.activation_alpha]
        if spec.activation_beta:
            attrs["activation_beta"] = [float(v) for v in spec.activation_beta]
        attrs.update(dict(spec.extra_attrs))

        final = dict(output_names or {})
        names: dict[str, str | None] = {}
        raw: list[str] = []
        for which in LSTM_OUTPUTS:
            if which in spec.outputs:
                target = final.get(which, f"{name}_{which}")
                raw.append(f"{target}_tbdh" if emulate else target)
                names[which] = target
            else:
                raw.append("")
                names[which] = None
        while raw and raw[-1] == "":
            raw.pop()
        self.op_multi("LSTM", ins, name=name, outputs=raw, **attrs)
        if emulate:
            for k, which in enumerate(LSTM_OUTPUTS):
                if names[which] is None:
                    continue
                perm = [2, 0, 1, 3] if which == "Y" else [1, 0, 2]
                self.op(
                    "Transpose",
                    [raw[k]],
                    name=self.fresh(f"{name}_{which}_layout1"),
                    outputs=[names[which]],
                    perm=perm,
                )
        return LstmOutputs(names["Y"], names["Y_h"], names["Y_c"], wts, name)

    # glue between layers and into heads -------------------------------------------------
    def y_to_sequence(self, y: str, spec: LstmSpec, how: str = "squeeze") -> str:
        """Y -> ``[T, B, D*H]`` (layout 0) or ``[B, T, D*H]`` (layout 1).

        how: ``squeeze`` (one direction), ``reshape`` ([0, 0, -1]); a bidirectional layout-0 Y
        always goes Transpose(0, 2, 1, 3) -> Reshape [0, 0, -1] like PyTorch's exporter.
        """
        if spec.layout == 0 and spec.num_directions == 2:
            t = self.transpose(y, [0, 2, 1, 3], name=self.fresh("y_tbdh"))
            return self.reshape(t, [0, 0, -1], name=self.fresh("y_merge_dirs"))
        if how == "reshape" or spec.num_directions == 2:
            if spec.layout == 0:
                # [T, 1, B, H]: drop the direction axis by reshape to [0, -1, H]
                return self.reshape(y, [0, -1, spec.hidden_size], name=self.fresh("y_reshape"))
            return self.reshape(y, [0, 0, -1], name=self.fresh("y_reshape"))
        return self.squeeze(y, [1 if spec.layout == 0 else 2], name=self.fresh("y_squeeze"))

    def state_to_vector(self, s: str, spec: LstmSpec, how: str = "squeeze") -> str:
        """Y_h / Y_c ``[D, B, H]`` (or ``[B, D, H]``) -> ``[B, D*H]``.

        how: ``squeeze`` (one direction), ``flatten`` (Transpose to [B, D, H] then Flatten)
        """
        if spec.layout == 1:
            return self.op("Flatten", [s], name=self.fresh("state_flatten"), axis=1)
        if how == "flatten" or spec.num_directions == 2:
            t = self.transpose(s, [1, 0, 2], name=self.fresh("state_bdh"))
            return self.op("Flatten", [t], name=self.fresh("state_flatten"), axis=1)
        return self.squeeze(s, [0], name=self.fresh("state_squeeze"))

    def last_step(self, seq: str, time_axis: int, how: str = "gather") -> str:
        """One step of a ``[.., T, .., F]`` sequence -> a vector.

        how: ``gather`` (index -1), ``gather0`` (index 0), ``slice`` (Slice [-1:] + Squeeze).
        """
        if how == "gather":
            return self.gather(seq, -1, time_axis, name=self.fresh("last_step"))
        if how == "gather0":
            return self.gather(seq, 0, time_axis, name=self.fresh("first_step"))
        if how == "slice":
            s = self.slice(seq, [-1], [np.iinfo(np.int64).max], [time_axis], name=self.fresh("last_slice"))
            return self.squeeze(s, [time_axis], name=self.fresh("last_squeeze"))
        raise ValueError(how)

    def dense(
        self,
        x: str,
        in_features: int,
        out_features: int,
        *,
        how: str = "gemm_t1",
        alpha: float = 1.0,
        beta: float = 1.0,
        name: str | None = None,
    ) -> str:
        """A dense layer. how: ``gemm_t1`` (Gemm transB=1, W [O, I]), ``gemm_t0`` (transB=0,
        W [I, O]), ``matmul_add`` (MatMul [I, O] + Add [O]; works on sequences too)."""
        w = self.rng.uniform(-1, 1, (out_features, in_features)).astype(np.float32)
        w /= np.sqrt(in_features)
        bias = self.rng.uniform(-0.5, 0.5, (out_features,)).astype(np.float32)
        name = name or self.fresh("head")
        if how == "gemm_t1":
            return self.op(
                "Gemm",
                [x, self.const(w, f"{name}_weight"), self.const(bias, f"{name}_bias")],
                name=name,
                transB=1,
                alpha=alpha,
                beta=beta,
            )
        if how == "gemm_t0":
            return self.op(
                "Gemm",
                [
                    x,
                    self.const(np.ascontiguousarray(w.T), f"{name}_weight"),
                    self.const(bias, f"{name}_bias"),
                ],
                name=name,
                transB=0,
                alpha=alpha,
                beta=beta,
            )
        if how == "matmul_add":
            m = self.op("MatMul", [x, self.const(np.ascontiguousarray(w.T), f"{name}_weight")], name=name)
            return self.op("Add", [m, self.const(bias, f"{name}_bias")], name=f"{name}_add")
        raise ValueError(how)

    def activation(self, x: str, op_type: str, *, axis: int | None = None, name: str | None = None) -> str:
        """Relu / Tanh / Sigmoid / Softmax / LogSoftmax / ... (axis for the softmaxes)."""
        return self.op(op_type, [x], name=name or self.fresh(op_type.lower()), axis=axis)

    # finishing ----------------------------------------------------------------------------
    def build(
        self,
        outputs: Sequence[str],
        *,
        graph_name: str = "tinylstm_test",
        ir_version: int | None = None,
        extra_opsets: Sequence[tuple[str, int]] = (),
    ) -> onnx.ModelProto:
        """The model with ``outputs`` as graph outputs (the first is the one tinylstm models)."""
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, outs, self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        opsets += [helper.make_opsetid(dom, v) for dom, v in extra_opsets]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="tests.onnx_builders")
        # stay loadable by the installed onnxruntime whatever onnx's newest IR version is
        model.ir_version = ir_version if ir_version is not None else min(model.ir_version, 9)
        _type_outputs(model)
        return model


def _type_outputs(model: onnx.ModelProto) -> None:
    """Give graph outputs the shapes ONNX shape inference finds (dynamic dims stay symbolic).

    Models built to be invalid keep float outputs of unknown shape."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:
        return
    types = {v.name: v.type for v in inferred.graph.value_info}
    types.update({v.name: v.type for v in inferred.graph.output})
    for o in model.graph.output:
        t = types.get(o.name)
        if t is not None and t.tensor_type.HasField("shape"):
            o.type.CopyFrom(t)


# --------------------------------------------------------------------------------------
# Model-level shortcuts
# --------------------------------------------------------------------------------------
def single_lstm_model(
    spec: LstmSpec,
    *,
    batch: Dim = "batch",
    time: Dim = "time",
    graph_outputs: Sequence[str] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    emulate_layout1: bool = False,
    name: str = "lstm_1",
    input_name: str = "x",
) -> onnx.ModelProto:
    """One LSTM; its outputs (``graph_outputs``, default ``spec.outputs``, in that order) are
    the graph outputs, named ``Y`` / ``Y_h`` / ``Y_c``."""
    b = GraphBuilder(opset, seed, emulate_layout1=emulate_layout1)
    x = b.sequence_input(input_name, layout=spec.layout, batch=batch, time=time, features=spec.input_size)
    out = b.lstm(
        x,
        spec,
        name=name,
        batch=batch if isinstance(batch, int) else None,
        output_names={k: k for k in LSTM_OUTPUTS},
    )
    order = list(graph_outputs) if graph_outputs is not None else list(spec.outputs)
    return b.build([out.get(k) for k in order])


@dataclass(frozen=True)
class HeadSpec:
    """What follows the last LSTM.

    kind:
      ``none``           the last LSTM's sequence ``[T, B, D*H]`` (or ``[B, T, D*H]``)
      ``last_gemm``      Gather(step -1) -> Gemm
      ``last_slice_gemm_t0`` Slice(step -1) -> Squeeze -> Gemm(transB=0)
      ``first_gemm``     Gather(step 0) -> Gemm
      ``state_matmul``   Y_h -> Squeeze / Flatten -> MatMul + Add
      ``state_flatten_gemm`` Y_h -> Transpose -> Flatten -> Gemm
      ``per_step``       sequence -> MatMul + Add per step (many-to-many)
    """

    kind: str = "last_gemm"
    out_features: int = 2
    alpha: float = 1.0
    beta: float = 1.0
    trans_b: int = 1  # Gemm transB
    #: activations after the head, in order (``Softmax`` / ``LogSoftmax`` on the last axis)
    activations: tuple[str, ...] = ()
    identity_cast: bool = False  # wrap the head input in Identity -> Cast(float)


def stacked_model(
    specs: Sequence[LstmSpec],
    *,
    head: HeadSpec | None = None,
    batch: Dim = "batch",
    time: Dim = "time",
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    emulate_layout1: bool = False,
    glue: str = "squeeze",
) -> onnx.ModelProto:
    """LSTM layers stacked (Y -> Squeeze/Reshape or Transpose+Reshape -> next LSTM) and a head.

    Every layer must use the first layer's layout. The first output is the head's output.
    """
    head = head or HeadSpec("none")
    layout = specs[0].layout
    if any(s.layout != layout for s in specs):
        raise ValueError("all layers must share one layout")
    b = GraphBuilder(opset, seed, emulate_layout1=emulate_layout1)
    x = b.sequence_input("x", layout=layout, batch=batch, time=time, features=specs[0].input_size)
    static_batch = batch if isinstance(batch, int) else None
    seq = x
    out = None
    for k, spec in enumerate(specs):
        want = ("Y", "Y_h") if k == len(specs) - 1 else ("Y",)
        spec = replace(spec, outputs=tuple(sorted(set(spec.outputs) | set(want), key=LSTM_OUTPUTS.index)))
        out = b.lstm(seq, spec, name=f"lstm_{k + 1}", batch=static_batch)
        seq = b.y_to_sequence(out.get("Y"), spec, glue)
    assert out is not None
    last = specs[-1]
    feat = last.features
    time_axis = 0 if layout == 0 else 1
    if head.identity_cast:
        seq = b.op("Identity", [seq], name="identity")
        seq = b.op("Cast", [seq], name="cast", to=TensorProto.FLOAT)
    k = head.kind
    if k == "none":
        y = seq
    elif k in ("last_gemm", "first_gemm"):
        v = b.last_step(seq, time_axis, "gather" if k == "last_gemm" else "gather0")
        y = b.dense(
            v,
            feat,
            head.out_features,
            how="gemm_t1" if head.trans_b else "gemm_t0",
            alpha=head.alpha,
            beta=head.beta,
            name="head",
        )
    elif k == "last_slice_gemm_t0":
        v = b.last_step(seq, time_axis, "slice")
        y = b.dense(v, feat, head.out_features, how="gemm_t0", alpha=head.alpha, beta=head.beta, name="head")
    elif k == "state_matmul":
        v = b.state_to_vector(out.get("Y_h"), last)
        y = b.dense(v, feat, head.out_features, how="matmul_add", name="head")
    elif k == "state_flatten_gemm":
        v = b.state_to_vector(out.get("Y_h"), last, "flatten")
        y = b.dense(
            v,
            feat,
            head.out_features,
            how="gemm_t1" if head.trans_b else "gemm_t0",
            alpha=head.alpha,
            beta=head.beta,
            name="head",
        )
    elif k == "per_step":
        y = b.dense(seq, feat, head.out_features, how="matmul_add", name="head")
    else:
        raise ValueError(k)
    for act in head.activations:
        axis = -1 if act in ("Softmax", "LogSoftmax") else None
        y = b.activation(y, act, axis=axis)
    return b.build([y])


# --------------------------------------------------------------------------------------
# Inputs, onnxruntime, files
# --------------------------------------------------------------------------------------
def input_shape(model: onnx.ModelProto, batch: int, time: int) -> tuple[int, ...]:
    """The first graph input's shape with dynamic dims filled (dim_param 'batch' -> batch,
    anything else dynamic -> time; static dims kept)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    out = []
    for d in dims:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        else:
            out.append(batch if d.dim_param == "batch" else time)
    return tuple(out)


def random_input(model: onnx.ModelProto, batch: int, time: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, scale, input_shape(model, batch, time)).astype(np.float32)


def random_lengths(batch: int, time: int, seed: int = 0, min_len: int = 1) -> np.ndarray:
    """(batch,) int32 lengths in [min_len, time]: the first row full length, the last (when
    batch > 1) exactly ``min_len``, the others random."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, time + 1, size=batch).astype(np.int32)
    if batch > 1:
        lens[-1] = min_len
    lens[0] = time
    return lens


def ort_session(model: onnx.ModelProto):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_ort(
    model: onnx.ModelProto,
    x: np.ndarray,
    sequence_lens: np.ndarray | None = None,
    *,
    session=None,
) -> list[np.ndarray]:
    """All graph outputs from onnxruntime; ``sequence_lens`` feeds the second graph input.
    Pass ``session`` (from :func:`ort_session`) to reuse one across runs."""
    feeds = {model.graph.input[0].name: x}
    init_names = {t.name for t in model.graph.initializer}
    extra = [i.name for i in model.graph.input[1:] if i.name not in init_names]
    if extra:
        if sequence_lens is None:
            raise ValueError(f"model needs {extra}")
        feeds[extra[0]] = np.asarray(sequence_lens, dtype=np.int32)
    return (session or ort_session(model)).run(None, feeds)


def save_model(
    model: onnx.ModelProto,
    path: str | os.PathLike,
    *,
    external: bool = False,
    location: str | None = None,
) -> str:
    """Write ``model`` to ``path``; with ``external`` every initializer goes to ``location``
    (default ``<file name>.data``) beside it. Returns the path as a str."""
    path = os.fspath(path)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if external:
        onnx.save_model(
            m,
            path,
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=location or os.path.basename(path) + ".data",
            size_threshold=0,
        )
    else:
        onnx.save_model(m, path)
    return path


def set_external_location(path: str | os.PathLike, location: str) -> None:
    """Rewrite every external-data ``location`` in the saved model at ``path`` (no data moved)."""
    m = onnx.load_model(os.fspath(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
