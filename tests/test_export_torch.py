"""tinylstm.export.from_torch: real exports through both torch exporters, the traps it guards
against, its refusals and its all-or-nothing writes. Needs torch (skipped without it, except
the missing-torch tests, which fake its absence)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fixtures.make_torch_fixtures import Config, build_model, make_input
from tinylstm.export import ExportError, MissingDependencyError, from_torch

import tinylstm

REPO = Path(__file__).resolve().parent.parent
ATOL = 1e-5


# --------------------------------------------------------------------------------------
# Without torch (these run everywhere)
# --------------------------------------------------------------------------------------
def test_package_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import tinylstm.export as e\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(e.from_torch.__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "from_torch"


def test_missing_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(MissingDependencyError) as info:
        from_torch(object(), object(), tmp_path / "m.onnx")  # type: ignore[arg-type]
    assert isinstance(info.value, tinylstm.TinyLstmError)
    assert isinstance(info.value, ImportError)
    assert "PyTorch" in str(info.value) and "pip install" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# With torch
# --------------------------------------------------------------------------------------
try:
    import torch
except ImportError:  # the tests above still run
    torch = None
else:
    torch.set_num_threads(1)


def needs_torch(test):  # type: ignore[no-untyped-def]
    skip = pytest.mark.skipif(torch is None, reason="torch is not installed")
    return pytest.mark.torch(skip(test))


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _torch(model, x):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(x).numpy()


CASES = [
    Config("last_l2bi_bf", "last", layers=2, bidirectional=True, hidden_size=4, seed=31),
    Config("step_softmax_l1_bf", "step_softmax", input_size=5, hidden_size=6, seed=32),
    Config("hn_l2_tm", "hn", layers=2, batch_first=False, seed=33),
    Config("gru_last_l2bi_bf", "last", layers=2, bidirectional=True, hidden_size=4, seed=34, cell="gru"),
    Config("gru_lstm_step_tm", "step", batch_first=False, seed=35, cell="gru+lstm"),
]


@needs_torch
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("cfg", CASES, ids=[c.name for c in CASES])
def test_export_loads_and_matches_torch(cfg: Config, dynamo: bool, tmp_path: Path) -> None:
    model = build_model(cfg)
    x0 = make_input(cfg, 2, 5, seed=1)
    # the dynamo exporter cannot keep time dynamic for time-major models (tested below)
    dynamic_time = cfg.batch_first or not dynamo
    path = from_torch(model, x0, tmp_path / "m.onnx", dynamo=dynamo, dynamic_time=dynamic_time)
    assert path == tmp_path / "m.onnx"
    expected = {"m.onnx", "m.onnx.data"} if dynamo else {"m.onnx"}
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temp files left
    opset = onnx.load(str(path), load_external_data=False).opset_import[0].version
    assert opset == (18 if dynamo else 17)
    imported = tinylstm.load_onnx(str(path))
    assert imported.fixed_batch is None
    assert imported.fixed_time is None  # a static example length is a default, not a constraint
    assert imported.export_time == (None if dynamic_time else 5)
    for batch, time in ((2, 5), (3, 9 if dynamic_time else 5), (1, 2 if dynamic_time else 5)):
        x = make_input(cfg, batch, time, seed=batch * 100 + time)
        y = imported.run(x.numpy())
        y_torch = _torch(model, x)
        assert y.shape == y_torch.shape
        assert float(np.max(np.abs(y - y_torch))) <= ATOL, (batch, time)
        assert float(np.max(np.abs(y - _ort(path, x.numpy())))) <= ATOL, (batch, time)


@needs_torch
def test_dynamo_exports_in_a_row_keep_time_dynamic(tmp_path: Path) -> None:
    """torch 2.13 freezes the time axis of a dynamo export after another one in the process
    (stale aten.lstm dispatch cache; dynamo's frame cache after a fixed-length export at
    the same example length): from_torch clears both."""
    fixed = Config("hn_l2_tm", "hn", batch_first=False, seed=40)
    from_torch(build_model(fixed), make_input(fixed, 2, 5, seed=0), tmp_path / "fixed.onnx",
               dynamo=True, dynamic_time=False)
    cfg = Config("last_l1_bf", "last", seed=41)
    for k in range(2):
        model = build_model(cfg)
        path = from_torch(model, make_input(cfg, 2, 5, seed=k), tmp_path / f"m{k}.onnx",
                          dynamo=True)
        x = make_input(cfg, 3, 11, seed=10 + k)
        assert float(np.max(np.abs(_ort(path, x.numpy()) - _torch(model, x)))) <= ATOL
        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type
        assert [d.dim_param or d.dim_value for d in dims.shape.dim] == ["batch", "time", 3]


@needs_torch
def test_dynamo_gru_exports_in_a_row_keep_time_dynamic(tmp_path: Path) -> None:
    """The same trap for nn.GRU: aten.gru.input keeps its own dispatch cache, which froze the
    time axis of the second GRU export of a process to its example length ([batch, 5, 3])."""
    for k in range(2):
        cfg = Config("gru_hn_l1_bf", "hn", seed=48 + k, cell="gru")
        model = build_model(cfg)
        path = from_torch(model, make_input(cfg, 2, 5, seed=k), tmp_path / f"m{k}.onnx", dynamo=True)
        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type
        assert [d.dim_param or d.dim_value for d in dims.shape.dim] == ["batch", "time", 3]
        x = make_input(cfg, 3, 11, seed=10 + k)
        assert float(np.max(np.abs(tinylstm.load_onnx(str(path)).run(x.numpy()) - _torch(model, x)))) <= ATOL


@needs_torch
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_gru_nodes_as_pytorch_writes_them(dynamo: bool, tmp_path: Path) -> None:
    """Both exporters write nn.GRU as one ONNX GRU per layer with linear_before_reset=1 (PyTorch's
    candidate gate); the importer keeps it."""
    cfg = Config("gru_last_l1_bf", "last", seed=36, cell="gru")
    path = from_torch(build_model(cfg), make_input(cfg, 2, 5, seed=0), tmp_path / "m.onnx", dynamo=dynamo)
    nodes = [n for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "GRU"]
    assert len(nodes) == 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["linear_before_reset"] == 1 and attrs["hidden_size"] == cfg.hidden_size
    (gru,) = tinylstm.load_onnx(str(path)).gru_layers
    assert gru.linear_before_reset and gru.direction == "forward"


@needs_torch
def test_dynamo_time_major_with_dynamic_time_fails_loudly(tmp_path: Path) -> None:
    cfg = Config("last_l1_tm", "last", batch_first=False, seed=42)
    (tmp_path / "m.onnx").write_bytes(b"previous export")
    with pytest.raises(ExportError) as info:
        from_torch(build_model(cfg), make_input(cfg, 2, 5, seed=0), tmp_path / "m.onnx",
                   dynamo=True)
    msg = str(info.value)
    assert "sequence length" in msg and "pytorch#191855" in msg and "dynamo=False" in msg
    assert (tmp_path / "m.onnx").read_bytes() == b"previous export"  # untouched
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx"}


@needs_torch
def test_check_catches_a_length_frozen_by_tracing(tmp_path: Path) -> None:
    """The legacy tracer turns int(x.shape[1]) into a constant: right at the example length,
    wrong at any other. The onnxruntime check must refuse the file."""

    class FrozenIndex(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4, batch_first=True)

        def forward(self, x):  # type: ignore[no-untyped-def]
            out, _ = self.lstm(x)
            return out[:, int(x.shape[1]) - 1]

    torch.manual_seed(0)
    with pytest.raises(ExportError) as info:
        from_torch(FrozenIndex(), torch.randn(2, 5, 3), tmp_path / "m.onnx")
    assert "differs from torch" in str(info.value)
    assert "sequence length" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@needs_torch
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_proj_size_is_refused(dynamo: bool, tmp_path: Path) -> None:
    class Projected(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 8, proj_size=4, batch_first=True)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.rnn(x)[0]

    with pytest.raises(tinylstm.UnsupportedModelError) as info:
        from_torch(Projected(), torch.randn(2, 5, 3), tmp_path / "m.onnx", dynamo=dynamo)
    assert info.value.field == "proj_size" and info.value.node == "rnn"
    assert "proj_size=4" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_refusals_before_export(tmp_path: Path) -> None:
    class Rnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.RNN(3, 4, batch_first=True)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.rnn(x)[0]

    class Mixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.LSTM(3, 4, batch_first=True)
            self.b = torch.nn.LSTM(4, 4, batch_first=False)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.b(self.a(x)[0].transpose(0, 1))[0]

    x = torch.randn(2, 5, 3)
    with pytest.raises(tinylstm.UnsupportedModelError, match="RNN layers are not supported") as info:
        from_torch(Rnn(), x, tmp_path / "m.onnx")
    assert info.value.node == "rnn" and info.value.field == "layer type"
    with pytest.raises(tinylstm.UnsupportedModelError, match="no nn.LSTM or nn.GRU"):
        from_torch(torch.nn.Linear(3, 2), x, tmp_path / "m.onnx")
    with pytest.raises(tinylstm.UnsupportedModelError, match="batch_first"):
        from_torch(Mixed(), x, tmp_path / "m.onnx")
    lstm = build_model(Config("seq", "seq"))
    with pytest.raises(tinylstm.DataError, match="3-D float"):
        from_torch(lstm, torch.randn(5, 3), tmp_path / "m.onnx")
    with pytest.raises(tinylstm.DataError, match="3-D float"):
        from_torch(lstm, torch.zeros(2, 5, 3, dtype=torch.int64), tmp_path / "m.onnx")
    with pytest.raises(tinylstm.DataError, match="cannot run on example_input of shape"):
        from_torch(lstm, torch.randn(2, 5, 7), tmp_path / "m.onnx")  # 7 features, LSTM takes 3
    with pytest.raises(tinylstm.OutputPathError, match="no such directory"):
        from_torch(lstm, x, tmp_path / "missing" / "m.onnx")
    with pytest.raises(tinylstm.OutputPathError, match="directory"):
        from_torch(lstm, x, tmp_path)
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_missing_onnxscript_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    cfg = Config("seq", "seq")
    with pytest.raises(MissingDependencyError, match="pip install onnxscript"):
        from_torch(build_model(cfg), make_input(cfg, 2, 5, seed=0), tmp_path / "m.onnx",
                   dynamo=True)
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_explicit_batch_first_for_a_model_that_transposes_itself(tmp_path: Path) -> None:
    cfg = Config("mixed", "seq")

    class Mixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.LSTM(3, 4, batch_first=True)
            self.b = torch.nn.LSTM(4, 4, batch_first=False)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.b(self.a(x)[0].transpose(0, 1))[0]

    torch.manual_seed(cfg.seed)
    model = Mixed()
    path = from_torch(model, torch.randn(2, 5, 3), tmp_path / "m.onnx", batch_first=True)
    x = torch.randn(3, 7, 3)
    assert float(np.max(np.abs(_ort(path, x.numpy()) - _torch(model, x)))) <= ATOL


@needs_torch
def test_batch_one_example_training_mode_and_stale_data_file(tmp_path: Path) -> None:
    cfg = Config("last_l1_bf", "last", seed=43)
    model = build_model(cfg).train()
    dest = tmp_path / "m.onnx"
    from_torch(model, make_input(cfg, 1, 5, seed=0), dest, dynamo=True)
    assert model.training  # restored
    assert (tmp_path / "m.onnx.data").is_file()
    g = onnx.load(str(dest), load_external_data=False).graph
    assert not any(p.key.startswith("pkg.torch.") for n in g.node for p in n.metadata_props)
    # a legacy export over it replaces the model and drops the data file it no longer uses
    from_torch(model, make_input(cfg, 1, 5, seed=0), dest)
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx"}
    imported = tinylstm.load_onnx(str(dest))
    assert imported.fixed_batch is None  # a batch-1 example still gives a dynamic batch
    x = make_input(cfg, 4, 6, seed=1)
    assert float(np.max(np.abs(imported.run(x.numpy()) - _torch(model.eval(), x)))) <= ATOL


# --------------------------------------------------------------------------------------
# tinylstm's importer as the last check; parity relative to the outputs' magnitude
# --------------------------------------------------------------------------------------
def _conv_front_end():  # type: ignore[no-untyped-def]
    class ConvFrontEnd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(3, 4, kernel_size=3, padding=1)
            self.lstm = torch.nn.LSTM(4, 5, batch_first=True)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.lstm(self.conv(x.transpose(1, 2)).transpose(1, 2))[0]

    return ConvFrontEnd()


def _mean_head():  # type: ignore[no-untyped-def]
    class MeanHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(self.lstm(x)[0].mean(dim=1))

    return MeanHead()


@needs_torch
@pytest.mark.parametrize(
    ("make", "op", "dynamo"),
    [(_conv_front_end, "Conv", False), (_mean_head, "ReduceMean", False),
     (_mean_head, "ReduceMean", True)],
    ids=["conv1d-legacy", "mean-legacy", "mean-dynamo"],
)
def test_a_model_tinylstm_cannot_import_is_refused_and_nothing_written(
        make, op: str, dynamo: bool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(5)
    dest = tmp_path / "m.onnx"
    old_model, old_data = b"previous export\n", b"\x00previous weights"
    dest.write_bytes(old_model)
    (tmp_path / "m.onnx.data").write_bytes(old_data)
    with pytest.raises(tinylstm.UnsupportedModelError) as info:
        from_torch(make(), torch.randn(2, 5, 3), dest, dynamo=dynamo)
    err, msg = info.value, str(info.value)
    assert err.node and f"node '{err.node}'" in msg  # the importer's culprit, kept
    assert err.field == "op_type" and f"op {op} " in msg
    assert "exported the model, but tinylstm cannot import" in msg
    assert "supported model ops: LSTM" in msg  # and what is supported
    assert "\n" not in msg and "\\x0a" not in msg and ".tmp" not in msg
    # the destination and its data file are exactly as before; no temporary file is left
    assert dest.read_bytes() == old_model
    assert (tmp_path / "m.onnx.data").read_bytes() == old_data
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.data"}


@needs_torch
def test_a_refused_model_leaves_no_file_in_an_empty_folder(tmp_path: Path) -> None:
    torch.manual_seed(6)
    with pytest.raises(tinylstm.UnsupportedModelError, match="Conv"):
        from_torch(_conv_front_end(), torch.randn(2, 5, 3), tmp_path / "m.onnx", dynamo=True)
    assert list(tmp_path.iterdir()) == []


def _big_logits():  # type: ignore[no-untyped-def]
    """An LSTM classifier whose logits are ~1000x a usual model's (weights scaled: tinylstm
    imports no Mul), so float32 rounding differs from torch far above 1e-5 absolute."""
    cfg = Config("last_l1_bf", "last", hidden_size=8, outputs=4, seed=44)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.fc.parameters():
            p.mul_(1000.0)
    return cfg, model


@needs_torch
def test_parity_tolerance_scales_with_large_outputs(tmp_path: Path) -> None:
    cfg, model = _big_logits()
    x0 = make_input(cfg, 2, 5, seed=3)
    path = from_torch(model, x0, tmp_path / "m.onnx")
    y_torch, y_ort = _torch(model, x0), _ort(path, x0.numpy())
    scale = float(np.max(np.abs(y_torch)))
    err = float(np.max(np.abs(y_ort.astype(np.float64) - y_torch)))
    assert scale > 100  # the outputs really are large ...
    assert err > ATOL  # ... and an absolute 1e-5 would have refused this sound export
    assert err <= ATOL * scale


@needs_torch
@pytest.mark.parametrize("big", [False, True], ids=["small", "large"])
def test_parity_check_still_catches_a_real_mismatch(big: bool, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    if big:
        cfg, model = _big_logits()
    else:
        cfg = Config("last_l1_bf", "last", seed=45)
        model = build_model(cfg)
    x0 = make_input(cfg, 2, 5, seed=4)
    with torch.no_grad():
        scale = max(1.0, float(model(x0).abs().max()))
    real_run = ort.InferenceSession.run

    def skewed_run(self, output_names, feed, run_options=None):  # type: ignore[no-untyped-def]
        # 100x the allowed error, relative to the outputs' size
        return [y + np.float32(100 * ATOL * scale) for y in real_run(self, output_names, feed,
                                                                       run_options)]

    monkeypatch.setattr(ort.InferenceSession, "run", skewed_run)
    (tmp_path / "m.onnx").write_bytes(b"previous export")
    with pytest.raises(ExportError) as info:
        from_torch(model, x0, tmp_path / "m.onnx")
    msg = str(info.value)
    assert "at the example shape: onnxruntime differs from torch by" in msg
    assert "atol * max(1, max|torch output|)" in msg
    assert (tmp_path / "m.onnx").read_bytes() == b"previous export"
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx"}


@needs_torch
def test_onnxruntime_errors_are_one_readable_line(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    def failing_run(self, output_names, feed, run_options=None):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :\n  bad input\t"
                           f"for {self._model_path}\r\n\nsecond line")

    monkeypatch.setattr(ort.InferenceSession, "run", failing_run)
    cfg = Config("last_l1_bf", "last", seed=46)
    dest = tmp_path / "m.onnx"
    with pytest.raises(ExportError) as info:
        from_torch(build_model(cfg), make_input(cfg, 2, 5, seed=0), dest)
    msg = str(info.value)
    assert isinstance(info.value, tinylstm.TinyLstmError)
    assert (f"INVALID_ARGUMENT : bad input for {dest} second line" in msg), msg
    assert "\\x" not in msg and not any(c in msg for c in "\n\r\t")
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_exporter_errors_are_one_readable_line(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    def failing_export(model, args, f, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"Unsupported: op foo\n\n  while writing {f}\n" + "trace " * 200)

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    cfg = Config("last_l1_bf", "last", seed=47)
    dest = tmp_path / "m.onnx"
    with pytest.raises(ExportError) as info:
        from_torch(build_model(cfg), make_input(cfg, 2, 5, seed=0), dest)
    msg = str(info.value)
    assert msg.startswith("torch.onnx.export (legacy exporter, opset 17) failed: RuntimeError: "
                          f"Unsupported: op foo while writing {dest} trace trace")
    assert msg.endswith(" ...") and len(msg) < 700  # a 1200-character trace is cut
    assert "\\x" not in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []
