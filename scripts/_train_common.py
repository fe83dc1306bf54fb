"""Shared pieces of scripts/train_models.py: the model, training loop, scoring, export.

Every model is ``nn.LSTM(batch_first=True)`` (or ``nn.GRU``) + ``nn.Linear`` on the output of
the *last* input step. It is always run on unpadded batches (all rows of one length), so "last input
step" is each row's last valid step: training batches are generated at one length, test
sets are run per length group (:func:`tinylstm.data.tasks.predict_by_length`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from tinylstm.data.tasks import TaskData, TaskScore, predict_by_length, score


class LastStepLstm(nn.Module):
    """x (batch, time, n_in) -> LSTM(hidden) -> Linear on step -1 -> (batch, n_out)."""

    def __init__(self, n_in: int, hidden: int, n_out: int, forget_bias: float = 1.0):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)
        with torch.no_grad():  # torch gate rows: i, f, g, o
            self.lstm.bias_ih_l0[hidden : 2 * hidden].fill_(forget_bias)
            self.lstm.bias_hh_l0[hidden : 2 * hidden].zero_()

    @property
    def hidden_size(self) -> int:
        return self.lstm.hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class LastStepGru(nn.Module):
    """x (batch, time, n_in) -> GRU(hidden) -> Linear on step -1 -> (batch, n_out).

    ``update_bias`` initialises the update gate's bias (torch gate rows r, z, n): z near 1
    keeps the state, the GRU's counterpart of the LSTM's forget bias."""

    def __init__(self, n_in: int, hidden: int, n_out: int, update_bias: float = 1.0):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)
        with torch.no_grad():
            self.gru.bias_ih_l0[hidden : 2 * hidden].fill_(update_bias)
            self.gru.bias_hh_l0[hidden : 2 * hidden].zero_()

    @property
    def hidden_size(self) -> int:
        return self.gru.hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def load_onnx_weights(model: LastStepLstm, path: Path) -> None:
    """Set ``model``'s weights from an ONNX file this script exported (ONNX gate order
    i, o, f, c back to torch's i, f, g, o; B is [input bias | recurrent bias])."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    lstm = next(n for n in graph.node if n.op_type == "LSTM")
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    w, r, b = (inits[name] for name in lstm.input[1:4])
    hidden = r.shape[-1]

    def torch_order(a: np.ndarray) -> torch.Tensor:
        i, o, f, c = np.split(a, 4, axis=0)
        return torch.from_numpy(np.concatenate([i, f, c, o], axis=0).copy())

    model.load_state_dict({
        "lstm.weight_ih_l0": torch_order(w[0]),
        "lstm.weight_hh_l0": torch_order(r[0]),
        "lstm.bias_ih_l0": torch_order(b[0, : 4 * hidden]),
        "lstm.bias_hh_l0": torch_order(b[0, 4 * hidden :]),
        "head.weight": torch.from_numpy(inits[gemm.input[1]].copy()),
        "head.bias": torch.from_numpy(inits[gemm.input[2]].copy()),
    })


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torch_runner(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return run


def ort_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x.astype(np.float32)})[0]

    return run


def evaluate(run: Callable[[np.ndarray], np.ndarray], data: TaskData) -> TaskScore:
    return score(predict_by_length(run, data), data)


