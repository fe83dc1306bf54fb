"""``tinylstm.finetune(...)``: fine-tune a float LSTM against the integer arithmetic it will run.

Reads the ONNX model and the data, trains (:mod:`.trainer`, needs PyTorch), and returns the
ONNX graph with the chosen checkpoint's weights, its integer model and a report. The integer
model is ``quantize(load_onnx(written file), calib, **options)``: the file reproduces it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from ..errors import DataError, TinyLstmError
from ..ir import FloatModel
from ..qmodel import QuantizedModel
from .data import Examples, examples, split
from .onnx_write import fixed_biases, updated_model
from .report import FinetuneReport, weight_bits
from .score import DEFAULT_TOLERANCE, float_score
from .weights import check_supported, with_weights

#: How to get PyTorch, the one dependency fine-tuning adds.
INSTALL_HINT = ("fine-tuning needs PyTorch, which is not installed: pip install 'tinylstm[train]' "
                "(CPU only: pip install torch --index-url https://download.pytorch.org/whl/cpu)")
#: Share of the training data held out for validation when no validation data is given.
VAL_FRACTION = 0.1
#: Defaults (docs/finetune.md: measured on the shipped models)
STEPS, LR, BATCH, EVAL_EVERY = 200, 3e-5, 64, 20


def require_torch() -> None:
    """Raise a one-line :class:`TinyLstmError` saying how to install PyTorch when it is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TinyLstmError(INSTALL_HINT) from None


@dataclass
class FinetuneResult:
    onnx: onnx.ModelProto  # the input graph with the fine-tuned weights
    float_model: FloatModel  # imported from it
    qmodel: QuantizedModel  # its integer model (the validation score's)
    report: FinetuneReport

    def save(self, onnx_path: str | os.PathLike, tlq_path: str | os.PathLike | None = None) -> None:
        """Write the ONNX file (and the ``.tlq``, which then names it as its source), each through a
        temporary file and a rename."""
        self.named(onnx_path)
        _atomic(onnx_path, lambda p: Path(p).write_bytes(self.onnx.SerializeToString()))
        if tlq_path is not None:
            _atomic(tlq_path, self.qmodel.save)

    def named(self, onnx_path: str | os.PathLike) -> None:
        """Record ``onnx_path`` as where the float and integer models come from (as
        ``load_onnx(onnx_path)`` and quantizing it would)."""
        self.float_model = dataclasses.replace(self.float_model, source=os.fspath(onnx_path))
        self.qmodel = dataclasses.replace(self.qmodel, source=os.fspath(onnx_path))


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    dst = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=dst.suffix, dir=dst.absolute().parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def finetune(
    model: str | os.PathLike | onnx.ModelProto,
    train: Any,
    *,
    val: Any = None,
    calib: Any = None,
    output: str | os.PathLike | None = None,
    tlq: str | os.PathLike | None = None,
    lstm_weight_bits: int | str | dict[str, int] = 8,
    steps: int = STEPS,
    lr: float = LR,
    batch: int = BATCH,
    eval_every: int = EVAL_EVERY,
    schedule: str = "cosine",
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    quantize_options: dict[str, Any] | None = None,
    batch_row: int | None = None,
    progress: bool | Callable[[int, int], None] = True,
    agreement: bool = True,
) -> FinetuneResult:
    """Fine-tune ``model``'s LSTM and Dense weights so its integer model (``lstm_weight_bits`` 8,
    16 or per layer, ``quantize_options`` as for :func:`tinylstm.quantize.quantize`) scores well;
    ``"auto"``: fine-tune at 8 bits, then give 16 bits to the matrices that need them
    (:mod:`.weight_bits`, scored on the validation data).

    ``train`` / ``val`` / ``calib``: data files or data as ``load_dataset`` takes them; ``train``
    and ``val`` need ``labels`` (classifiers) or ``y`` (targets). Without ``val``, 10 % of
    ``train`` (at most 512 sequences, seeded) is held out; without ``calib`` the training data
    calibrates (quantize the written file with the same ``--calib`` to get the same integers).
    ``tolerance``: regression outputs this far from their target count as wrong. ``progress``:
    a bar on stderr (True) or a ``callable(step, total)``. ``output`` / ``tlq``: also write the
    fine-tuned ONNX / integer model there.
    """
    from ..data.dataset import load_dataset
    from ..onnx_import import load_onnx

    require_torch()
    from .trainer import TrainOptions

    _check_options(steps, lr, batch, eval_every, tolerance, lstm_weight_bits)
    t0 = time.perf_counter()
    fm = load_onnx(model, batch_row=batch_row)
    check_supported(fm)
    train_ex = examples(train, fm, "training data")
    if val is not None:
        val_ex = examples(val, fm, "validation data")
        notes = []
    else:
        train_ex, val_ex = split(train_ex, VAL_FRACTION, seed)
        notes = [f"no validation data: {len(val_ex)} of the training sequences were held out for it"]
    if (val_ex.labels is None) != (train_ex.labels is None):
        raise DataError("training and validation data must both hold labels (classification) or both targets 'y'")
    cal_ds = load_dataset(calib if calib is not None else train, fm, what="calibration data")
    bits = 8 if lstm_weight_bits == "auto" else lstm_weight_bits
    opts = TrainOptions(steps=steps, lr=lr, batch=batch, eval_every=eval_every, seed=seed, tolerance=tolerance,
                        schedule=schedule, quantize=dict(quantize_options or {}, lstm_weight_bits=bits))
    result = _run(model, fm, train_ex, val_ex, cal_ds, opts, notes, progress, agreement, t0,
                  auto=lstm_weight_bits == "auto")
    if output is not None:
        result.save(output, tlq)
    return result


