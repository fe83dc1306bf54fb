"""Long fuzzing run of the ONNX importer: the properties of tests/test_fuzz_import.py for N minutes.

    python scripts/fuzz_importer.py --minutes 30             # random mutations, fresh seed
    python scripts/fuzz_importer.py --minutes 30 --seed 7    # reproducible
    python scripts/fuzz_importer.py --minutes 30 --atheris   # coverage-guided (needs atheris)

Each case is a seed model mutated by one family of tests/test_fuzz_import.py (attributes,
shapes, initializer bytes, op types, names, opsets, structure, raw bytes, mixed). The only
allowed outcomes are a refusal with a TinyLstmError, or a FloatModel whose small run works or
raises DataError. Anything else is a crash; crashes are grouped by signature (exception type
and the innermost tinylstm frame) and the first input of each is saved to ``--out``
(default /tmp/tinylstm-fuzz/) as ``<signature-hash>.onnx`` for ``tinylstm inspect``.

The ``--atheris`` mode runs libFuzzer in a child process on the first byte (raw model bytes
or a structured mutation driven by the rest) and restarts it after a timeout or an
out-of-memory kill; the parent prints the same summary.

Prints: cases tried, loaded, refused, crashes (total and distinct), per family.
Exit status 1 when a crash was found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import test_fuzz_import as fz  # noqa: E402

DEFAULT_OUT = Path("/tmp/tinylstm-fuzz")


def signature(exc: BaseException) -> str:
    """``Type at file:line (function)`` of the innermost tinylstm frame (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/tinylstm/" in f.filename]
    f = (ours or frames or [None])[-1]
    if f is None:
        return type(exc).__name__
    where = f.filename.split("/tinylstm/")[-1] if "/tinylstm/" in f.filename else Path(f.filename).name
    return f"{type(exc).__name__} at {where}:{f.lineno} ({f.name})"


class Tally:
    """Counts per family and distinct crash signatures; saves the first input of each."""

    def __init__(self, out: Path):
        self.out = out
        self.counts: Counter[tuple[str, str]] = Counter()
        self.crashes: dict[str, dict] = {}
        out.mkdir(parents=True, exist_ok=True)

    def record(self, family: str, data: bytes, result: str | BaseException) -> None:
        if isinstance(result, str):
            self.counts[(family, result)] += 1
            return
        self.counts[(family, "crash")] += 1
        sig = signature(result)
        entry = self.crashes.setdefault(sig, {"count": 0, "family": family, "message": str(result)[:300]})
        entry["count"] += 1
        if entry["count"] == 1:
            name = hashlib.sha1(sig.encode()).hexdigest()[:12] + ".onnx"
            (self.out / name).write_bytes(data)
            entry["file"] = str(self.out / name)
            print(f"new crash: {sig}: {entry['message'][:160]} -> {entry['file']}", flush=True)

    def summary(self, seconds: float) -> str:
        fams = sorted({f for f, _ in self.counts})
        lines = [f"{'family':<26} {'tried':>8} {'loaded':>8} {'refused':>8} {'crashes':>8}"]
        for fam in fams:
            c = {k: self.counts[(fam, k)] for k in ("loaded", "refused", "crash")}
            lines.append(f"{fam:<26} {sum(c.values()):>8} {c['loaded']:>8} {c['refused']:>8} {c['crash']:>8}")
        total = sum(self.counts.values())
        crashes = sum(v for (_, k), v in self.counts.items() if k == "crash")
        lines.append(f"{'total':<26} {total:>8} {'':>8} {'':>8} {crashes:>8}")
        lines.append(f"{len(self.crashes)} distinct crash signature(s) in {seconds:.0f} s")
        for sig, e in sorted(self.crashes.items(), key=lambda kv: -kv[1]["count"]):
            lines.append(f"  {e['count']:>6}x {sig} [{e['family']}] {e['message'][:120]!r} -> {e.get('file')}")
        return "\n".join(lines)


def run_random(minutes: float, seed: int, tally: Tally, families: tuple[str, ...]) -> None:
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + 60 * minutes
    with fz.memory_limit(), np.errstate(all="ignore"):
        import warnings

        warnings.simplefilter("ignore")
        while time.monotonic() < deadline:
            family = families[int(rng.integers(len(families)))]
            data = fz.mutated(family, fz.RngChooser(rng))
            try:
                result: str | BaseException = fz.outcome(data)
            except BaseException as e:  # noqa: BLE001 - every non-TinyLstmError is a finding
                if isinstance(e, KeyboardInterrupt):
                    raise
                result = e
            tally.record(family, data, result)


# --------------------------------------------------------------------------------------
# coverage-guided mode (atheris)
# --------------------------------------------------------------------------------------
class ProviderChooser:
    """A Chooser reading libFuzzer's input through atheris' FuzzedDataProvider."""

    def __init__(self, fdp):
        self.fdp = fdp

    def integer(self, lo: int, hi: int) -> int:
        return int(self.fdp.ConsumeIntInRange(lo, hi))

    def choice(self, seq):
        return seq[self.fdp.ConsumeIntInRange(0, len(seq) - 1)]

    def blob(self, max_size: int) -> bytes:
        return self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, max_size))


