"""Build the generated C on the host and run it on int8 data: the C side of every bit-exactness check.

:func:`build_host` generates one or several models (prefixes ``model`` or ``m0``, ``m1``...) into a
work folder with the harness (``codegen/harness/``, one build for all the models) and compiles
everything with the strict warning set of :data:`.toolchain.STRICT_FLAGS` (gcc or clang, any
``-O``, optionally ASan + UBSan). :func:`run_c` feeds int8 sequences in the ONNX input layout
(each row of the batch run on its own, batch 1) through ``<prefix>_run`` / ``_run_lens`` or step
by step through ``<prefix>_step``, and returns the int8 output in the ONNX output layout plus, on
request, every LSTM state (h and c of every layer and direction, per step) for comparison with
``QuantizedModel.run_int(..., trace=True)``. The harness protocol is in ``tl_harness.h``; Python's
side of it in :mod:`.protocol`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.plan import Plan
from ..codegen.writer import write_tree
from ..errors import DataError
from ..qmodel import QuantizedModel
from . import protocol
from .harness import harness_tree
from .protocol import INTERLEAVE, MODES, CTrace, Row, RowOut, stack_traces
from .toolchain import ToolchainError, compile_host


@dataclass(frozen=True, eq=False)
class HostExe:
    """A compiled harness holding one or several generated models."""

    exe: Path
    models: tuple[QuantizedModel, ...]
    plans: tuple[Plan, ...]
    prefixes: tuple[str, ...]
    compiler: str
    opt: str
    sanitize: bool
    command: tuple[str, ...]
    src_dir: Path

    def __fspath__(self) -> str:
        return os.fspath(self.exe)


def build_host(
    qmodel: QuantizedModel | Sequence[QuantizedModel],
    workdir: str | os.PathLike,
    compiler: str = "gcc",
    opt: str = "-O2",
    sanitize: bool = False,
    *,
    max_steps: int | None = None,
    extra_flags: Sequence[str] = (),
) -> HostExe:
    """Generate the C of one model (prefix ``model``) or several (``m0``, ``m1``...) into
    ``workdir``, add the harness and compile with the strict flags. Raises ToolchainError when
    the compiler is missing or fails (warnings are errors)."""
    models = (qmodel,) if isinstance(qmodel, QuantizedModel) else tuple(qmodel)
    prefixes = ("model",) if len(models) == 1 else tuple(f"m{i}" for i in range(len(models)))
    tree = harness_tree(models, prefixes, max_steps)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    src_dir = work / "src"
    write_tree(tree.files, src_dir)
    exe = work / f"harness_{compiler}{opt.replace('-', '_')}{'_san' if sanitize else ''}"
    defines = (*(f"-D{p.upper()}_TRACE" for p in prefixes), f"-DTLH_SLOTS={INTERLEAVE}")
    res = compile_host([src_dir / s for s in tree.sources], exe, compiler=compiler, opt=opt, sanitize=sanitize,
                       include_dirs=(src_dir,), extra_flags=defines + tuple(extra_flags), timeout=600)
    return HostExe(exe, models, tree.plans, prefixes, compiler, opt, sanitize, res.command, src_dir)


def run_rows(exe: HostExe, model: int, rows: Sequence[Row], mode: str = "run", trace: bool = False,
             timeout: float = 600) -> list[RowOut]:
    """Rows of model ``model`` through one run of the harness (the protocol's level: see
    :mod:`.protocol`); ``timeout`` (seconds) bounds the C process."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    plan = exe.plans[model]
    if mode != "run" and not plan.has_step:
        raise DataError(f"model {exe.prefixes[model]} has no step() (not causal); use mode='run'")
    if mode == "interleave" and trace:
        raise ValueError("interleave mode does not trace")
    with tempfile.TemporaryDirectory(prefix="tlh-") as tmp:
        pin, pout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        pin.write_bytes(protocol.encode_rows(rows))
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        cmd = [str(exe.exe), str(model), str(MODES.index(mode)), str(int(trace)), str(pin), str(pout)]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        if res.returncode != 0 or res.stderr.strip():
            err = res.stderr.decode(errors="replace").strip()
            raise ToolchainError(f"{' '.join(cmd)} exited with {res.returncode}: {err[-3000:]}")
        data = pout.read_bytes()
    layers = protocol.trace_layers(plan) if trace else None
    outs, end = protocol.decode_rows(data, rows, plan, per_step=mode != "run" or plan.output_seq, layers=layers)
    protocol.check_size(data, end)
    return outs


