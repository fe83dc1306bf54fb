"""Time the generated C of one integer model on the host, inside the C program.

:func:`build_timing` generates the model (prefix ``model``) with the runtime, adds the bench-only
harness ``bench/host_timing.c`` and compiles it (strict warnings, ``-O2`` by default).
:func:`time_c` feeds int8 sequences (ONNX input layout, any batch; or a list of batch-1 arrays)
and returns the outputs of ``model_run`` / ``model_step`` in the ONNX output layout (what
``QuantizedModel.run_int`` returns, for an exact check) and the times measured around the model
calls with ``clock_gettime(CLOCK_MONOTONIC)``: per ``step()`` call, per step of ``run()``, and per
sequence (median of several ``run()`` calls). Process start-up and file I/O are outside the timed
windows; every measurement follows a warm-up pass.

Used by bench/bench_host.py and bench/peers/run.py (which put ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tinylstm.codegen.emit import emit_model
from tinylstm.codegen.plan import Plan, make_plan
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

from tinylstm.cbuild import protocol
from tinylstm.cbuild.toolchain import ToolchainError, compile_host
from tinylstm.qmodel import QuantizedModel

HARNESS = Path(__file__).resolve().parent / "host_timing.c"


@dataclass(frozen=True, eq=False)
class TimingExe:
    """The timing harness compiled with one generated model."""

    exe: Path
    qmodel: QuantizedModel
    plan: Plan
    compiler: str
    opt: str
    command: tuple[str, ...]
    src_dir: Path


@dataclass(frozen=True)
class CTiming:
    """What one harness run measured (times in nanoseconds)."""

    y_run: list[np.ndarray]  # per sequence, int8 in the ONNX output layout at batch 1: model_run()
    y_step: list[np.ndarray] | None  # per sequence: what step() wrote (after the last step; causal models)
    steps: int  # total steps of one pass over every sequence
    sequences: int
    step_pass_ns: tuple[int, ...]  # (repeats,) one pass of reset + step() over every sequence; () without step
    run_pass_ns: tuple[int, ...]  # (repeats,) one pass of run() over every sequence; () when repeats = 0
    seq_run_ns: tuple[int, ...]  # (sequences,) median ns of one run() call per sequence; () when repeats = 0

    @property
    def step_ns(self) -> float | None:
        """Median ns per step() call (reset per sequence included)."""
        return float(np.median(self.step_pass_ns)) / self.steps if self.step_pass_ns else None

    @property
    def run_ns_per_step(self) -> float | None:
        return float(np.median(self.run_pass_ns)) / self.steps if self.run_pass_ns else None

    @property
    def seq_median_ns(self) -> float | None:
        """Median over sequences of the per-sequence run() latency."""
        return float(np.median(self.seq_run_ns)) if self.seq_run_ns else None


def build_timing(qmodel: QuantizedModel, workdir: str | os.PathLike, compiler: str = "gcc",
                 opt: str = "-O2") -> TimingExe:
    """Generate ``qmodel`` (prefix ``model``) into ``workdir/src`` and compile it with the timing harness."""
    plan = make_plan(qmodel)
    work = Path(workdir)
    src = work / "src"
    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = dict(runtime_files())
    files.update(emit_model(qmodel, "model"))
    write_tree(files, src)
    shutil.copyfile(HARNESS, src / HARNESS.name)
    sources = [src / "model.c", *(src / s for s in RUNTIME_SOURCES), src / HARNESS.name]
    exe = work / f"host_timing_{compiler}{opt.replace('-', '_')}"
    res = compile_host(sources, exe, compiler=compiler, opt=opt, include_dirs=(src,), timeout=600)
    return TimingExe(exe, qmodel, plan, compiler, opt, res.command, src)


def _rows(plan: Plan, x_int8: np.ndarray | Sequence[np.ndarray]) -> list[protocol.Row]:
    batches = [x_int8] if isinstance(x_int8, np.ndarray) else list(x_int8)
    return [r for x in batches for r in protocol.rows_of(plan, x, who="time_c")]


def _ints(line: str, key: str) -> tuple[int, ...]:
    parts = line.split()
    if not parts or parts[0] != key:
        raise ToolchainError(f"timing harness: expected '{key} ...', got {line[:80]!r}")
    return tuple(int(v) for v in parts[1:])


def time_c(exe: TimingExe, x_int8: np.ndarray | Sequence[np.ndarray], *, min_ms: int = 50, repeats: int = 7,
           seq_repeats: int = 5, timeout: float = 1800) -> CTiming:
    """Run the harness on int8 sequences: an ONNX-layout batch of one length, or a list of such
    batches (e.g. batch-1 arrays of different lengths). Outputs come back per sequence (batch 1,
    ONNX layout; compare with ``run_int`` of that sequence), in the order of the rows given.
    ``repeats=0``: outputs only, nothing timed."""
    plan = exe.plan
    rows = _rows(plan, x_int8)
    with tempfile.TemporaryDirectory(prefix="tl-timing-") as tmp:
        pin, pout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        pin.write_bytes(protocol.encode_rows(rows))
        cmd = [str(exe.exe), str(pin), str(pout), str(min_ms), str(repeats), str(seq_repeats)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0 or res.stderr.strip():
            raise ToolchainError(f"{' '.join(cmd)} exited with {res.returncode}: {res.stderr.strip()[-2000:]}")
        data = pout.read_bytes()
    what = "timing harness"
    run_outs, pos = protocol.decode_rows(data, rows, plan, per_step=plan.output_seq, what=what)
    step_outs: list[protocol.RowOut] = []
    if plan.has_step:
        step_outs, pos = protocol.decode_rows(data, rows, plan, per_step=True, offset=pos, what=what)
    protocol.check_size(data, pos, what)
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.strip()}
    y_run = [protocol.assemble(plan, [o.y]) for o in run_outs]
    y_step = [protocol.assemble(plan, [o.y]) for o in step_outs] if plan.has_step else None
    return CTiming(
        y_run=y_run,
        y_step=y_step,
        steps=_ints(lines["steps"], "steps")[0],
        sequences=_ints(lines["sequences"], "sequences")[0],
        step_pass_ns=_ints(lines["step_pass_ns"], "step_pass_ns") if plan.has_step and repeats else (),
        run_pass_ns=_ints(lines["run_pass_ns"], "run_pass_ns") if repeats else (),
        seq_run_ns=_ints(lines["seq_run_ns"], "seq_run_ns") if repeats else (),
    )


__all__ = ["CTiming", "TimingExe", "build_timing", "time_c"]
