"""Integer-aware fine-tuning end to end (issue #16): a few steps on the shipped adding T = 400 model,
whose int8-weight integer model gets nearly every sequence wrong, measurably fix it; the written
ONNX file quantizes to exactly the fine-tuned integer model; bad data and a missing PyTorch give
one clear line and write nothing."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinylstm.cli import main  # noqa: E402
from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import save_arrays  # noqa: E402
from tinylstm.errors import DataError  # noqa: E402
from tinylstm.finetune import finetune  # noqa: E402
from tinylstm.onnx_import import load_onnx  # noqa: E402
from tinylstm.qmodel import QuantizedModel  # noqa: E402
from tinylstm.quantize import quantize  # noqa: E402

torch.set_num_threads(1)
MODEL = Path(__file__).resolve().parent.parent / "examples" / "models" / "adding_T400.onnx"
#: a short run: int8 weights, 12 steps of 16 sequences, validated every 4 steps
RUN = dict(lstm_weight_bits=8, steps=12, lr=5e-5, batch=16, eval_every=4, progress=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(16)
    out = {"train": d / "train.npz", "val": d / "val.npz", "calib": d / "calib.npz"}
    save_arrays(out["train"], tasks.adding_problem(192, 400, rng, length=400))  # one length: no padding
    save_arrays(out["val"], tasks.adding_problem(48, 400, rng))  # lengths 400..440: padded batches
    save_arrays(out["calib"], tasks.adding_problem(32, 400, rng), with_targets=False)
    return out


@pytest.fixture(scope="module")
def result(files):
    return finetune(MODEL, files["train"], val=files["val"], calib=files["calib"], **RUN)


def test_finetuning_repairs_int8_lstm_weights(result) -> None:
    rep = result.report
    n = rep.int_before.n
    assert rep.int_before.wrong >= 0.75 * n, f"int8 PTQ was expected to fail: {rep.int_before}"
    assert rep.int_after.wrong <= rep.int_before.wrong // 4, rep.to_markdown()
    assert rep.best_step > 0
    assert [b for *_, b in rep.weight_bits] == [8, 8]
    # the float model written holds the integer model's weights: it scores like it
    assert rep.float_after.wrong <= rep.int_after.wrong + n // 10, rep.to_markdown()
    # the torch forward is the simulator, bit for bit
    assert rep.agreement.values == n and rep.agreement.equal == n, str(rep.agreement)
    assert "| before |" in rep.to_markdown() and '"best_step"' in rep.to_json()


def _same(a, b, where: str = "model") -> None:
    """Equal integer models: every array (values and dtype) and every scalar."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{k}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_quantizing_the_written_file_gives_the_finetuned_integer_model(result, files, tmp_path) -> None:
    onnx_path, tlq = tmp_path / "ft.onnx", tmp_path / "ft.tlq"
    result.save(onnx_path, tlq)
    again = quantize(load_onnx(onnx_path), files["calib"], lstm_weight_bits=8)
    _same(again, result.qmodel)
    _same(QuantizedModel.load(tlq), result.qmodel)


def test_missing_or_misshapen_targets_are_refused(files, tmp_path) -> None:
    with pytest.raises(DataError, match="no targets: fine-tuning needs 'y'"):
        finetune(MODEL, files["calib"], **RUN)
    bad = tmp_path / "bad_y.npz"
    d = tasks.adding_problem(4, 400, np.random.default_rng(0))
    np.savez(bad, x=d.x, lengths=d.lengths, y=np.zeros((4, 3), np.float32))
    with pytest.raises(DataError, match="'y' has 3 values per sequence"):
        finetune(MODEL, bad, **RUN)
    wrong_features = tmp_path / "bad_x.npz"
    np.savez(wrong_features, x=np.zeros((4, 50, 3), np.float32), y=np.zeros((4, 1), np.float32))
    with pytest.raises(DataError, match="3 features"):
        finetune(MODEL, wrong_features, **RUN)


