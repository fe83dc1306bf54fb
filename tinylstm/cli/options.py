"""Options and output rules shared by the subcommands: quantization options, ``--batch-row``,
``--max-steps``; outputs checked before any work and written atomically, so a failing command
leaves nothing behind."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ..errors import OutputPathError


def quant_options(p: argparse.ArgumentParser, lstm_weight_bits: int = 16) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--observer", choices=("minmax", "percentile", "mse"), default="minmax",
                   help="range observer for int8 activations (default: minmax)")
    g.add_argument("--percentile", type=float, default=99.99, help="for --observer percentile")
    g.add_argument("--lut-size", type=int, default=512, help="segments per half lookup table")
    g.add_argument("--pre-frac", type=int, default=16, help="fraction bits of gate pre-activations")
    g.add_argument("--cell-headroom", type=float, default=1.0,
                   help="multiply the calibrated max |cell| before choosing its int16 range")
    g.add_argument("--lstm-weight-bits", type=_weight_bits, default=lstm_weight_bits,
                   metavar="{8,16,auto,NODE[/W|/R]=BITS}",
                   help=f"width of the LSTM/GRU weight matrices (default {lstm_weight_bits}): 16 keeps long-lag "
                        "memory, 8 halves their flash (docs/quantization.md section 13); auto: 8 bits for each "
                        "matrix (W, R of every layer) whose integer model stays within 0.1%% of the sequences of "
                        "float on the data, else 16 (docs/finetune.md); NODE=BITS per layer, NODE/W=BITS or "
                        "NODE/R=BITS per matrix")
    batch_row_option(p)


def _weight_bits(text: str):
    from ..finetune.weight_bits import parse_bits

    try:
        return parse_bits(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def batch_row_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-row", type=int, default=None, metavar="K",
                   help="for a static batch whose rows hold different initial states or sequence_lens: "
                        "keep row K's (the C runs one sequence at a time)")


def quantize_kwargs(args: argparse.Namespace) -> dict:
    return dict(pre_frac=args.pre_frac, lut_size=args.lut_size, cell_headroom=args.cell_headroom,
                observer=args.observer, percentile=args.percentile, lstm_weight_bits=args.lstm_weight_bits)


def load_float(path: str, batch_row: int | None = None):
    from ..onnx_import import load_onnx

    return load_onnx(path, batch_row=batch_row)


def quantize_from_args(args: argparse.Namespace, fm, calib=None):
    from ..data.dataset import load_dataset
    from ..quantize.quantizer import quantize

    ds = calib if calib is not None else load_dataset(args.calib, fm, what="calibration data")
    if args.lstm_weight_bits == "auto":
        import sys

        from ..finetune.weight_bits import choose_weight_bits

        qm, choice = choose_weight_bits(fm, ds, quantize_options=quantize_kwargs(args))
        print(f"note: {choice.describe()}", file=sys.stderr)
        return qm
    return quantize(fm, ds, **quantize_kwargs(args))


def atomic_file(path: str | os.PathLike, write) -> None:
    """Write one file via a temporary file in the same folder and a rename."""
    dst = Path(path)
    parent = dst.resolve().parent
    if dst.exists() and dst.is_dir():
        raise OutputPathError(f"output {dst} is a directory")
    if not parent.is_dir():
        raise OutputPathError(f"folder {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=parent)
    except OSError as e:
        raise OutputPathError(f"cannot write {dst}: {e.strerror}") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, dst)
    except OSError as e:
        raise OutputPathError(f"cannot write {dst}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_output(path: str, *, folder: bool) -> None:
    """Refuse an output location before any work is done (the writers check again when they write).

    A file output may replace an existing file, never a folder; a folder output may be new (its
    parent must exist) or an existing folder, where only the files tinylstm generates are
    replaced (same names) and every other file is left alone.
    """
    what = "output folder" if folder else "output file"
    if not path or "\0" in path:
        raise OutputPathError(f"{what} path {path!r} is empty or holds a NUL byte")
    p = Path(path)
    if folder and (p.exists() or p.is_symlink()) and not p.is_dir():
        raise OutputPathError(f"{what} '{path}' exists and is not a folder")
    if not folder and p.is_dir():
        raise OutputPathError(f"{what} '{path}' is a folder; give a file name inside it")
    parent = p.absolute().parent
    if not parent.is_dir():
        raise OutputPathError(f"{what} '{path}': folder '{parent}' does not exist (tinylstm creates "
                              "no parent folders)")
    target = p if folder and p.is_dir() else parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} '{path}': folder '{target}' is not writable (permission denied)")


def save_tlq(qm, tmp: str) -> None:
    qm.save(tmp)
    # numpy appends .npz to names without it; keep the exact temporary name
    if not os.path.exists(tmp) and os.path.exists(tmp + ".npz"):
        os.replace(tmp + ".npz", tmp)


def load_qmodel(path: str):
    from ..qmodel import QuantizedModel

    return QuantizedModel.load(path)


def max_steps_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=int, default=None, metavar="T",
                   help="models with a reverse or bidirectional LSTM buffer whole sequences: the longest "
                        "sequence run() accepts (default: the longest calibration sequence)")
