"""Regenerate docs/results.md: every shipped model scored on float, the int8 simulator and C.

    .venv/bin/python bench/results_table.py [--out docs/results.md] [--limit N] [--no-target]

Rows: JapaneseVowels (370 test utterances) and the paper tasks adding T = 100, T = 400 and
temporal order 6a (2560 test sequences each). Columns: onnxruntime float, the numpy simulator,
the generated C built with gcc and clang on this machine and, when arm-none-eabi-gcc and
qemu-system-arm are installed, built for Cortex-M4 (-Os) and run under QEMU; each C column is
scored with the task's criterion and counted against the simulator (must be 0 sequences apart).
The machine and tool versions go under the table. Takes about 3 minutes on one core.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from paper_tasks import TaskResult, evaluate_task  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.cbuild.toolchain import missing_reason, which  # noqa: E402

MODELS = ("japanese_vowels", "adding_T100", "adding_T400", "temporal_order_6a")
TITLES = {
    "japanese_vowels": "JapaneseVowels LSTM(32), 9 speakers",
    "adding_T100": "adding problem, T = 100",
    "adding_T400": "adding problem, T = 400",
    "temporal_order_6a": "temporal order 6a, 4 classes",
}
TARGET = "cortex-m4"


def _cell(r: TaskResult, score) -> str:
    text = f"{score.wrong} wrong"
    if r.task.startswith("adding"):
        text += f" ({score.mean_abs_error:.4f})"
    else:
        text = f"{100 * score.accuracy:.2f} % ({score.wrong} wrong)"
    return text


def _tool_version(cmd: str, flag: str = "--version") -> str:
    if which(cmd) is None:
        return "not installed"
    out = subprocess.run([cmd, flag], capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()[0].strip() if out else "?"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(results: list[TaskResult], c_names: list[str], target_note: str | None, seconds: float,
           limit: int | None) -> str:
    head = ["model", "test set", "correct when", "float (onnxruntime)", "int8 simulator"]
    head += [f"C {n}" for n in c_names] + ["C vs simulator", "params", "flash / RAM (B)"]
    lines = [
        "# Results",
        "",
        "Every shipped model (`examples/models/`), quantized with the defaults (int8 activations, "
        "int16 cell, int16 LSTM weights, P = 16, 513-entry tables) on its calibration set, "
        "scored on its test set. Adding: wrong = |error| >= 0.04 (mean |error| in brackets); "
        "classifiers: arg-max of the logits. "
        "\"C vs simulator\" counts sequences whose int8 output differs from the simulator's "
        "over every C build in the row: it must be 0.",
        "",
        "Regenerate: `.venv/bin/python bench/results_table.py` (one command; "
        f"this run took {seconds:.0f} s).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results:
        by = {c.name: c for c in r.c}
        cells = [TITLES[r.task], f"{r.n}", r.criterion, _cell(r, r.float_score), _cell(r, r.int8_score)]
        cells += [_cell(r, by[n].score) if n in by else "—" for n in c_names]
        cells += [f"**{sum(c.mismatched_sequences for c in r.c)}**", f"{r.parameters}",
                  f"{r.flash_bytes} / {r.ram_bytes}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for r in results:
        if r.threshold is not None:
            lines += ["", f"{TITLES[r.task]}, the paper's own rule (every |softmax − one-hot| < 0.3): "
                      f"float {r.threshold[0]} wrong, int8 {r.threshold[1]} wrong of {r.n}."]
    if limit is not None:
        lines += ["", f"**Partial run:** only the first {limit} sequences of each test set."]
    if target_note:
        lines += ["", f"Cortex-M4 column skipped: {target_note}"]
    lines += [
        "",
        "Flash = the generated C's const data (weights, tables, per-row parameters) for a 32-bit "
        "target; RAM = `sizeof(<prefix>_state_t)`. Compiled sizes per core: `tinylstm analyze "
        "m.tlq --target cortex-m4` and docs/targets.md.",
        "",
        "## Machine",
        "",
        f"- {platform.system()} {platform.release()} {platform.machine()}; CPU: {_cpu()}",
        f"- Python {platform.python_version()}, numpy {np.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, tinylstm {tinylstm.__version__}",
        f"- {_tool_version('gcc')}; {_tool_version('clang')}",
        f"- {_tool_version('arm-none-eabi-gcc')}; {_tool_version('qemu-system-arm')}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test sequences")
    ap.add_argument("--no-target", action="store_true", help="skip the emulated Cortex-M4 column")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    compilers = [cc for cc in ("gcc", "clang") if which(cc)]
    note = "not requested (--no-target)" if args.no_target else missing_reason("arm-none-eabi-gcc",
                                                                             "qemu-system-arm")
    targets = [] if note else [TARGET]
    results = []
    for name in MODELS:
        r = evaluate_task(name, limit=args.limit, compilers=compilers, targets=targets)
        print(f"{name}: {r.seconds:.1f} s", flush=True)
        results.append(r)
    c_names = [f"host {cc} -O2" for cc in compilers] + [f"{TARGET} -Os" for _ in targets]
    text = render(results, c_names, note, time.perf_counter() - t0, args.limit)
    args.out.write_text(text)
    print(text)
    return 0 if all(c.mismatched_sequences == 0 for r in results for c in r.c) else 1


if __name__ == "__main__":
    sys.exit(main())
