"""``tinylstm.export.from_keras`` end to end (needs TensorFlow + tf2onnx: runs in .venv-peers).

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


def _lstm_count(path: Path) -> int:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node].count("LSTM")


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
    assert imported.fixed_time == 7
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


@pytest.mark.parametrize("layer, field", [("GRU", "layer type"), ("Masking", "Masking"),
                                          ("stateful", "stateful"), ("none", "model")])
def test_refusals_name_the_layer(keras: Any, tmp_path: Path, layer: str, field: str) -> None:
    if layer == "stateful":
        inp = keras.Input(batch_shape=(1, None, 4))
        out = keras.layers.LSTM(3, stateful=True, name="culprit")(inp)
    else:
        inp = keras.Input((None, 4))
        body = {"GRU": keras.layers.GRU(3, name="culprit"),
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