def _check_options(steps: int, lr: float, batch: int, eval_every: int, tolerance: float, bits) -> None:
    for name, v in (("steps", steps), ("batch", batch), ("eval_every", eval_every)):
        if not isinstance(v, int) or v < 1:
            raise DataError(f"finetune: {name} must be an integer >= 1, got {v!r}")
    if not lr > 0 or not tolerance > 0:
        raise DataError(f"finetune: lr and tolerance must be > 0, got {lr!r} and {tolerance!r}")
    if not (bits in (8, 16, "auto") or isinstance(bits, dict)):
        raise DataError(f"finetune: lstm_weight_bits must be 8, 16, 'auto' or {{layer[/W|/R]: 8 or 16}}, got {bits!r}")


def _run(model, fm: FloatModel, train_ex: Examples, val_ex: Examples, cal_ds, opts, notes: list[str],
         prog, measure: bool, t0: float, auto: bool) -> FinetuneResult:
    from .progress import Bar
    from .trainer import train

    frozen = fixed_biases(model, fm)
    bar = Bar(opts.steps) if prog is True else (prog or None)
    try:
        res = train(fm, train_ex, val_ex, cal_ds, opts, frozen, bar)
    finally:
        if isinstance(bar, Bar):
            bar.close()
    best = res.best
    fm_after = with_weights(fm, best.weights)
    proto = updated_model(model, fm, best.weights)
    agree = None
    if measure:
        from .agreement import agreement

        agree = agreement(best.qmodel, best.weights, val_ex)
    qm, int_after = best.qmodel, best.score
    if auto:
        from .weight_bits import choose_weight_bits

        qm, choice = choose_weight_bits(fm_after, cal_ds, val_ex.dataset, quantize_options=opts.quantize,
                                        tolerance=opts.tolerance)
        int_after = choice.score
        notes.append(f"{choice.describe()}: quantize the written file with --lstm-weight-bits {choice.spec}")
    if frozen:
        notes.append("kept as they are (the graph has no tensor for them): "
                     + ", ".join(f"{n} {f}" for n, f in sorted(frozen)))
    report = FinetuneReport(
        model=str(model) if not isinstance(model, onnx.ModelProto) else "<in-memory model>",
        train=train_ex.source, val=val_ex.source, calib=cal_ds.source,
        sequences={"train": len(train_ex), "val": len(val_ex), "calib": len(cal_ds)},
        options={"steps": opts.steps, "lr": opts.lr, "batch": opts.batch, "eval_every": opts.eval_every,
                 "seed": opts.seed, "tolerance": opts.tolerance,
                 "quantize": {k: v for k, v in opts.quantize.items() if isinstance(v, (int, float, str))}},
        weight_bits=weight_bits(qm),
        float_before=float_score(fm, val_ex, opts.tolerance), int_before=res.first.score,
        float_after=float_score(fm_after, val_ex, opts.tolerance), int_after=int_after,
        best_step=best.step, steps=res.steps, history=res.history,
        seconds=time.perf_counter() - t0, agreement=agree, notes=notes,
    )
    return FinetuneResult(proto, fm_after, qm, report)
