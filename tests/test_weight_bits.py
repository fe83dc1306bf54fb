"""``--lstm-weight-bits auto`` and per-layer widths (tinylstm/finetune/weight_bits.py, the
quantizer's ``lstm_weight_bits={layer: bits}``): no PyTorch needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinylstm.cli import main
from tinylstm.data import load_dataset
from tinylstm.data.dataset import Dataset
from tinylstm.errors import QuantizationError
from tinylstm.finetune.report import weight_bits
from tinylstm.finetune.weight_bits import choose_weight_bits, parse_bits
from tinylstm.onnx_import import load_onnx
from tinylstm.qmodel import QuantizedModel
from tinylstm.quantize import quantize

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def _first(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.sequences[:n], None if ds.labels is None else ds.labels[:n],
                   None if ds.targets is None else ds.targets[:n], ds.source)


def test_per_layer_widths_reach_the_integer_model() -> None:
    fm = load_onnx(MODELS / "japanese_vowels.onnx")
    calib = _first(load_dataset(MODELS / "japanese_vowels_calib.npz", fm), 32)
    qm = quantize(fm, calib, lstm_weight_bits={"/lstm/LSTM": 8})
    assert [(m, b) for _, _, m, b in weight_bits(qm)] == [("W", 8), ("R", 8)]
    assert dict(qm.options)["lstm_weight_bits"] == "/lstm/LSTM=8"
    assert [b for *_, b in weight_bits(quantize(fm, calib, lstm_weight_bits={"/lstm/LSTM": 16}))] == [16, 16]
    with pytest.raises(QuantizationError, match="'/lstm' = 8; expected a recurrent layer of the model"):
        quantize(fm, calib, lstm_weight_bits={"/lstm": 8})
    # one matrix at a time: W int8 beside R int16, and the other way round
    qm = quantize(fm, calib, lstm_weight_bits={"/lstm/LSTM/W": 8})
    assert [(m, b) for _, _, m, b in weight_bits(qm)] == [("W", 8), ("R", 16)]
    qm = quantize(fm, calib, lstm_weight_bits={"/lstm/LSTM/R": 8, "/lstm/LSTM/W": 16})
    assert [(m, b) for _, _, m, b in weight_bits(qm)] == [("W", 16), ("R", 8)]
    assert dict(qm.options)["lstm_weight_bits"] == "/lstm/LSTM/R=8,/lstm/LSTM/W=16"


def test_parse_bits() -> None:
    assert parse_bits("8") == 8 and parse_bits("auto") == "auto"
    assert parse_bits("/a/LSTM=8,/b=16") == {"/a/LSTM": 8, "/b": 16}
    assert parse_bits("/a/LSTM/W=8,/a/LSTM/R=16") == {"/a/LSTM/W": 8, "/a/LSTM/R": 16}
    for bad in ("12", "x=9", "=8", "a=8,"):
        with pytest.raises(ValueError, match=r"expected 8, 16, auto or NODE\[/W\|/R\]=BITS"):
            parse_bits(bad)


def test_auto_keeps_16_bits_where_int8_fails_and_takes_8_where_it_does_not() -> None:
    """adding T = 400: int8 weights (PTQ) get the float model's outputs wrong -> the recurrent
    matrix keeps 16 bits, the input matrix takes 8; JapaneseVowels: int8 weights agree with float
    -> 8 bits for both."""
    fm = load_onnx(MODELS / "adding_T400.onnx")
    calib = _first(load_dataset(MODELS / "adding_T400_calib.npz", fm), 24)
    qm, choice = choose_weight_bits(fm, calib)
    assert choice.bits == {"/lstm/LSTM/R": 16, "/lstm/LSTM/W": 8} and choice.met
    assert choice.against == "the float model"
    # all-8, all-16, then R (the larger matrix) lowered alone (fails), then W lowered alone (holds)
    assert [(k, s.wrong > choice.allowed) for k, s in choice.tried] == [
        ("/lstm/LSTM/R=8,/lstm/LSTM/W=8", True), ("/lstm/LSTM/R=16,/lstm/LSTM/W=16", False),
        ("/lstm/LSTM/R=8,/lstm/LSTM/W=16", True), ("/lstm/LSTM/R=16,/lstm/LSTM/W=8", False)]
    assert [(m, b) for *_, m, b in weight_bits(qm)] == [("W", 8), ("R", 16)]
    fm = load_onnx(MODELS / "japanese_vowels.onnx")
    test = load_dataset(MODELS / "japanese_vowels_test.npz", fm)
    qm, choice = choose_weight_bits(fm, load_dataset(MODELS / "japanese_vowels_calib.npz", fm), _first(test, 60))
    assert choice.bits == {"/lstm/LSTM/R": 8, "/lstm/LSTM/W": 8} and choice.against == "targets"
    assert choice.score.wrong <= choice.float_score.wrong and len(choice.tried) == 1
    assert "--lstm-weight-bits auto chose /lstm/LSTM/R=8,/lstm/LSTM/W=8" in choice.describe()


def test_cli_quantize_auto_says_what_it_chose(tmp_path, capsys) -> None:
    out = tmp_path / "jv.tlq"
    assert main(["quantize", str(MODELS / "japanese_vowels.onnx"), "--calib",
                 str(MODELS / "japanese_vowels_calib.npz"), "--lstm-weight-bits", "auto", "-o", str(out)]) == 0
    assert "note: --lstm-weight-bits auto chose /lstm/LSTM/R=8,/lstm/LSTM/W=8" in capsys.readouterr().err
    assert np.all([a.dtype == np.int8 for d in QuantizedModel.load(out).lstm_layers[0].directions
                   for a in (d.w, d.r)])
    code = main(["quantize", str(MODELS / "japanese_vowels.onnx"), "--calib",
                 str(MODELS / "japanese_vowels_calib.npz"), "--lstm-weight-bits", "/lstm=8", "-o", str(out)])
    assert code == 2 and "expected a recurrent layer of the model (/lstm/LSTM)" in capsys.readouterr().err
