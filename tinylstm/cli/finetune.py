"""The ``finetune`` subcommand: integer-aware fine-tuning (needs PyTorch).

Outputs (the ONNX file, optionally the ``.tlq`` and the report) are checked before any work and
written at the end, atomically; a user error leaves nothing behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..finetune.api import BATCH, EVAL_EVERY, LR, STEPS
from .options import atomic_file, check_output, quant_options, quantize_kwargs, save_tlq
from .registry import command


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--train", required=True, help="training data .npz: x (N,T,F), optional lengths, and labels "
                   "(classifiers) or y (targets at the model's output steps)")
    p.add_argument("--val", help="validation data .npz (same form) choosing the checkpoint with the simulator's "
                   "score (default: 10%% of --train held out, at most 512 sequences)")
    p.add_argument("--calib", help="calibration data .npz (default: the training data); quantize the output "
                   "with the same --calib to get the same integer model")
    p.add_argument("-o", "--output", required=True, help="fine-tuned ONNX file to write (the input graph, new weights)")
    p.add_argument("--tlq", help="also write the fine-tuned integer model (.tlq)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"training steps (default {STEPS})")
    p.add_argument("--lr", type=float, default=LR, help=f"Adam learning rate (default {LR:g}), decayed to 0 (cosine)")
    p.add_argument("--batch", type=int, default=BATCH, help=f"sequences per step (default {BATCH})")
    p.add_argument("--eval-every", type=int, default=EVAL_EVERY,
                   help=f"validate with the simulator every K steps, keep the best checkpoint (default {EVAL_EVERY})")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order and the held-out split")
    p.add_argument("--tolerance", type=float, default=0.04,
                   help="regression: an output this far from its target makes the sequence wrong (default 0.04)")
    p.add_argument("--report", help="also write the markdown report here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    quant_options(p, lstm_weight_bits=8)


@command("finetune", _finetune_args)
def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune the weights through the integer arithmetic (int8 LSTM weights that keep accuracy)."""
    from ..finetune import finetune, require_torch

    require_torch()
    outs = [args.output, args.tlq, args.report]
    for out in outs:
        if out is not None:
            check_output(out, folder=False)
    kw = quantize_kwargs(args)
    bits = kw.pop("lstm_weight_bits")
    res = finetune(args.model, args.train, val=args.val, calib=args.calib, lstm_weight_bits=bits, steps=args.steps,
                   lr=args.lr, batch=args.batch, eval_every=args.eval_every, seed=args.seed,
                   tolerance=args.tolerance, quantize_options=kw, batch_row=args.batch_row)
    res.named(args.output)
    text = res.report.to_markdown()
    atomic_file(args.output, lambda tmp: Path(tmp).write_bytes(res.onnx.SerializeToString()))
    if args.tlq:
        atomic_file(args.tlq, lambda tmp: save_tlq(res.qmodel, tmp))
    if args.report:
        atomic_file(args.report, lambda tmp: Path(tmp).write_text(text))
    print(res.report.to_json() if args.json else text)
    print(f"wrote {', '.join(o for o in outs if o)}")
    return 0
