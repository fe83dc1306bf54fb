"""The pipeline commands end to end: quantize, generate, validate, analyze, build, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import tinylstm
from tinylstm.cbuild import toolchain
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.cli import main
from tinylstm.data.taskfiles import load_task_file
from tinylstm.qmodel import QuantizedModel

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
JV = MODELS / "japanese_vowels.onnx"
JV_CALIB = MODELS / "japanese_vowels_calib.npz"
JV_TEST = MODELS / "japanese_vowels_test.npz"
needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinylstm", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def jv_tlq(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("q") / "jv.tlq"
    assert main(["quantize", str(JV), "--calib", str(JV_CALIB), "-o", str(out)]) == 0
    return out


def test_quantize_writes_loadable_model(jv_tlq: Path, capsys):
    qm = QuantizedModel.load(jv_tlq)
    fm = tinylstm.load_onnx(JV)
    from tinylstm.data.dataset import load_dataset

    seqs = load_dataset(JV_TEST, fm).sequences
    x = np.stack([s[:7] for s in seqs[:4]]).astype(np.float32)  # (B, T, F): the model is batch-first
    # the saved model computes what a fresh quantization computes, bit for bit
    fresh = tinylstm.quantize(fm, str(JV_CALIB))
    assert np.array_equal(qm.run_int(qm.quantize_input(x)), fresh.run_int(fresh.quantize_input(x)))


@needs_gcc
def test_validate_json_reports_zero_mismatches_and_accuracy(jv_tlq: Path):
    r = _cli("validate", str(JV), "--qmodel", str(jv_tlq), "--data", str(JV_TEST), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["mismatches"] == 0
    assert rep["c"][0]["sequences"] == 370 and rep["c"][0]["mismatched_values"] == 0
    acc_f, acc_q = rep["classifier"]["accuracy_ref"], rep["classifier"]["accuracy_got"]
    assert acc_f > 0.95
    assert acc_q >= acc_f - 0.005  # the budget: int8 within 0.5 points of float


@needs_gcc
def test_build_writes_library_and_report(tmp_path: Path):
    out = tmp_path / "lib"
    assert main(["build", str(JV), "--calib", str(JV_CALIB), "--data", str(JV_TEST), "-o", str(out),
                 "--prefix", "jv"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"jv.h", "jv.c", "model.tlq", "report.md", "report.json", "CMakeLists.txt"} <= names
    rep = json.loads((out / "report.json").read_text())
    assert rep["ok"] and rep["mismatches"] == 0


def test_generate_then_analyze(jv_tlq: Path, tmp_path: Path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", str(jv_tlq), "-o", str(out), "--prefix", "kws"]) == 0
    assert (out / "kws.h").read_text().count("void kws_step(") == 1
    capsys.readouterr()
    assert main(["analyze", str(jv_tlq), "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert a["parameters"] == 6057 and a["macs_per_step"] == 5920
    assert a["generated"]["flash_bytes"] > 6057 and a["generated"]["ram_bytes"] > 0


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["quantize", str(JV), "--calib", "missing.npz", "-o", "{out}/m.tlq"], "missing.npz"),
        (["quantize", str(JV), "--calib", str(MODELS / "adding_T100_calib.npz"), "-o", "{out}/m.tlq"],
         "features"),
        (["generate", "{out}/nothing.tlq", "-o", "{out}/gen"], "nothing.tlq"),
        (["build", str(JV), "--calib", str(JV_CALIB), "-o", "{out}/b", "--prefix", "int"], "int"),
    ],
    ids=["missing-calib", "wrong-feature-count", "missing-tlq", "keyword-prefix"],
)
def test_user_errors_exit_2_one_line_nothing_written(tmp_path: Path, args, culprit):
    args = [a.replace("{out}", str(tmp_path)) for a in args]
    r = _cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and culprit in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


# ---- build --target: checked before any work --------------------------------------------------
CROSS = ("arm-none-eabi-gcc", "qemu-system-arm")
_CROSS_MISSING = missing_reason(*CROSS, "gcc")


@pytest.fixture(scope="module")
def jv_small(tmp_path_factory) -> Path:
    """The first 6 JapaneseVowels test utterances as a data file (fast builds)."""
    d = load_task_file(JV_TEST)
    path = tmp_path_factory.mktemp("data") / "jv6.npz"
    np.savez(path, x=d.x[:6].astype(np.float32), lengths=d.lengths[:6], labels=d.labels[:6])
    return path


def _hide(monkeypatch, *tools: str) -> None:
    real = toolchain.which
    monkeypatch.setattr(toolchain, "which", lambda t: None if t in tools else real(t))


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_build_target_without_cross_compiler_gives_validates_error(monkeypatch, capsys, tmp_path, jv_small):
    _hide(monkeypatch, "arm-none-eabi-gcc")
    assert main(["validate", str(JV), "--calib", str(JV_CALIB), "--data", str(jv_small), "--no-c",
                 "--target", "cortex-m4"]) == 2
    from_validate = _error_line(capsys)
    out = tmp_path / "lib"
    assert main(["build", str(JV), "--calib", str(JV_CALIB), "--data", str(jv_small), "-o", str(out),
                 "--target", "cortex-m4"]) == 2
    assert _error_line(capsys) == from_validate == f"error: {missing_reason('arm-none-eabi-gcc')}"
    assert not out.exists()


def test_build_target_names_every_missing_tool_before_any_work(monkeypatch, capsys, tmp_path, jv_small):
    _hide(monkeypatch, *CROSS)
    with mock.patch("tinylstm.quantize.quantizer.quantize", side_effect=AssertionError("quantized")):
        assert main(["build", str(JV), "--calib", str(JV_CALIB), "-o", str(tmp_path / "lib"),
                     "--target", "cortex-m4,cortex-m55:-O2"]) == 2
    line = _error_line(capsys)
    assert line == f"error: {missing_reason(*CROSS)}"
    assert "gcc-arm-none-eabi" in line and "qemu-system-arm" in line
    assert list(tmp_path.iterdir()) == []


def test_build_rejects_an_unknown_target(capsys, tmp_path):
    assert main(["build", str(JV), "--calib", str(JV_CALIB), "-o", str(tmp_path / "lib"),
                 "--target", "cortex-m99"]) == 2
    assert "unknown target 'cortex-m99'" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cross
@pytest.mark.skipif(_CROSS_MISSING is not None, reason=_CROSS_MISSING or "")
def test_build_target_runs_the_c_on_the_emulated_core(capsys, tmp_path, jv_small):
    out = tmp_path / "lib"
    assert main(["build", str(JV), "--calib", str(JV_CALIB), "--data", str(jv_small), "-o", str(out),
                 "--prefix", "jv", "--target", "cortex-m4"]) == 0
    text = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    runs = {c["name"]: c for c in rep["c"]}
    assert set(runs) == {"host gcc -O2", "cortex-m4 -Os"}
    assert runs["cortex-m4 -Os"]["sequences"] == 6 and runs["cortex-m4 -Os"]["mismatched_values"] == 0
    assert rep["ok"] and rep["mismatches"] == 0
    assert "| cortex-m4 -Os | 6 | 0 | 0 |" in (out / "report.md").read_text()
    assert "compiled for cortex-m4 -Os" in text  # the footprint adds the core's sizes
