"""``tinylstm.export.from_keras`` end to end, LSTM and GRU (needs TensorFlow + tf2onnx: runs in .venv-peers).

    TF_USE_LEGACY_KERAS=1 .venv-peers/bin/python -m pytest tests/test_export_keras.py

In the project venv (no TensorFlow) only the missing-dependency test runs; the rest skip.
Budget: the file tinylstm imports runs within 1e-5 of Keras at two sequence lengths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tinylstm.export.keras_export import from_keras
from tinylstm.export.torch_export import ExportError, MissingDependencyError

import tinylstm

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ATOL = 1e-5


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    return pytest.importorskip("tf_keras")


def _seeded(model: Any, seed: int) -> Any:
    """Non-trivial weights (nonzero biases: tf2onnx drops an all-zero Dense bias)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _lstm_count(path: Path, op: str = "LSTM") -> int:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node].count(op)


def _gru_attributes(path: Path) -> list[dict[str, Any]]:
    import onnx

    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]
    out = []
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        out.append({k: [x.decode() for x in v] if k == "activations" else v for k, v in attrs.items()})
    return out


def _matches_keras(model: Any, path: Path, features: int) -> None:
    imported = tinylstm.load_onnx(str(path))
    rng = np.random.default_rng(7)
    for batch, time in ((2, 5), (3, 11)):
        x = rng.standard_normal((batch, time, features)).astype(np.float32)
        want = np.asarray(model(x, training=False))
        got = imported.run(x)
        assert got.shape == want.shape
        err = float(np.max(np.abs(got - want)))
        assert err <= ATOL, f"{path.name} at {x.shape}: |tinylstm - keras| = {err:.3g}"


def test_missing_tensorflow_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    with pytest.raises(MissingDependencyError, match="pip install tensorflow-cpu") as info:
        from_keras(object(), tmp_path / "m.onnx")
    assert isinstance(info.value, tinylstm.TinyLstmError)
    assert not any(tmp_path.iterdir())


