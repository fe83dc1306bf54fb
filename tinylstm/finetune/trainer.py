"""The fine-tuning loop: Adam on the float weights through the integer model's torch forward,
checkpoints chosen by the simulator's score on validation data.

Each step quantizes the current float weights with the quantizer itself (the per-row weight
grids, pre-shifts, multipliers, biases and shifts it would choose, ~1 ms) against the last
calibration, and runs that integer model in torch (:mod:`.forward`). Every ``eval_every`` steps
the weights are put on their integer grids (:func:`.weights.on_grid`), calibrated again on the
calibration data (activation ranges follow the weights), quantized, and scored by the simulator:
that integer model is exactly what ``tinylstm quantize`` makes of the written ONNX with the same
options and calibration data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.dataset import Dataset
from ..ir import FloatModel
from ..qmodel import QSoftmax, QuantizedModel
from ..quantize import calibrate, quantize
from . import forward
from .data import Examples
from .progress import Bar
from .score import Score, int_score
from .weights import Weights, on_grid, read_weights, with_weights

#: quantize() options that are calibration options
CALIB_KEYS = ("observer", "percentile")


@dataclass(frozen=True)
class TrainOptions:
    """The loop's options (defaults: :mod:`.api`)."""

    steps: int
    lr: float
    batch: int
    eval_every: int
    seed: int
    tolerance: float
    grad_clip: float = 1.0
    schedule: str = "cosine"  # learning rate: "cosine" (from lr down to 0 over the steps) or "constant"
    quantize: dict[str, Any] = field(default_factory=dict)  # quantize() keyword arguments


@dataclass(frozen=True)
class Checkpoint:
    step: int
    weights: Weights = field(repr=False)
    qmodel: QuantizedModel = field(repr=False)
    score: Score


@dataclass(frozen=True)
class TrainResult:
    first: Checkpoint  # step 0: the input model
    best: Checkpoint
    history: list[tuple[int, float, Score]]  # (step, mean training loss since the last validation, score)
    steps: int  # steps run
    seconds: float


def quantize_now(fm: FloatModel, calib: Dataset, opts: dict[str, Any]) -> tuple[QuantizedModel, Any]:
    """Calibrate ``fm`` on ``calib`` and quantize it, as ``tinylstm quantize`` does."""
    cal = calibrate(fm, calib, **{k: opts[k] for k in CALIB_KEYS if k in opts})
    return quantize(fm, cal, **opts), cal


def _loss_node(qm: QuantizedModel) -> int:
    """The node the loss reads: the model output, or the logits under a Softmax / LogSoftmax head."""
    last = qm.nodes[-1]
    return last.src if isinstance(last, QSoftmax) else len(qm.nodes) - 1


def int_loss(qm: QuantizedModel, w: forward.TorchWeights, ex: Examples, lens: torch.Tensor,
             xq: torch.Tensor) -> torch.Tensor:
    """Loss of the integer model's torch forward on one batch (``ex`` = the batch)."""
    k = _loss_node(qm)
    node = qm.nodes[k]
    v = forward.run(qm, w, xq, lens, upto=k)[k]
    return task_loss((v - node.zero_point) * node.scale, ex, lens)


def task_loss(out: torch.Tensor, ex: Examples, lens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (labels) or mean squared error (targets; per-step outputs only
    within each sequence's length)."""
    if ex.labels is not None:
        return torch.nn.functional.cross_entropy(out, torch.as_tensor(ex.labels))
    t = torch.as_tensor(ex.targets, dtype=out.dtype)
    if t.ndim == 2:
        return torch.mean((out.reshape(t.shape) - t) ** 2)
    mask = (torch.arange(t.shape[1])[None, :] < lens[:, None]).to(t.dtype)[:, :, None]
    return torch.sum(((out - t) ** 2) * mask) / (mask.sum() * t.shape[2])


def train(fm: FloatModel, train_ex: Examples, val_ex: Examples, calib: Dataset, opts: TrainOptions,
          frozen: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
          progress: Bar | Callable[[int, int], None] | None = None) -> TrainResult:
    """Fine-tune ``fm``'s weights (all but ``frozen``) on ``train_ex``; keep the checkpoint whose
    integer model scores best on ``val_ex``."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(opts.seed)
    torch.manual_seed(opts.seed)
    params = {k: torch.tensor(v, requires_grad=k not in frozen) for k, v in read_weights(fm).items()}
    trainable = [p for p in params.values() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=opts.lr)

    def weights_now() -> Weights:
        return {k: p.detach().numpy().copy() for k, p in params.items()}

    def checkpoint(step: int, cal: Any) -> tuple[Checkpoint, Any]:
        """Step 0: the input model. Later: the weights on their integer grids (:func:`on_grid`)."""
        w = weights_now()
        if step:
            w = on_grid(w, quantize(with_weights(fm, w), cal, **opts.quantize))
        qm, cal = quantize_now(with_weights(fm, w), calib, opts.quantize)
        return Checkpoint(step, w, qm, int_score(qm, fm, val_ex, opts.tolerance)), cal

    first, cal = checkpoint(0, None)
    best = first
    history: list[tuple[int, float, Score]] = [(0, float("nan"), first.score)]
    _report(progress, 0, first, best)
    losses: list[float] = []
    step = 0
    n = len(train_ex)
    for step in range(1, opts.steps + 1):
        if opts.schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = opts.lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / opts.steps))
        idx = np.sort(rng.choice(n, size=min(opts.batch, n), replace=False))
        b = train_ex.subset(idx)
        qm = quantize(with_weights(fm, weights_now()), cal, **opts.quantize)
        lens = torch.as_tensor(b.lengths)
        xq = torch.as_tensor(qm.quantize_input(b.x).astype(np.float64))
        loss = int_loss(qm, params, b, lens, xq)
        opt.zero_grad()
        loss.backward()
        if opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, opts.grad_clip)
        opt.step()
        losses.append(loss.item())
        if isinstance(progress, Bar):
            progress.update(step, float(np.mean(losses[-10:])))
        elif progress is not None:
            progress(step, opts.steps)
        if step % opts.eval_every == 0 or step == opts.steps:
            ck, cal = checkpoint(step, cal)
            history.append((step, float(np.mean(losses)), ck.score))
            losses = []
            if ck.score.key < best.score.key:
                best = ck
            _report(progress, step, ck, best)
    return TrainResult(first, best, history, step, time.perf_counter() - t0)


def _report(progress, step: int, ck: Checkpoint, best: Checkpoint) -> None:
    if isinstance(progress, Bar):
        progress.note(step, f"val int: {ck.score} (best: step {best.step})")
