"""Instructions per function of one LSTM step on an emulated core: where a hidden unit's work goes.

    .venv/bin/python bench/profile_target.py [--target cortex-m4] [--hidden 64] [--inputs 16]
                                             [--steps 8] [--opt -Os] [--top 12]

Builds the random layer of bench_target.py (untraced), runs ``model_run`` once on T random steps
under QEMU with ``-d in_asm,exec,nochain`` (every translation block logged when it executes) and
attributes each block's instructions to the function QEMU names. Prints the functions with the
most instructions, in total and per hidden unit (total / (T·H)). The whole run is counted, so
start-up, file I/O and the per-step copies appear too; the LSTM functions dominate.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_target import random_lstm  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.cbuild import emulated as ctarget  # noqa: E402
from tinylstm.cbuild import qemu  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402


def profile(log: Path) -> collections.Counter:
    """Instructions executed per function name, from a QEMU in_asm + exec log."""
    size: dict[int, int] = {}
    name: dict[int, str] = {}
    runs: collections.Counter = collections.Counter()
    block, fn = None, "?"
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("IN:"):
            fn, block = line[3:].strip() or "?", None
            continue
        m = re.match(r"^0x([0-9a-f]+):\s", line)
        if m:
            if block is None:
                block = int(m.group(1), 16)
                size[block], name[block] = 0, fn
            size[block] += 1
            continue
        if not line.strip():
            block = None
            continue
        t = re.match(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
        if t:
            runs[int(t.group(1), 16)] += 1
    per: collections.Counter = collections.Counter()
    for pc, n in runs.items():
        per[name.get(pc, "?")] += n * size.get(pc, 0)
    return per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--inputs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--opt", default="-Os")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    fm = tinylstm.load_onnx(random_lstm(args.inputs, args.hidden))
    q = quantize(fm, [rng.uniform(-1, 1, (args.steps, args.inputs)).astype(np.float32) for _ in range(4)])
    x = q.quantize_input(rng.uniform(-1, 1, (args.steps, 1, args.inputs)).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="tinylstm-profile-") as tmp:
        work = Path(tmp)
        exe = ctarget.build_target(q, args.target, work / "build", args.opt)
        log = work / "qemu.log"
        wrapper = work / "qemu-logging"  # QEMU with the logging options appended
        wrapper.write_text(f'#!/bin/sh\nexec {qemu.QEMU} "$@" -d in_asm,exec,nochain -D {log}\n')
        wrapper.chmod(0o755)
        plain, qemu.QEMU = qemu.QEMU, str(wrapper)
        try:
            ctarget.run_target(exe, x, "run")
        finally:
            qemu.QEMU = plain
        per = profile(log)
    units = args.steps * args.hidden
    print(f"{args.target} {args.opt}, one LSTM layer I = {args.inputs}, H = {args.hidden}, T = {args.steps}")
    print(f"{'function':<32} {'instructions':>12} {'per unit':>9}")
    for fn, n in per.most_common(args.top):
        print(f"{fn:<32} {n:>12} {n / units:>9.1f}")
    print(f"{'total':<32} {sum(per.values()):>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