@dataclass
class Trainer:
    """Adam with gradient clipping; halves the learning rate when validation stalls."""

    model: nn.Module  # LastStepLstm or LastStepGru
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    lr: float
    min_lr: float = 5e-5
    patience: int = 4
    clip: float = 1.0
    log: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.steps = 0
        self.t0 = time.time()

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        for g in self.opt.param_groups:
            g["lr"] = lr

    def step(self, batch: TaskData) -> float:
        x = torch.from_numpy(batch.x)
        target = torch.from_numpy(batch.labels if batch.labels is not None else batch.y)
        loss = self.loss_fn(self.model(x), target)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.steps += 1
        return float(loss.detach())

    def validate(self, val: TaskData) -> tuple[TaskScore, float]:
        """Score and loss on ``val``, run per length group without padding."""
        pred = predict_by_length(torch_runner(self.model), val)
        target = torch.from_numpy(val.labels if val.labels is not None else val.y)
        with torch.no_grad():
            loss = float(self.loss_fn(torch.from_numpy(pred), target))
        return score(pred, val), loss

    def stage(
        self,
        name: str,
        make_batch: Callable[[], TaskData],
        val: TaskData,
        *,
        max_steps: int,
        eval_every: int,
        done: Callable[[TaskScore], bool],
        max_seconds: float = float("inf"),
        schedule: Callable[[int], float] | None = None,
        warmup: int = 0,
        select_best: bool = True,
    ) -> TaskScore:
        """Train until ``done(val score)`` holds at two consecutive evaluations, or a budget
        runs out. With ``select_best``, keep (and restore at the end) the best weights by
        (wrong, mean |err|, validation loss); classifiers have no mean |err|, so their ties
        go to the lower loss, i.e. the larger margin. ``schedule(k)`` sets the learning rate of the stage's k-th step;
        without it, the rate halves after ``patience`` evaluations without improvement, after a
        linear ``warmup`` over the stage's first steps. Budgets in steps keep runs reproducible
        (``max_seconds`` is only a guard)."""
        base_lr = self.lr
        best: tuple[tuple[int, float], dict] | None = None
        stalled, streak, losses = 0, 0, []
        t_stage = time.time()
        for k in range(1, max_steps + 1):
            if schedule is not None:
                self.set_lr(schedule(k))
            elif k <= warmup:
                self.set_lr(base_lr * k / warmup)
            losses.append(self.step(make_batch()))
            if k % eval_every and k != max_steps:
                continue
            s, val_loss = self.validate(val)
            key = (s.wrong, s.mean_abs_error, val_loss)
            entry = {
                "stage": name, "step": self.steps, "loss": float(np.mean(losses)),
                "val_wrong": s.wrong, "val_mae": s.mean_abs_error, "val_loss": val_loss, "lr": self.lr,
                "seconds": round(time.time() - self.t0, 1),
            }
            self.log.append(entry)
            print(json.dumps(entry), flush=True)
            losses = []
            if best is None or key < best[0]:
                best = (key, {k2: v.clone() for k2, v in self.model.state_dict().items()})
                stalled = 0
            else:
                stalled += 1
                if schedule is None and stalled >= self.patience and self.lr > self.min_lr:
                    self.set_lr(max(self.lr / 2, self.min_lr))
                    stalled = 0
            streak = streak + 1 if done(s) else 0
            if streak >= 2 or time.time() - t_stage > max_seconds:
                break
        assert best is not None
        if select_best:
            self.model.load_state_dict(best[1])
        return evaluate(torch_runner(self.model), val)


def export_onnx(model: nn.Module, path: Path, n_in: int) -> None:
    """Legacy exporter, opset 17, dynamic batch and time; checked against torch with
    onnxruntime at two lengths other than the example's."""
    model.eval()
    example = torch.zeros(1, 5, n_in)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch"}},
    )
    run = ort_runner(path)
    rng = np.random.default_rng(0)
    for shape in ((3, 11, n_in), (2, 40, n_in)):
        x = rng.standard_normal(shape).astype(np.float32)
        diff = np.max(np.abs(run(x) - torch_runner(model)(x)))
        if diff > 1e-5:
            raise RuntimeError(f"{path}: onnxruntime differs from torch by {diff}")


def write_json(path: Path, info: dict) -> None:
    path.write_text(json.dumps(info, indent=2, sort_keys=False) + "\n")


def write_log(path: Path, log: list[dict]) -> None:
    """Training log as JSON, one evaluation per line."""
    path.write_text('{"log": [\n' + ",\n".join(json.dumps(e) for e in log) + "\n]}\n")
