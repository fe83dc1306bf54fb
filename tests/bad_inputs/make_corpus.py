"""Regenerate the hostile-input corpus for ``tinylstm inspect`` / ``tinylstm.load_onnx``.

Usage::

    python tests/bad_inputs/make_corpus.py            # (re)write tests/bad_inputs/corpus/
    python tests/bad_inputs/make_corpus.py --check    # exit 1 if the stored corpus is stale
    python tests/bad_inputs/make_corpus.py --list     # one line per case

Every case is a function returning the bytes of one ``<name>.onnx`` file, or a
:class:`Folder` (``<name>/model.onnx`` plus data files and symlinks) for external-data cases.
Generation is deterministic (seeded numpy, ``SerializeToString(deterministic=True)``), so the
stored corpus is byte-identical on every run. :data:`CASES` also records what each case must
do: ``load`` (exit 0), ``error`` (exit 2 naming ``culprit``) or ``either`` (mutations whose
outcome depends on where the damage landed: never a crash, but load and error are both fine).

Cases marked ``stored=False`` are too large for the repository (the 10^5-node graph); tests
generate them into a temporary folder with :func:`write_case`.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: onnx_builders

from onnx_builders import (  # noqa: E402
    GraphBuilder,
    HeadSpec,
    LstmSpec,
    single_lstm_model,
    stacked_model,
)

CORPUS = HERE / "corpus"
#: a file beside the per-case folders that external data must never reach
OUTSIDE_FILE = "outside.bin"
OUTSIDE_BYTES = bytes(range(256)) * 4

Expect = Literal["load", "error", "either"]


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to ``target`` (absolute, or relative to the link's folder)."""

    target: str


@dataclass(frozen=True)
class Folder:
    """A case stored as ``<name>/``: ``model.onnx`` plus other files (bytes or symlinks)."""

    model: bytes
    files: dict[str, bytes | Symlink] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    expect: Expect
    #: a substring the one-line error must contain (node name / field / file); None: not checked
    culprit: str | None
    build: Callable[[], bytes | Folder]
    #: may allocate or loop without bound if the importer has no guard: run under a memory limit
    huge: bool = False
    stored: bool = True
    note: str = ""

    def path(self, root: Path) -> Path:
        """The model file of this case under corpus folder ``root``."""
        return root / self.name / "model.onnx" if self.is_folder else root / f"{self.name}.onnx"

    @property
    def is_folder(self) -> bool:
        return self.name.startswith("ext_")


CASES: dict[str, Case] = {}


def case(name: str, category: str, expect: Expect, culprit: str | None = None, **kw):
    def deco(fn: Callable[[], bytes | Folder]) -> Callable[[], bytes | Folder]:
        if name in CASES:
            raise ValueError(f"duplicate case {name}")
        CASES[name] = Case(name, category, expect, culprit, fn, **kw)
        return fn

    return deco


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def ser(model: onnx.ModelProto | onnx.GraphProto | onnx.TensorProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def base_model() -> onnx.ModelProto:
    """The small valid model every mutation starts from: LSTM(3->4) -> last step -> Gemm(2)."""
    return stacked_model([LstmSpec()], head=HeadSpec("last_gemm"))


def swap_bytes(data: bytes, placeholder: bytes, raw: bytes) -> bytes:
    """Replace a placeholder string by raw bytes of the same length (framing stays valid)."""
    assert len(placeholder) == len(raw) and placeholder in data
    return data.replace(placeholder, raw)


def lstm_then(spec: LstmSpec | None = None, *, opset: int = 17, batch="batch", time="time"):
    """A builder holding x -> lstm_1 -> Y squeezed to [T, B, H]; returns (builder, seq, out)."""
    spec = spec or LstmSpec()
    b = GraphBuilder(opset)
    x = b.sequence_input("x", layout=spec.layout, batch=batch, time=time, features=spec.input_size)
    out = b.lstm(x, replace(spec, outputs=("Y", "Y_h")))
    return b, b.y_to_sequence(out.y, spec), out


def with_head(extra: Callable[[GraphBuilder, str], None] | None = None, **kw) -> onnx.ModelProto:
    """A valid LSTM model; ``extra(builder, seq)`` may add dead or live nodes before build."""
    b, seq, _ = lstm_then(**kw)
    last = b.last_step(seq, 0)
    y = b.dense(last, 4, 2, name="head")
    if extra is not None:
        extra(b, seq)
    return b.build([y])


def dead(op_type: str, inputs_fn, *, name: str, **attrs) -> Callable[[GraphBuilder, str], None]:
    """A node off the model's path: the importer still visits (and folds) it."""

    def add(b: GraphBuilder, seq: str) -> None:
        b.op(op_type, inputs_fn(b), name=name, **attrs)

    return add


def set_attr(model: onnx.ModelProto, node_name: str, attr: onnx.AttributeProto) -> onnx.ModelProto:
    """Replace (or add) attribute ``attr.name`` of node ``node_name``."""
    for n in model.graph.node:
        if n.name == node_name:
            keep = [a for a in n.attribute if a.name != attr.name]
            del n.attribute[:]
            n.attribute.extend(keep + [attr])
            return model
    raise KeyError(node_name)


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    for n in model.graph.node:
        if n.name == name:
            return n
    raise KeyError(name)


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    for t in model.graph.initializer:
        if t.name == name:
            return t
    raise KeyError(name)


def replace_initializer(model: onnx.ModelProto, name: str, array: np.ndarray) -> onnx.ModelProto:
    initializer(model, name).CopyFrom(numpy_helper.from_array(array, name))
    return model


def i64(*v: int) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


# --------------------------------------------------------------------------------------
# files that are not models
# --------------------------------------------------------------------------------------
@case("empty", "file", "error", "empty.onnx")
def _empty() -> bytes:
    return b""


@case("random_bytes", "file", "error", "random_bytes.onnx")
def _random_bytes() -> bytes:
    return np.random.default_rng(1).bytes(2048)


@case("text", "file", "error", "text.onnx")
def _text() -> bytes:
    return b"ir_version: 8\ngraph { node { op_type: 'LSTM' } }\n"


@case("tensor_proto", "file", "error", "tensor_proto.onnx")
def _tensor_proto() -> bytes:
    """A valid protobuf that is a TensorProto, not a ModelProto."""
    return ser(numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(4, 16), "w"))


@case("graph_proto", "file", "error", "graph_proto.onnx")
def _graph_proto() -> bytes:
    """A GraphProto saved on its own (field numbers differ from ModelProto's)."""
    return ser(base_model().graph)


@case("no_nodes", "file", "error", "no_nodes.onnx")
def _no_nodes() -> bytes:
    m = base_model()
    del m.graph.node[:]
    return ser(m)


@case("no_graph_input", "graph", "error", "no input")
def _no_graph_input() -> bytes:
    m = base_model()
    del m.graph.input[:]
    return ser(m)


@case("no_graph_output", "graph", "error", "no output")
def _no_graph_output() -> bytes:
    m = base_model()
    del m.graph.output[:]
    return ser(m)


# truncations at several points of a valid model, and seeded bit flips
_TRUNCATE_AT = (1, 16, 0.25, 0.5, 0.9, -1)
for _k, _at in enumerate(_TRUNCATE_AT):

    def _truncated(at=_at) -> bytes:
        data = ser(base_model())
        n = at if isinstance(at, int) and at > 0 else (len(data) - 1 if at == -1 else int(len(data) * at))
        return data[:n]

    case(f"truncated_{_k}", "truncated/bit-flipped", "either")(_truncated)

