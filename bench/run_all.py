"""Run the benchmarks that need only the project venv, one after the other (``make bench``).

    .venv/bin/python bench/run_all.py [--list] [--only NAME[,NAME]] [--quick] [--no-write]

Prints the machine first, then runs each benchmark as its own process with this Python; each one
writes its table into the docs as it does when run alone (``--no-write``: print only, docs left
alone). ``--quick`` runs each on a small configuration to check that it works: its figures are
not the documented ones, so it never writes the docs. A benchmark whose tools are missing
(e.g. arm-none-eabi-gcc, qemu-system-arm) is skipped with a note. Exits 1 if any benchmark fails.

Not run here: the peer benchmark (bench/peers/, needs its own ``.venv-peers``, see
docs/peers.md) and the long reliability runs (bench/fuzz_c_long.py, bench/fuzz_target.py,
bench/stream_long.py: hours, see docs/reliability-c.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from machine_info import cpu_model, tool_version  # noqa: E402

ARM_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")


@dataclass(frozen=True)
class Bench:
    """One benchmark: a script of bench/ run once per argument list."""

    name: str
    script: str
    about: str
    writes: str  # the doc the full run updates, "" when it only prints
    needs: tuple[str, ...]  # executables that must be on PATH
    full: tuple[tuple[str, ...], ...]  # argument lists of the full run (one process each)
    quick: tuple[tuple[str, ...], ...]  # argument lists of --quick (must leave the docs alone)
    no_write: tuple[str, ...] = ()  # arguments that keep a full run from writing the docs


BENCHES = (
    Bench("simulator", "bench_simulator.py",
          "numpy simulator vs onnxruntime throughput (the rows of docs/quantization.md §13.6)",
          "", (), (("--table",),), (("--table", "--batch", "16", "--repeat", "1"),)),
    Bench("results", "results_table.py", "every shipped model on float, simulator, host C, Cortex-M4",
          "docs/results.md", ("gcc",), ((),), (("--limit", "8", "--out", "{tmp}/results.md"),),
          ("--out", "{tmp}/results.md")),
    Bench("host", "bench_host.py", "host C latency per step vs onnxruntime; `tinylstm build` wall time",
          "docs/host-bench.md", ("gcc",), (("--compilers={compilers}",),),
          (("--compilers={compilers}", "--repeats", "1", "--sim-seqs", "0", "--skip-build-time", "--no-write"),),
          ("--no-write",)),
    Bench("target", "bench_target.py", "instructions/MAC and footprint on emulated Cortex-M",
          "docs/targets.md", ("gcc", *ARM_TOOLS), ((),),
          (("--hidden", "32", "--targets", "cortex-m4", "--opts=-Os", "--bits", "16", "--portable=",
            "--no-write"),), ("--no-write",)),
    Bench("profile", "profile_target.py", "instructions per function of one LSTM step (targets.md figures)",
          "", ARM_TOOLS, (("--target", "cortex-m4"), ("--target", "cortex-m0plus")),
          (("--hidden", "16", "--steps", "2", "--top", "5"),)),
)

NOT_RUN = (
    "peers: needs the separate .venv-peers (TensorFlow, LiteRT, TFLM); set it up as docs/peers.md says, "
    "then run `.venv-peers/bin/python bench/peers/run.py` (writes docs/peers.md)",
    "fuzz_c_long, fuzz_target, stream_long: long reliability runs (hours), see docs/reliability-c.md",
)


def _which(tool: str) -> bool:
    return any(os.access(Path(d) / tool, os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def machine_line() -> str:
    """CPU, cores, OS, Python and the compilers / emulator the benchmarks use."""
    tools = "; ".join(f"{t}: {tool_version([t, '--version'], missing='not installed')}"
                      for t in ("gcc", "clang", "arm-none-eabi-gcc", "qemu-system-arm"))
    return (f"Machine: {cpu_model(platform.machine())}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; {tools}")


def select(only: str | None) -> list[Bench]:
    """The benchmarks named in ``only`` (comma-separated), in run order; all when ``only`` is None."""
    if only is None:
        return list(BENCHES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {b.name for b in BENCHES}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"error: unknown benchmark {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(b.name for b in BENCHES)}")
    return [b for b in BENCHES if b.name in names]


def commands(b: Bench, quick: bool, no_write: bool, tmp: str) -> list[list[str]]:
    """The processes to start for ``b``; ``{tmp}`` stands for a scratch directory, ``{compilers}``
    for the host compilers (gcc, clang) that are installed."""
    runs = b.quick if quick else tuple(args + (b.no_write if no_write else ()) for args in b.full)
    script = str(ROOT / "bench" / b.script)
    compilers = ",".join(cc for cc in ("gcc", "clang") if _which(cc))
    return [[sys.executable, script, *(a.replace("{tmp}", tmp).replace("{compilers}", compilers) for a in args)]
            for args in runs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--only", metavar="NAME[,NAME]", help="run only these benchmarks")
    ap.add_argument("--quick", action="store_true", help="small configurations, a smoke run; docs untouched")
    ap.add_argument("--no-write", action="store_true", help="print the tables only; docs untouched")
    args = ap.parse_args(argv)
    chosen = select(args.only)
    if args.list:
        for b in chosen:
            where = f"writes {b.writes}" if b.writes else "prints only"
            print(f"{b.name:<10} bench/{b.script:<20} {b.about} ({where})")
        print("\nnot run by this script:")
        for note in NOT_RUN:
            print(f"  {note}")
        return 0

    print(machine_line(), flush=True)
    if args.only is None:
        for note in NOT_RUN:
            print(f"note: skipped {note}", flush=True)
    failed: list[str] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinylstm-bench-") as tmp:
        for b in chosen:
            missing = [t for t in b.needs if not _which(t)]
            if missing:
                print(f"\n== {b.name}: skipped, {' and '.join(missing)} not installed "
                      "(`make sysdeps` installs them when it can)", flush=True)
                skipped.append(b.name)
                continue
            for cmd in commands(b, args.quick, args.no_write, tmp):
                shown = " ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))
                print(f"\n== {b.name}: {shown}", flush=True)
                t0 = time.perf_counter()
                rc = subprocess.run(cmd, cwd=ROOT).returncode
                print(f"== {b.name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} "
                      f"in {time.perf_counter() - t0:.0f} s", flush=True)
                if rc != 0:
                    failed.append(b.name)
    ran = [b.name for b in chosen if b.name not in skipped]
    print(f"\nran: {', '.join(ran) or '-'}; skipped: {', '.join(skipped) or '-'}; "
          f"failed: {', '.join(dict.fromkeys(failed)) or '-'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
