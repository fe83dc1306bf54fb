"""One negative test per kind of bad input to ``tinylstm.load_onnx``.

Each asserts the exception type and that the message names the culprit: for graph problems
``node '<name>'`` plus the attribute / input / field; for weights the initializer's name; for
files the path and, for external data, the offending location.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_builders import (
    GraphBuilder,
    HeadSpec,
    LstmSpec,
    lstm_weights,
    save_model,
    set_external_location,
    single_lstm_model,
    stacked_model,
)

import tinylstm
from tinylstm import DataError, ModelFormatError, TinyLstmError, UnsupportedModelError


def load_fails(source, exc: type[TinyLstmError], *fragments: str) -> TinyLstmError:
    """``load_onnx(source)`` raises ``exc`` whose message contains every fragment."""
    with pytest.raises(exc) as info:
        tinylstm.load_onnx(source)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} missing from the error message: {msg}"
    return info.value


def lstm_then(spec: LstmSpec | None = None, *, batch="batch", opset: int = 17):
    """A builder holding x -> lstm_1 -> Y squeezed to [T, B, H]; returns (builder, seq, out)."""
    spec = spec or LstmSpec()
    b = GraphBuilder(opset)
    x = b.sequence_input("x", layout=spec.layout, batch=batch, time="time", features=spec.input_size)
    out = b.lstm(x, replace(spec, outputs=("Y", "Y_h")), batch=batch if isinstance(batch, int) else None)
    return b, b.y_to_sequence(out.y, spec), out


def bad_lstm(**kw) -> onnx.ModelProto:
    return single_lstm_model(LstmSpec(**kw))


def with_weights(spec: LstmSpec, **arrays) -> onnx.ModelProto:
    """A single-LSTM model whose W / R / B / P / initial states are replaced by ``arrays``."""
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch=3, time="time", features=spec.input_size)
    wts = replace(lstm_weights(spec, b.rng, 3), **arrays)
    out = b.lstm(x, spec, weights=wts)
    return b.build([out.y])


# --------------------------------------------------------------------------------------
# unsupported ops and attribute values
# --------------------------------------------------------------------------------------
def test_unsupported_op_where_on_model_data() -> None:
    b, seq, _ = lstm_then()
    cond = b.const(np.array([True, False, True, True]), "mask")
    zero = b.const(np.zeros(4, np.float32), "zero")
    y = b.op("Where", [cond, seq, zero], name="bad_where")
    load_fails(b.build([y]), UnsupportedModelError, "node 'bad_where'", "Where")


def test_unsupported_op_conv_on_model_data() -> None:
    b, _, out = lstm_then()
    v = b.transpose(out.y_h, [1, 0, 2], name="to_bch")  # [B, 1, H]: Conv1d input
    w = b.const(np.ones((2, 1, 3), np.float32), "conv_w")
    y = b.op("Conv", [v, w], name="bad_conv", kernel_shape=[3])
    load_fails(b.build([y]), UnsupportedModelError, "node 'bad_conv'", "Conv")


def test_unsupported_op_before_the_lstm() -> None:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    ax = b.op("Abs", [x], name="bad_abs")
    out = b.lstm(ax, LstmSpec())
    load_fails(b.build([out.y]), UnsupportedModelError, "node 'bad_abs'", "Abs")


def test_direction_sideways() -> None:
    load_fails(bad_lstm(direction="sideways"), UnsupportedModelError, "node 'lstm_1'", "direction", "sideways")


def test_layout_2() -> None:
    load_fails(bad_lstm(layout=2), UnsupportedModelError, "node 'lstm_1'", "layout")


def test_unknown_activation_name() -> None:
    load_fails(
        bad_lstm(activations=("Sigmoid", "Gelu", "Tanh")), UnsupportedModelError, "node 'lstm_1'", "activations", "Gelu"
    )


def test_activation_count_does_not_match_directions() -> None:
    """A bidirectional LSTM needs 6 activations (onnxruntime refuses 3 too)."""
    load_fails(
        bad_lstm(direction="bidirectional", activations=("Sigmoid", "Tanh", "Tanh")),
        UnsupportedModelError,
        "node 'lstm_1'",
        "activations",
    )


def test_hidden_size_does_not_match_w() -> None:
    load_fails(bad_lstm(hidden_size_attr=5), UnsupportedModelError, "node 'lstm_1'", "hidden_size")


def test_unknown_lstm_attribute() -> None:
    load_fails(bad_lstm(extra_attrs=(("proj_size", 2),)), UnsupportedModelError, "node 'lstm_1'", "proj_size")


@pytest.mark.parametrize("clip", [0.0, -1.0], ids=["zero", "negative"])
def test_clip_not_positive(clip: float) -> None:
    load_fails(bad_lstm(clip=clip), UnsupportedModelError, "node 'lstm_1'", "clip")


def test_b_of_wrong_length() -> None:
    spec = LstmSpec()
    load_fails(
        with_weights(spec, b=np.zeros((1, 4 * spec.hidden_size), np.float32)),
        UnsupportedModelError,
        "node 'lstm_1'",
        "B",
    )


def test_p_of_wrong_length() -> None:
    spec = LstmSpec(peepholes=True)
    load_fails(
        with_weights(spec, p=np.zeros((1, 2 * spec.hidden_size), np.float32)),
        UnsupportedModelError,
        "node 'lstm_1'",
        "P",
    )


def test_r_of_wrong_shape() -> None:
    spec = LstmSpec()
    h = spec.hidden_size
    load_fails(
        with_weights(spec, r=np.zeros((1, 4 * h, h + 1), np.float32)), UnsupportedModelError, "node 'lstm_1'", "R"
    )


def test_w_input_size_does_not_match_x() -> None:
    spec = LstmSpec()
    w = np.zeros((1, 4 * spec.hidden_size, spec.input_size + 2), np.float32)
    load_fails(with_weights(spec, w=w), UnsupportedModelError, "node 'lstm_1'", "W")


def test_projection_written_as_hidden_size() -> None:
    """PyTorch's proj_size through the dynamo exporter: hidden_size is the projection size
    (2) while W still has 4 * 4 rows."""
    spec = LstmSpec(hidden_size=4, hidden_size_attr=2)
    r = np.zeros((1, 16, 2), np.float32)
    load_fails(with_weights(spec, r=r), UnsupportedModelError, "node 'lstm_1'", "hidden_size")


def test_projection_shaped_r() -> None:
    """hidden_size matches W, but R is [4H, proj] like a projected LSTM's."""
    spec = LstmSpec(hidden_size=4)
    load_fails(with_weights(spec, r=np.zeros((1, 16, 2), np.float32)), UnsupportedModelError, "node 'lstm_1'", "R")