for _k in range(10):

    def _bitflip(seed=_k) -> bytes:
        data = bytearray(ser(base_model()))
        rng = np.random.default_rng(100 + seed)
        for _ in range(1 + seed % 4):
            pos = int(rng.integers(len(data)))
            data[pos] ^= 1 << int(rng.integers(8))
        return bytes(data)

    case(f"bitflip_{_k}", "truncated/bit-flipped", "either")(_bitflip)


# --------------------------------------------------------------------------------------
# opsets and domains
# --------------------------------------------------------------------------------------
def with_opsets(opsets: list[tuple[str, int]]) -> bytes:
    m = base_model()
    del m.opset_import[:]
    m.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    return ser(m)


@case("opset_999", "opset/domain", "error", "opset 999")
def _opset_999() -> bytes:
    return with_opsets([("", 999)])


@case("opset_negative", "opset/domain", "error", "opset -5")
def _opset_negative() -> bytes:
    return with_opsets([("", -5)])


@case("opset_only_custom_domain", "opset/domain", "error", "no opset of the default")
def _opset_custom() -> bytes:
    return with_opsets([("com.example", 17)])


@case("opset_duplicate_default", "opset/domain", "error", "opset_import",
      note="two ai.onnx opset_import entries (99 and 17): the checker refuses; the importer "
      "validates the last and interprets with the first")
def _opset_dup() -> bytes:
    return with_opsets([("", 99), ("", 17)])


@case("opset_9_with_opset_10_slice", "opset/domain", "error", "last_slice",
      note="declares opset 9 but its Slice passes starts/ends as inputs (opset >= 10 style)")
def _opset9_slice() -> bytes:
    m = stacked_model([LstmSpec()], head=HeadSpec("last_slice_gemm_t0"))
    m.opset_import[0].version = 9
    return ser(m)


@case("ir_version_huge", "opset/domain", "either",
      note="ir_version 2^40: onnxruntime refuses it; the importer does not need the IR version")
def _ir_huge() -> bytes:
    m = base_model()
    m.ir_version = 2**40
    return ser(m)


@case("lstm_in_custom_domain", "opset/domain", "error", "lstm_1")
def _lstm_custom_domain() -> bytes:
    m = base_model()
    node(m, "lstm_1").domain = "com.microsoft"
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return ser(m)


@case("ml_domain_head", "opset/domain", "error", "ml_head")
def _ml_domain() -> bytes:
    b, seq, _ = lstm_then()
    last = b.last_step(seq, 0)
    y = b.op("Normalizer", [last], name="ml_head", domain="ai.onnx.ml", norm="L2")
    return ser(b.build([y], extra_opsets=[("ai.onnx.ml", 3)]))


# --------------------------------------------------------------------------------------
# unsupported ops, attributes, malformed nodes
# --------------------------------------------------------------------------------------
@case("op_conv_head", "unsupported op/attribute", "error", "conv_head")
def _conv_head() -> bytes:
    b, _, out = lstm_then()
    v = b.transpose(out.y_h, [1, 0, 2], name="to_bch")
    y = b.op("Conv", [v, b.const(np.ones((2, 1, 3), np.float32), "conv_w")], name="conv_head", kernel_shape=[3])
    return ser(b.build([y]))


@case("op_unknown_type", "unsupported op/attribute", "error", "mystery")
def _op_unknown() -> bytes:
    b, seq, _ = lstm_then()
    y = b.op("NotAnOnnxOp", [seq], name="mystery")
    return ser(b.build([y]))


@case("lstm_unknown_attr", "unsupported op/attribute", "error", "proj_size")
def _lstm_unknown_attr() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("proj_size", 2),))))


@case("gemm_unknown_attr", "unsupported op/attribute", "error", "head")
def _gemm_unknown_attr() -> bytes:
    m = base_model()
    return ser(set_attr(m, "head", helper.make_attribute("flavour", "spicy")))


@case("attr_layout_is_string", "attribute type confusion", "error", "layout")
def _attr_layout_string() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("layout", "sideways"),))))


@case("attr_clip_is_string", "attribute type confusion", "error", "clip")
def _attr_clip_string() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("clip", "big"),))))


@case("attr_hidden_size_is_string", "attribute type confusion", "error", "hidden_size")
def _attr_hidden_string() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("hidden_size", "four"),))))


@case("attr_hidden_size_is_float", "attribute type confusion", "error", "hidden_size",
      note="4.5 is not an int; int(4.5) == 4 would silently match W")
def _attr_hidden_float() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("hidden_size", 4.5),))))


@case("attr_clip_undefined_type", "attribute type confusion", "error", "clip",
      note="clip=0.5 stored with its type left UNDEFINED: treating it as absent drops the clip")
def _attr_clip_undefined() -> bytes:
    m = single_lstm_model(LstmSpec())
    a = onnx.AttributeProto()
    a.name = "clip"
    a.f = 0.5  # value set, type left UNDEFINED
    return ser(set_attr(m, "lstm_1", a))


@case("attr_direction_is_int", "attribute type confusion", "error", "direction")
def _attr_direction_int() -> bytes:
    return ser(single_lstm_model(LstmSpec(extra_attrs=(("direction", 1),))))


@case("attr_activation_alpha_strings", "attribute type confusion", "error", "activation_alpha")
def _attr_alpha_strings() -> bytes:
    return ser(single_lstm_model(LstmSpec(
        activations=("LeakyRelu", "Tanh", "Tanh"), extra_attrs=(("activation_alpha", ["lots"]),))))


@case("attr_perm_is_string", "attribute type confusion", "error", "to_bth")
def _attr_perm_string() -> bytes:
    b, seq, _ = lstm_then()
    t = b.op("Transpose", [seq], name="to_bth", perm="0,1,2")
    last = b.last_step(t, 1)
    return ser(b.build([b.dense(last, 4, 2, name="head")]))


@case("cast_without_to", "attribute type confusion", "error", "cast_no_to")
def _cast_without_to() -> bytes:
    b, seq, _ = lstm_then()
    c = b.op("Cast", [seq], name="cast_no_to")
    last = b.last_step(c, 0)
    return ser(b.build([b.dense(last, 4, 2, name="head")]))


@case("cast_const_without_to", "attribute type confusion", "error", "cast_const",
      note="the same on a constant: folded")
def _cast_const_without_to() -> bytes:
    return ser(with_head(dead("Cast", lambda b: [b.ints([1, 2])], name="cast_const")))


@case("transpose_perm_out_of_range", "malformed node", "error", "bad_perm")
def _perm_range() -> bytes:
    b, seq, _ = lstm_then()
    t = b.transpose(seq, [0, 1, 7], name="bad_perm")
    last = b.last_step(t, 0)
    return ser(b.build([b.dense(last, 4, 2, name="head")]))


@case("transpose_perm_repeats_axis", "malformed node", "error", "dup_perm",
      note="perm [0, 0, 2] is not a permutation")
def _perm_dup() -> bytes:
    b, seq, _ = lstm_then()
    t = b.transpose(seq, [0, 0, 2], name="dup_perm")
    last = b.last_step(t, 0)
    return ser(b.build([b.dense(last, 4, 2, name="head")]))


