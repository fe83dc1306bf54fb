"""The runnable examples: the streaming C program and quick smokes of the example scripts.

Each smoke runs a script's own functions on a small slice of the shipped data and checks the
figures it reports (bit-exactness exactly; accuracy against the shipped models' stated scores).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinylstm.cbuild.toolchain import missing_reason

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=missing_reason("gcc") or "")


def _load(path: Path):
    name = "example_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@needs_gcc
def test_streaming_example_prints_the_simulators_outputs(tmp_path):
    run = _load(EXAMPLES / "streaming" / "run.py")
    exe, qm, x8 = run.build(tmp_path / "stream")
    assert run.check(exe, qm, x8, n=12) == []


@needs_gcc
def test_streaming_check_detects_a_wrong_model(tmp_path):
    """The check compares against the simulator: a model quantized differently must fail it."""
    run = _load(EXAMPLES / "streaming" / "run.py")
    exe, qm, x8 = run.build(tmp_path / "stream")
    import tinylstm

    fm = tinylstm.load_onnx(EXAMPLES / "models" / "japanese_vowels.onnx")
    other = tinylstm.quantize(fm, [s[: 10].astype(np.float64) for s in np.load(
        EXAMPLES / "models" / "japanese_vowels_calib.npz")["x"][:5]])
    assert run.check(exe, other, x8, n=12) != []


def test_streaming_output_parser():
    run = _load(EXAMPLES / "streaming" / "run.py")
    got = run.parse_output("noise\nutterance 0: steps 19 speaker 1 y 100 -76 -93\n")
    assert got == [run.Utterance(19, 1, (100, -76, -93))]


@needs_gcc
def test_japanese_vowels_example_smoke(tmp_path, capsys):
    jv = _load(EXAMPLES / "japanese_vowels.py")
    res = jv.run(EXAMPLES / "models" / "japanese_vowels.onnx", tmp_path / "out", limit=40, target=False)
    assert res.report.sequences == 40
    assert [c.name for c in res.report.c] == ["host gcc -O2"]
    assert res.report.mismatches == 0
    c = res.report.classifier
    assert c is not None and c.top1_agreement >= 0.95  # int8 vs float on 40 utterances
    assert res.analysis["parameters"] == 6057
    assert (tmp_path / "out" / "jv.h").is_file()
    text = jv.summary(res)
    assert "Cortex-M4 run skipped" in text and "0 mismatched sequences of 40" in text


@needs_gcc
def test_paper_tasks_example_smoke():
    pt = _load(EXAMPLES / "paper_tasks.py")
    r = pt.evaluate_task("adding_T100", limit=64)
    assert r.n == 64 and r.criterion == "|err| < 0.04"
    # the shipped model gets 0/2560 wrong in float and int8 (docs/results.md)
    assert r.float_score.wrong == 0 and r.int8_score.wrong == 0
    assert r.int8_score.mean_abs_error < 0.01
    (c,) = r.c
    assert c.mismatched_sequences == 0
    assert c.score == r.int8_score  # the C's outputs are the simulator's
    assert "adding_T100: 64 test sequences" in pt.format_result(r)


def test_paper_tasks_temporal_order_scores_without_c():
    pt = _load(EXAMPLES / "paper_tasks.py")
    r = pt.evaluate_task("temporal_order_6a", limit=48, compilers=())
    assert r.c == () and r.n == 48
    assert r.float_score.wrong == 0 and r.int8_score.wrong == 0
    assert r.threshold == (0, 0)


def test_results_table_renders(tmp_path):
    rt = _load(ROOT / "bench" / "results_table.py")
    pt = _load(EXAMPLES / "paper_tasks.py")
    r = pt.evaluate_task("temporal_order_6a", limit=16, compilers=())
    text = rt.render([r], [], "not requested", 1.0, 16)
    assert "| temporal order 6a, 4 classes | 16 |" in text
    assert "Partial run" in text and "## Machine" in text
