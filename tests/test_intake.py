"""Static-shape exports and the newcomer's mistakes (issue "Every model a user exports gets in").

Hand-built ONNX models with a static batch and length, in the shapes exporters write: zero
initial states per batch row, a batch of 1 merged with time by a Reshape, a step picked on that
merged axis, constant ``sequence_lens``. Real PyTorch exports of the same shapes, built through the
CLI: tests/test_static_exports.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinylstm
from tinylstm.cli import main
from tinylstm.errors import DataError, UnsupportedModelError
from tinylstm.quantize.quantizer import quantize

I, H, C = 3, 4, 2
T = 6


def _lstm_inits(rng: np.random.Generator, batch: int, h0: np.ndarray | None = None) -> list[onnx.TensorProto]:
    inits = [
        numpy_helper.from_array((rng.standard_normal((1, 4 * H, I)) * 0.5).astype(np.float32), "W"),
        numpy_helper.from_array((rng.standard_normal((1, 4 * H, H)) * 0.5).astype(np.float32), "R"),
        numpy_helper.from_array((rng.standard_normal((1, 8 * H)) * 0.1).astype(np.float32), "B"),
        numpy_helper.from_array((h0 if h0 is not None else np.zeros((1, batch, H))).astype(np.float32), "h0"),
        numpy_helper.from_array(np.zeros((1, batch, H), np.float32), "c0"),
        numpy_helper.from_array((rng.standard_normal((C, H)) * 0.5).astype(np.float32), "fcW"),
        numpy_helper.from_array(np.zeros(C, np.float32), "fcB"),
    ]
    return inits


def _model(nodes, inits, x_shape, y_shape) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def static_classifier(batch: int, h0: np.ndarray | None = None, seed: int = 0, pick: int = -1,
                      seq_lens: list[int] | None = None) -> onnx.ModelProto:
    """Time-major [T, batch, I] -> LSTM (constant initial states of ``batch`` rows) -> Y [T, 1,
    batch, H] -> Squeeze -> Gather step ``pick`` -> Gemm: a static export of ``fc(out[-1])``."""
    rng = np.random.default_rng(seed)
    inits = _lstm_inits(rng, batch, h0)
    inits += [numpy_helper.from_array(np.array([1], np.int64), "ax1"),
              numpy_helper.from_array(np.array(pick, np.int64), "pick")]
    lstm_in = ["x", "W", "R", "B", "", "h0", "c0"]
    if seq_lens is not None:
        inits.append(numpy_helper.from_array(np.array(seq_lens, np.int32), "lens"))
        lstm_in[4] = "lens"
    nodes = [
        helper.make_node("LSTM", lstm_in, ["Y"], hidden_size=H, name="lstm"),
        helper.make_node("Squeeze", ["Y", "ax1"], ["Ys"], name="sq"),
        helper.make_node("Gather", ["Ys", "pick"], ["last"], axis=0, name="last_step"),
        helper.make_node("Gemm", ["last", "fcW", "fcB"], ["y"], transB=1, name="fc"),
    ]
    return _model(nodes, inits, [T, batch, I], [batch, C])


def merged_batch1_classifier(seed: int = 0) -> onnx.ModelProto:
    """What the dynamo exporter writes for a batch of 1: the second layer's X and the head's
    input reshaped to [T*B, ...] / [T, H] (batch and time merged), then a step picked on it."""
    rng = np.random.default_rng(seed)
    inits = _lstm_inits(rng, 1)
    inits += [
        numpy_helper.from_array((rng.standard_normal((1, 4 * H, H)) * 0.5).astype(np.float32), "W2"),
        numpy_helper.from_array((rng.standard_normal((1, 4 * H, H)) * 0.5).astype(np.float32), "R2"),
        numpy_helper.from_array(np.array([T, 1, H], np.int64), "shape_tbh"),
        numpy_helper.from_array(np.array([T, H], np.int64), "shape_th"),
        numpy_helper.from_array(np.array(T - 1, np.int64), "last"),
    ]
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y1"], hidden_size=H, name="l1"),
        helper.make_node("Transpose", ["Y1"], ["Y1t"], perm=[0, 2, 1, 3], name="t1"),
        helper.make_node("Reshape", ["Y1t", "shape_tbh"], ["X2"], name="r1"),
        helper.make_node("LSTM", ["X2", "W2", "R2", "", "", "h0", "c0"], ["Y2"], hidden_size=H, name="l2"),
        helper.make_node("Reshape", ["Y2", "shape_th"], ["Y2f"], name="r2"),
        helper.make_node("Gather", ["Y2f", "last"], ["h_last"], axis=0, name="select"),
        helper.make_node("Unsqueeze", ["h_last", "zero"], ["h_last1"], name="unsq"),
        helper.make_node("Gemm", ["h_last1", "fcW", "fcB"], ["y"], transB=1, name="fc"),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero"))
    return _model(nodes, inits, [T, 1, I], [1, C])


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _data(n: int, steps: int = T, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, steps, I)).astype(np.float32)


# ------------------------------------------------------------------------------------------
# a static batch is a batch of independent sequences
# ------------------------------------------------------------------------------------------
def test_static_batch_with_zero_states_is_batch_free() -> None:
    m = static_classifier(batch=8)
    fm = tinylstm.load_onnx(m)
    assert (fm.export_batch, fm.export_time) == (8, T)
    assert fm.fixed_batch is None and fm.fixed_time is None
    x8 = _data(8).transpose(1, 0, 2)  # the model's own layout [T, 8, I]
    np.testing.assert_allclose(fm.run(x8), _ort(m, x8), rtol=0, atol=1e-5)
    # any number of sequences: each row as the static batch would compute it
    x3 = x8[:, :3]
    np.testing.assert_allclose(fm.run(x3), _ort(m, x8)[:3], rtol=0, atol=1e-5)
    # quantize and the simulator at N = 1 and N = 400
    qm = quantize(fm, _data(400).transpose(1, 0, 2))
    y1 = qm.run_int(qm.quantize_input(x8[:, :1]))
    y8 = qm.run_int(qm.quantize_input(x8))
    assert y1.shape == (1, C) and y8.shape == (8, C)
    np.testing.assert_array_equal(y1[0], y8[0])
    assert qm.run(_data(400).transpose(1, 0, 2)).shape == (400, C)


def test_static_length_is_a_default_not_a_constraint() -> None:
    fm = tinylstm.load_onnx(static_classifier(batch=8))
    x = _data(2, steps=T + 5).transpose(1, 0, 2)
    assert fm.run(x).shape == (2, C)


def test_a_graph_that_depends_on_the_length_says_so() -> None:
    """Step 2 of 6 read from the start is not 'the last step' at another length."""
    fm = tinylstm.load_onnx(static_classifier(batch=8, pick=2))
    assert fm.fixed_time == T
    assert any("picks step 2 of the static length 6" in n for n in fm.notes)
    with pytest.raises(DataError, match="time=6"):
        fm.run(_data(2, steps=T + 1).transpose(1, 0, 2))


def test_constant_sequence_lens_of_the_static_length_mean_every_step() -> None:
    fm = tinylstm.load_onnx(static_classifier(batch=8, seq_lens=[T] * 8))
    assert fm.fixed_time is None and fm.lstm_layers[0].sequence_lens is None
    short = tinylstm.load_onnx(static_classifier(batch=8, seq_lens=[T - 2] * 8))
    assert short.fixed_time == T
    assert any("sequence_lens [4] is a constant below the static length 6" in n for n in short.notes)


def test_batch_of_one_merged_with_time_is_seen_through() -> None:
    m = merged_batch1_classifier()
    fm = tinylstm.load_onnx(m)
    assert fm.export_batch == 1 and fm.fixed_batch is None and fm.fixed_time is None
    x = _data(1).transpose(1, 0, 2)
    np.testing.assert_allclose(fm.run(x), _ort(m, x), rtol=0, atol=1e-5)
    xs = _data(5, seed=3).transpose(1, 0, 2)
    ys = fm.run(xs)
    assert ys.shape == (5, C)
    for i in range(5):
        np.testing.assert_allclose(ys[i : i + 1], _ort(m, xs[:, i : i + 1]), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------
# rows that really differ
# ------------------------------------------------------------------------------------------
def _per_row_states() -> onnx.ModelProto:
    h0 = np.random.default_rng(5).standard_normal((1, 4, H)) * 0.5
    return static_classifier(batch=4, h0=h0)


def test_per_row_initial_states_name_the_node_and_the_fix() -> None:
    fm = tinylstm.load_onnx(_per_row_states())
    assert fm.fixed_batch == 4
    assert fm.batch_dependence() == [("lstm", "initial_h", 4)]
    with pytest.raises(UnsupportedModelError, match=r"node 'lstm', initial_h: .* 4 rows .*--batch-row K"):
        quantize(fm, _data(10).transpose(1, 0, 2))


def test_batch_row_keeps_one_rows_constants() -> None:
    m = _per_row_states()
    fm = tinylstm.load_onnx(m, batch_row=2)
    assert fm.fixed_batch is None and fm.batch_row == 2
    x = _data(4).transpose(1, 0, 2)
    # sequence k alone, computed as row 2 of the static batch
    for k in range(4):
        batch = np.repeat(x[:, k : k + 1], 4, axis=1)
        np.testing.assert_allclose(fm.run(x[:, k : k + 1]), _ort(m, batch)[2:3], rtol=0, atol=1e-5)
    with pytest.raises(UnsupportedModelError, match="batch row 7 does not exist"):
        tinylstm.load_onnx(m, batch_row=7)


# ------------------------------------------------------------------------------------------
# the CLI: one line, exit 2, nothing written
# ------------------------------------------------------------------------------------------
def _save(tmp_path: Path, model: onnx.ModelProto, name: str = "m.onnx") -> str:
    p = tmp_path / name
    onnx.save(model, p)
    return str(p)


def _refused(capsys, argv: list[str], match: str, tmp_path: Path, before: set[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert match in err, err
    assert "\\x0a" not in err
    assert {p.name for p in tmp_path.iterdir()} == before, "a refused command wrote something"
    return err


def test_cli_builds_a_static_batch_export_with_any_number_of_sequences(tmp_path: Path, capsys) -> None:
    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=_data(50))
    np.savez(tmp_path / "t.npz", x=_data(13, seed=2), labels=np.arange(13) % C)
    rc = main(["build", model, "--calib", str(tmp_path / "c.npz"), "--data", str(tmp_path / "t.npz"),
               "-o", str(tmp_path / "out"), "--json", "--lstm-weight-bits", "8"])
    out = capsys.readouterr().out
    assert rc == 0
    rep = json.loads(out)
    assert rep["sequences"] == 13 and rep["mismatches"] == 0
    assert rep["footprint"]["generated"]["flash_bytes"] > 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["footprint"] == rep["footprint"]
    assert "## Footprint" in (tmp_path / "out" / "report.md").read_text()
    qm = tinylstm.QuantizedModel.load(tmp_path / "out" / "model.tlq")
    assert dict(qm.options)["lstm_weight_bits"] == 8


def test_cli_refuses_time_major_data_on_a_fixed_length_export(tmp_path: Path, capsys) -> None:
    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=_data(40, steps=T).transpose(1, 0, 2).copy())  # (T, N, F)
    before = {p.name for p in tmp_path.iterdir()}
    err = _refused(capsys, ["quantize", model, "--calib", str(tmp_path / "c.npz"), "-o",
                            str(tmp_path / "m.tlq")], "reads as 6 sequences of 40 steps", tmp_path, before)
    assert "x.transpose(1, 0, 2)" in err


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8])
def test_cli_refuses_integer_data(tmp_path: Path, capsys, dtype) -> None:
    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=np.ones((5, T, I), dtype))
    np.savez(tmp_path / "f.npz", x=_data(5))
    before = {p.name for p in tmp_path.iterdir()}
    _refused(capsys, ["quantize", model, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "m.tlq")],
             "holds integers", tmp_path, before)
    _refused(capsys, ["validate", model, "--calib", str(tmp_path / "f.npz"), "--data", str(tmp_path / "c.npz"),
                      "--no-c", "--report", str(tmp_path / "r.md")], "not quantized codes", tmp_path, before)
    with pytest.raises(DataError, match="holds integers"):
        quantize(tinylstm.load_onnx(model), np.ones((T, 5, I), dtype))


def test_cli_refuses_a_tlq_of_another_model(tmp_path: Path, capsys) -> None:
    a = _save(tmp_path, static_classifier(batch=8, seed=0), "a.onnx")
    b = _save(tmp_path, static_classifier(batch=8, seed=1), "b.onnx")
    np.savez(tmp_path / "c.npz", x=_data(20))
    assert main(["quantize", a, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "a.tlq")]) == 0
    capsys.readouterr()
    before = {p.name for p in tmp_path.iterdir()}
    _refused(capsys, ["validate", b, "--qmodel", str(tmp_path / "a.tlq"), "--data", str(tmp_path / "c.npz"),
                      "--no-c", "--report", str(tmp_path / "r.md")], "quantized from another float model",
             tmp_path, before)
    # the same weights exported again (other node names) keep the fingerprint
    again = static_classifier(batch=8, seed=0)
    for n in again.graph.node:
        n.name = "re_" + n.name
    c = _save(tmp_path, again, "a_again.onnx")
    assert main(["validate", c, "--qmodel", str(tmp_path / "a.tlq"), "--data", str(tmp_path / "c.npz"),
                 "--no-c"]) == 0


def test_cli_per_row_states_refused_then_batch_row(tmp_path: Path, capsys) -> None:
    model = _save(tmp_path, _per_row_states())
    np.savez(tmp_path / "c.npz", x=_data(20))
    before = {p.name for p in tmp_path.iterdir()}
    _refused(capsys, ["build", model, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "out")],
             "node 'lstm', initial_h: initial_h differs between the 4 rows", tmp_path, before)
    assert main(["build", model, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "out"),
                 "--batch-row", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["mismatches"] == 0 and rep["int8_vs_float"]["cosine"] > 0.99
    # validate finds the row in the .tlq
    assert main(["validate", model, "--qmodel", str(tmp_path / "out" / "model.tlq"), "--data",
                 str(tmp_path / "c.npz"), "--no-c"]) == 0


def test_cli_quantize_writes_nothing_when_the_summary_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    import tinylstm.cli.commands as cp

    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=_data(20))

    def boom(*a, **k):
        raise DataError("summary failed")

    monkeypatch.setattr(cp, "quant_summary", boom)
    before = {p.name for p in tmp_path.iterdir()}
    _refused(capsys, ["quantize", model, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "m.tlq")],
             "summary failed", tmp_path, before)


def test_cli_validate_writes_no_report_when_the_plot_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    import tinylstm.validate.validation as val

    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=_data(20))

    def boom(*a, **k):
        raise DataError("plot failed")

    monkeypatch.setattr(val, "plot_step_error", boom)
    before = {p.name for p in tmp_path.iterdir()}
    _refused(capsys, ["validate", model, "--calib", str(tmp_path / "c.npz"), "--data", str(tmp_path / "c.npz"),
                      "--no-c", "--report", str(tmp_path / "r.md"), "--plot", str(tmp_path / "p.png")],
             "plot failed", tmp_path, before)


def test_onnxruntime_errors_are_one_readable_line(tmp_path: Path, capsys, monkeypatch) -> None:
    model = _save(tmp_path, static_classifier(batch=8))
    np.savez(tmp_path / "c.npz", x=_data(20))

    def refuse(self, *a, **k):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\n index: 0 "
                           "Got: 5\n\tExpected: 8\n Please fix")

    monkeypatch.setattr(ort.InferenceSession, "run", refuse)
    before = {p.name for p in tmp_path.iterdir()}
    err = _refused(capsys, ["validate", model, "--calib", str(tmp_path / "c.npz"), "--data",
                            str(tmp_path / "c.npz"), "--no-c", "--report", str(tmp_path / "r.md")],
                   "onnxruntime cannot run", tmp_path, before)
    assert "Got invalid dimensions index: 0 Got: 5 Expected: 8 Please fix" in err


def test_float64_model_is_validated_against_a_float32_copy(tmp_path: Path, capsys) -> None:
    m = static_classifier(batch=8)
    for t in m.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.elem_type = TensorProto.DOUBLE
    model = _save(tmp_path, m)
    np.savez(tmp_path / "c.npz", x=_data(20))
    assert main(["validate", model, "--calib", str(tmp_path / "c.npz"), "--data", str(tmp_path / "c.npz"),
                 "--no-c"]) == 0
    assert "float32 copy of the graph" in capsys.readouterr().out


def test_build_bounds_buffered_models_by_the_longest_sequence_and_says_so(tmp_path: Path, capsys) -> None:
    """A reverse LSTM buffers whole sequences: the run() bound defaults to the longest sequence of
    the calibration and validation data (not 256), and the report says so; --max-steps overrides."""
    m = static_classifier(batch=8)
    m.graph.node[0].attribute.append(helper.make_attribute("direction", "reverse"))
    model = _save(tmp_path, m)
    np.savez(tmp_path / "c.npz", x=_data(20, steps=9))
    np.savez(tmp_path / "t.npz", x=_data(5, steps=T))
    assert main(["build", model, "--calib", str(tmp_path / "c.npz"), "--data", str(tmp_path / "t.npz"),
                 "-o", str(tmp_path / "out"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert any("run() buffers sequences of up to 9 steps" in n for n in rep["notes"])
    assert "#define MODEL_MAX_STEPS 9" in (tmp_path / "out" / "model.h").read_text()
    assert main(["build", model, "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "out2"),
                 "--max-steps", "40", "--json"]) == 0
    assert "#define MODEL_MAX_STEPS 40" in (tmp_path / "out2" / "model.h").read_text()
    assert not any("buffers" in n for n in json.loads(capsys.readouterr().out)["notes"])