def test_initial_h_of_wrong_shape() -> None:
    spec = LstmSpec(initial_h="initializer")
    load_fails(
        with_weights(spec, initial_h=np.zeros((1, 3, 5), np.float32)),
        UnsupportedModelError,
        "node 'lstm_1'",
        "initial_h",
    )


def test_initial_state_rows_for_a_dynamic_batch() -> None:
    """initial_h holds 3 different rows but the model's batch axis is dynamic."""
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    spec = LstmSpec(initial_h="initializer")
    wts = lstm_weights(spec, b.rng, 3)
    out = b.lstm(x, spec, weights=wts)
    load_fails(b.build([out.y]), UnsupportedModelError, "node 'lstm_1'", "initial_h")


def test_initial_h_computed_from_a_graph_input() -> None:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch=2, time="time", features=3)
    h0 = b.add_input("h0", [1, 2, 4])
    node = helper.make_node(
        "LSTM",
        [x, b.const(np.zeros((1, 16, 3), np.float32), "W"), b.const(np.zeros((1, 16, 4), np.float32), "R"), "", "", h0],
        ["Y"],
        name="lstm_1",
        hidden_size=4,
    )
    b.nodes.append(node)
    load_fails(b.build(["Y"]), UnsupportedModelError, "node 'lstm_1'", "initial_h", "'h0'")


