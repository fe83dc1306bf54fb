"""Long differential fuzz: generated C vs the integer simulator, exact equality.

Usage: .venv/bin/python bench/fuzz_c_long.py [--models 500] [--steps 1000000] [--seed 1]
                                            [--batch 25] [--workdir DIR] [--cell lstm|gru]

Draws random models with the generator of tests/test_c_fuzz.py (every LSTM attribute the
quantizer accepts, heads, quantize options, 8/16-bit weights; ``--cell gru``: GRU stacks mixed with
LSTM layers, tests/gru_c_cases.py), compiles them in batches into one harness each (cycling gcc
-O0 and clang -O0 with ASan+UBSan, gcc -O3, clang -O3, gcc -O2, clang -O1 with ASan+UBSan), feeds random,
extreme (all 127 / all -128) and long (300 steps) int8 sequences through run() and step(), and
compares the output and every recurrent state (h, c per layer, direction and step) with
QuantizedModel.run_int(trace=True). Prints the counts; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from gru_c_cases import make_gru_case, random_gru_recipe  # noqa: E402
from test_c_fuzz import RngPicker, Tally, build_cases, check_cases, make_case, random_recipe  # noqa: E402

from tinylstm.cbuild.toolchain import missing_reason  # noqa: E402

BUILDS = (("gcc", "-O0", True), ("clang", "-O0", True), ("gcc", "-O3", False), ("clang", "-O3", False),
          ("gcc", "-O2", False), ("clang", "-O1", True))
LONG = 300


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--cell", choices=("lstm", "gru"), default="lstm",
                    help="the random models: LSTM stacks (default) or GRU stacks (mixed with LSTM layers)")
    args = ap.parse_args(argv)
    builds = [b for b in BUILDS if missing_reason(b[0]) is None]
    if not builds:
        print(missing_reason("gcc"))
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tinylstm-fuzz-"))
    pick = RngPicker(np.random.default_rng(args.seed))
    rng = np.random.default_rng(args.seed + 1)
    tally = Tally()
    problems: list[str] = []
    t0 = time.perf_counter()
    k = 0
    while tally.models < args.models or tally.steps < args.steps:
        cc, opt, san = builds[k % len(builds)]
        if args.cell == "gru":
            recipes, maker = [random_gru_recipe(pick) for _ in range(args.batch)], make_gru_case
        else:
            recipes, maker = [random_recipe(pick) for _ in range(args.batch)], make_case
        exe, cases = build_cases(recipes, work / f"batch{k}", tally, max_steps=LONG, compiler=cc, opt=opt,
                                 sanitize=san, make=maker)
        k += 1
        if exe is None:
            continue
        longer = []
        for c in cases:
            x0, lens0 = c.inputs[0]
            rows = c.qmodel.input_view.to_canonical(x0).shape[0]
            shape = c.qmodel.input_view.onnx_shape(rows, LONG)
            x = rng.integers(-128, 128, shape).astype(np.int8)
            lens = None if lens0 is None else rng.integers(0, LONG + 1, rows).astype(np.int32)
            longer.append(dataclasses.replace(c, inputs=c.inputs + ((x, lens),)))
        problems += check_cases(exe, longer, tally, trace=True)
        print(f"[{time.perf_counter() - t0:7.1f} s] batch {k} ({cc} {opt}{' asan+ubsan' if san else ''}): "
              f"models {tally.models} (refused by quantizer/importer {tally.refused}), sequences {tally.sequences}, "
              f"steps {tally.steps}, mismatches {tally.mismatches}", flush=True)
    print(f"done: {tally.models} models, {tally.sequences} sequences, {tally.steps} steps, "
          f"{tally.mismatches} mismatches in {time.perf_counter() - t0:.0f} s (seed {args.seed}, {args.cell})")
    for p in problems[:10]:
        print("MISMATCH", p)
    return 1 if tally.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
