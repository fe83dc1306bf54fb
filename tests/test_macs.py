"""One definition of MACs per step (tinylstm.ir.macs): inspect, analyze and the target benchmarks
count the same way, float and integer models alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, stacked_model

import tinylstm
from tinylstm.cbuild import emulated as ctarget
from tinylstm.ir.summary import format_summary, summarize
from tinylstm.validate import analyze as analyze_mod

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
JV = MODELS / "japanese_vowels.onnx"
JV_CALIB = MODELS / "japanese_vowels_calib.npz"
JV_TEST = MODELS / "japanese_vowels_test.npz"


@pytest.fixture(scope="module")
def jv():
    fm = tinylstm.load_onnx(JV)
    return fm, tinylstm.quantize(fm, str(JV_CALIB))


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