def atheris_child(out: Path, seconds: int) -> None:
    import atheris

    with atheris.instrument_imports(include=["tinylstm"]):
        import tinylstm  # noqa: F401
        import tinylstm.ir.reference  # noqa: F401
        import tinylstm.onnx_import  # noqa: F401
    tally = Tally(out)
    stats_path = out / f"stats-{os.getpid()}.json"
    last = [time.monotonic()]
    fz.time_limit = _no_time_limit  # libFuzzer owns SIGALRM (-timeout)

    def one(data: bytes) -> None:
        if not data:
            return
        if data[0] % 2 == 0:
            family, model = "raw_bytes", data[1:]
        else:
            fdp = atheris.FuzzedDataProvider(data[1:])
            ch = ProviderChooser(fdp)
            family = fz.FAMILIES[data[0] // 2 % len(fz.FAMILIES)]
            model = fz.mutated(family, ch)
        try:
            result: str | BaseException = fz.outcome(model)
        except Exception as e:  # noqa: BLE001
            result = e
        tally.record("atheris/" + family, model, result)
        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            stats_path.write_text(json.dumps({"counts": [[f, k, v] for (f, k), v in tally.counts.items()],
                                              "crashes": tally.crashes}))

    corpus = out / "atheris-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for k, seed in enumerate(fz.seed_models()):
        (corpus / f"seed{k}").write_bytes(b"\x00" + seed)
    import numpy as _np

    with fz.memory_limit(), _np.errstate(all="ignore"):
        import warnings

        warnings.simplefilter("ignore")
        atheris.Setup(
            [sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-timeout={fz.EXAMPLE_SECONDS}",
             "-rss_limit_mb=4096", f"-artifact_prefix={out}/", "-print_final_stats=1"],
            one,
        )
        atheris.Fuzz()


class _no_time_limit:
    def __init__(self, seconds: int):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_atheris(minutes: float, out: Path, tally: Tally) -> None:
    deadline = time.monotonic() + 60 * minutes
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("stats-*.json"):
        old.unlink()
    restarts = 0
    while (left := int(deadline - time.monotonic())) > 5:
        log = out / f"atheris-{restarts}.log"
        with open(log, "wb") as f:
            r = subprocess.run(
                [sys.executable, __file__, "--atheris-child", "--out", str(out), "--seconds", str(left)],
                stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
            )
        text = log.read_text(errors="replace")
        if "ALARM" in text or "timeout" in text.lower() and r.returncode:
            tally.counts[("atheris/timeout", "crash")] += 1
            tally.crashes.setdefault("timeout (libFuzzer -timeout)", {"count": 0, "family": "atheris",
                                                                       "message": "see " + str(log)})
            tally.crashes["timeout (libFuzzer -timeout)"]["count"] += 1
        elif "out-of-memory" in text:
            tally.counts[("atheris/oom", "crash")] += 1
            tally.crashes.setdefault("out of memory (libFuzzer -rss_limit_mb)", {"count": 0, "family": "atheris",
                                                                                "message": "see " + str(log)})
            tally.crashes["out of memory (libFuzzer -rss_limit_mb)"]["count"] += 1
        restarts += 1
        if r.returncode == 0:
            break
    for p in out.glob("stats-*.json"):
        s = json.loads(p.read_text())
        for fam, kind, v in s["counts"]:
            tally.counts[(fam, kind)] += v
        for sig, e in s["crashes"].items():
            mine = tally.crashes.setdefault(sig, {"count": 0, "family": e["family"], "message": e["message"],
                                                  "file": e.get("file")})
            mine["count"] += e["count"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="crash inputs (default %(default)s)")
    p.add_argument("--family", action="append", choices=fz.FAMILIES, help="only these families")
    p.add_argument("--atheris", action="store_true", help="coverage-guided mode (pip install atheris)")
    p.add_argument("--atheris-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=int, default=60, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.atheris_child:
        atheris_child(args.out, args.seconds)
        return 0
    tally = Tally(args.out)
    t0 = time.monotonic()
    if args.atheris:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install atheris)", file=sys.stderr)
            return 2
        print(f"atheris run for {args.minutes} min, crashes -> {args.out}", flush=True)
        run_atheris(args.minutes, args.out, tally)
    else:
        seed = args.seed if args.seed is not None else int(time.time())
        families = tuple(args.family or fz.FAMILIES)
        print(f"random run for {args.minutes} min, seed {seed}, crashes -> {args.out}", flush=True)
        try:
            run_random(args.minutes, seed, tally, families)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    print(tally.summary(time.monotonic() - t0))
    return 1 if tally.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
