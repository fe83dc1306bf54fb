"""Shipped data (JapaneseVowels), task files, and the example models' recorded scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinylstm.data import tasks
from tinylstm.data.taskfiles import (
    load_japanese_vowels,
    load_task_file,
    save_arrays,
    save_recipe,
    save_reference,
)
from tinylstm.errors import DataError

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


def test_japanese_vowels_split() -> None:
    jv = load_japanese_vowels()
    assert jv.train.x.shape == (270, 29, 12) and jv.test.x.shape == (370, 29, 12)
    for part in (jv.train, jv.test):
        assert part.x.dtype == np.float32 and part.name == "japanese_vowels"
        assert part.lengths.min() == 7 and part.lengths.max() <= 29
        valid = np.arange(29)[None, :] < part.lengths[:, None]
        assert np.all(part.x[~valid] == 0.0)
        last = part.x[np.arange(part.n), part.lengths - 1]
        assert np.all(np.any(last != 0.0, axis=1))  # the last valid frame is real data
        np.testing.assert_array_equal(part.y.argmax(axis=1), part.labels)
    assert jv.test.lengths.max() == 29
    np.testing.assert_array_equal(np.bincount(jv.train.labels), [30] * 9)
    np.testing.assert_array_equal(np.bincount(jv.test.labels), [31, 35, 88, 44, 29, 24, 40, 50, 29])
    # Values of the .ts files: 6 decimals, first frame of the first training utterance.
    assert jv.train.x[0, 0, 0] == np.float32(1.860936)
    assert jv.train.x[0, 0, 1] == np.float32(-0.207383)


def test_arrays_file_round_trip(tmp_path: Path) -> None:
    d = tasks.generate("temporal_order_6a", 20, 5)
    save_arrays(tmp_path / "t.npz", d)
    back = load_task_file(tmp_path / "t.npz")
    assert back.name == "temporal_order_6a"
    for a, b in ((back.x, d.x), (back.y, d.y), (back.lengths, d.lengths), (back.labels, d.labels)):
        np.testing.assert_array_equal(a, b)
    save_arrays(tmp_path / "c.npz", d, with_targets=False)
    calib = load_task_file(tmp_path / "c.npz")
    assert calib.y.shape == (20, 0) and calib.labels is None


def test_recipe_file_regenerates_and_checks(tmp_path: Path) -> None:
    d = tasks.generate("adding", 64, 99, 40)
    save_recipe(tmp_path / "r.npz", d, task="adding", n=64, T=40, seed=99)
    back = load_task_file(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.x, d.x)
    np.testing.assert_array_equal(back.y, d.y)
    # A recipe whose hash does not match what the generator produces is refused.
    with np.load(tmp_path / "r.npz") as z:
        fields = dict(z)
    fields["seed"] = np.array(100)
    np.savez(tmp_path / "bad.npz", **fields)
    with pytest.raises(DataError, match="different data"):
        load_task_file(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="are not generate"):
        save_recipe(tmp_path / "x.npz", d, task="adding", n=64, T=40, seed=98)


def test_reference_file_points_at_bundled_data(tmp_path: Path) -> None:
    jv = load_japanese_vowels()
    save_reference(tmp_path / "jv.npz", jv.test, dataset="japanese_vowels", split="test")
    assert (tmp_path / "jv.npz").stat().st_size < 2000
    back = load_task_file(tmp_path / "jv.npz")
    np.testing.assert_array_equal(back.x, jv.test.x)
    np.testing.assert_array_equal(back.labels, jv.test.labels)
    with pytest.raises(DataError, match="not the train split"):
        save_reference(tmp_path / "x.npz", jv.test, dataset="japanese_vowels", split="train")
    with np.load(tmp_path / "jv.npz") as z:
        fields = dict(z)
    fields["split"] = np.array("train")
    np.savez(tmp_path / "bad.npz", **fields)
    with pytest.raises(DataError, match="different data"):
        load_task_file(tmp_path / "bad.npz")
    fields["dataset"] = np.array("mnist")
    np.savez(tmp_path / "bad2.npz", **fields)
    with pytest.raises(DataError, match="no bundled data set 'mnist'"):
        load_task_file(tmp_path / "bad2.npz")


def test_bad_task_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a readable"):
        load_task_file(tmp_path / "missing.npz")
    np.savez(tmp_path / "nox.npz", lengths=np.array([1]))
    with pytest.raises(DataError, match="needs 'x'"):
        load_task_file(tmp_path / "nox.npz")
    np.savez(tmp_path / "long.npz", x=np.zeros((2, 5, 3), np.float32), lengths=np.array([5, 6]))
    with pytest.raises(DataError, match="lengths"):
        load_task_file(tmp_path / "long.npz")


EXAMPLES = sorted(p.stem for p in MODELS.glob("*.onnx"))


@pytest.mark.skipif(not EXAMPLES, reason="no trained example models in examples/models")
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_model_scores_as_recorded(name: str) -> None:
    """Each shipped ONNX model, run per length group by onnxruntime on its test file, gets
    exactly the float score its JSON records; the calibration file matches its input."""
    ort = pytest.importorskip("onnxruntime")
    info = json.loads((MODELS / f"{name}.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(MODELS / info["onnx"]), opts,
                                providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    test = load_task_file(MODELS / info["test_file"])
    pred = tasks.predict_by_length(lambda x: sess.run(None, {inp.name: x})[0], test)
    score = tasks.score(pred, test)
    recorded = info["float_test_score"]
    assert (score.n, score.wrong) == (recorded["n"], recorded["wrong"])
    calib = load_task_file(MODELS / info["calib_file"])
    assert calib.n == info["calib_sequences"] and calib.x.shape[2] == inp.shape[2]
