"""Small fixes, each pinned: one MACs definition, `build --target`, submodules not shadowed by
functions, a public chost call for per-step streaming, and the documented streaming and T = 400
figures."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, stacked_model

import tinylstm
from tinylstm import analyze as analyze_mod
from tinylstm import ctarget, toolchain
from tinylstm.cli import main
from tinylstm.datasets import load_task_file
from tinylstm.summary import format_summary, summarize
from tinylstm.toolchain import missing_reason

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
JV = MODELS / "japanese_vowels.onnx"
JV_CALIB = MODELS / "japanese_vowels_calib.npz"
JV_TEST = MODELS / "japanese_vowels_test.npz"
CROSS = ("arm-none-eabi-gcc", "qemu-system-arm")
needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))
_CROSS_MISSING = missing_reason(*CROSS, "gcc")


@pytest.fixture(scope="module")
def jv():
    fm = tinylstm.load_onnx(JV)
    return fm, tinylstm.quantize(fm, str(JV_CALIB))


@pytest.fixture(scope="module")
def jv_small(tmp_path_factory) -> Path:
    """The first 6 JapaneseVowels test utterances as a data file (fast builds)."""
    d = load_task_file(JV_TEST)
    path = tmp_path_factory.mktemp("data") / "jv6.npz"
    np.savez(path, x=d.x[:6].astype(np.float32), lengths=d.lengths[:6], labels=d.labels[:6])
    return path


# ---- 1. one definition of MACs per step -----------------------------------------------------------


def test_inspect_analyze_and_target_counts_agree_on_japanese_vowels(jv):
    fm, qm = jv
    expected = 4 * 32 * (12 + 32) + 32 * 9  # LSTM W and R, dense head
    s = summarize(fm)
    a = analyze_mod.analyze(qm)
    assert s["macs_per_step"] == a["macs_per_step"] == ctarget.macs_per_step(qm) == expected == 5920
    assert [r["macs_per_step"] for r in s["layers"] if "macs_per_step" in r] == \
        [r["macs_per_step"] for r in a["layers"]] == [5632, 288]
    assert ctarget.macs_per_step is analyze_mod.macs_per_step
    # the definition is printed under both tables
    assert analyze_mod.MACS_DEFINITION in format_summary(s)
    assert analyze_mod.MACS_DEFINITION in analyze_mod.format_analysis(a)


def test_peepholes_are_listed_apart_and_float_and_integer_counts_agree():
    specs = [LstmSpec(input_size=3, hidden_size=6, direction="bidirectional", peepholes=True),
             LstmSpec(input_size=12, hidden_size=5)]
    m = stacked_model(specs, head=HeadSpec("last_gemm", 4))
    fm = tinylstm.load_onnx(m)
    qm = tinylstm.quantize(fm, [random_input(m, 2, 7, seed=1)])
    macs = 4 * 6 * (3 + 6) * 2 + 4 * 5 * (12 + 5) + 4 * 5
    peep = 3 * 6 * 2
    s, a = summarize(fm), analyze_mod.analyze(qm)
    assert s["macs_per_step"] == a["macs_per_step"] == macs
    assert s["peephole_mults_per_step"] == a["peephole_mults_per_step"] == peep
    assert f"(+{peep} peephole multiplies)" in format_summary(s)
    assert f"(+{peep} peephole multiplies)" in analyze_mod.format_analysis(a)


# ---- 2. build --target ----------------------------------------------------------------------------


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
    with mock.patch("tinylstm.quantize.quantize", side_effect=AssertionError("quantized")):
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


# ---- 3. submodules are never shadowed by functions ------------------------------------------------


def _submodules() -> list[str]:
    import pkgutil

    names = {m.name for m in pkgutil.iter_modules(tinylstm.__path__) if m.name != "__main__"}
    return sorted(names | {"codegen", "export", "onnx_import"})


def test_every_submodule_is_a_module_after_a_plain_import():
    names = _submodules()
    assert {"quantize", "calibrate", "validate", "build", "analyze", "simulate", "chost"} <= set(names)
    code = f"""
import importlib, sys, types
import tinylstm
bad = []
for name in {names!r}:
    lazy = getattr(tinylstm, name)  # a plain `import tinylstm` reaches every submodule
    mod = importlib.import_module("tinylstm." + name)
    exec("import tinylstm.%s as alias" % name, globals())
    if not (lazy is mod is alias is sys.modules["tinylstm." + name]) or not isinstance(mod, types.ModuleType):
        bad.append(name)
