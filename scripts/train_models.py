"""Train the example models in examples/models/ (torch, CPU, one thread, seeded).

    .venv/bin/python scripts/train_models.py [--only NAME ...] [--out examples/models]

NAME: japanese_vowels_cv (hyper-parameter search on the training split), japanese_vowels,
temporal_order_6a, adding_T100 (curriculum T = 20 -> 50 -> 100 from
scratch), adding_T400 (fine-tuned from the adding_T100.onnx in --out, T = 200 -> 400),
adding_gru_T100 and japanese_vowels_gru (the same tasks, recipes and test sets with an
``nn.GRU`` of the same hidden size: issue #18).

Each model is ``nn.LSTM(batch_first=True)`` (``nn.GRU`` for the ``*_gru*`` models) + ``nn.Linear``
on the last input step, exported
with the legacy exporter (opset 17, dynamic batch and time). Input ``x`` (batch, time,
features) float32, output ``y`` (batch, outputs). Run a model on rows of one length only
(see tinylstm/tasks.py, "Variable lengths and padding").

Written per model: ``<name>.onnx``; ``<name>_calib.npz`` (inputs only, arrays form);
``<name>_test.npz`` (a recipe regenerated, or a reference to bundled data, hash-checked by
``tinylstm.data.taskfiles.load_task_file``); ``<name>.json`` (training details, float scores of the
exported ONNX model run by onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import (  # noqa: E402
    LastStepGru,
    LastStepLstm,
    Trainer,
    evaluate,
    export_onnx,
    load_onnx_weights,
    ort_runner,
    parameter_count,
    torch_runner,
    write_json,
    write_log,
)

from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import (  # noqa: E402
    load_japanese_vowels,
    load_task_file,
    save_arrays,
    save_recipe,
    save_reference,
)
from tinylstm.data.tasks import TaskData, TaskScore  # noqa: E402

TEST_N = 2560  # the paper's test set size
# Seeds: test sets, validation sets (model selection), calibration inputs, training streams.
SEEDS = {
    "adding_T100": {"test": 1100, "val": 2100, "calib": 3100},
    "adding_T400": {"test": 1400, "val": 2400, "calib": 3400},
    "temporal_order_6a": {"test": 1600, "val": 2600, "calib": 3600},
    "adding_gru_T100": {"test": 1100, "val": 2100, "calib": 3100},  # adding_T100's sets
}


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((out - target) ** 2).mean()


def cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, target)


def one_length_batches(
    make: Callable[[int, np.random.Generator, int], TaskData], low: int, high: int,
    batch: int, rng: np.random.Generator,
) -> Callable[[], TaskData]:
    """Fresh training batches, all rows of one length drawn uniformly from [low, high]."""

    def next_batch() -> TaskData:
        return make(batch, rng, int(rng.integers(low, high + 1)))

    return next_batch


def finish(
    name: str, model: LastStepLstm | LastStepGru, n_in: int, out_dir: Path, test: TaskData,
    calib: TaskData, info: dict, test_form: dict,
) -> TaskScore:
    """Export, write calib/test/json, score the exported model with onnxruntime.
    ``test_form``: the arguments of ``save_recipe`` or of ``save_reference`` (``dataset``)."""
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(model, onnx_path, n_in)
    save_arrays(out_dir / f"{name}_calib.npz", calib, with_targets=False)
    test_path = out_dir / f"{name}_test.npz"
    if "dataset" in test_form:
        save_reference(test_path, test, **test_form)
    else:
        save_recipe(test_path, test, **test_form)
    reloaded = load_task_file(test_path)
    ort_score = evaluate(ort_runner(onnx_path), reloaded)
    torch_score = evaluate(torch_runner(model), test)
    info |= {
        "onnx": onnx_path.name,
        "input": f"x (batch, time, {n_in}) float32; run rows of one length together (no padding)",
        "output": f"y (batch, {info['outputs']}) float32, from the last input step",
        "parameters": parameter_count(model),
        "test_file": test_path.name,
        "calib_file": f"{name}_calib.npz",
        "calib_sequences": calib.n,
        "float_test_score": {"n": ort_score.n, "wrong": ort_score.wrong,
                             "accuracy": round(ort_score.accuracy, 6),
                             "mean_abs_error": round(ort_score.mean_abs_error, 6),
                             "runtime": "onnxruntime"},
        "torch_test_wrong": torch_score.wrong,
        "torch_version": torch.__version__,
    }
    write_json(out_dir / f"{name}.json", info)
    print(f"== {name}: onnxruntime test {ort_score}; torch {torch_score}", flush=True)
    return ort_score


def adding_curriculum(
    name: str, model: LastStepLstm | LastStepGru, trainer: Trainer, stages: list[tuple[int, int, int]],
    out_dir: Path, minutes: float, *, warmup: int = 0, origin: str,
) -> None:
    """Train through ``stages`` of (T, done when validation wrong <= this, max steps), then
    export ``name`` for the last stage's T. The last stage also waits for a mean |err| below
    0.003 (a margin for quantization: the criterion is 0.04)."""
    rng = np.random.default_rng(0)
    batch = 64
    stage_info = []
    deadline = time.time() + minutes * 60
    for k, (T, ok_wrong, max_steps) in enumerate(stages):
        mae_ok = 0.003 if k == len(stages) - 1 and T > 100 else 1.0
        val_seed = SEEDS.get(f"adding_T{T}", {}).get("val", 2000 + T)
        val = tasks.generate("adding", TEST_N, val_seed, T)
        t0 = time.time()
        s = trainer.stage(
            f"T{T}",
            one_length_batches(lambda n, r, L, T=T: tasks.adding_problem(n, T, r, length=L),
                               T, T + T // 10, batch, rng),
            val, max_steps=max_steps, eval_every=250, warmup=warmup,
            max_seconds=deadline - time.time(),
            done=lambda s, k=ok_wrong, m=mae_ok: s.wrong <= k and s.mean_abs_error < m,
        )
        stage_info.append({"T": T, "max_steps": max_steps, "steps_total": trainer.steps,
                           "val_wrong": s.wrong, "val_mae": round(s.mean_abs_error, 6),
                           "seconds": round(time.time() - t0, 1)})
        print(f"-- stage T={T}: validation {s}", flush=True)
    T = stages[-1][0]
    seeds = SEEDS[name]
    info = {
        "name": name, "task": "adding", "T": T,
        "lengths": [T, T + T // 10], "hidden": model.hidden_size, "outputs": 1,
        "criterion": "|output - target| < 0.04 (Hochreiter & Schmidhuber 1997, exp. 4)",
        "training": {
            "start": origin,
            "optimizer": "Adam, grad-norm clip 1.0, lr halved after 4 evaluations (1000 "
                         "steps) without a better validation score",
            "loss": "MSE on the last step", "batch": batch,
            "batches": "fresh from the generator (seed 0), one length per batch",
            "curriculum": stage_info, "steps": trainer.steps,
            "seconds": round(time.time() - trainer.t0, 1),
            "validation": f"{TEST_N} sequences, seed {seeds['val']} (model selection: best "
                          "(wrong, mean |err|) over evaluations every 250 steps)",
        },
        "test": {"task": "adding", "n": TEST_N, "T": T, "seed": seeds["test"]},
    }
    test = tasks.generate("adding", TEST_N, seeds["test"], T)
    calib = tasks.generate("adding", 256 if T <= 100 else 128, seeds["calib"], T)
    finish(name, model, 2, out_dir, test, calib, info,
           {"task": "adding", "n": TEST_N, "T": T, "seed": seeds["test"]})
    write_log(out_dir / f"{name}_training_log.json", trainer.log)


def train_adding_t100(out_dir: Path, minutes: float) -> None:
    """From scratch: T = 20 -> 50 -> 100."""
    torch.manual_seed(0)
    model = LastStepLstm(2, 32, 1, forget_bias=1.0)
    trainer = Trainer(model, mse, lr=2e-3)
    adding_curriculum("adding_T100", model, trainer,
                      [(20, 26, 200_000), (50, 26, 200_000), (100, 0, 95_750)],
                      out_dir, minutes, origin="random init (torch seed 0), forget bias 1")


def train_adding_gru_t100(out_dir: Path, minutes: float) -> None:
    """adding_T100's curriculum and budgets with a GRU(32) from scratch, update-gate bias 1
    (z near 1 keeps the state, as the LSTM's forget bias does)."""
    torch.manual_seed(0)
    model = LastStepGru(2, 32, 1, update_bias=1.0)
    trainer = Trainer(model, mse, lr=2e-3)
    adding_curriculum("adding_gru_T100", model, trainer,
                      [(20, 26, 200_000), (50, 26, 200_000), (100, 0, 95_750)],
                      out_dir, minutes, origin="random init (torch seed 0), update-gate bias 1")


def train_adding_t400(out_dir: Path, minutes: float) -> None:
    """Fine-tuned from the shipped adding_T100.onnx: T = 200 -> 400, fresh Adam with a
    warm-up (a jump back to a large learning rate destroyed the T=100 solution)."""
    model = LastStepLstm(2, 32, 1)
    load_onnx_weights(model, out_dir / "adding_T100.onnx")
    trainer = Trainer(model, mse, lr=3e-4, min_lr=2e-5)
    adding_curriculum("adding_T400", model, trainer, [(200, 3, 20_000), (400, 0, 40_000)],
                      out_dir, minutes, warmup=500, origin="the weights of adding_T100.onnx")


def train_temporal_order(out_dir: Path, minutes: float) -> None:
    name = "temporal_order_6a"
    seeds = SEEDS[name]
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    hidden, batch = 32, 64
    # The relevant symbols lie 40-100 steps before the end: with a forget bias of 1
    # (f = 0.73) their gradient vanishes and the loss sits at ln 4; f = sigmoid(4) = 0.98 works.
    model = LastStepLstm(8, hidden, 4, forget_bias=4.0)
    trainer = Trainer(model, cross_entropy, lr=2e-3, patience=8)
    val = tasks.generate(name, TEST_N, seeds["val"])
    t0 = time.time()
    s = trainer.stage(
        "6a",
        one_length_batches(lambda n, r, L: tasks.temporal_order(n, r, "6a", length=L),
                           100, 110, batch, rng),
        val, max_steps=10_000, eval_every=250, max_seconds=minutes * 60,
        done=lambda s: False,
    )
    print(f"-- temporal order 6a: validation {s}", flush=True)
    info = {
        "name": name, "task": name, "lengths": [100, 110], "hidden": hidden, "outputs": 4,
        "classes": ["XX", "XY", "YX", "YY"],
        "criterion": "argmax of the 4 outputs (logits) is the class (exp. 6a)",
        "training": {
            "optimizer": "Adam 2e-3, grad-norm clip 1.0, lr halved after 8 evaluations (2000 "
                         "steps) without a better validation score; forget-gate bias 4 at init",
            "loss": "cross-entropy on the last step", "batch": batch,
            "batches": "fresh from the generator, one length per batch",
            "steps": trainer.steps, "seconds": round(time.time() - t0, 1),
            "validation": f"{TEST_N} sequences, seed {seeds['val']}: {s.wrong} wrong; model "
                          "selection: best (wrong, cross-entropy) over evaluations every 250 steps",
        },
        "test": {"task": name, "n": TEST_N, "seed": seeds["test"]},
    }
    test = tasks.generate(name, TEST_N, seeds["test"])
    calib = tasks.generate(name, 256, seeds["calib"])
    finish(name, model, 8, out_dir, test, calib, info,
           {"task": name, "n": TEST_N, "T": None, "seed": seeds["test"]})
    write_log(out_dir / f"{name}_training_log.json", trainer.log)


JV_EPOCHS, JV_HIDDEN, JV_NOISE = 150, 32, 0.2


def fit_japanese_vowels(
    train: TaskData, *, hidden: int, noise: float, seed: int, epochs: int = JV_EPOCHS,
    report: TaskData | None = None, gru: bool = False,
) -> tuple[LastStepLstm | LastStepGru, Trainer]:
    """Adam 3e-3 halved every 30 epochs; batches of <= 16 utterances of one length; Gaussian
    input noise (std ``noise``) on every training batch. No model selection: the weights
    after the last epoch are kept (``report`` is only printed)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LastStepGru(12, hidden, 9, update_bias=1.0) if gru else LastStepLstm(12, hidden, 9, forget_bias=1.0)
    trainer = Trainer(model, cross_entropy, lr=3e-3)
    groups = [idx for _, idx in tasks.length_groups(train.lengths)]

    def epoch_batches() -> list[TaskData]:
        out = []
        for idx in groups:
            idx = rng.permutation(idx)
            out += [train.subset(idx[k : k + 16]) for k in range(0, idx.size, 16)]
        rng.shuffle(out)
        return out

    queue: list[TaskData] = []

    def next_batch() -> TaskData:
        if not queue:
            queue.extend(epoch_batches())
        b = queue.pop()
        x = b.x + noise * rng.standard_normal(b.x.shape)
        return TaskData(b.name, x.astype(np.float32), b.lengths, b.y, b.labels)

    per_epoch = len(epoch_batches())
    trainer.stage("jv", next_batch, train if report is None else report,
                  max_steps=epochs * per_epoch, eval_every=10 * per_epoch,
                  done=lambda s: False, select_best=False,
                  schedule=lambda k: 3e-3 * 0.5 ** (k // (30 * per_epoch)))
    return model, trainer


def japanese_vowels_cv(out_dir: Path, minutes: float) -> None:
    """5-fold cross-validation on the training split only, to choose hidden size and input
    noise (the test split is not touched). Writes japanese_vowels_cv.json."""
    jv = load_japanese_vowels()
    folds = np.array_split(np.random.default_rng(123).permutation(jv.train.n), 5)
    results = []
    for hidden, noise in ((32, 0.0), (32, 0.1), (32, 0.2), (32, 0.3), (24, 0.2), (64, 0.2)):
        wrong = 0
        for fold in folds:
            rest = np.setdiff1d(np.arange(jv.train.n), fold)
            model, _ = fit_japanese_vowels(jv.train.subset(rest), hidden=hidden, noise=noise,
                                           seed=0)
            wrong += evaluate(torch_runner(model), jv.train.subset(np.sort(fold))).wrong
        results.append({"hidden": hidden, "noise": noise, "cv_wrong": wrong, "n": jv.train.n})
        print(f"-- CV hidden {hidden} noise {noise}: {wrong}/{jv.train.n} wrong", flush=True)
    write_json(out_dir / "japanese_vowels_cv.json", {"folds": 5, "fold_seed": 123,
                                                     "results": results})


def train_japanese_vowels(out_dir: Path, minutes: float, gru: bool = False) -> None:
    """All 270 training utterances, the hyper-parameters chosen by ``japanese_vowels_cv``;
    the official 370-utterance test split is scored once, at the end. ``gru``: the same with
    an ``nn.GRU`` (hyper-parameters taken over from the LSTM's search, not searched again)."""
    name = "japanese_vowels_gru" if gru else "japanese_vowels"
    jv = load_japanese_vowels()
    t0 = time.time()
    model, trainer = fit_japanese_vowels(jv.train, hidden=JV_HIDDEN, noise=JV_NOISE, seed=2, gru=gru)
    train_score = evaluate(torch_runner(model), jv.train)
    info = {
        "name": name, "task": "JapaneseVowels (UCI; UEA archive), 9 speakers",
        "lengths": [7, 29], "hidden": JV_HIDDEN, "outputs": 9, "layer": "GRU" if gru else "LSTM",
        "criterion": "argmax of the 9 outputs (logits) is the speaker (label = speaker - 1)",
        "training": {
            "optimizer": "Adam, grad-norm clip 1.0, lr 3e-3 halved every 30 epochs",
            "loss": "cross-entropy on the last step", "batch": "<= 16, one length per batch",
            "augmentation": f"Gaussian input noise, std {JV_NOISE}",
            "hyperparameters": "hidden size and noise by 5-fold CV on the training split "
                               "(japanese_vowels_cv.json" + (", run with the LSTM)" if gru else ")"),
            "data": "the 270 training utterances; no model selection (last epoch kept)",
            "steps": trainer.steps, "epochs": JV_EPOCHS,
            "seconds": round(time.time() - t0, 1),
            "train_wrong": train_score.wrong,
        },
        "test": "the official test split, 370 utterances (tinylstm.data.taskfiles.load_japanese_vowels)",
    }
    finish(name, model, 12, out_dir, jv.test, jv.train, info,
           {"dataset": "japanese_vowels", "split": "test"})
    write_log(out_dir / f"{name}_training_log.json", trainer.log)


TRAINERS = {
    "japanese_vowels_cv": japanese_vowels_cv,
    "japanese_vowels": train_japanese_vowels,
    "temporal_order_6a": train_temporal_order,
    "adding_T100": train_adding_t100,
    "adding_T400": train_adding_t400,  # needs adding_T100.onnx in --out
    "adding_gru_T100": train_adding_gru_t100,
    "japanese_vowels_gru": lambda out_dir, minutes: train_japanese_vowels(out_dir, minutes, gru=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(TRAINERS),
                        default=[k for k in TRAINERS if k != "japanese_vowels_cv"])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "models")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="wall-clock guard per model; the budgets that count are in steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        TRAINERS[name](args.out, args.minutes)


if __name__ == "__main__":
    main()
