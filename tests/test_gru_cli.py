"""GRU models on the command line (issue #18): ``inspect`` shows them, the float model runs them,
``quantize`` and ``validate --no-c`` run the integer GRU (phase 2a), and every path to C
(``generate``, ``build``, ``validate`` with C, ``analyze``) runs them (phase 2b)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from gru_builders import GruSpec, single_gru_model, stacked_rnn_model
from onnx_builders import HeadSpec, LstmSpec, random_input, save_model

import tinylstm
from tinylstm.cli import main
from tinylstm.ir.macs import MACS_DEFINITION
from tinylstm.ir.summary import format_summary, summarize

GRU = GruSpec(input_size=3, hidden_size=5, linear_before_reset=1)
LSTM = LstmSpec(input_size=10, hidden_size=4, direction="bidirectional")


def _mixed():
    """GRU(3 -> 5, forward) -> bidirectional LSTM(5 -> 4) -> Y_h -> Dense(8 -> 2)."""
    return stacked_rnn_model([GRU, replace(LSTM, input_size=5)], head=HeadSpec("state_flatten_gemm"))


def test_summary_counts_gru_macs_and_parameters() -> None:
    fm = tinylstm.load_onnx(_mixed())
    s = summarize(fm)
    gru, lstm = (r for r in s["layers"] if r["op"] in ("GRU", "LSTM"))
    assert gru["op"] == "GRU" and gru["macs_per_step"] == 3 * 5 * (3 + 5)  # 3*H*(I+H)
    assert gru["parameters"] == 15 * 3 + 15 * 5 + 15 + 5  # W, R, b, rb_h (linear_before_reset)
    assert gru["linear_before_reset"] is True and gru["direction"] == "forward"
    assert lstm["macs_per_step"] == 4 * 4 * (5 + 4) * 2
    assert s["macs_per_step"] == 120 + 288 + 8 * 2 == fm.macs_per_step
    assert s["peephole_mults_per_step"] == 0
    text = format_summary(s)
    assert "GRU" in text and "3->5, forward, linear_before_reset=1" in text
    assert MACS_DEFINITION in text and "3*H*(I+H) per GRU direction" in MACS_DEFINITION
    assert [type(n).__name__ for n in fm.recurrent_layers] == ["GruNode", "LstmNode"]
    assert len(fm.gru_layers) == 1 and len(fm.lstm_layers) == 1
    assert not fm.causal  # the LSTM is bidirectional


def test_gru_y_h_state_is_labelled_in_the_summary() -> None:
    fm = tinylstm.load_onnx(stacked_rnn_model([GRU], head=HeadSpec("state_matmul")))
    ops = [r["op"] for r in summarize(fm)["layers"]]
    assert ops[:3] == ["Input", "GRU", "GRU Y_h"]
    assert fm.causal


def test_fingerprint_tells_linear_before_reset_apart() -> None:
    a = tinylstm.load_onnx(single_gru_model(replace(GRU, linear_before_reset=0)))
    b = tinylstm.load_onnx(single_gru_model(replace(GRU, linear_before_reset=1)))
    assert a.fingerprint() != b.fingerprint()


def test_static_batch_initial_h_rows_and_batch_row() -> None:
    """Per-row initial_h of a static batch: the model runs at that batch only, unless a row is
    picked (as for the LSTM)."""
    model = single_gru_model(replace(GRU, initial_h="initializer"), batch=3)
    fm = tinylstm.load_onnx(model)
    assert fm.fixed_batch == 3 and fm.batch_dependence() == [("gru_1", "initial_h", 3)]
    row = tinylstm.load_onnx(model, batch_row=1)
    assert row.fixed_batch is None
    x = random_input(model, 3, 6, seed=1)
    assert np.array_equal(row.run(x[:, 1:2]), fm.run(x)[:, :, 1:2])


def test_constant_full_length_sequence_lens_is_dropped() -> None:
    fm = tinylstm.load_onnx(single_gru_model(replace(GRU, sequence_lens="initializer", lens=(6, 6)),
                                             batch=2, time=6))
    assert fm.gru_layers[0].sequence_lens is None and fm.fixed_time is None


def test_quantize_accepts_a_gru() -> None:
    model = _mixed()
    fm = tinylstm.load_onnx(model)
    qm = tinylstm.quantize(fm, [random_input(model, 2, 5)])
    assert [type(n).__name__ for n in qm.nodes if type(n).__name__ in ("QGru", "QLstm")] == ["QGru", "QLstm"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    model = _mixed()
    path = Path(save_model(model, tmp_path / "gru.onnx"))
    data = tmp_path / "d.npz"
    np.savez(data, x=random_input(model, 6, 5).transpose(1, 0, 2), labels=np.arange(6) % 2)
    return {"model": path, "data": data, "dir": tmp_path}


def test_cli_inspect_shows_the_gru(files, capsys) -> None:
    assert main(["inspect", str(files["model"])]) == 0
    out = capsys.readouterr().out
    assert "GRU" in out and "linear_before_reset=1" in out
    assert main(["inspect", str(files["model"]), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [r["op"] for r in s["layers"]][1] == "GRU"


@pytest.mark.parametrize("command", ["generate", "build", "validate", "analyze"])
def test_cli_c_commands_run_the_gru(files, capsys, command: str) -> None:
    """Phase 2b: every path to C takes a GRU model (GRU -> bidirectional LSTM -> Dense); the C equals
    the simulator and the footprint lists the GRU layer."""
    tlq = files["dir"] / "m.tlq"
    m, d = str(files["model"]), str(files["data"])
    assert main(["quantize", m, "--calib", d, "-o", str(tlq)]) == 0
    capsys.readouterr()
    out = files["dir"] / "out"
    args = {
        "generate": ["generate", str(tlq), "-o", str(out), "--prefix", "g"],
        "build": ["build", m, "--calib", d, "--data", d, "-o", str(out), "--json"],
        "validate": ["validate", m, "--qmodel", str(tlq), "--data", d, "--json", "--compilers", "gcc,clang"],
        "analyze": ["analyze", str(tlq), "--json"],
    }[command]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    if command == "generate":
        c = (out / "g.c").read_text()
        # the GRU (linear_before_reset = 1, no clip, a state bounded by 1) takes the fast step of the
        # common case, and the model calls no other GRU step (so it links only that one)
        assert "static const tl_gru_params_t" in c and (out / "tl_gru_fast.c").is_file()
        assert set(re.findall(r"\b(tl_gru_step_\w+)\(", c)) == {"tl_gru_step_fast_q15"}
    elif command in ("build", "validate"):
        rep = json.loads(text)
        assert rep["mismatches"] == 0 and rep["c"] and all(c["mismatched_values"] == 0 for c in rep["c"])
        if command == "build":
            assert (out / "model.c").is_file() and (out / "report.json").is_file()
            gru = rep["footprint"]["layers"][0]
            assert gru["op"] == "GRU" and gru["macs_per_step"] == 3 * 5 * (3 + 5)
    else:
        a = json.loads(text)
        assert [r["op"] for r in a["layers"]] == ["GRU", "LSTM", "Dense"]
        assert a["macs_per_step"] == 3 * 5 * 8 + 4 * 4 * 9 * 2 + 8 * 2 and a["generated"]["flash_bytes"] > 0


def test_cli_validate_without_c_runs_the_integer_gru(files, capsys) -> None:
    m, d = str(files["model"]), str(files["data"])
    assert main(["validate", m, "--calib", d, "--data", d, "--no-c", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["sequences"] == 6 and rep["c"] == [] and rep["int8_vs_float"]["cosine"] > 0.999
    assert [r["values"] for r in rep["cell_saturation"]["gru_1"]] == [6 * 5 * 5]  # the int16 state