def test_last_step_with_dense_head(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((None, 4))
    out = keras.layers.Dense(3)(keras.layers.LSTM(6)(inp))
    model = _seeded(keras.Model(inp, out), 1)
    path = from_keras(model, tmp_path / "last.onnx")
    assert path == tmp_path / "last.onnx"
    assert [p.name for p in tmp_path.iterdir()] == ["last.onnx"]  # no temporary left behind
    import onnx

    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["output"]
    assert _lstm_count(path) == 1
    _matches_keras(model, path, 4)


def test_stacked_sequence_output_sequential(keras: Any, tmp_path: Path) -> None:
    model = keras.Sequential([
        keras.layers.InputLayer((None, 3)),
        keras.layers.LSTM(5, return_sequences=True),
        keras.layers.LSTM(4, return_sequences=True),
        keras.layers.Dense(2, activation="tanh"),
    ])
    _seeded(model, 2)
    path = from_keras(model, tmp_path / "stacked.onnx", example_input=np.ones((1, 4, 3), np.float32))
    assert _lstm_count(path) == 2
    _matches_keras(model, path, 3)


def test_training_only_options_are_dropped(keras: Any, tmp_path: Path) -> None:
    """unroll=True (unrolled ops), recurrent_dropout (a Loop) and dropout (a Mul by ones)
    would leave no importable LSTM node; the copy converted without them is equivalent."""
    inp = keras.Input((7, 4))
    h = keras.layers.LSTM(5, return_sequences=True, dropout=0.3, recurrent_dropout=0.2)(inp)
    out = keras.layers.Dense(2)(keras.layers.LSTM(4, unroll=True)(h))
    model = _seeded(keras.Model(inp, out), 3)
    path = from_keras(model, tmp_path / "train_opts.onnx")
    assert _lstm_count(path) == 2
    imported = tinylstm.load_onnx(str(path))
    assert imported.export_time == 7 and imported.fixed_time is None  # the default length, not a constraint
    x = np.random.default_rng(4).standard_normal((3, 7, 4)).astype(np.float32)
    err = float(np.max(np.abs(imported.run(x) - np.asarray(model(x, training=False)))))
    assert err <= ATOL


def test_bidirectional_converts_and_matches_onnxruntime(keras: Any, tmp_path: Path) -> None:
    import onnxruntime as ort

    inp = keras.Input((None, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Bidirectional(keras.layers.LSTM(4))(inp))
    model = _seeded(keras.Model(inp, out), 5)
    path = from_keras(model, tmp_path / "bi.onnx")
    assert _lstm_count(path) == 1
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((2, 9, 3)).astype(np.float32)
    err = float(np.max(np.abs(sess.run(None, {"input": x})[0] - np.asarray(model(x)))))
    assert err <= ATOL


def test_keras3_sequential_is_wrapped(tmp_path: Path) -> None:
    """tf2onnx 1.17 raises KeyError('keras_tensor_N') on a Keras 3 Sequential model."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    k3 = pytest.importorskip("keras")
    if not k3.__version__.startswith("3."):
        pytest.skip("Keras 3 not installed")
    model = k3.Sequential([k3.Input((None, 4)), k3.layers.LSTM(5), k3.layers.Dense(2)])
    _seeded(model, 8)
    path = from_keras(model, tmp_path / "k3.onnx")
    _matches_keras(model, path, 4)


@pytest.mark.parametrize("layer, field", [("SimpleRNN", "layer type"), ("GRUCell", "layer type"),
                                          ("selu", "activation"), ("Masking", "Masking"),
                                          ("stateful", "stateful"), ("none", "model")])
def test_refusals_name_the_layer(keras: Any, tmp_path: Path, layer: str, field: str) -> None:
    if layer == "stateful":
        inp = keras.Input(batch_shape=(1, None, 4))
        out = keras.layers.LSTM(3, stateful=True, name="culprit")(inp)
    else:
        inp = keras.Input((None, 4))
        body = {"SimpleRNN": keras.layers.SimpleRNN(3, name="culprit"),
                "GRUCell": keras.layers.RNN(keras.layers.GRUCell(3), name="culprit"),
                "selu": keras.layers.GRU(3, activation="selu", name="culprit"),
                "Masking": keras.layers.Masking(name="culprit"),
                "none": keras.layers.Dense(3, name="culprit")}[layer]
        out = body(inp)
        if layer == "Masking":
            out = keras.layers.LSTM(3)(out)
    model = keras.Model(inp, out)
    with pytest.raises(tinylstm.UnsupportedModelError) as info:
        from_keras(model, tmp_path / "m.onnx")
    assert info.value.field == field
    assert info.value.node == (None if layer == "none" else "culprit")
    assert not any(tmp_path.iterdir())


def test_bad_arguments_write_nothing(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((None, 4))
    model = _seeded(keras.Model(inp, keras.layers.LSTM(3)(inp)), 9)
    with pytest.raises(tinylstm.DataError, match="3-D float"):
        from_keras(model, tmp_path / "m.onnx", example_input=np.ones((4, 4), np.float32))
    with pytest.raises(tinylstm.DataError, match="axis 2"):
        from_keras(model, tmp_path / "m.onnx", example_input=np.ones((1, 4, 5), np.float32))
    with pytest.raises(tinylstm.OutputPathError, match="no such directory"):
        from_keras(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ExportError, match="differs from Keras"):
        from_keras(model, tmp_path / "m.onnx", atol=-1.0)  # every check fails
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------------------
def test_gru_stacked_with_dense_head_is_one_gru_node_per_layer(keras: Any, tmp_path: Path) -> None:
    """tf_keras GRU (reset_after=True, the default): one ONNX GRU per layer, linear_before_reset=1,
    gate order z, r, h as Keras's kernel columns (W = kernel.T), B = [input bias | recurrent bias]."""
    import onnx
    from onnx import numpy_helper

    inp = keras.Input((None, 4))
    h = keras.layers.GRU(6, return_sequences=True)(inp)
    out = keras.layers.Dense(3)(keras.layers.GRU(5)(h))
    model = _seeded(keras.Model(inp, out), 11)
    path = from_keras(model, tmp_path / "gru.onnx")
    assert _lstm_count(path, "GRU") == 2 and _lstm_count(path) == 0
    assert [a["linear_before_reset"] for a in _gru_attributes(path)] == [1, 1]
    proto = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    first = [n for n in proto.graph.node if n.op_type == "GRU"][0]
    kernel, recurrent, bias = model.layers[1].get_weights()
    np.testing.assert_array_equal(inits[first.input[1]][0], kernel.T)
    np.testing.assert_array_equal(inits[first.input[2]][0], recurrent.T)
    np.testing.assert_array_equal(inits[first.input[3]][0], bias.reshape(-1))
    _matches_keras(model, path, 4)


@pytest.mark.parametrize("options, attrs", [
    ({"reset_after": False}, {"linear_before_reset": 0, "activations": ["Sigmoid", "Tanh"]}),
    ({"use_bias": False}, {"linear_before_reset": 1}),
    ({"reset_after": False, "use_bias": False, "dropout": 0.2}, {"linear_before_reset": 0}),
    ({"activation": "relu", "recurrent_activation": "hard_sigmoid"},
     {"activations": ["HardSigmoid", "Relu"], "activation_beta": [0.5]}),
])
def test_gru_variants_become_a_patched_gru_node(keras: Any, tmp_path: Path, options: dict[str, Any],
                                                attrs: dict[str, Any]) -> None:
    """tf2onnx writes a Loop for these; from_keras converts the fused twin and patches the node."""
    inp = keras.Input((None, 3))
    out = keras.layers.Dense(2)(keras.layers.GRU(4, **options)(inp))
    model = _seeded(keras.Model(inp, out), 12)
    path = from_keras(model, tmp_path / "variant.onnx")
    assert _lstm_count(path, "GRU") == 1 and _lstm_count(path, "Loop") == 0
    got = _gru_attributes(path)[0]
    assert {k: got.get(k) for k in attrs} == attrs
    _matches_keras(model, path, 3)


def test_bidirectional_gru_sequence(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((None, 3))
    h = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True, reset_after=False))(inp)
    out = keras.layers.Dense(2, activation="softmax")(h)
    model = _seeded(keras.Model(inp, out), 13)
    path = from_keras(model, tmp_path / "bigru.onnx")
    attrs = _gru_attributes(path)
    assert len(attrs) == 1 and attrs[0]["direction"] == b"bidirectional" and attrs[0]["linear_before_reset"] == 0
    _matches_keras(model, path, 3)


def test_keras3_gru_is_refused(tmp_path: Path) -> None:
    """tf2onnx 1.17 writes a Keras 3 GRU as a Loop, whatever its options."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    k3 = pytest.importorskip("keras")
    if not k3.__version__.startswith("3."):
        pytest.skip("Keras 3 not installed")
    inp = k3.Input((None, 4))
    model = k3.Model(inp, k3.layers.GRU(3, name="culprit")(inp))
    with pytest.raises(tinylstm.UnsupportedModelError, match="tf_keras") as info:
        from_keras(model, tmp_path / "k3.onnx")
    assert (info.value.node, info.value.field) == ("culprit", "layer type")
    assert not any(tmp_path.iterdir())