@case("transpose_perm_too_short", "malformed node", "error", "short_perm")
def _perm_short() -> bytes:
    b, seq, _ = lstm_then()
    t = b.transpose(seq, [2], name="short_perm")
    return ser(b.build([t]))


@case("reshape_missing_shape_input", "malformed node", "error", "lone_reshape")
def _reshape_one_input() -> bytes:
    b, seq, _ = lstm_then()
    r = b.op("Reshape", [seq], name="lone_reshape")
    return ser(b.build([r]))


@case("gather_missing_indices", "malformed node", "error", "lone_gather")
def _gather_one_input() -> bytes:
    b, seq, _ = lstm_then()
    g = b.op("Gather", [seq], name="lone_gather", axis=0)
    return ser(b.build([b.dense(g, 4, 2, name="head")]))


@case("matmul_three_inputs", "malformed node", "error", "mm3")
def _matmul3() -> bytes:
    b, seq, _ = lstm_then()
    w = b.const(np.ones((4, 2), np.float32), "w")
    y = b.op("MatMul", [seq, w, w], name="mm3")
    return ser(b.build([y]))


@case("add_one_input", "malformed node", "error", "add1")
def _add1() -> bytes:
    b, seq, _ = lstm_then()
    y = b.op("Add", [seq], name="add1")
    return ser(b.build([y]))


@case("gemm_one_input", "malformed node", "error", "gemm1")
def _gemm1() -> bytes:
    b, seq, _ = lstm_then()
    last = b.last_step(seq, 0)
    y = b.op("Gemm", [last], name="gemm1")
    return ser(b.build([y]))


@case("unsqueeze_no_axes", "malformed node", "error", "unsq",
      note="opset 11 Unsqueeze without its required axes attribute")
def _unsqueeze_no_axes() -> bytes:
    b, seq, _ = lstm_then(opset=11)
    u = b.op("Unsqueeze", [seq], name="unsq")
    return ser(b.build([u]))


@case("lstm_nine_inputs", "malformed node", "error", "lstm_1",
      note="an LSTM has at most 8 inputs; a 9th is not silently ignored")
def _lstm9() -> bytes:
    m = single_lstm_model(LstmSpec(peepholes=True))
    n = node(m, "lstm_1")
    while len(n.input) < 8:
        n.input.append("")
    n.input.append("lstm_1_W")
    return ser(m)


@case("lstm_weights_are_strings", "malformed node", "error", "lstm_1_W")
def _lstm_string_w() -> bytes:
    m = single_lstm_model(LstmSpec())
    w = numpy_helper.to_array(initializer(m, "lstm_1_W"))
    t = helper.make_tensor("lstm_1_W", TensorProto.STRING, list(w.shape), [b"nan?"] * w.size)
    initializer(m, "lstm_1_W").CopyFrom(t)
    return ser(m)


@case("lstm_weights_complex", "malformed node", "error", "lstm_1_W",
      note="complex64 W: casting to float32 would silently drop the imaginary part")
def _lstm_complex_w() -> bytes:
    m = single_lstm_model(LstmSpec())
    w = numpy_helper.to_array(initializer(m, "lstm_1_W")).astype(np.complex64) * (1 + 1j)
    return ser(replace_initializer(m, "lstm_1_W", w))


@case("constant_value_bad_raw_data", "malformed node", "error", "bad_const",
      note="a Constant node (not an initializer) whose raw_data does not fit its dims")
def _constant_bad_raw() -> bytes:
    def add(b: GraphBuilder, seq: str) -> None:
        t = onnx.TensorProto()
        t.data_type = TensorProto.FLOAT
        t.dims.append(1000)
        t.raw_data = b"\x00" * 12
        b.op("Constant", [], name="bad_const", value=t)

    return ser(with_head(add))


@case("constant_of_shape_empty_value", "malformed node", "error", "cos_empty")
def _cos_empty_value() -> bytes:
    def add(b: GraphBuilder, seq: str) -> None:
        v = helper.make_tensor("value", TensorProto.FLOAT, [0], [])
        b.op("ConstantOfShape", [b.ints([2, 3])], name="cos_empty", value=v)

    return ser(with_head(add))


# constant folding of malformed shape arithmetic
@case("fold_gather_out_of_range", "malformed node", "error", "gather_oob")
def _fold_gather_oob() -> bytes:
    return ser(with_head(dead("Gather", lambda b: [b.ints([1, 2, 3]), b.ints([10])], name="gather_oob", axis=0)))


@case("fold_concat_mismatch", "malformed node", "error", "concat_bad")
def _fold_concat_mismatch() -> bytes:
    return ser(with_head(dead(
        "Concat", lambda b: [b.const(np.ones((2, 3), np.int64)), b.const(np.ones((3, 2), np.int64))],
        name="concat_bad", axis=0)))


@case("fold_squeeze_not_one", "malformed node", "error", "squeeze_bad")
def _fold_squeeze() -> bytes:
    return ser(with_head(dead("Squeeze", lambda b: [b.ints([1, 2, 3]), b.ints([0])], name="squeeze_bad")))


@case("fold_transpose_bad_perm", "malformed node", "error", "transpose_bad")
def _fold_transpose() -> bytes:
    return ser(with_head(dead("Transpose", lambda b: [b.const(np.ones((2, 3), np.int64))], name="transpose_bad",
                              perm=[0, 5])))


@case("fold_div_by_zero", "malformed node", "either", "div0",
      note="integer Div by zero in (dead) shape arithmetic: onnxruntime refuses it; either way no "
      "numpy warning may reach stderr")
def _fold_div0() -> bytes:
    return ser(with_head(dead("Div", lambda b: [b.ints([6]), b.ints([0])], name="div0")))


@case("fold_range_step_zero", "malformed node", "error", "range0")
def _fold_range0() -> bytes:
    def inputs(b):
        return [b.const(np.asarray(0, np.int64)), b.const(np.asarray(10, np.int64)), b.const(np.asarray(0, np.int64))]

    return ser(with_head(dead("Range", inputs, name="range0")))


@case("fold_constant_of_shape_negative", "malformed node", "error", "cos_neg")
def _fold_cos_neg() -> bytes:
    return ser(with_head(dead("ConstantOfShape", lambda b: [b.ints([2, -3])], name="cos_neg")))


@case("fold_expand_negative", "malformed node", "error", "expand_neg")
def _fold_expand_neg() -> bytes:
    return ser(with_head(dead("Expand", lambda b: [b.ints([1]), b.ints([-4])], name="expand_neg")))


@case("fold_reshape_int64_overflow", "malformed node", "error", "reshape_wrap",
      note="target [2^62 + 1, 4] for 4 elements: the int64 product wraps around to 4")
def _fold_reshape_wrap() -> bytes:
    return ser(with_head(dead("Reshape", lambda b: [b.const(np.ones(4, np.float32)), b.ints([2**62 + 1, 4])],
                              name="reshape_wrap")))


@case("loop_1e12_dead", "malformed node", "error", "endless_loop", huge=True,
      note="a dead Loop on constants with trip count 10^12: folding it must not run it")
def _loop_dead() -> bytes:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])

    def inputs(b):
        return [b.const(np.asarray(10**12, np.int64), "trip_count"), b.const(np.asarray(True), "keep_going")]

    return ser(with_head(dead("Loop", inputs, name="endless_loop", body=body)))


@case("expand_model_data_negative", "malformed node", "error", "expand_neg_sym")
def _expand_sym_neg() -> bytes:
    b, seq, _ = lstm_then()
    e = b.op("Expand", [seq, b.ints([-1, 1, 4])], name="expand_neg_sym")
    return ser(b.build([e]))


@case("squeeze_axis_out_of_range", "malformed node", "error", "squeeze_far",
      note="Squeeze axes [5] on the rank-4 LSTM output Y: out of range, must not wrap to axis 1")
def _squeeze_far() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    out = b.lstm(x, LstmSpec(outputs=("Y",)))
    return ser(b.build([b.squeeze(out.y, [5], name="squeeze_far")]))


@case("softmax_axis_out_of_range", "malformed node", "error", "softmax_far",
      note="Softmax axis 5 on a rank-2 tensor: out of range, must not wrap")
def _softmax_far() -> bytes:
    b, seq, _ = lstm_then()
    last = b.last_step(seq, 0)
    y = b.dense(last, 4, 2, name="head")
    return ser(b.build([b.activation(y, "Softmax", axis=5, name="softmax_far")]))


@case("gather_time_out_of_range", "malformed node", "error", "step_7",
      note="static time 5, Gather of step 7")
def _gather_time_oob() -> bytes:
    b, seq, _ = lstm_then(time=5)
    g = b.gather(seq, 7, 0, name="step_7")
    return ser(b.build([b.dense(g, 4, 2, name="head")]))


@case("gather_step_minus_8", "malformed node", "load",
      note="dynamic time, Gather of step -8: loads; a 5-step input must be a DataError at run time")
def _gather_minus_8() -> bytes:
    b, seq, _ = lstm_then()
    g = b.gather(seq, -8, 0, name="step_minus_8")
    return ser(b.build([b.dense(g, 4, 2, name="head")]))


@case("sequence_lens_beyond_time", "malformed node", "either",
      note="static time 5, sequence_lens initializer [9, 2]")
def _lens_beyond() -> bytes:
    return ser(single_lstm_model(LstmSpec(sequence_lens="initializer", lens=(9, 2)), batch=2, time=5))


# --------------------------------------------------------------------------------------
# missing tensors, graph structure
# --------------------------------------------------------------------------------------
@case("missing_initializer_w", "graph", "error", "lstm_1_W")
def _missing_w() -> bytes:
    m = base_model()
    keep = [t for t in m.graph.initializer if t.name != "lstm_1_W"]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return ser(m)


@case("missing_head_bias", "graph", "error", "head_bias")
def _missing_bias() -> bytes:
    m = base_model()
    keep = [t for t in m.graph.initializer if t.name != "head_bias"]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return ser(m)


@case("weights_from_graph_input", "graph", "error", "lstm_1_W")
def _w_from_input() -> bytes:
    m = base_model()
    t = initializer(m, "lstm_1_W")
    m.graph.input.append(helper.make_tensor_value_info("lstm_1_W", TensorProto.FLOAT, list(t.dims)))
    keep = [t for t in m.graph.initializer if t.name != "lstm_1_W"]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return ser(m)


@case("cycle_two_nodes", "graph", "error", "loop_a")
def _cycle() -> bytes:
    b, seq, _ = lstm_then()
    a = b.op("Identity", ["loop_b_out"], name="loop_a", outputs=["loop_a_out"])
    b.op("Identity", [a], name="loop_b", outputs=["loop_b_out"])
    return ser(b.build([b.op("Add", [seq, a], name="use_loop")]))


@case("cycle_self_loop", "graph", "error", "selfie")
def _self_loop() -> bytes:
    m = base_model()
    n = helper.make_node("Identity", ["selfie_out"], ["selfie_out"], name="selfie")
    m.graph.node.insert(0, n)
    return ser(m)


@case("duplicate_node_output", "graph", "error", "head",
      note="two nodes write tensor 'head_out' (not SSA): onnxruntime refuses the graph")
def _dup_output() -> bytes:
    m = base_model()
    g = m.graph
    head = node(m, "head")
    clash = helper.make_node("Identity", [g.node[-1].input[0]], [head.output[0]], name="clash")
    g.node.append(clash)
    return ser(m)


@case("duplicate_graph_output", "graph", "load",
      note="the same tensor listed twice as a graph output")
def _dup_graph_output() -> bytes:
    m = base_model()
    m.graph.output.append(m.graph.output[0])
    return ser(m)


@case("duplicate_initializer", "graph", "error", "lstm_1_W",
      note="two initializers named lstm_1_W (same shape, other values): which one is meant?")
def _dup_init() -> bytes:
    m = base_model()
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 16, 3), np.float32), "lstm_1_W"))
    return ser(m)


@case("output_is_graph_input", "graph", "error", "graph output 'x'")
def _output_is_input() -> bytes:
    m = base_model()
    m.graph.output[0].name = m.graph.input[0].name
    return ser(m)


@case("input_not_a_tensor", "graph", "error", "'x'")
def _input_seq_type() -> bytes:
    m = base_model()
    inp = m.graph.input[0]
    t = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [3]))
    inp.type.CopyFrom(t)
    return ser(m)


@case("input_rank_5", "graph", "error", "'x'")
def _input_rank5() -> bytes:
    m = base_model()
    d = m.graph.input[0].type.tensor_type.shape.dim
    d.add().dim_value = 1
    d.add().dim_value = 1
    return ser(m)


# --------------------------------------------------------------------------------------
# shapes we cannot fold
# --------------------------------------------------------------------------------------
@case("reshape_target_from_data", "unresolvable shape", "error", "data_max",
      note="the Reshape target is computed from the input's values (Cast(ReduceMax(x)))")
def _reshape_from_data() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    out = b.lstm(x, LstmSpec(outputs=("Y",)))
    mx = b.op("ReduceMax", [x], name="data_max", keepdims=0)
    n = b.op("Cast", [mx], name="data_shape", to=TensorProto.INT64)
    r = b.op("Reshape", [out.y, b.op("Reshape", [n, b.ints([1])], name="n_1d")], name="reshape_by_data")
    return ser(b.build([r]))


@case("reshape_target_from_graph_input", "unresolvable shape", "error", "target_shape")
def _reshape_from_input() -> bytes:
    b, seq, _ = lstm_then()
    t = b.add_input("target_shape", [3], TensorProto.INT64)
    return ser(b.build([b.op("Reshape", [seq, t], name="reshape_by_input")]))


@case("reshape_two_minus_one", "unresolvable shape", "error", "two_m1")
def _reshape_two_m1() -> bytes:
    b, seq, _ = lstm_then()
    return ser(b.build([b.reshape(seq, [-1, -1], name="two_m1")]))


@case("reshape_splits_time", "unresolvable shape", "load",
      note="[T, B, H] -> [2, -1, H] on a dynamic time axis: imported with the time fixed to 2 and "
      "a note (the baked-sequence-length rule)")
def _reshape_split_time() -> bytes:
    b, seq, _ = lstm_then()
    return ser(b.build([b.reshape(seq, [2, -1, 4], name="split_time")]))


@case("nonzero_shape", "unresolvable shape", "error", "nz",
      note="shape from NonZero of the input: data-dependent")
