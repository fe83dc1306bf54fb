"""The subcommands: inspect, quantize, generate, validate, analyze, build.

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

from ..errors import DataError
from ..quantize.report import quant_summary
from .options import (
    atomic_file,
    check_output,
    load_float,
    load_qmodel,
    max_steps_option,
    quant_options,
    quantize_from_args,
    quantize_kwargs,
    save_tlq,
)
from .registry import command


# --------------------------------------------------------------------------------------
def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--batch-row", type=int, default=None, metavar="K",
                   help="for a static batch whose rows hold different initial states: keep row K's")


@command("inspect", _inspect_args)
def cmd_inspect(args: argparse.Namespace) -> int:
    from ..ir.summary import format_summary, summarize
    from ..onnx_import import load_onnx

    model = load_onnx(args.model, batch_row=args.batch_row)
    s = summarize(model)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(format_summary(s))
    return 0




# --------------------------------------------------------------------------------------
def _quantize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--calib", required=True, help="calibration data .npz (x (N,T,F), optional lengths)")
    p.add_argument("-o", "--output", required=True, help="integer model to write (.tlq)")
    quant_options(p)


@command("quantize", _quantize_args)
def cmd_quantize(args: argparse.Namespace) -> int:
    """Quantize an ONNX LSTM to the integer model (.tlq)."""
    from ..data.dataset import load_dataset

    check_output(args.output, folder=False)
    fm = load_float(args.model, args.batch_row)
    calib = load_dataset(args.calib, fm, what="calibration data")
    qm = quantize_from_args(args, fm, calib)
    summary = quant_summary(qm, fm, calib)  # before writing: a failure leaves nothing behind
    atomic_file(args.output, lambda tmp: save_tlq(qm, tmp))
    print(summary)
    print(f"\nwrote {args.output}")
    return 0





# --------------------------------------------------------------------------------------
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("qmodel", help="integer model (.tlq) from `tinylstm quantize`")
    p.add_argument("-o", "--output", required=True, help="output folder for the C files")
    p.add_argument("--prefix", default="model", help="C prefix of every public symbol (default: model)")
    max_steps_option(p)
    _for_option(p, "--target")


def _for_option(p: argparse.ArgumentParser, *aliases: str) -> None:
    p.add_argument("--for", *aliases, dest="for_core", default=None, metavar="CORE",
                   help="generate the C for this core's kernels: cortex-m55 stores the LSTM layers that the Helium "
                        "(MVE) step computes in its weight layout (that C compiles only for Armv8.1-M with MVE); "
                        "default: the portable C, which runs on every core (docs/targets.md)")


def _kernels_notes(qm, for_core: str | None) -> list[str]:
    """Which LSTM layers keep the portable step in C generated for a Helium core."""
    from ..lowering import kernels_for, mve_step_reason
    from ..qmodel import QLstm

    if kernels_for(for_core) != "mve":
        return []
    return [f"note: LSTM layer '{n.name}' keeps the portable layout and step on {for_core} ({why})"
            for n in qm.nodes if isinstance(n, QLstm) and (why := mve_step_reason(n)) is not None]


@command("generate", _generate_args)
def cmd_generate(args: argparse.Namespace) -> int:
    """Emit the C library for an integer model."""
    from ..codegen import generate_c
    from ..codegen.plan import make_plan
    from ..pipeline import check_c_generation

    check_output(args.output, folder=True)
    qm = load_qmodel(args.qmodel)
    check_c_generation(qm)
    notes = _kernels_notes(qm, args.for_core)  # an unknown core is refused here, before any file is written
    paths = generate_c(qm, args.output, prefix=args.prefix, max_steps=args.max_steps, target=args.for_core)
    print(f"wrote {len(paths)} files to {args.output}")
    for note in notes:
        print(note)
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
    quant_options(p)


@command("validate", _validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    """Compare onnxruntime float, the simulator and the compiled C on data."""
    from ..validate.validation import validate

    for out in (args.report, args.plot):
        if out is not None:
            check_output(out, folder=False)
    if args.qmodel:
        qm = load_qmodel(args.qmodel)
        row = args.batch_row if args.batch_row is not None else qm.batch_row
        fm = load_float(args.model, row)
    elif args.calib:
        fm = load_float(args.model, args.batch_row)
        qm = quantize_from_args(args, fm)
    else:
        raise DataError("give --qmodel model.tlq or --calib data.npz")
    if not args.no_c or args.target:
        from ..pipeline import check_c_generation

        check_c_generation(qm)
    rep = validate(args.model, qm, args.data, float_model=fm, host_c=not args.no_c,
                   compilers=[c for c in args.compilers.split(",") if c],
                   targets=[t for t in args.target.split(",") if t])
    _emit_report(rep, args)
    return 0 if rep.ok else 1


def _emit_report(rep, args) -> None:
    from ..validate.validation import plot_step_error

    text = rep.to_markdown()
    plot = None
    with tempfile.TemporaryDirectory(prefix="tinylstm-plot-") as tmp:
        if getattr(args, "plot", None):  # rendered first: a failing plot leaves no report behind
            plot = plot_step_error(rep, Path(tmp) / "plot.png")
            if plot is None:
                print("note: no plot (needs matplotlib and a per-step output)", file=sys.stderr)
        if args.report:
            atomic_file(args.report, lambda t: Path(t).write_text(text))
        if plot is not None:
            atomic_file(args.plot, lambda t: os.replace(plot, t))
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
    quant_options(p)


@command("analyze", _analyze_args)
def cmd_analyze(args: argparse.Namespace) -> int:
    """Per layer parameters, MACs per step, flash and RAM bytes."""
    from ..validate.analyze import analyze, format_analysis

    if args.model.endswith(".onnx"):
        if not args.calib:
            raise DataError("an ONNX model needs --calib to be quantized first")
        qm = quantize_from_args(args, load_float(args.model, args.batch_row))
    else:
        qm = load_qmodel(args.model)
    from ..pipeline import check_c_generation

    check_c_generation(qm)  # the footprint is the C's
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
    max_steps_option(p)
    _for_option(p)
    quant_options(p)


@command("build", _build_args)
def cmd_build(args: argparse.Namespace) -> int:
    """quantize + generate + validate in one go."""
    from ..pipeline import build

    check_output(args.output, folder=True)

    res = build(args.model, args.calib, args.output, data=args.data, prefix=args.prefix,
                compilers=[c for c in args.compilers.split(",") if c],
                targets=[t for t in args.target.split(",") if t], max_steps=args.max_steps,
                batch_row=args.batch_row, quantize_options=quantize_kwargs(args), generate_for=args.for_core)
    print(res.report.to_json() if args.json else res.summary())
    return 0 if res.report.ok else 1