@pytest.mark.parametrize("culprit", ["calib_as_train", "no_file"])
def test_cli_bad_data_one_line_exit_2_nothing_written(files, tmp_path, capsys, culprit) -> None:
    out = tmp_path / "out"
    out.mkdir()
    train = files["calib"] if culprit == "calib_as_train" else tmp_path / "missing.npz"
    code = main(["finetune", str(MODEL), "--train", str(train), "-o", str(out / "ft.onnx"), "--tlq",
                 str(out / "ft.tlq"), "--steps", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert list(out.iterdir()) == []


def test_cli_without_torch_says_how_to_install(monkeypatch, files, tmp_path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    code = main(["finetune", str(MODEL), "--train", str(files["train"]), "-o", str(tmp_path / "ft.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'tinylstm[train]'" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_cli_finetune_then_quantize(files, tmp_path, capsys) -> None:
    ft, tlq, rep = tmp_path / "ft.onnx", tmp_path / "ft.tlq", tmp_path / "report.md"
    assert main(["finetune", str(MODEL), "--train", str(files["train"]), "--val", str(files["val"]), "--calib",
                 str(files["calib"]), "-o", str(ft), "--tlq", str(tlq), "--report", str(rep), "--steps", "4",
                 "--eval-every", "2", "--batch", "8", "--lr", "5e-5"]) == 0
    out = capsys.readouterr()
    assert "| validation | float | integer (simulator) |" in out.out and rep.read_text() in out.out
    assert "finetune [" in out.err  # the progress bar
    tlq2 = tmp_path / "again.tlq"
    assert main(["quantize", str(ft), "--calib", str(files["calib"]), "--lstm-weight-bits", "8", "-o", str(tlq2)]) == 0
    _same(QuantizedModel.load(tlq2), QuantizedModel.load(tlq))


@pytest.mark.parametrize("head", ["per_step", "softmax", "state_logsoftmax"])
def test_other_heads_train_and_reproduce(head, tmp_path) -> None:
    """Many-to-many targets (loss within each length), a Softmax classifier (loss on its logits)
    and Y_h -> MatMul + Add -> LogSoftmax: fine-tuning runs and the written file reproduces."""
    from onnx_builders import HeadSpec, LstmSpec, stacked_model

    spec = {"per_step": ([LstmSpec(3, 5)], HeadSpec("per_step", 2)),
            "softmax": ([LstmSpec(3, 4, "bidirectional")], HeadSpec("last_gemm", 3, activations=("Softmax",))),
            "state_logsoftmax": ([LstmSpec(3, 6, "reverse")], HeadSpec("state_matmul", 3,
                                                                        activations=("LogSoftmax",)))}[head]
    proto = stacked_model(spec[0], head=spec[1], seed=5)
    rng = np.random.default_rng(5)
    n, steps = 40, 12
    x = rng.standard_normal((n, steps, 3)).astype(np.float32)
    lens = rng.integers(6, steps + 1, size=n)
    data = {"x": x, "lengths": lens}
    if head == "per_step":
        data["y"] = np.tanh(np.cumsum(x[:, :, :2], axis=1) / 3).astype(np.float32)
    else:
        data["labels"] = (x[np.arange(n), lens - 1, 0] > 0).astype(np.int64) + (x[:, 0, 1] > 0.5)
    np.savez(tmp_path / "train.npz", **data)
    res = finetune(proto, tmp_path / "train.npz", steps=3, batch=8, eval_every=3, lr=1e-3, progress=False)
    rep = res.report
    assert rep.int_after.classification == (head != "per_step") and rep.int_after.n == 4  # 10 % held out
    assert rep.int_after.key <= rep.int_before.key and rep.agreement.equal == rep.agreement.values
    again = quantize(load_onnx(res.onnx), tmp_path / "train.npz", lstm_weight_bits=8)
    _same(again, dataclasses.replace(res.qmodel, source=again.source))


def test_facade_is_callable() -> None:
    import tinylstm

    assert callable(tinylstm.finetune) and tinylstm.finetune.finetune is finetune