def _nonzero_shape() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    nz = b.op("NonZero", [x], name="nz")
    sh = b.op("Shape", [nz], name="nz_shape")
    out = b.lstm(x, LstmSpec(outputs=("Y",)))
    return ser(b.build([b.op("Reshape", [out.y, sh], name="reshape_nz")]))


# --------------------------------------------------------------------------------------
# huge declared dimensions
# --------------------------------------------------------------------------------------
@case("hidden_size_1e9_tiny_w", "huge dimensions", "error", "hidden_size")
def _hidden_1e9() -> bytes:
    return ser(single_lstm_model(LstmSpec(hidden_size_attr=10**9)))


@case("constant_of_shape_2p40_dead", "huge dimensions", "error", "big_mul", huge=True,
      note="ConstantOfShape([2^40]) folds to a broadcast view; Mul on it must be refused, not "
      "allocated")
def _cos_2p40() -> bytes:
    def add(b: GraphBuilder, seq: str) -> None:
        z = b.op("ConstantOfShape", [b.ints([2**40])], name="big_zeros")
        b.op("Mul", [z, b.const(np.asarray([2.0], np.float32))], name="big_mul")

    return ser(with_head(add))


@case("constant_of_shape_2p40_bias", "huge dimensions", "error", "big_bias_add", huge=True,
      note="a 2^40-element ConstantOfShape added to the LSTM output as a 'bias'")
def _cos_bias() -> bytes:
    b, seq, _ = lstm_then()
    z = b.op("ConstantOfShape", [b.ints([2**40])], name="big_bias",
             value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5]))
    return ser(b.build([b.op("Add", [seq, z], name="big_bias_add")]))


@case("constant_of_shape_huge_lstm_w", "huge dimensions", "error", "lstm_1", huge=True,
      note="W and R from ConstantOfShape with hidden_size 2^30: shapes agree, sizes are absurd")
def _cos_w() -> bytes:
    h = 2**30
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    one = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.01])
    w = b.op("ConstantOfShape", [b.ints([1, 4 * h, 3])], name="big_w", value=one)
    r = b.op("ConstantOfShape", [b.ints([1, 4 * h, h])], name="big_r", value=one)
    y = b.op("LSTM", [x, w, r], name="lstm_1", hidden_size=h)
    return ser(b.build([y]))


@case("expand_2p40_dead", "huge dimensions", "error", "big_expand_sum", huge=True)
def _expand_2p40() -> bytes:
    def add(b: GraphBuilder, seq: str) -> None:
        e = b.op("Expand", [b.const(np.ones(1, np.float32)), b.ints([2**20, 2**20])], name="big_expand")
        b.op("ReduceSum", [e], name="big_expand_sum", keepdims=0)

    return ser(with_head(add))


@case("expand_2p62_squared", "huge dimensions", "error", "giant_expand", huge=True)
def _expand_2p62() -> bytes:
    return ser(with_head(dead("Expand", lambda b: [b.const(np.ones(1, np.float32)), b.ints([2**62, 2**62])],
                              name="giant_expand")))


@case("range_1e12", "huge dimensions", "error", "range_big", huge=True)
def _range_1e12() -> bytes:
    def inputs(b):
        return [b.const(np.asarray(0, np.int64)), b.const(np.asarray(10**12, np.int64)),
                b.const(np.asarray(1, np.int64))]

    return ser(with_head(dead("Range", inputs, name="range_big")))


@case("range_1e9", "huge dimensions", "error", "range_1e9", huge=True,
      note="1e9 int64 = 8 GB: fits in this machine's memory, so only a size guard stops it")
def _range_1e9() -> bytes:
    def inputs(b):
        return [b.const(np.asarray(0, np.int64)), b.const(np.asarray(10**9, np.int64)),
                b.const(np.asarray(1, np.int64))]

    return ser(with_head(dead("Range", inputs, name="range_1e9")))


@case("tile_huge", "huge dimensions", "error", "tile_big", huge=True,
      note="Tile goes to the reference evaluator: its output (2^28 floats, 1 GiB) is not bounded")
def _tile_huge() -> bytes:
    return ser(with_head(dead("Tile", lambda b: [b.const(np.ones(1, np.float32)), b.ints([2**28])],
                              name="tile_big")))


@case("input_time_2p40_slice", "huge dimensions", "error", "last_slice", huge=True,
      note="a static time dim of 2^40 and a Slice [-1:] on it")
def _time_2p40() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time=2**40, features=3)
    out = b.lstm(x, LstmSpec(outputs=("Y",)))
    seq = b.y_to_sequence(out.y, LstmSpec())
    last = b.last_step(seq, 0, "slice")
    return ser(b.build([b.dense(last, 4, 2, name="head")]))


@case("input_features_2p40", "huge dimensions", "error", "features", huge=True)
def _features_2p40() -> bytes:
    m = base_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 2**40
    return ser(m)


@case("input_features_2p40_gather", "huge dimensions", "error", "pick_feature", huge=True,
      note="2^40 input features and a Gather of one feature before the LSTM")
def _features_gather() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=2**40)
    g = b.gather(x, [0, 1, 2], 2, name="pick_feature")
    out = b.lstm(g, LstmSpec(outputs=("Y",)))
    return ser(b.build([out.y]))


@case("initializer_dims_2p40", "huge dimensions", "error", "lstm_1_W",
      note="W declares dims [1, 2^40, 3] with 48 floats of data")
def _init_dims() -> bytes:
    m = base_model()
    t = initializer(m, "lstm_1_W")
    t.dims[1] = 2**40
    return ser(m)


# --------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------
def poisoned(name: str, value: float, index=(0, 0, 0)) -> bytes:
    m = base_model()
    a = numpy_helper.to_array(initializer(m, name)).copy()
    a[index[: a.ndim]] = value
    return ser(replace_initializer(m, name, a))


@case("nan_in_w", "NaN/Inf/denormal weights", "error", "lstm_1_W")
def _nan_w() -> bytes:
    return poisoned("lstm_1_W", np.nan)


@case("inf_in_r", "NaN/Inf/denormal weights", "error", "lstm_1_R")
def _inf_r() -> bytes:
    return poisoned("lstm_1_R", np.inf)


@case("neg_inf_in_b", "NaN/Inf/denormal weights", "error", "lstm_1_B")
def _ninf_b() -> bytes:
    return poisoned("lstm_1_B", -np.inf)


@case("nan_in_head", "NaN/Inf/denormal weights", "error", "head_weight")
def _nan_head() -> bytes:
    return poisoned("head_weight", np.nan)


@case("nan_in_constant_node_w", "NaN/Inf/denormal weights", "error", "lstm_1",
      note="W comes from a Constant node, not an initializer")
def _nan_const_node() -> bytes:
    m = base_model()
    t = initializer(m, "lstm_1_W")
    a = numpy_helper.to_array(t).copy()
    a[0, 1, 1] = np.nan
    keep = [x for x in m.graph.initializer if x.name != "lstm_1_W"]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    m.graph.node.insert(0, helper.make_node("Constant", [], ["lstm_1_W"], name="w_const",
                                            value=numpy_helper.from_array(a)))
    return ser(m)


@case("nan_float16_w", "NaN/Inf/denormal weights", "error", "lstm_1_W")
def _nan_fp16() -> bytes:
    m = base_model()
    a = numpy_helper.to_array(initializer(m, "lstm_1_W")).astype(np.float16)
    a[0, 0, 0] = np.nan
    return ser(replace_initializer(m, "lstm_1_W", a))


