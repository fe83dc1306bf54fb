"""CLI subcommands of the integer pipeline: quantize, generate, validate, analyze, build.

Each writes its outputs only after everything succeeded (atomic writes); on any user error the
CLI prints one line and exits 2 with nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .cli import command
from .errors import DataError, OutputPathError, TinyLstmError


def _quant_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--observer", choices=("minmax", "percentile", "mse"), default="minmax",
                   help="range observer for int8 activations (default: minmax)")
    g.add_argument("--percentile", type=float, default=99.99, help="for --observer percentile")
    g.add_argument("--lut-size", type=int, default=512, help="segments per half lookup table")
    g.add_argument("--pre-frac", type=int, default=16, help="fraction bits of gate pre-activations")
    g.add_argument("--cell-headroom", type=float, default=1.0,
                   help="multiply the calibrated max |cell| before choosing its int16 range")
    g.add_argument("--lstm-weight-bits", type=int, choices=(8, 16), default=16,
                   help="width of the LSTM weight matrices: 16 (default) keeps long-lag memory, 8 halves "
                        "their flash (docs/quantization.md section 13)")
    _batch_row_option(p)


def _batch_row_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-row", type=int, default=None, metavar="K",
                   help="for a static batch whose rows hold different initial states or sequence_lens: "
                        "keep row K's (the C runs one sequence at a time)")


def _quantize_kwargs(args: argparse.Namespace) -> dict:
    return dict(pre_frac=args.pre_frac, lut_size=args.lut_size, cell_headroom=args.cell_headroom,
                observer=args.observer, percentile=args.percentile, lstm_weight_bits=args.lstm_weight_bits)


def _load_float(path: str, batch_row: int | None = None):
    from . import load_onnx

    return load_onnx(path, batch_row=batch_row)


def _quantize(args: argparse.Namespace, fm, calib=None):
    from .data_io import load_dataset
    from .quantize import quantize

    ds = calib if calib is not None else load_dataset(args.calib, fm, what="calibration data")
    return quantize(fm, ds.sequences, **_quantize_kwargs(args))


def _atomic_file(path: str | os.PathLike, write) -> None:
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


def _check_output(path: str, *, folder: bool) -> None:
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


def quant_summary(qm, fm=None, calib_data=None) -> str:
    """Scales per node and, when data is given, the int8-vs-float error on it."""
    from .qmodel import QInput, QLstm

    lines = [f"{'#':>2}  {'node':<28} {'kind':<12} {'scale':>11} {'zp':>5}  details"]
    for k, n in enumerate(qm.nodes):
        det = ""
        if isinstance(n, QLstm):
            d0 = n.directions[0]
            det = (f"P={n.pre_frac} cell Q{d0.cell_frac} (|c| < {2.0 ** (15 - d0.cell_frac):g}) "
                   f"LUT {d0.lut_f.n}/{d0.lut_g.n}/{d0.lut_h.n} segments")
        kind = type(n).__name__.lstrip("Q") if not isinstance(n, QInput) else "Input"
        name = n.name if len(n.name) <= 28 else "..." + n.name[-25:]
        lines.append(f"{k:>2}  {name:<28} {kind:<12} {n.scale:>11.4g} {n.zero_point:>5}  {det}")
    if fm is not None and calib_data is not None:
        from .metrics import error_stats

        errs = []
        refs = []
        for _, batch in calib_data.groups()[:8]:
            x = fm.input_view.from_canonical(batch)
            refs.append(fm.run(x).reshape(-1))
            errs.append(qm.run(x).reshape(-1))
        e = error_stats(np.concatenate(errs), np.concatenate(refs))
        lines.append("")
        lines.append(f"estimated error on the calibration data: rmse {e.rmse:.4g}, max abs {e.max_abs:.4g}, "
                     f"cosine {e.cosine:.6f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
def _quantize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--calib", required=True, help="calibration data .npz (x (N,T,F), optional lengths)")
    p.add_argument("-o", "--output", required=True, help="integer model to write (.tlq)")
    _quant_options(p)


@command("quantize", _quantize_args)
def cmd_quantize(args: argparse.Namespace) -> int:
    """Quantize an ONNX LSTM to the integer model (.tlq)."""
    from .data_io import load_dataset

    _check_output(args.output, folder=False)
    fm = _load_float(args.model, args.batch_row)
    calib = load_dataset(args.calib, fm, what="calibration data")
    qm = _quantize(args, fm, calib)
    summary = quant_summary(qm, fm, calib)  # before writing: a failure leaves nothing behind
    _atomic_file(args.output, lambda tmp: _save_tlq(qm, tmp))
    print(summary)
    print(f"\nwrote {args.output}")
    return 0


def _save_tlq(qm, tmp: str) -> None:
    qm.save(tmp)
    # numpy appends .npz to names without it; keep the exact temporary name
    if not os.path.exists(tmp) and os.path.exists(tmp + ".npz"):
        os.replace(tmp + ".npz", tmp)


def _load_qmodel(path: str):
    from .qmodel import QuantizedModel

    return QuantizedModel.load(path)


# --------------------------------------------------------------------------------------
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("qmodel", help="integer model (.tlq) from `tinylstm quantize`")
    p.add_argument("-o", "--output", required=True, help="output folder for the C files")
    p.add_argument("--prefix", default="model", help="C prefix of every public symbol (default: model)")
    _max_steps_option(p)


def _max_steps_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=int, default=None, metavar="T",
                   help="models with a reverse or bidirectional LSTM buffer whole sequences: the longest "
                        "sequence run() accepts (default: the longest calibration sequence)")


@command("generate", _generate_args)
def cmd_generate(args: argparse.Namespace) -> int:
    """Emit the C library for an integer model."""
    from .codegen import generate_c
    from .codegen.plan import make_plan

    _check_output(args.output, folder=True)
    qm = _load_qmodel(args.qmodel)
    paths = generate_c(qm, args.output, prefix=args.prefix, max_steps=args.max_steps)
    print(f"wrote {len(paths)} files to {args.output}")
    bound = make_plan(qm, args.max_steps).max_steps
    if bound is not None and args.max_steps is None:
        print(f"note: run() buffers sequences of up to {bound} steps (the model has a reverse or "
              "bidirectional LSTM; default: the longest calibration sequence); --max-steps changes it")
    return 0


# --------------------------------------------------------------------------------------
def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX file (float oracle)")
    p.add_argument("--qmodel", help="integer model (.tlq); or give --calib to quantize now")
    p.add_argument("--calib", help="calibration data, when no --qmodel is given")
    p.add_argument("--data", required=True, help="validation data .npz (x, optional lengths/labels/y)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--report", help="also write the markdown report here")
    p.add_argument("--plot", help="write an error-vs-time-step PNG here (needs matplotlib)")
    p.add_argument("--compilers", default="gcc", help="host compilers, comma separated (gcc,clang)")
    p.add_argument("--no-c", action="store_true", help="skip the host C comparison")
    p.add_argument("--target", default="", help="also run the C on emulated Cortex-M cores, comma separated "
                   "(cortex-m0plus,cortex-m3,cortex-m4,cortex-m7,cortex-m33,cortex-m55; append :-O2 for another "
                   "optimization level, default -Os); needs arm-none-eabi-gcc and qemu-system-arm")
    _quant_options(p)


@command("validate", _validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    """Compare onnxruntime float, the simulator and the compiled C on data."""
    from .validate import validate

    for out in (args.report, args.plot):
        if out is not None:
            _check_output(out, folder=False)
    if args.qmodel:
        qm = _load_qmodel(args.qmodel)
        row = args.batch_row if args.batch_row is not None else qm.batch_row
        fm = _load_float(args.model, row)
    elif args.calib:
        fm = _load_float(args.model, args.batch_row)
        qm = _quantize(args, fm)
    else:
        raise DataError("give --qmodel model.tlq or --calib data.npz")
    rep = validate(args.model, qm, args.data, float_model=fm, host_c=not args.no_c,
                   compilers=[c for c in args.compilers.split(",") if c],
                   targets=[t for t in args.target.split(",") if t])
    _emit_report(rep, args)
    return 0 if rep.ok else 1


def _emit_report(rep, args) -> None:
    from .validate import plot_step_error

    text = rep.to_markdown()
    plot = None
    with tempfile.TemporaryDirectory(prefix="tinylstm-plot-") as tmp:
        if getattr(args, "plot", None):  # rendered first: a failing plot leaves no report behind
            plot = plot_step_error(rep, Path(tmp) / "plot.png")
            if plot is None:
                print("note: no plot (needs matplotlib and a per-step output)", file=sys.stderr)
        if args.report:
            _atomic_file(args.report, lambda t: Path(t).write_text(text))
        if plot is not None:
            _atomic_file(args.plot, lambda t: os.replace(plot, t))
    print(rep.to_json() if args.json else text)
    if not rep.ok:
        print(f"error: {rep.mismatches} sequence(s) differ between the simulator and the C",
              file=sys.stderr)


# --------------------------------------------------------------------------------------
def _analyze_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="integer model (.tlq), or an ONNX file with --calib")
    p.add_argument("--calib", help="calibration data when the model is ONNX")
    p.add_argument("--target", default=None, help="also cross-compile for this core to measure code size")
    p.add_argument("--json", action="store_true")
    _quant_options(p)


@command("analyze", _analyze_args)
def cmd_analyze(args: argparse.Namespace) -> int:
    """Per layer parameters, MACs per step, flash and RAM bytes."""
    from .analyze import analyze, format_analysis

    if args.model.endswith(".onnx"):
        if not args.calib:
            raise DataError("an ONNX model needs --calib to be quantized first")
        qm = _quantize(args, _load_float(args.model, args.batch_row))
    else:
        qm = _load_qmodel(args.model)
    a = analyze(qm, target=args.target)
    print(json.dumps(a, indent=2) if args.json else format_analysis(a))
    return 0


# --------------------------------------------------------------------------------------
def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--calib", required=True, help="calibration data .npz")
    p.add_argument("--data", help="validation data .npz (default: the calibration data)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--prefix", default="model")
    p.add_argument("--compilers", default="gcc")
    p.add_argument("--target", default="", help="also validate the C on emulated Cortex-M cores, comma separated, "
                   "like validate's --target (e.g. cortex-m4,cortex-m55:-O2); the footprint then adds the first "
                   "core's compiled sizes. Needs arm-none-eabi-gcc and qemu-system-arm")
    p.add_argument("--json", action="store_true")
    _max_steps_option(p)
    _quant_options(p)


@command("build", _build_args)
def cmd_build(args: argparse.Namespace) -> int:
    """quantize + generate + validate in one go."""
    from .build import build

    _check_output(args.output, folder=True)

    res = build(args.model, args.calib, args.output, data=args.data, prefix=args.prefix,
                compilers=[c for c in args.compilers.split(",") if c],
                targets=[t for t in args.target.split(",") if t], max_steps=args.max_steps,
                batch_row=args.batch_row, quantize_options=_quantize_kwargs(args))
    print(res.report.to_json() if args.json else res.summary())
    return 0 if res.report.ok else 1


__all__ = ["TinyLstmError"]
