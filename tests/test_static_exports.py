"""Plain ``torch.onnx.export`` files with a STATIC batch, as most users have them (issue #13).

The fixtures in tests/fixtures/static/ (checked in; no torch needed) are JapaneseVowels
classifiers (four ``nn.LSTM``, two ``nn.GRU``), each exported by a bare
``torch.onnx.export(model, (example,), path)`` at batch 1 and 8 with the legacy and the dynamo
exporter, no dynamic axes (see tests/fixtures/make_static_fixtures.py). Every one must go through
tinylstm as it is:

- the float reference on all 370 test sequences at once equals onnxruntime run at the file's
  own static batch, chunk by chunk, within :data:`ATOL`;
- ``tinylstm build`` on the padded data files exits 0, the compiled C equals the simulator
  exactly, the float accuracy is torch's, and int8 loses at most :data:`INT8_ACCURACY_BUDGET`;
  the GRU classifiers (issue #18) as the LSTM ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import tinylstm
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "static"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["fixtures"]}
CALIB = FIXTURES / "calib.npz"
TEST = FIXTURES / "test.npz"
#: float reference vs onnxruntime, max abs over all logits
ATOL = 1e-5
#: int8 accuracy may be at most 1.0 point below float accuracy on the 370 test sequences
#: (3 sequences); on these short sequences int8 is usually lossless, a larger loss is a bug
INT8_ACCURACY_BUDGET = 0.010
#: onnxruntime's float accuracy vs torch's (manifest): one sequence of 370 is 0.27 points, so this
#: allows one borderline logit to flip between the two float implementations, not two
FLOAT_VS_TORCH_BUDGET = 0.003

needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


def test_manifest_lists_every_file_with_its_hash() -> None:
    listed = dict(MANIFEST["data"]["files"])
    for e in ENTRIES.values():
        listed.update(e["files"])
        assert f"{e['name']}.onnx" in e["files"], e["name"]
        if e["exporter"] == "dynamo":
            assert f"{e['name']}.onnx.data" in e["files"], e["name"]
    on_disk = {p.name for p in FIXTURES.iterdir() if p.is_file()} - {"manifest.json"}
    assert on_disk == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name
    combos = {(e["arch"], e["batch"], e["exporter"]) for e in ENTRIES.values()}
    archs = {e["arch"] for e in ENTRIES.values()}
    assert combos == {(a, b, x) for a in archs for b in (1, 8) for x in ("legacy", "dynamo")}


def _test_x(entry: dict) -> np.ndarray:
    """The test set (370, 29, 12) in the model's own layout ((29, 370, 12) when time-major)."""
    with np.load(TEST) as z:
        x = z["x"]
    return x if entry["config"]["batch_first"] else np.ascontiguousarray(x.transpose(1, 0, 2))


def _ort_at_static_batch(path: Path, x: np.ndarray, batch: int, batch_axis: int) -> np.ndarray:
    """onnxruntime on ``x`` in chunks of the file's static batch; the last chunk is filled up
    with copies of its last row and the extra outputs dropped. Output (N, classes)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    n = x.shape[batch_axis]
    outs = []
    for start in range(0, n, batch):
        chunk = np.take(x, np.arange(start, min(start + batch, n)), axis=batch_axis)
        rows = chunk.shape[batch_axis]
        if rows < batch:
            pad = [(0, 0)] * x.ndim
            pad[batch_axis] = (0, batch - rows)
            chunk = np.pad(chunk, pad, mode="edge")
        outs.append(sess.run(None, {name: chunk})[0][:rows])
    return np.concatenate(outs)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_float_reference_on_the_whole_test_set_matches_onnxruntime_at_the_static_batch(name: str) -> None:
    e = ENTRIES[name]
    path = FIXTURES / f"{name}.onnx"
    x = _test_x(e)
    model = tinylstm.load_onnx(str(path))
    y = model.run(x)  # all 370 sequences in one call, whatever batch the file was exported at
    assert y.dtype == np.float32
    assert y.shape == (370, MANIFEST["data"]["classes"])
    y_ort = _ort_at_static_batch(path, x, e["batch"], 0 if e["config"]["batch_first"] else 1)
    err = float(np.max(np.abs(y - y_ort)))
    assert err <= ATOL, f"|tinylstm - onnxruntime| = {err:.3g}"


@needs_gcc
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_cli_build_on_the_plain_export(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    e = ENTRIES[name]
    out = tmp_path / "out"
    code = main(["build", str(FIXTURES / f"{name}.onnx"), "--calib", str(CALIB), "--data", str(TEST),
                 "-o", str(out), "--compilers", "gcc", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err.strip()
    rep = json.loads(captured.out)
    assert rep["sequences"] == 370
    assert rep["c"] and all(c["sequences"] == 370 for c in rep["c"])
    assert rep["mismatches"] == 0 and all(c["mismatched_values"] == 0 for c in rep["c"])
    acc_float = rep["classifier"]["accuracy_ref"]
    acc_int8 = rep["classifier"]["accuracy_got"]
    acc_torch = e["torch_test_accuracy"]
    assert abs(acc_float - acc_torch) <= FLOAT_VS_TORCH_BUDGET, (
        f"float accuracy {100 * acc_float:.2f}% vs torch {100 * acc_torch:.2f}%")
    assert acc_int8 >= acc_float - INT8_ACCURACY_BUDGET, (
        f"int8 accuracy {100 * acc_int8:.2f}% vs float {100 * acc_float:.2f}%")
    assert (out / "report.json").is_file()