def test_negative_sequence_lens_initializer() -> None:
    spec = LstmSpec(sequence_lens="initializer", lens=(3, -1, 2))
    load_fails(single_lstm_model(spec, batch=3), UnsupportedModelError, "node 'lstm_1'", "sequence_lens")


def test_gemm_trans_a() -> None:
    b, seq, _ = lstm_then()
    last = b.last_step(seq, 0)
    w = b.const(np.ones((4, 2), np.float32), "head_w")
    y = b.op("Gemm", [last, w], name="head", transA=1)
    load_fails(b.build([y]), UnsupportedModelError, "node 'head'", "transA")


def test_softmax_over_time_axis() -> None:
    """A per-step head whose Softmax runs over time (axis 0), not the features."""
    b, seq, _ = lstm_then()
    y = b.op("Softmax", [seq], name="softmax_time", axis=0)
    load_fails(b.build([y]), UnsupportedModelError, "node 'softmax_time'", "axis")


def test_extra_graph_input_in_the_head() -> None:
    b, seq, _ = lstm_then(batch=2)
    last = b.last_step(seq, 0)
    offset = b.add_input("offset", [2, 4])
    y = b.op("Add", [last, offset], name="add_offset")
    err = load_fails(b.build([y]), UnsupportedModelError, "offset")
    assert "node 'add_offset'" in str(err) or "graph input" in str(err)


# --------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("tensor", ["w", "r", "b", "p"])
def test_non_finite_lstm_weight(tensor: str, bad: float) -> None:
    spec = LstmSpec(peepholes=True)
    wts = lstm_weights(spec, np.random.default_rng(0), 3)
    arr = getattr(wts, tensor).copy()
    arr.reshape(-1)[5] = bad
    load_fails(with_weights(spec, **{tensor: arr}), ModelFormatError, f"lstm_1_{tensor.upper()}", "NaN")


def test_non_finite_initial_state() -> None:
    spec = LstmSpec(initial_c="initializer")
    c0 = np.zeros((1, 3, spec.hidden_size), np.float32)
    c0[0, 1, 2] = np.nan
    load_fails(with_weights(spec, initial_c=c0), ModelFormatError, "lstm_1_initial_c")


def test_non_finite_head_weight() -> None:
    model = stacked_model([LstmSpec()], head=HeadSpec("last_gemm"))
    for t in model.graph.initializer:
        if t.name == "head_weight":
            a = onnx.numpy_helper.to_array(t).copy()
            a[0, 0] = np.inf
            t.CopyFrom(onnx.numpy_helper.from_array(a, t.name))
    load_fails(model, ModelFormatError, "head_weight")


