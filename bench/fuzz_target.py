"""Differential fuzz on emulated Cortex-M cores: the generated C (with the assembly kernels) vs the
integer simulator, exact equality of the output and every LSTM state.

Usage: .venv/bin/python bench/fuzz_target.py [--models 60] [--seed 1]
                                             [--targets cortex-m0plus,cortex-m4,cortex-m55]
                                             [--fast-only] [--workdir DIR] [--cell lstm|gru]
                                             [--helium-only]

Draws random models with the generator of tests/test_c_fuzz.py (every LSTM attribute the quantizer
accepts, heads, 8/16-bit weights, odd sizes that exercise the quad padding), builds each one for
every target (traced, -Os and -O2 alternating; Armv6-M LDRH/LDRB + MULS kernels on M0+, SMLAD on M4/M55),
runs the random, extreme (all 127 / all -128) inputs of the generator through run() and, for
causal models, step() under QEMU, and compares with QuantizedModel.run_int(trace=True). Prints
the counts; exits 1 on any mismatch. ``--fast-only`` keeps only models whose generated C calls
``tl_lstm_step_fast`` (every standard-table layer: its C unit loop with SMLAWB gate sums on Armv7E-M).
``--cell gru`` draws GRU stacks instead (tests/gru_c_cases.py: GRU layers with every attribute the
quantizer accepts, mixed with LSTM layers, heads, quantize options); ``--fast-only`` then keeps the
models with a ``tl_gru_step_fast`` layer. Cortex-M55 builds run the Helium (MVE) kernels where a layer
takes them (``tl_lstm_step_mve``); ``--helium-only`` keeps only models with such a layer. Needs
arm-none-eabi-gcc and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from gru_c_cases import make_gru_case, random_gru_recipe  # noqa: E402
from test_c_fuzz import RngPicker, make_case, random_recipe  # noqa: E402
from tinylstm.codegen.emit import emit_model  # noqa: E402

from tinylstm.cbuild import emulated as ctarget  # noqa: E402
from tinylstm.cbuild.toolchain import missing_reason  # noqa: E402
from tinylstm.errors import DataError  # noqa: E402


def _same(r: ctarget.TargetRun, y_sim: np.ndarray, tr_sim: dict) -> bool:
    if r.y.shape != y_sim.shape or not np.array_equal(r.y, y_sim):
        return False
    for name, dirs in (r.trace or {}).items():
        for d, ct in enumerate(dirs):
            st = tr_sim[name][d]
            if not (np.array_equal(ct.valid, st.valid) and np.array_equal(ct.h, st.h) and np.array_equal(ct.c, st.c)):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default="cortex-m0plus,cortex-m4,cortex-m55")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--fast-only", action="store_true", help="only models that take tl_lstm_step_fast "
                    "(with --cell gru: tl_gru_step_fast)")
    ap.add_argument("--helium-only", action="store_true", help="only models whose C generated for cortex-m55 "
                    "takes tl_lstm_step_mve (the Helium kernels, which cortex-m55 builds run)")
    ap.add_argument("--cell", choices=("lstm", "gru"), default="lstm",
                    help="the random models: LSTM stacks (default) or GRU stacks (mixed with LSTM layers)")
    args = ap.parse_args(argv)
    reason = missing_reason("arm-none-eabi-gcc", "qemu-system-arm")
    if reason:
        print(reason)
        return 2
    targets = [t for t in args.targets.split(",") if t]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tinylstm-fuzz-target-"))
    pick = RngPicker(np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    models = refused = runs = steps = mismatches = fast = helium = 0
    problems: list[str] = []
    k = 0
    while models < args.models:
        k += 1
        case = make_gru_case(random_gru_recipe(pick)) if args.cell == "gru" else make_case(random_recipe(pick))
        if case is None:
            refused += 1
            continue
        is_fast = re.search(rf"tl_{args.cell}_step_fast\w*\(", emit_model(case.qmodel, "m")["m.c"]) is not None
        if args.fast_only and not is_fast:
            continue
        is_helium = "tl_lstm_step_mve(" in emit_model(case.qmodel, "m", target="cortex-m55")["m.c"]
        if args.helium_only and not is_helium:
            continue
        helium += int(is_helium)
        models += 1
        max_steps = max(int(case.qmodel.input_view.to_canonical(x).shape[1]) for x, _ in case.inputs)
        fast += int(is_fast)
        for j, target in enumerate(targets):
            opt = "-Os" if (k + j) % 2 == 0 else "-O2"
            exe = ctarget.build_target(case.qmodel, target, work / f"m{k}" / target, opt, trace=True,
                                       max_steps=max(max_steps, 1))
            for x, lens in case.inputs:
                y_sim, tr_sim = case.qmodel.run_int(x, sequence_lens=lens, trace=True)
                modes = ["run"] + (["step"] if exe.has_step and lens is None else [])
                for mode in modes:
                    try:
                        r = ctarget.run_target(exe, x, mode, trace=True, sequence_lens=lens)
                    except DataError:  # e.g. run_lens on a model whose lengths are constant
                        continue
                    runs += 1
                    rows, t = case.qmodel.input_view.to_canonical(x).shape[:2]
                    steps += rows * t
                    if not _same(r, y_sim, tr_sim):
                        mismatches += 1
                        problems.append(f"{target} {opt} {mode} x{tuple(x.shape)} recipe={case.recipe}")
                        print("MISMATCH", problems[-1], flush=True)
        print(f"[{time.perf_counter() - t0:7.1f} s] models {models} (refused {refused}), runs {runs}, "
              f"steps {steps}, mismatches {mismatches}, fast-step models {fast}", flush=True)
    print(f"done: {models} models x {len(targets)} targets, {runs} runs, {steps} steps, {mismatches} mismatches "
          f"({fast} models with tl_{args.cell}_step_fast, {helium} with tl_lstm_step_mve on cortex-m55) in "
          f"{time.perf_counter() - t0:.0f} s (seed {args.seed})")
    for p in problems[:10]:
        print("MISMATCH", p)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
