"""Stand-in models for the peer benchmark, written to bench/peers/out/standins/.

    .venv-peers/bin/python bench/peers/standins.py [random_h64] [japanese_vowels]

Same file layout as examples/models (``<name>.onnx``, ``<name>_calib.npz``,
``<name>_test.npz``), so run.py treats them alike; a model in examples/models of the same
name takes precedence.

- ``random_h64``: LSTM(8 -> 64) + Dense(4), seeded uniform weights in +-1/sqrt(64) (PyTorch's
  default initialization) and forget bias +1,
  no task: inputs standard normal, lengths 20-60, 200 test and 100 calibration sequences.
  Scored by its distance to the float output only.
- ``japanese_vowels``: tf_keras LSTM(12 -> 32) + Dense(9) trained here on the bundled
  JapaneseVowels train split (per-length batches, no padding), test split as the test set,
  train inputs as calibration data. Converted with ``tinylstm.export.keras_export.from_keras``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from tinylstm.export.keras_export import from_keras  # noqa: E402

from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_japanese_vowels, save_arrays  # noqa: E402
from tinylstm.data.tasks import TaskData  # noqa: E402

NAMES = ("random_h64", "japanese_vowels")


def _random_inputs(n: int, features: int, seed: int) -> TaskData:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 61, size=n).astype(np.int64)
    x = rng.standard_normal((n, int(lengths.max()), features)).astype(np.float32)
    x *= (np.arange(x.shape[1])[None, :] < lengths[:, None])[:, :, None]
    return TaskData("random", x, lengths, np.zeros((n, 0), np.float32))


def random_h64(out: Path) -> None:
    import tf_keras as keras

    features, hidden, outputs = 8, 64, 4
    inp = keras.Input((None, features))
    model = keras.Model(inp, keras.layers.Dense(outputs)(keras.layers.LSTM(hidden)(inp)))
    rng = np.random.default_rng(64)
    bound = 1.0 / np.sqrt(hidden)
    weights = [rng.uniform(-bound, bound, w.shape).astype(np.float32) for w in model.get_weights()]
    weights[2][hidden : 2 * hidden] += 1.0  # forget-gate bias (Keras gate order i, f, c, o)
    model.set_weights(weights)
    test, calib = _random_inputs(200, features, 1), _random_inputs(100, features, 2)
    from_keras(model, out / "random_h64.onnx", example_input=test.x[:2, :30])
    save_arrays(out / "random_h64_test.npz", test)
    save_arrays(out / "random_h64_calib.npz", calib, with_targets=False)


def japanese_vowels(out: Path, epochs: int = 60) -> None:
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    data = load_japanese_vowels()
    inp = keras.Input((None, 12))
    model = keras.Model(inp, keras.layers.Dense(9)(keras.layers.LSTM(32)(inp)))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    groups = list(tasks.length_groups(data.train.lengths))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for k in rng.permutation(len(groups)):
            length, idx = groups[k]
            model.train_on_batch(data.train.x[idx, :length], data.train.labels[idx])
    pred = tasks.predict_by_length(lambda x: np.asarray(model(x, training=False)), data.test)
    s = tasks.score(pred, data.test)
    print(f"japanese_vowels stand-in: trained {time.perf_counter() - t0:.0f} s, Keras test {s}")
    from_keras(model, out / "japanese_vowels.onnx", example_input=data.test.x[:2, :20])
    save_arrays(out / "japanese_vowels_test.npz", data.test)
    save_arrays(out / "japanese_vowels_calib.npz", data.train, with_targets=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the peer benchmark's stand-in models.")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} (default: all)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        ap.error(f"unknown stand-in {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    common.STANDINS.mkdir(parents=True, exist_ok=True)
    for name in args.names or NAMES:
        {"random_h64": random_h64, "japanese_vowels": japanese_vowels}[name](common.STANDINS)
        print(f"wrote {common.STANDINS / name}.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