print(bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_quantize_and_calibrate_stay_callable_at_top_level():
    m = stacked_model([LstmSpec(input_size=3, hidden_size=4)], head=HeadSpec("last_gemm", 2))
    fm = tinylstm.load_onnx(m)
    x = random_input(m, 3, 6, seed=2)
    import tinylstm.calibrate as cmod
    import tinylstm.quantize as qmod
    from tinylstm.quantize import quantize

    assert isinstance(qmod, types.ModuleType) and qmod.quantize is quantize
    assert isinstance(cmod, types.ModuleType) and tinylstm.calibrate is cmod
    documented = tinylstm.quantize(fm, [x])  # README / examples: tinylstm.quantize(float_model, calib)
    direct = qmod.quantize(fm, [x])
    xq = documented.quantize_input(x)
    assert np.array_equal(documented.run_int(xq), direct.run_int(xq))
    via_calib = tinylstm.quantize(fm, tinylstm.calibrate(fm, [x]))
    assert np.array_equal(via_calib.run_int(xq), direct.run_int(xq))
    assert list(inspect.signature(tinylstm.quantize).parameters)[:2] == ["float_model", "calib"]
    with pytest.raises(AttributeError, match="no_such_thing"):
        tinylstm.no_such_thing  # noqa: B018


def test_dotted_patch_targets_reach_the_module():
    import tinylstm.quantize as qmod

    before = qmod.INT32_MAX
    with mock.patch("tinylstm.quantize.INT32_MAX", 7):
        assert qmod.INT32_MAX == 7
    assert qmod.INT32_MAX == before


# ---- 4. chost.run_c_steps (public) ----------------------------------------------------------------


@needs_gcc
def test_run_c_steps_returns_the_output_after_every_step(jv, tmp_path):
    from tinylstm.chost import build_host, run_c, run_c_steps

    _, qm = jv
    d = load_task_file(JV_TEST)
    x = qm.quantize_input(d.x[:3, :9].astype(np.float32))  # (3, 9, 12) batch-first, one length
    exe = build_host(qm, tmp_path / "h")
    y, tr = run_c_steps(exe, x, trace=True)
    assert y.shape == (3, 9, 9) and y.dtype == np.int8
    y_last, tr_c = run_c(exe, x, "step", trace=True)
    assert np.array_equal(y[:, -1], y_last)
    for t in range(9):  # a many-to-one model: after step t, step() wrote run_int of the prefix
        assert np.array_equal(y[:, t], qm.run_int(x[:, : t + 1])), t
    _, sim = qm.run_int(x, trace=True)
    (c_dir,), (s_dir,) = tr["/lstm/LSTM"], sim["/lstm/LSTM"]
    assert np.array_equal(c_dir.h, s_dir.h) and np.array_equal(c_dir.c, s_dir.c)
    assert np.array_equal(c_dir.h, tr_c["/lstm/LSTM"][0].h)
    assert run_c_steps(exe, x)[1] is None


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinylstm"):
            bad += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in {"chost", "tinylstm"}:
            bad.append(f"{node.value.id}.{node.attr}")
    return bad


@needs_gcc
def test_stream_long_bench_uses_public_calls_and_still_matches(capsys):
    path = ROOT / "bench" / "stream_long.py"
    assert _private_imports(path) == []
    spec = importlib.util.spec_from_file_location("stream_long_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    assert bench.main(["--model", "japanese_vowels", "--steps", "400", "--checkpoint", "150"]) == 0
    out = capsys.readouterr().out
    assert "SUMMARY model=japanese_vowels steps=400" in out and "mismatches=0 overflows=0" in out


# ---- 5. the README's streaming figures ------------------------------------------------------------


def _stream_saturation(qm, stream: np.ndarray) -> tuple[int, int]:
    _, tr = qm.run_int(qm.quantize_input(stream), trace=True)
    (t,) = tr["/lstm/LSTM"]
    c = t.c[t.valid]
    return int(np.count_nonzero((c >= 32767) | (c <= -32768))), int(c.size)


def test_readme_streaming_figures(jv):
    """README "Streaming": the 370 test utterances back to back, no reset."""
    fm, qm = jv
    d = load_task_file(JV_TEST)
    stream = np.concatenate([x[:n] for x, n in zip(d.x, d.lengths, strict=True)])[None].astype(np.float32)
    readme = (ROOT / "README.md").read_text()
    assert stream.shape[1] == 5687 and "5687-step" in readme
    assert _stream_saturation(qm, stream) == (2927, 181984)
    assert "2927 of 181984 cell values (1.6 %)" in readme
    wide2 = tinylstm.quantize(fm, str(JV_CALIB), cell_headroom=2.0)
    wide4 = tinylstm.quantize(fm, str(JV_CALIB), cell_headroom=4.0)
    assert _stream_saturation(wide2, stream)[0] == 355 and "`--cell-headroom 2`: 355, 0.2 %" in readme
    assert _stream_saturation(wide4, stream)[0] == 0
    assert (qm.nodes[1].directions[0].cell_frac, wide4.nodes[1].directions[0].cell_frac) == (11, 9)
    from tinylstm.validate import validate

    for q in (qm, wide4):  # with a reset per utterance: nothing saturates, accuracy as documented
        rep = validate(JV, q, JV_TEST, float_model=fm, host_c=False)
        assert rep.cell_saturation["/lstm/LSTM"][0]["saturated"] == 0
        assert round(100 * rep.classifier.accuracy_got, 2) == 97.30


# ---- 6. docs/quantization.md §13.2 agrees with docs/results.md -----------------------------------


def test_quantization_doc_t400_row_matches_results():
    q = (ROOT / "docs" / "quantization.md").read_text()
    sec = q[q.index("### 13.2"):q.index("### 13.3")]
    row = next(line for line in sec.splitlines() if line.startswith("| adding, T = 400 |"))
    nums = re.findall(r"(\d+)\**\s*/ 2560[^|]*?mean err (0\.\d+)", row)
    res = (ROOT / "docs" / "results.md").read_text()
    rrow = next(line for line in res.splitlines() if line.startswith("| adding problem, T = 400 |"))
    cells = re.findall(r"(\d+) wrong \((0\.\d+)\)", rrow)
    assert nums == cells[:2] == [("0", "0.0030"), ("0", "0.0069")]
    meta = json.loads((MODELS / "adding_T400.json").read_text())["float_test_score"]
    assert (meta["wrong"], f"{meta['mean_abs_error']:.4f}") == (0, "0.0030")