def run_c(
    exe: HostExe,
    x_int8: np.ndarray,
    mode: str = "run",
    trace: bool = False,
    *,
    model: int = 0,
    sequence_lens: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, tuple[CTrace, ...]] | None]:
    """Run a compiled model on an int8 batch in the ONNX input layout, one row at a time.

    ``mode``: ``"run"`` (``<prefix>_run``, or ``_run_lens`` with ``sequence_lens``), ``"step"``
    (reset, then ``<prefix>_step`` per time step) or ``"interleave"`` (like step, with
    several instances stepped in lock-step). Returns ``(y, trace)``: ``y`` int8 in the ONNX output
    layout (what ``QuantizedModel.run_int`` returns); ``trace`` (or None) maps each live LSTM
    layer's name to one :class:`CTrace` per direction.
    """
    plan = exe.plans[model]
    rows = protocol.rows_of(plan, x_int8, sequence_lens, mode=mode)
    outs = run_rows(exe, model, rows, mode, trace)
    y = protocol.assemble(plan, [o.y for o in outs])
    return y, (protocol.traces(protocol.trace_layers(plan), outs) if trace else None)


def run_c_steps(
    exe: HostExe,
    x_int8: np.ndarray,
    trace: bool = False,
    *,
    model: int = 0,
    timeout: float = 600,
) -> tuple[np.ndarray, dict[str, tuple[CTrace, ...]] | None]:
    """Stream each row of an int8 batch (ONNX input layout) through ``<prefix>_reset`` then one
    ``<prefix>_step`` per time step, keeping the output of EVERY step.

    Unlike ``run_c(exe, x, "step")``, which returns what ``run_int`` returns (for a many-to-one
    model only the output after the last step), ``y`` is ``(B, T, OUTPUT_SIZE)`` int8: what
    ``step()`` wrote after each step, features in the ONNX output order. ``trace`` as in
    :func:`run_c`. ``timeout`` (seconds) bounds the one C process, for long streams.
    """
    plan = exe.plans[model]
    rows = protocol.rows_of(plan, x_int8, mode="step")
    outs = run_rows(exe, model, rows, "step", trace, timeout)
    return protocol.step_outputs(plan, outs), (protocol.traces(protocol.trace_layers(plan), outs) if trace else None)


def host_runner(
    qmodel: QuantizedModel,
    compiler: str = "gcc",
    workdir: str | os.PathLike | None = None,
    opt: str = "-O2",
) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """Build once; return ``runner(int_inputs) -> outputs`` for ``validate``: each input a canonical
    int8 batch ``(n, T, F)`` (rows of one length), each output the canonical output, a row per
    sequence."""
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="tinylstm-host-"))
    exe = build_host(qmodel, work / f"host_{compiler}", compiler=compiler, opt=opt)

    def runner(int_inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        nonlocal exe
        longest = max((x.shape[1] for x in int_inputs), default=0)
        max_steps = exe.plans[0].max_steps
        if max_steps is not None and longest > max_steps:  # buffered: room for the data
            exe = build_host(qmodel, work / f"host_{compiler}_{longest}", compiler=compiler, opt=opt,
                             max_steps=longest)
        batches = [protocol.canonical_rows(exe.plans[0], x, who="the host runner") for x in int_inputs]
        outs = run_rows(exe, 0, [r for rows in batches for r in rows])
        return protocol.assemble_batches(exe.plans[0], outs, [len(rows) for rows in batches])

    return runner


__all__ = ["CTrace", "HostExe", "build_host", "host_runner", "run_c", "run_c_steps", "run_rows", "stack_traces"]
