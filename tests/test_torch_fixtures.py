"""The importer on real PyTorch 2.13 exports of nn.LSTM, nn.GRU and mixed stacks (tests/fixtures/torch/,
checked in; no torch needed).

Each fixture was written by ``tinylstm.export.from_torch`` (legacy and dynamo exporters) and
stores torch's own outputs at two input shapes (see tests/fixtures/make_torch_fixtures.py).
Budget: the float reference within 1e-5 of torch and of onnxruntime at both shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import tinylstm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["fixtures"]}
ATOL = 1e-5
#: configurations the importer refuses today (docs/import-coverage.md), with the node it names


def test_manifest_lists_every_file() -> None:
    listed = {f for e in ENTRIES.values() for f in e["files"]} | {"manifest.json"}
    on_disk = {p.name for p in FIXTURES.iterdir() if p.is_file()}
    assert on_disk == listed
    exporters = {(e["config_name"], e["exporter"]) for e in ENTRIES.values()}
    configs = {e["config_name"] for e in ENTRIES.values()}
    assert exporters >= {(c, x) for c in configs for x in ("legacy", "dynamo")}
    for e in ENTRIES.values():
        if e["exporter"] == "dynamo":
            assert f"{e['name']}.onnx.data" in e["files"], e["name"]


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3  # dynamo outputs declare the example length; ort warns
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]




@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fixture_imports_and_matches_torch_and_onnxruntime(name: str) -> None:
    path = FIXTURES / f"{name}.onnx"
    data = np.load(FIXTURES / f"{name}.npz")
    model = tinylstm.load_onnx(str(path))
    for k in ("0", "1"):
        x, y_torch = data["x" + k], data["y" + k]
        y = model.run(x)
        assert y.dtype == np.float32
        assert y.shape == y_torch.shape, f"x{k}: shape {y.shape} vs torch {y_torch.shape}"
        err_torch = float(np.max(np.abs(y - y_torch)))
        assert err_torch <= ATOL, f"x{k} {x.shape}: |tinylstm - torch| = {err_torch:.3g}"
        y_ort = _ort(path, x)
        err_ort = float(np.max(np.abs(y - y_ort)))
        assert err_ort <= ATOL, f"x{k} {x.shape}: |tinylstm - onnxruntime| = {err_ort:.3g}"


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items()
                                         if e["time_axis"] == "dynamic"))
def test_dynamic_fixture_keeps_time_dynamic(name: str) -> None:
    """A fixture exported with a dynamic time axis imports with a dynamic time axis."""
    model = tinylstm.load_onnx(str(FIXTURES / f"{name}.onnx"))
    assert model.fixed_time is None
    assert model.fixed_batch is None


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items()
                                         if e["time_axis"] != "dynamic"))
def test_fixed_length_fixture_runs_any_length(name: str) -> None:
    """Dynamo exports of time-major models (and of batch-first models that call two recurrent
    modules one after the other) declare (or bake into a Reshape) the example length:
    onnxruntime runs them only at it, but their computation does not depend on it. The import
    keeps it as ``export_time`` and runs any length: at the legacy twin's other input (same
    weights, length 8, batch 3) it gives the legacy twin's torch output."""
    model = tinylstm.load_onnx(str(FIXTURES / f"{name}.onnx"))
    t_axis = 1 if ENTRIES[name]["config"]["batch_first"] else 0
    assert model.export_time == ENTRIES[name]["shapes"]["x0"][t_axis]
    assert model.fixed_time is None
    assert model.fixed_batch is None
    twin = np.load(FIXTURES / f"{ENTRIES[name]['config_name']}_legacy.npz")
    assert twin["x1"].shape[t_axis] != model.export_time  # a different length
    err = float(np.max(np.abs(model.run(twin["x1"]) - twin["y1"])))
    assert err <= ATOL, f"|tinylstm - torch| = {err:.3g} at length {twin['x1'].shape[t_axis]}"
