"""The importer's static resolution of exporter glue, each case checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinylstm
from tinylstm.ir import DenseNode, FeatureGatherNode, LstmNode, SelectStepNode

I, H = 3, 4


def _lstm_inits(prefix: str, rng: np.random.Generator, in_size: int = I, ndir: int = 1):
    s = 1 / np.sqrt(H)
    return [
        numpy_helper.from_array(rng.uniform(-s, s, (ndir, 4 * H, in_size)).astype(np.float32), f"{prefix}W"),
        numpy_helper.from_array(rng.uniform(-s, s, (ndir, 4 * H, H)).astype(np.float32), f"{prefix}R"),
        numpy_helper.from_array(rng.uniform(-s, s, (ndir, 8 * H)).astype(np.float32), f"{prefix}B"),
    ]


def _model(nodes, inits, x_shape, out="y", opset=17):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _check(m: onnx.ModelProto, shapes, atol=1e-5):
    fm = tinylstm.load_onnx(m)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for shp in shapes:
        x = rng.standard_normal(shp).astype(np.float32)
        ref = sess.run(None, {"x": x})[0]
        got = fm.run(x)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= atol
    return fm


def _c(name, arr):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr), name))


def test_stacked_hn_last_layer_picked_from_concat():
    """PyTorch's h_n[-1] of a 2-layer LSTM: Concat of both Y_h, then Gather(-1)."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng) + _lstm_inits("b", rng, in_size=H)
    inits.append(numpy_helper.from_array(rng.standard_normal((H, 2)).astype(np.float32), "fcw"))
    nodes = [
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1", "h1"], hidden_size=H, name="l1"),
        helper.make_node("Squeeze", ["y1", "ax1"], ["y1s"], name="sq"),
        _c("ax1", np.array([1], dtype=np.int64)),
        helper.make_node("LSTM", ["y1s", "bW", "bR", "bB"], ["y2", "h2"], hidden_size=H, name="l2"),
        helper.make_node("Concat", ["h1", "h2"], ["hn"], axis=0, name="cat"),
        _c("last", np.array(-1, dtype=np.int64)),
        helper.make_node("Gather", ["hn", "last"], ["hl"], axis=0, name="pick"),
        helper.make_node("MatMul", ["hl", "fcw"], ["y"], name="fc"),
    ]
    nodes.insert(2, nodes.pop(2))  # Constant before use
    nodes = [nodes[2], nodes[0], nodes[1]] + nodes[3:]
    m = _model(nodes, inits, ["T", "N", I])
    fm = _check(m, [(5, 2, I), (9, 1, I)])
    assert sum(isinstance(n, LstmNode) for n in fm.nodes) == 2


def test_concat_of_model_tensors_without_pick_is_refused():
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng)
    nodes = [
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1", "h1", "c1"], hidden_size=H, name="l1"),
        helper.make_node("Concat", ["h1", "c1"], ["y"], axis=2, name="hc_cat"),
    ]
    with pytest.raises(tinylstm.UnsupportedModelError, match="node 'hc_cat'"):
        tinylstm.load_onnx(_model(nodes, inits, ["T", "N", I]))