def test_missing_initializer() -> None:
    """W is named by the LSTM but no initializer, node or graph input produces it."""
    model = single_lstm_model(LstmSpec())
    keep = [t for t in model.graph.initializer if t.name != "lstm_1_W"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    load_fails(model, UnsupportedModelError, "node 'lstm_1'", "lstm_1_W")


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def _saved(tmp_path, **kw) -> str:
    return save_model(single_lstm_model(LstmSpec()), tmp_path / "model.onnx", **kw)


def test_truncated_file(tmp_path) -> None:
    path = _saved(tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    load_fails(path, ModelFormatError, "model.onnx")


def test_garbage_file(tmp_path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    load_fails(str(path), ModelFormatError, "garbage.onnx")


def test_text_file(tmp_path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    load_fails(str(path), ModelFormatError, "notes.onnx")


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    load_fails(str(path), ModelFormatError, "empty.onnx")


def test_missing_file(tmp_path) -> None:
    load_fails(str(tmp_path / "nope.onnx"), ModelFormatError, "nope.onnx")


# --------------------------------------------------------------------------------------
# external data must stay inside the model's folder
# --------------------------------------------------------------------------------------
def _external(tmp_path):
    """model/model.onnx with its data moved to outside/x.data; returns (model path, data)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = save_model(single_lstm_model(LstmSpec()), model_dir / "model.onnx", external=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    data = outside / "x.data"
    os.replace(model_dir / "model.onnx.data", data)
    return path, data


def test_external_data_parent_directory(tmp_path) -> None:
    path, _ = _external(tmp_path)
    set_external_location(path, "../outside/x.data")
    load_fails(path, ModelFormatError, "../outside/x.data", "location")


def test_external_data_absolute_path(tmp_path) -> None:
    path, data = _external(tmp_path)
    set_external_location(path, str(data))
    load_fails(path, ModelFormatError, str(data), "location")


def test_external_data_symlink_to_outside(tmp_path) -> None:
    path, data = _external(tmp_path)
    os.symlink(data, tmp_path / "model" / "link.data")
    set_external_location(path, "link.data")
    load_fails(path, ModelFormatError, "link.data", "outside")


def test_external_data_file_missing(tmp_path) -> None:
    path, data = _external(tmp_path)
    set_external_location(path, "missing.data")
    load_fails(path, ModelFormatError, "missing.data")


def test_external_data_from_memory(tmp_path) -> None:
    """A ModelProto that points at external data cannot be resolved without its folder."""
    path, data = _external(tmp_path)
    set_external_location(path, "x.data")
    model = onnx.load_model(path, load_external_data=False)
    load_fails(model, ModelFormatError, "external data")


# --------------------------------------------------------------------------------------
# domains, opsets, graph shape
# --------------------------------------------------------------------------------------
def test_custom_domain_op_on_the_path() -> None:
    b, seq, _ = lstm_then()
    y = b.op("FancyHead", [seq], name="custom_head", domain="com.example")
    model = b.build([y], extra_opsets=[("com.example", 1)])
    load_fails(model, UnsupportedModelError, "node 'custom_head'", "com.example")


@pytest.mark.parametrize("opset", [6, 99])
def test_unsupported_default_opset(opset: int) -> None:
    model = single_lstm_model(LstmSpec(), opset=17)
    model.opset_import[0].version = opset
    load_fails(model, UnsupportedModelError, "opset", str(opset))


def test_no_default_domain_opset() -> None:
    model = single_lstm_model(LstmSpec())
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    load_fails(model, UnsupportedModelError, "opset")


@pytest.mark.parametrize(
    "elem", [TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL], ids=["int32", "int64", "bool"]
)
def test_non_float_input(elem: int) -> None:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3, elem_type=elem)
    xf = b.op("Cast", [x], name="to_float", to=TensorProto.FLOAT)
    out = b.lstm(xf, LstmSpec())
    load_fails(b.build([out.y]), UnsupportedModelError, "'x'", "float")


def test_input_of_rank_2() -> None:
    b = GraphBuilder()
    x = b.add_input("x", ["time", 3])
    x3 = b.unsqueeze(x, [1], name="add_batch")
    out = b.lstm(x3, LstmSpec())
    load_fails(b.build([out.y]), UnsupportedModelError, "'x'", "rank")


def test_dynamic_feature_axis() -> None:
    b = GraphBuilder()
    x = b.add_input("x", ["time", "batch", "features"])
    out = b.lstm(x, LstmSpec())
    load_fails(b.build([out.y]), UnsupportedModelError, "'x'", "feature")


def test_no_lstm_at_all() -> None:
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    y = b.op("Relu", [x], name="relu")
    load_fails(b.build([y]), UnsupportedModelError, "LSTM")


def test_first_output_does_not_depend_on_an_lstm() -> None:
    """The graph has an LSTM, but its first output is Relu(x): tinylstm models the first
    output, and that must come from an LSTM."""
    b = GraphBuilder()
    x = b.sequence_input("x", layout=0, batch="batch", time="time", features=3)
    direct = b.op("Relu", [x], name="relu", outputs=["direct"])
    out = b.lstm(x, LstmSpec())
    load_fails(b.build([direct, out.y]), UnsupportedModelError, "LSTM", "direct")


def test_first_output_is_a_constant() -> None:
    b, seq, _ = lstm_then()
    table = b.const(np.ones((2, 2), np.float32), "table")
    c = b.op("Identity", [table], name="const_node", outputs=["const_out"])
    load_fails(b.build([c, seq]), UnsupportedModelError, "const_out")


# --------------------------------------------------------------------------------------
# run-time data errors of an imported model
# --------------------------------------------------------------------------------------
def test_run_without_required_sequence_lens() -> None:
    model = tinylstm.load_onnx(single_lstm_model(LstmSpec(sequence_lens="input")))
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(DataError, match="sequence_lens"):
        model.run(x)


def test_run_with_sequence_lens_longer_than_the_input() -> None:
    model = tinylstm.load_onnx(single_lstm_model(LstmSpec(sequence_lens="input")))
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(DataError, match="sequence_lens"):
        model.run(x, sequence_lens=np.array([5, 6], np.int32))


def test_run_with_wrong_feature_count() -> None:
    model = tinylstm.load_onnx(single_lstm_model(LstmSpec()))
    with pytest.raises(DataError, match="'x'"):
        model.run(np.zeros((5, 2, 4), np.float32))


def test_run_with_other_batch_than_fixed() -> None:
    model = tinylstm.load_onnx(single_lstm_model(LstmSpec(initial_h="initializer"), batch=3))
    with pytest.raises(DataError, match="'x'"):
        model.run(np.zeros((5, 2, 3), np.float32))


def _two_lstm_graph(middle: list, inits_extra: list, x_shape=("T", "N", 3)) -> onnx.ModelProto:
    """x -> LSTM l1 (Y, Y_h) -> middle nodes producing 'x2' -> LSTM l2 -> y."""
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    H = 4

    def lstm_inits(p: str, i: int) -> list:
        return [numpy_helper.from_array(rng.standard_normal((1, 4 * H, i)).astype(np.float32), p + "W"),
                numpy_helper.from_array(rng.standard_normal((1, 4 * H, H)).astype(np.float32), p + "R")]

    nodes = [helper.make_node("LSTM", ["x", "aW", "aR"], ["Y", "Yh"], hidden_size=H, name="l1"), *middle,
             helper.make_node("LSTM", ["x2", "bW", "bR"], ["y"], hidden_size=H, name="l2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          lstm_inits("a", x_shape[2]) + lstm_inits("b", H) + inits_extra)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_lstm_fed_a_state_without_time_axis_is_a_clear_error() -> None:
    """Y_h (no time axis) squeezed and unsqueezed back to rank 3 is not a sequence."""
    from onnx import numpy_helper

    axes = [numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    m = _two_lstm_graph([helper.make_node("Squeeze", ["Yh", "ax0"], ["s"], name="sq"),
                         helper.make_node("Unsqueeze", ["s", "ax0"], ["x2"], name="unsq")], axes)
    with pytest.raises(UnsupportedModelError, match=r"node 'l2', X: X must be a sequence"):
        tinylstm.load_onnx(m)


def test_concat_of_model_tensors_refuses_unknown_attributes() -> None:
    """Never silently ignore an attribute: Concat too (it joins the h_n of stacked layers)."""
    from onnx import numpy_helper

    idx = [numpy_helper.from_array(np.array(-1, np.int64), "last")]
    nodes = [helper.make_node("LSTM", ["x", "aW", "aR"], ["Y", "Yh"], hidden_size=4, name="l1"),
             helper.make_node("LSTM", ["x", "aW", "aR"], ["Y2", "Yh2"], hidden_size=4, name="l1b"),
             helper.make_node("Concat", ["Yh", "Yh2"], ["hn"], axis=0, foo=3, name="hn_cat"),
             helper.make_node("Gather", ["hn", "last"], ["y"], axis=0, name="pick")]
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((1, 16, 3)).astype(np.float32), "aW"),
             numpy_helper.from_array(rng.standard_normal((1, 16, 4)).astype(np.float32), "aR")] + idx
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedModelError, match=r"node 'hn_cat', foo: attribute 'foo' of Concat"):
        tinylstm.load_onnx(m)