@case("nan_activation_alpha", "NaN/Inf/denormal weights", "error", "activation_alpha",
      note="LeakyRelu alpha NaN inside the LSTM: a non-finite parameter like a NaN weight")
def _nan_alpha() -> bytes:
    return ser(single_lstm_model(LstmSpec(activations=("Sigmoid", "LeakyRelu", "Tanh"),
                                          activation_alpha=(float("nan"),))))


@case("denormal_weights", "NaN/Inf/denormal weights", "load")
def _denormal() -> bytes:
    m = base_model()
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            replace_initializer(m, t.name, np.full(a.shape, 1e-42, np.float32))
    return ser(m)


@case("huge_finite_weights", "NaN/Inf/denormal weights", "load",
      note="3e38 weights: finite, so accepted; outputs may saturate")
def _huge_weights() -> bytes:
    m = base_model()
    for name in ("lstm_1_W", "head_weight"):
        a = numpy_helper.to_array(initializer(m, name))
        replace_initializer(m, name, np.sign(a).astype(np.float32) * np.float32(3e38))
    return ser(m)


@case("float64_weights", "NaN/Inf/denormal weights", "load")
def _float64() -> bytes:
    m = base_model()
    for t in list(m.graph.initializer):
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            replace_initializer(m, t.name, a.astype(np.float64))
    return ser(m)


@case("sequence_lens_nan_float", "NaN/Inf/denormal weights", "error", "sequence_lens")
def _lens_nan() -> bytes:
    m = single_lstm_model(LstmSpec(sequence_lens="initializer", lens=(2, 3)), batch=2)
    replace_initializer(m, "lstm_1_sequence_lens", np.asarray([np.nan, 2.0], np.float32))
    return ser(m)


# --------------------------------------------------------------------------------------
# external data
# --------------------------------------------------------------------------------------
def external(location: str, *, offset: str | None = None, length: str | None = None,
             files: dict[str, bytes | Symlink] | None = None, extra: dict[str, str] | None = None,
             tensor: str = "lstm_1_W") -> Folder:
    """The base model with ``tensor`` moved to external data at ``location``.

    By default a correct ``weights.bin`` holding the tensor is written beside the model."""
    m = base_model()
    t = initializer(m, tensor)
    raw = numpy_helper.to_array(t).tobytes()
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location}
    if offset is not None:
        entries["offset"] = offset
    if length is not None:
        entries["length"] = length
    entries.update(extra or {})
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    out = {"weights.bin": raw}
    out.update(files or {})
    return Folder(ser(m), out)


@case("ext_parent_dir", "external data", "error", "../outside.bin",
      note="'../outside.bin' exists, one folder up: must be refused, never read")
def _ext_parent() -> Folder:
    return external("../" + OUTSIDE_FILE)


@case("ext_absolute_path", "external data", "error", "/etc/passwd")
def _ext_abs() -> Folder:
    return external("/etc/passwd")


@case("ext_symlink_etc_passwd", "external data", "error", "link.bin")
def _ext_symlink() -> Folder:
    return external("link.bin", files={"link.bin": Symlink("/etc/passwd")})


@case("ext_symlink_relative_outside", "external data", "error", "rel_link.bin")
def _ext_symlink_rel() -> Folder:
    return external("rel_link.bin", files={"rel_link.bin": Symlink("../" + OUTSIDE_FILE)})


@case("ext_symlink_dev_zero", "external data", "error", "zero.bin")
def _ext_dev_zero() -> Folder:
    return external("zero.bin", files={"zero.bin": Symlink("/dev/zero")})


@case("ext_sneaky_dotdot", "external data", "error", "sub/../../outside.bin")
def _ext_sneaky() -> Folder:
    return external("sub/../../" + OUTSIDE_FILE, files={"sub/keep.txt": b"x"})


@case("ext_windows_drive", "external data", "error", "C:")
def _ext_windows() -> Folder:
    return external("C:\\Windows\\win.ini")


@case("ext_backslash_parent", "external data", "error", "outside.bin",
      note="'..\\\\outside.bin' is a plain (missing) file name on POSIX")
def _ext_backslash() -> Folder:
    return external("..\\" + OUTSIDE_FILE)


@case("ext_offset_beyond", "external data", "error", "weights.bin")
def _ext_offset() -> Folder:
    return external("weights.bin", offset="100000")


@case("ext_length_beyond", "external data", "error", "weights.bin")
def _ext_length() -> Folder:
    return external("weights.bin", offset="0", length="100000")


@case("ext_negative_offset", "external data", "error", "weights.bin")
def _ext_neg_offset() -> Folder:
    return external("weights.bin", offset="-8")


@case("ext_offset_not_a_number", "external data", "error", "weights.bin")
def _ext_offset_nan() -> Folder:
    return external("weights.bin", offset="twelve")


@case("ext_length_too_short", "external data", "error", "lstm_1_W",
      note="in range, but 4 bytes for a 192-byte tensor")
def _ext_short() -> Folder:
    return external("weights.bin", offset="0", length="4")


@case("ext_missing_location", "external data", "error", "lstm_1_W")
def _ext_no_location() -> Folder:
    f = external("weights.bin")
    m = onnx.ModelProto()
    m.ParseFromString(f.model)
    t = initializer(m, "lstm_1_W")
    del t.external_data[:]
    return Folder(ser(m), f.files)


@case("ext_location_is_folder", "external data", "error", "sub")
def _ext_folder() -> Folder:
    return external("sub", files={"sub/keep.txt": b"x"})


@case("ext_location_nul_byte", "external data", "error", "lstm_1_W")
def _ext_nul() -> Folder:
    return external("weights\x00.bin")


@case("ext_location_very_long", "external data", "error", "lstm_1_W",
      note="a 5000-character location (longer than NAME_MAX/PATH_MAX)")
def _ext_long() -> Folder:
    return external("w" * 5000 + ".bin")


@case("ext_dunder_key", "external data", "either", "lstm_1_W",
      note="external_data key '__class__' (onnx's loader setattr()s known keys): ignored or "
      "refused, but no warning on stderr")
def _ext_dunder() -> Folder:
    return external("weights.bin", extra={"__class__": "str"})


@case("ext_constant_node_parent", "external data", "error", "../outside.bin",
      note="external data on a Constant node's tensor, not an initializer")
def _ext_constant() -> Folder:
    m = base_model()
    t = onnx.TensorProto()
    t.name = "c"
    t.data_type = TensorProto.FLOAT
    t.dims.append(4)
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../" + OUTSIDE_FILE
    m.graph.node.insert(0, helper.make_node("Constant", [], ["c_out"], name="ext_const", value=t))
    return Folder(ser(m), {})


@case("ext_in_subgraph_parent", "external data", "error", "../outside.bin",
      note="external data inside an If branch (a subgraph attribute)")
