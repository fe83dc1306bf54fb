"""The importer on real tf2onnx 1.17 conversions of Keras models (tests/fixtures/keras/, checked
in; no TensorFlow needed).

Each fixture was written by ``tinylstm.export.keras_export.from_keras`` from a seeded
tf_keras (or Keras 3) model and stores Keras's own outputs at two input shapes (see
tests/fixtures/make_keras_fixtures.py). Budget: the float reference within 1e-5 of Keras and
of onnxruntime at both shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tinylstm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["fixtures"]}
ATOL = 1e-5

# tf2onnx writes Keras's Bidirectional as ONE bidirectional LSTM node whose Y (T, 2, B, H) is
# split with Slice(axis 1, [0:1] / [1:2]) + Squeeze(axis 1). With return_sequences=True the
# halves are joined again by Concat(axis 2) -> (T, B, 2H): the importer handles that. For the
# last output (return_sequences=False) the forward half's Slice(time, [-1:]) and the backward
# half's Slice(time, [0:1]) are joined by Concat(axis 1) -> (B, 2H), i.e. Y_h of both
# directions; the importer refuses that Concat of two model tensors.
REFUSED = {
    "bi_dense": "tf2onnx Bidirectional(return_sequences=False): Concat(axis 1) of the forward half's "
                "last step and the backward half's step 0 is refused ('Concat of model tensors')",
}


def test_manifest_lists_every_file() -> None:
    listed = {f for e in ENTRIES.values() for f in e["files"]} | {"manifest.json"}
    on_disk = {p.name for p in FIXTURES.iterdir() if p.is_file()}
    assert on_disk == listed
    assert set(REFUSED) <= set(ENTRIES)
    for e in ENTRIES.values():
        assert e["ops"]["LSTM"] >= 1, e["name"]


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _case(name: str) -> object:
    if name in REFUSED:
        return pytest.param(name, marks=pytest.mark.xfail(
            strict=True, raises=tinylstm.UnsupportedModelError, reason=REFUSED[name]))
    return name


@pytest.mark.parametrize("name", [_case(n) for n in sorted(ENTRIES)])
def test_fixture_imports_and_matches_keras_and_onnxruntime(name: str) -> None:
    path = FIXTURES / f"{name}.onnx"
    data = np.load(FIXTURES / f"{name}.npz")
    model = tinylstm.load_onnx(str(path))
    for k in ("0", "1"):
        x, y_keras = data["x" + k], data["y" + k]
        y = model.run(x)
        assert y.dtype == np.float32
        assert y.shape == y_keras.shape, f"x{k}: shape {y.shape} vs Keras {y_keras.shape}"
        err_keras = float(np.max(np.abs(y - y_keras)))
        assert err_keras <= ATOL, f"x{k} {x.shape}: |tinylstm - keras| = {err_keras:.3g}"
        err_ort = float(np.max(np.abs(y - _ort(path, x))))
        assert err_ort <= ATOL, f"x{k} {x.shape}: |tinylstm - onnxruntime| = {err_ort:.3g}"


@pytest.mark.parametrize("name", sorted(n for n in ENTRIES if n not in REFUSED))
def test_fixture_axes_follow_the_keras_input(name: str) -> None:
    """Dynamic batch always; a length the Keras Input fixes is the export's default length, not a
    constraint (the graph does not depend on it)."""
    model = tinylstm.load_onnx(str(FIXTURES / f"{name}.onnx"))
    assert model.fixed_batch is None
    assert model.export_time == ENTRIES[name]["config"]["fixed_time"]
    assert model.fixed_time is None


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_fixture_names_a_concat(name: str) -> None:
    """Until the importer supports it, the refusal names the Concat joining the directions."""
    path = FIXTURES / f"{name}.onnx"
    concats = {n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Concat"}
    try:
        tinylstm.load_onnx(str(path))
    except tinylstm.UnsupportedModelError as e:
        assert e.node in concats
    else:
        pytest.fail(f"{name} imports now: move it out of REFUSED")
