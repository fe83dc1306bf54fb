"""The importer on real tf2onnx 1.17 conversions of Keras LSTM and GRU models
(tests/fixtures/keras/, checked in; no TensorFlow needed).

Each fixture was written by ``tinylstm.export.keras_export.from_keras`` from a seeded
tf_keras (or Keras 3) model and stores Keras's own outputs at two input shapes (see
tests/fixtures/make_keras_fixtures.py). Budgets: the float reference within 1e-5 of Keras and
of onnxruntime at both shapes; the GRU fixtures quantized on those inputs within
``BUDGET_LSB`` output LSB of float (the integer GRU's budget, tests/test_gru_quantize.py), the
simulator's fast path and its checked kernels equal, and the generated C equal to the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tinylstm
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["fixtures"]}
ATOL = 1e-5
#: max |integer - float| in output LSB: tests/test_gru_quantize.py's budget for random GRU models
#: calibrated on the data they run on (measured here: <= 1.4 LSB)
BUDGET_LSB = 6.0

# tf2onnx writes Keras's Bidirectional as ONE bidirectional LSTM node whose Y (T, 2, B, H) is
# split with Slice(axis 1, [0:1] / [1:2]) + Squeeze(axis 1). With return_sequences=True the
# halves are joined again by Concat(axis 2) -> (T, B, 2H): the importer handles that. For the
# last output (return_sequences=False) the forward half's Slice(time, [-1:]) and the backward
# half's Slice(time, [0:1]) are joined by Concat(axis 1) -> (B, 2H), i.e. Y_h of both
# directions; the importer refuses that Concat of two model tensors.
_BI_LAST = ("tf2onnx Bidirectional(return_sequences=False): Concat(axis 1) of the forward half's "
            "last step and the backward half's step 0 is refused ('Concat of model tensors')")
REFUSED = {"bi_dense": _BI_LAST, "gru_bi_dense": _BI_LAST}


def test_manifest_lists_every_file() -> None:
    listed = {f for e in ENTRIES.values() for f in e["files"]} | {"manifest.json"}
    on_disk = {p.name for p in FIXTURES.iterdir() if p.is_file()}
    assert on_disk == listed
    assert set(REFUSED) <= set(ENTRIES)
    for e in ENTRIES.values():
        assert e["ops"].get("LSTM", 0) + e["ops"].get("GRU", 0) >= 1, e["name"]


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


# --------------------------------------------------------------------------------------
# GRU fixtures through the integer pipeline
# --------------------------------------------------------------------------------------
GRU_FIXTURES = sorted(n for n, e in ENTRIES.items() if "GRU" in e["ops"] and n not in REFUSED)


def _quantized(name: str) -> tuple[tinylstm.FloatModel, tinylstm.QuantizedModel, list[np.ndarray]]:
    model = tinylstm.load_onnx(str(FIXTURES / f"{name}.onnx"))
    data = np.load(FIXTURES / f"{name}.npz")
    xs = [data["x0"], data["x1"]]
    return model, quantize(model, xs), xs


def test_gru_fixtures_cover_the_keras_gru_forms() -> None:
    """reset_after True and False (linear_before_reset 1 / 0), Bidirectional, stacked, mixed with LSTM."""
    forms = set()
    for name in GRU_FIXTURES:
        cfg = ENTRIES[name]["config"]
        forms |= {f"reset_after={cfg['reset_after']}", *(lay.rstrip("0123456789s") for lay in cfg["layers"])}
    assert {"reset_after=True", "reset_after=False", "gru", "bigru", "lstm", "dense"} <= forms
    assert any(e["ops"].get("GRU", 0) >= 2 for n, e in ENTRIES.items() if n in GRU_FIXTURES)


@pytest.mark.parametrize("name", GRU_FIXTURES)
def test_gru_fixture_quantizes_and_simulates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, qm, xs = _quantized(name)
    assert any(type(n).__name__ == "QGru" for n in qm.nodes)
    for x in xs:
        y = qm.run(x)
        assert y.shape == model.run(x).shape
        err = float(np.abs(y.astype(np.float64) - model.run(x)).max() / qm.output_scale)
        assert err <= BUDGET_LSB, f"{name} {x.shape}: {err:.2f} LSB"
        xi = qm.quantize_input(x)
        monkeypatch.setattr(checked, "CHECKED", True)
        y_checked = qm.run_int(xi)
        monkeypatch.setattr(checked, "CHECKED", False)
        assert np.array_equal(qm.run_int(xi), y_checked), f"{name} {x.shape}: fast path != checked kernels"


@pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))
def test_gru_fixtures_generated_c_equals_the_simulator(tmp_path: Path) -> None:
    """All GRU fixtures in one host harness (gcc -O2): run() and, where the model streams, step()."""
    from tinylstm.cbuild.host import build_host, run_c

    quantized = [_quantized(name) for name in GRU_FIXTURES]
    exe = build_host([q for _, q, _ in quantized], tmp_path)
    for i, (name, (_, qm, xs)) in enumerate(zip(GRU_FIXTURES, quantized, strict=True)):
        modes = ("run", "step") if exe.plans[i].has_step else ("run",)
        for x in xs:
            xi = qm.quantize_input(x)
            want = qm.run_int(xi)
            for mode in modes:
                got, _ = run_c(exe, xi, mode, model=i)
                assert np.array_equal(got, want), f"{name} {x.shape} {mode}: C != simulator"