def _ext_subgraph() -> Folder:
    m = base_model()
    t = onnx.TensorProto()
    t.name = "sub_w"
    t.data_type = TensorProto.FLOAT
    t.dims.append(4)
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../" + OUTSIDE_FILE
    branch = helper.make_graph(
        [helper.make_node("Identity", ["sub_w"], ["sub_out"])], "branch", [],
        [helper.make_tensor_value_info("sub_out", TensorProto.FLOAT, [4])], [t])
    cond = numpy_helper.from_array(np.asarray(True), "cond")
    m.graph.initializer.append(cond)
    m.graph.node.insert(0, helper.make_node("If", ["cond"], ["if_out"], name="if_ext",
                                            then_branch=branch, else_branch=branch))
    return Folder(ser(m), {})


@case("ext_valid", "external data", "load", note="control: correct external data loads")
def _ext_valid() -> Folder:
    return external("weights.bin")


# --------------------------------------------------------------------------------------
# hostile strings: must load and print safely
# --------------------------------------------------------------------------------------
HOSTILE = "evil */ #define X 1 // \"q\" 'q' \\ \n# newline\r\x1b[2J\x07 tab\t \u2028 \x00nul end"
CODE = "__import__('os').system('touch /tmp/tinylstm_pwned')  # {{7*7}} ${7*7} `id`"


def rename_everything(m: onnx.ModelProto, fn: Callable[[str], str]) -> onnx.ModelProto:
    """Rename every node and tensor with ``fn`` (consistently)."""
    names: dict[str, str] = {}

    def r(n: str) -> str:
        if not n:
            return n
        return names.setdefault(n, fn(n))

    g = m.graph
    for n in g.node:
        n.name = fn("node " + n.name)
        n.input[:] = [r(i) for i in n.input]
        n.output[:] = [r(o) for o in n.output]
    for t in g.initializer:
        t.name = r(t.name)
    for v in list(g.input) + list(g.output) + list(g.value_info):
        v.name = r(v.name)
    return m


@case("names_hostile", "hostile strings", "load",
      note="every node/tensor name holds */, #, quotes, backslash, newline, CR, ESC, BEL, TAB, "
      "U+2028 and NUL")
def _names_hostile() -> bytes:
    return ser(rename_everything(base_model(), lambda n: f"{n} {HOSTILE}"))


@case("names_very_long", "hostile strings", "load",
      note="3,000-character names on the LSTM, the head and the input/output tensors")
def _names_long() -> bytes:
    m = base_model()
    long = {k: (k + "_") * (3000 // (len(k) + 1)) for k in ("x", "lstm_1", "head", m.graph.output[0].name)}
    for n in m.graph.node:
        n.name = long.get(n.name, n.name)
        n.input[:] = [long.get(i, i) for i in n.input]
        n.output[:] = [long.get(o, o) for o in n.output]
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = long.get(v.name, v.name)
    return ser(m)


@case("metadata_hostile", "hostile strings", "load",
      note="doc strings, producer, graph name and metadata_props hold hostile text and Python code")
def _metadata() -> bytes:
    m = base_model()
    m.producer_name = "prod " + HOSTILE
    m.producer_version = CODE
    m.domain = HOSTILE
    m.doc_string = CODE + "\n" + HOSTILE
    m.graph.name = HOSTILE
    m.graph.doc_string = CODE
    for n in m.graph.node:
        n.doc_string = CODE
    for t in m.graph.initializer:
        t.doc_string = CODE
    for k in (HOSTILE, "__reduce__", "pickle"):
        p = m.metadata_props.add()
        p.key, p.value = k, CODE
    return ser(m)


@case("names_invalid_utf8", "hostile strings", "either", None,
      note="node and input names that are not valid UTF-8 (protobuf string fields)")
def _invalid_utf8() -> bytes:
    m = base_model()
    m.graph.input[0].name = "XINVALID_UTF8_X"
    for n in m.graph.node:
        n.input[:] = ["XINVALID_UTF8_X" if i == "x" else i for i in n.input]
    node(m, "lstm_1").name = "LSTMNAME_UTF8_X"
    data = swap_bytes(ser(m), b"XINVALID_UTF8_X", b"X\xff\xfeINVALID\xc3(XX\x80")
    return swap_bytes(data, b"LSTMNAME_UTF8_X", b"L\xed\xa0\x80NAME_UTF8\xf8X")


@case("producer_invalid_utf8", "hostile strings", "either",
      note="producer_name that is not valid UTF-8: protobuf hands it over as bytes, not str")
def _producer_utf8() -> bytes:
    m = base_model()
    m.producer_name = "PRODUCER_NAME_X"
    return swap_bytes(ser(m), b"PRODUCER_NAME_X", b"PRODUCER\xffNAME\x80X")


@case("node_name_invalid_utf8", "hostile strings", "either",
      note="the LSTM node's name is not valid UTF-8")
def _node_utf8() -> bytes:
    m = base_model()
    node(m, "lstm_1").name = "LSTM_NODE_NAME_X"
    return swap_bytes(ser(m), b"LSTM_NODE_NAME_X", b"LSTM\xfeNODE\xc3(NAME_")


@case("error_node_name_invalid_utf8", "hostile strings", "error", "NAME",
      note="an unsupported node whose name is not valid UTF-8")
def _error_node_utf8() -> bytes:
    b, _, out = lstm_then()
    v = b.transpose(out.y_h, [1, 0, 2], name="to_bch")
    y = b.op("Conv", [v, b.const(np.ones((2, 1, 3), np.float32), "conv_w")], name="CONV_NODE_NAME_X",
             kernel_shape=[3])
    return swap_bytes(ser(b.build([y])), b"CONV_NODE_NAME_X", b"CONV\xfeNODE\xc3(NAME_")


@case("error_names_hostile", "hostile strings", "error", "Conv",
      note="an unsupported node whose name holds newlines, CR, ESC and NUL: the error stays on "
      "one line")
def _error_hostile() -> bytes:
    b, _, out = lstm_then()
    v = b.transpose(out.y_h, [1, 0, 2], name="to_bch")
    y = b.op("Conv", [v, b.const(np.ones((2, 1, 3), np.float32), "conv_w")],
             name="conv " + HOSTILE, kernel_shape=[3])
    return ser(b.build([y]))


@case("error_name_very_long", "hostile strings", "error", "Conv",
      note="an unsupported node with a 4,000-character name")
def _error_long() -> bytes:
    b, _, out = lstm_then()
    v = b.transpose(out.y_h, [1, 0, 2], name="to_bch")
    y = b.op("Conv", [v, b.const(np.ones((2, 1, 3), np.float32), "conv_w")],
             name="c" * 4000, kernel_shape=[3])
    return ser(b.build([y]))


# --------------------------------------------------------------------------------------
# big and deep graphs
# --------------------------------------------------------------------------------------
#: time bound for importing the 10^5-node graph (measured: see docs/reliability.md)
IDENTITY_CHAIN = 100_000


def identity_chain(n: int) -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    g = b.nodes
    prev = x
    for k in range(n):
        out = f"i{k}"
        g.append(helper.make_node("Identity", [prev], [out]))
        prev = out
    out = b.lstm(prev, LstmSpec(outputs=("Y",)))
    return ser(b.build([out.y]))


@case("identity_chain_100k", "big/deep graphs", "load", stored=False,
      note="x -> 10^5 unnamed Identity nodes -> LSTM (2.4 MB: generated at test time)")
def _identity_chain() -> bytes:
    return identity_chain(IDENTITY_CHAIN)


@case("identity_chain_500", "big/deep graphs", "load", note="the stored, smaller sibling")
def _identity_chain_small() -> bytes:
    return identity_chain(500)


@case("dense_chain_12k", "big/deep graphs", "load", stored=False,
      note="12,000 MatMul+Add pairs (identity 4x4) after the LSTM (1 MB: generated at test time)")
def _dense_chain() -> bytes:
    b, seq, _ = lstm_then()
    w = b.const(np.eye(4, dtype=np.float32), "w")
    bias = b.const(np.zeros(4, np.float32), "bias")
    prev = seq
    for k in range(12_000):
        prev = b.op("MatMul", [prev, w], name=f"m{k}")
        prev = b.op("Add", [prev, bias], name=f"a{k}")
    return ser(b.build([prev]))


@case("baked_time_candidates", "big/deep graphs", "error", "many_candidates", stored=False,
      note="2,000 Identity nodes, then a Reshape of Y to [2, 3, ..., 501]: 500 candidate "
      "'baked' sequence lengths")
def _baked_candidates() -> bytes:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    prev = x
    for k in range(2000):
        b.nodes.append(helper.make_node("Identity", [prev], [f"i{k}"]))
        prev = f"i{k}"
    out = b.lstm(prev, LstmSpec(outputs=("Y",)))
    r = b.op("Reshape", [out.y, b.const(np.arange(2, 502, dtype=np.int64))], name="many_candidates")
    return ser(b.build([r]))


def nested_if(depth: int) -> onnx.GraphProto:
    def leaf(k: int) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node("Constant", [], [f"v{k}"], value_floats=[1.0])], f"leaf{k}", [],
            [helper.make_tensor_value_info(f"v{k}", TensorProto.FLOAT, [1])])

    g = leaf(0)
    for k in range(1, depth + 1):
        cond = helper.make_node("Constant", [], [f"c{k}"], value=numpy_helper.from_array(np.asarray(True)))
        node_if = helper.make_node("If", [f"c{k}"], [f"v{k}"], then_branch=g, else_branch=leaf(k))
        g = helper.make_graph([cond, node_if], f"level{k}", [],
                              [helper.make_tensor_value_info(f"v{k}", TensorProto.FLOAT, [1])])
    return g