def test_baked_time_reshape_imports_with_its_length_as_default():
    """A Reshape whose target holds the example length (PyTorch dynamo, batch_first=False):
    onnxruntime runs the file only at that length; tinylstm keeps it as the export length and
    runs any length (the computation does not depend on it)."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng)
    inits.append(numpy_helper.from_array(np.array([7, -1, H], dtype=np.int64), "shp"))
    nodes = [
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1"], hidden_size=H, name="l1"),
        helper.make_node("Reshape", ["y1", "shp"], ["y"], name="baked"),
    ]
    m = _model(nodes, inits, ["T", "N", I])
    fm = _check(m, [(7, 2, I), (7, 5, I)])
    assert fm.export_time == 7 and fm.fixed_time is None
    assert any("bakes the sequence length 7" in n for n in fm.notes)
    x9 = rng.standard_normal((9, 2, I)).astype(np.float32)
    y9 = fm.run(x9)
    assert y9.shape == (9, 2, H)
    np.testing.assert_allclose(y9[:7], fm.run(x9[:7]), rtol=0, atol=1e-6)  # forward: the first 7 steps


def test_per_step_head_through_flatten_and_reshape():
    """[T, B, H] -> Reshape [-1, H] -> Gemm -> Reshape [T, B, C] (dynamic T and B)."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng)
    inits += [
        numpy_helper.from_array(rng.standard_normal((5, H)).astype(np.float32), "fcw"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fcb"),
        numpy_helper.from_array(np.array([-1, H], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1"], hidden_size=H, name="l1"),
        helper.make_node("Squeeze", ["y1", "ax1"], ["y1s"], name="sq"),
        helper.make_node("Shape", ["y1s"], ["shape"], name="shape"),
        helper.make_node("Slice", ["shape", "z", "two"], ["tb"], name="tb"),
        helper.make_node("Reshape", ["y1s", "flat"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fcw", "fcb"], ["g"], transB=1, name="fc"),
        helper.make_node("Concat", ["tb", "five"], ["outshape"], axis=0, name="cat"),
        helper.make_node("Reshape", ["g", "outshape"], ["y"], name="unflatten"),
    ]
    consts = [
        _c("ax1", np.array([1], dtype=np.int64)),
        _c("z", np.array([0], dtype=np.int64)),
        _c("two", np.array([2], dtype=np.int64)),
        _c("five", np.array([5], dtype=np.int64)),
    ]
    m = _model(consts + nodes, inits, ["T", "N", I])
    fm = _check(m, [(6, 2, I), (3, 4, I)])
    assert fm.many_to_many
    assert isinstance(fm.nodes[-1], DenseNode)


def test_select_direction_of_bidirectional_output():
    """Gather on the num_directions axis becomes a feature selection."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng, ndir=2)
    nodes = [
        _c("one", np.array(1, dtype=np.int64)),
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1"], hidden_size=H,
                         direction="bidirectional", name="l1"),
        helper.make_node("Gather", ["y1", "one"], ["y"], axis=1, name="backward_only"),
    ]
    fm = _check(_model(nodes, inits, ["T", "N", I]), [(5, 2, I)])
    assert isinstance(fm.nodes[-1], FeatureGatherNode)


def test_first_step_and_static_shapes():
    """A static [T=6, B=2, I] input and a head on step 0 (Slice 0:1 then Squeeze)."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng)
    nodes = [
        _c("s0", np.array([0], dtype=np.int64)),
        _c("s1", np.array([1], dtype=np.int64)),
        _c("ax0", np.array([0], dtype=np.int64)),
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1"], hidden_size=H, name="l1"),
        helper.make_node("Slice", ["y1", "s0", "s1", "ax0"], ["first"], name="first_step"),
        helper.make_node("Squeeze", ["first", "ax0"], ["y"], name="sq"),
    ]
    fm = _check(_model(nodes, inits, [6, 2, I]), [(6, 2, I)])
    sel = [n for n in fm.nodes if isinstance(n, SelectStepNode)]
    assert sel and sel[0].index == 0
    assert not fm.causal or sel[0].index == 0


def test_error_reports_furthest_layout_hypothesis():
    """An unsupported op after the LSTM is reported, not a layout mismatch at the LSTM."""
    rng = np.random.default_rng(0)
    inits = _lstm_inits("a", rng)
    nodes = [
        helper.make_node("LSTM", ["x", "aW", "aR", "aB"], ["y1"], hidden_size=H, layout=1, name="l1"),
        helper.make_node("Abs", ["y1"], ["y"], name="the_abs"),
    ]
    with pytest.raises(tinylstm.UnsupportedModelError, match=r"node 'the_abs'.*Abs"):
        tinylstm.load_onnx(_model(nodes, inits, ["N", "T", I]))