@case("nested_if_depth_25", "big/deep graphs", "either",
      note="a dead If node nesting 25 subgraphs (75 protobuf levels: below the parser's limit of 100)")
def _nested25() -> bytes:
    m = base_model()
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["top_else"], value_floats=[2.0])], "top_else", [],
        [helper.make_tensor_value_info("top_else", TensorProto.FLOAT, [1])])
    m.graph.node.insert(0, helper.make_node("If", ["cond"], ["deep_out"], name="deep_if",
                                            then_branch=nested_if(24), else_branch=other))
    m.graph.initializer.append(numpy_helper.from_array(np.asarray(True), "cond"))
    return ser(m)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


@case("nested_if_depth_200", "big/deep graphs", "error", "nested_if_depth_200.onnx",
      note="200 nested If subgraphs, encoded by hand (protobuf refuses to build it): beyond the "
      "parser's recursion limit")
def _nested200() -> bytes:
    graph = _field(2, b"leaf")
    for _ in range(200):
        attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)
        node_bytes = _field(1, b"c") + _field(2, b"v") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, node_bytes) + _field(2, b"level")
    # a second ModelProto.graph field merges into the first: the deep If is appended to it
    return ser(base_model()) + _field(7, graph)


def nested_type(depth: int) -> bytes:
    m = base_model()
    t = helper.make_tensor_type_proto(TensorProto.FLOAT, [3])
    for _ in range(depth):
        t = helper.make_sequence_type_proto(t)
    m.graph.input[0].type.CopyFrom(t)
    return ser(m)


@case("nested_type_depth_40", "big/deep graphs", "error", "'x'",
      note="graph input typed sequence<sequence<...<tensor>>> 40 deep")
def _nested_type40() -> bytes:
    return nested_type(40)


@case("nested_type_depth_90", "big/deep graphs", "error", "nested_type_depth_90.onnx",
      note="the same 90 deep: beyond the parser's recursion limit")
def _nested_type90() -> bytes:
    return nested_type(90)


@case("many_graph_outputs", "big/deep graphs", "load",
      note="500 extra graph outputs listed (copies of the real one and of the LSTM's Y)")
def _many_outputs() -> bytes:
    m = base_model()
    first = m.graph.output[0]
    for k in range(500):
        o = m.graph.output.add()
        o.CopyFrom(first)
        o.name = node(m, "lstm_1").output[0] if k % 2 else first.name
    return ser(m)


@case("constant_fold_chain_300", "big/deep graphs", "load",
      note="300 chained Add nodes on constants (dead)")
def _fold_chain() -> bytes:
    def add(b: GraphBuilder, seq: str) -> None:
        prev = b.ints([1])
        one = b.ints([1])
        for k in range(300):
            prev = b.op("Add", [prev, one], name=f"a{k}")

    return ser(with_head(add))


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def write_case(c: Case, root: Path) -> Path:
    """Write case ``c`` under ``root``; returns the model file's path."""
    data = c.build()
    path = c.path(root)
    if isinstance(data, Folder):
        folder = path.parent
        if folder.exists() or folder.is_symlink():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        path.write_bytes(data.model)
        for rel, content in sorted(data.files.items()):
            p = folder / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Symlink):
                os.symlink(content.target, p)
            else:
                p.write_bytes(content)
    else:
        path.write_bytes(data)
    return path


def write_corpus(root: Path, *, stored_only: bool = True) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / OUTSIDE_FILE).write_bytes(OUTSIDE_BYTES)
    return [write_case(c, root) for c in CASES.values() if c.stored or not stored_only]


def _same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two corpus folders (symlinks compared by target)."""
    diffs = []
    names = {p.relative_to(a) for p in a.rglob("*")} | {p.relative_to(b) for p in b.rglob("*")}
    for rel in sorted(names):
        pa, pb = a / rel, b / rel
        if pa.is_symlink() or pb.is_symlink():
            if not (pa.is_symlink() and pb.is_symlink() and os.readlink(pa) == os.readlink(pb)):
                diffs.append(str(rel))
        elif pa.is_dir() or pb.is_dir():
            if not (pa.is_dir() and pb.is_dir()):
                diffs.append(str(rel))
        elif not (pa.is_file() and pb.is_file() and filecmp.cmp(pa, pb, shallow=False)):
            diffs.append(str(rel))
    return diffs


def check_corpus(root: Path = CORPUS) -> list[str]:
    """Paths whose stored bytes differ from a fresh generation (empty: up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "corpus"
        write_corpus(fresh)
        return _same_tree(fresh, root) if root.exists() else ["<corpus missing>"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare the stored corpus, write nothing")
    p.add_argument("--list", action="store_true", help="list the cases")
    p.add_argument("--out", type=Path, default=CORPUS, help="corpus folder (default: %(default)s)")
    args = p.parse_args(argv)
    if args.list:
        for c in CASES.values():
            print(f"{c.name:<36} {c.category:<28} {c.expect:<6} {c.culprit or ''}")
        return 0
    if args.check:
        diffs = check_corpus(args.out)
        for d in diffs:
            print(f"stale: {d}")
        return 1 if diffs else 0
    if args.out.exists():
        shutil.rmtree(args.out)
    paths = write_corpus(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"wrote {len(paths)} cases, {size} bytes, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
