"""The generated C on emulated Cortex-M cores: bit-exact runs, instruction counts, footprint.

:func:`build_target` generates one integer model with the harness (``codegen/harness/``, the
same C as the host runner's) and cross-compiles everything for a core (:mod:`.crossbuild`: our
start-up and linker scripts). :func:`run_target` streams int8 sequences in the ONNX input layout
through ``<prefix>_run`` / ``_run_lens`` or ``<prefix>_step`` on the core's QEMU board
(:mod:`.qemu`) and returns the int8 output in the ONNX output layout (what
``QuantizedModel.run_int`` returns), optionally every LSTM state per step (traced builds) and the
instructions executed per inference and per ``step()`` call (QEMU plugin, exact).
:func:`target_footprint` splits the build's size into runtime code, model code, weights and
tables, state RAM and worst-case stack (:mod:`.footprint`). :func:`target_runner` /
:func:`target_runners` give ``tinylstm.validate`` its ``c_runners``.

The harness protocol is in ``tl_harness.h`` (Python's side in :mod:`.protocol`). The harness
reads, runs and writes one sequence at a time, so its RAM use is bounded by the longest sequence,
not by the data set. Every inference is a ``tl_bench_begin()``/``tl_bench_end()`` window of
depth 0; in step mode every ``step()`` call is a window of depth 1 inside it (a nested window
adds its count + 4 to its parent).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.plan import Plan
from ..codegen.writer import write_tree
from ..errors import DataError
from ..ir.macs import macs_per_step
from ..lowering import kernels_for
from ..qmodel import QuantizedModel
from . import protocol, qemu
from .cores import OPT_LEVELS, Target, get_target
from .crossbuild import TargetBuild, build
from .footprint import TargetFootprint, model_footprint
from .harness import harness_tree
from .protocol import CTrace, LayerInfo, Row, RowOut
from .toolchain import STRICT_FLAGS, ToolchainError

MODES = ("run", "step")
#: optimisation level of a target spec without one ("cortex-m4" = "cortex-m4:-Os")
DEFAULT_OPT = "-Os"
#: QEMU timeout per run (seconds); QEMU executes about 1.6e9 guest instructions per second
RUN_TIMEOUT = 600.0


@dataclass(frozen=True, eq=False)
class TargetExe:
    """A cross-compiled harness holding one generated model."""

    build: TargetBuild
    model: QuantizedModel
    plan: Plan  # what the generated C does (step() exists, layouts, MAX_STEPS)
    prefix: str
    opt: str
    traced: bool  # built with <PREFIX>_TRACE: the trace hook runs inside the count windows
    layers: tuple[LayerInfo, ...]  # live LSTM layers, in the trace order
    src_dir: Path
    kernels: str = "portable"  # the kernels the model was generated for: "portable" or "mve" (Helium)

    @property
    def target(self) -> Target:
        return self.build.target

    @property
    def elf(self) -> Path:
        return self.build.elf

    @property
    def has_step(self) -> bool:
        return self.plan.has_step


@dataclass(frozen=True)
class TargetRun:
    """What one batch did on the target."""

    y: np.ndarray  # int8, ONNX output layout (equal to run_int's)
    trace: dict[str, tuple[CTrace, ...]] | None  # layer name -> one CTrace per direction
    inference_instructions: tuple[int, ...] | None  # (B,) per row: run(), or reset + every step()
    step_instructions: tuple[tuple[int, ...], ...] | None  # (B, T) per step() call (step mode)
    total_instructions: int | None  # the whole QEMU run (start-up, file I/O, harness)


def build_target(
    qmodel: QuantizedModel,
    target: str | Target,
    workdir: str | os.PathLike,
    opt: str = DEFAULT_OPT,
    *,
    trace: bool = False,
    prefix: str = "model",
    max_steps: int | None = None,
    extra_cflags: Sequence[str] = (),
    kernels: str | None = None,
) -> TargetExe:
    """Generate ``qmodel``'s C into ``workdir/src``, add the harness and cross-compile for ``target``.

    ``trace=True`` defines ``<PREFIX>_TRACE`` so :func:`run_target` can return every LSTM state
    (the hook then runs inside the count windows: count and size untraced builds).
    ``max_steps`` bounds ``run()`` of non-causal models (default: the input's static length,
    else 256). ``kernels``: the kernels the model is generated for, "portable" or "mve" (default: the
    core's own, :func:`tinylstm.lowering.kernels_for`: the Helium kernels on cortex-m55). Everything
    compiles with :data:`.toolchain.STRICT_FLAGS`; a compiler error or a missing toolchain raises
    :class:`ToolchainError`.
    """
    t = get_target(target)
    kern = kernels_for(kernels if kernels is not None else t.name)
    tree = harness_tree((qmodel,), (prefix,), max_steps, target=kern)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    src_dir = work / "src"
    write_tree(tree.files, src_dir)
    elf = work / f"harness_{t.name}{opt.replace('-', '_')}{'_trace' if trace else ''}.elf"
    b = build(t, [src_dir / s for s in tree.sources], elf, include_dirs=[src_dir], opt=opt,
              defines=["TLH_COUNT", *([f"{prefix.upper()}_TRACE"] if trace else [])],
              extra_cflags=[*STRICT_FLAGS, *extra_cflags], timeout=600)
    plan = tree.plans[0]
    return TargetExe(b, qmodel, plan, prefix, opt, trace, protocol.trace_layers(plan), src_dir, kern)


# ---- running -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    rows: tuple[RowOut, ...]
    inference: tuple[int, ...] | None  # per row
    steps: tuple[tuple[int, ...], ...] | None  # per row, per step() call
    total: int | None


def _rows(exe: TargetExe, x_int8: np.ndarray, sequence_lens: np.ndarray | None = None,
          mode: str = "run") -> list[Row]:
    return protocol.rows_of(exe.plan, x_int8, sequence_lens, mode=mode, who="the target runner")


def _run_rows(exe: TargetExe, rows: Sequence[Row], mode: str, trace: bool, count: bool, timeout: float) -> _Batch:
    """Rows through one QEMU run of the harness -> outputs, traces and counts."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "step" and not exe.has_step:
        raise DataError("this model has no step() (a reverse or bidirectional LSTM, or a head reading an "
                        "early step); use mode='run'")
    if trace and not exe.traced:
        raise ValueError("trace=True needs a build made with build_target(..., trace=True)")
    if count and exe.traced:
        raise ValueError("count=True needs an untraced build (the trace hook would be counted)")
    exe.plan.check_steps(max((r.x.shape[0] for r in rows), default=0))
    with tempfile.TemporaryDirectory(prefix="tinylstm-target-") as tmp:
        Path(tmp, "in.bin").write_bytes(protocol.encode_rows(rows, "<"))
        res = qemu.run(exe.target, exe.elf, ["0", str(MODES.index(mode)), str(int(trace)), "in.bin", "out.bin"],
                       cwd=tmp, timeout=timeout, count=count, check=True)
        data = Path(tmp, "out.bin").read_bytes()
    what = f"the {exe.target.name} harness"
    outs, end = protocol.decode_rows(data, rows, exe.plan, per_step=mode == "step" or exe.plan.output_seq,
                                     layers=exe.layers if trace else None, order="<", what=what)
    protocol.check_size(data, end, what)
    inference = per_step = None
    if count:
        inference, per_step = _split_windows(res.windows, [r.x.shape[0] for r in rows], mode)
    return _Batch(tuple(outs), inference, per_step, res.total_instructions)


def _split_windows(windows: Sequence[qemu.Window], steps: Sequence[int], mode: str
                   ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...] | None]:
    outer = [w.count for w in windows if w.depth == 0]
    inner = [w.count for w in windows if w.depth == 1]
    want_inner = sum(steps) if mode == "step" else 0
    if len(outer) != len(steps) or len(inner) != want_inner or len(windows) != len(outer) + len(inner):
        raise ToolchainError(f"the instruction counter saw {len(outer)} inferences and {len(inner)} steps, "
                             f"expected {len(steps)} and {want_inner}")
    if mode != "step":
        return tuple(outer), None
    per_row, pos = [], 0
    for s in steps:
        per_row.append(tuple(inner[pos : pos + s]))
        pos += s
    return tuple(outer), tuple(per_row)


def run_target(
    exe: TargetExe,
    x_int8: np.ndarray,
    mode: str = "run",
    *,
    trace: bool = False,
    count: bool = False,
    sequence_lens: np.ndarray | None = None,
    timeout: float = RUN_TIMEOUT,
) -> TargetRun:
    """Run an int8 batch (ONNX input layout; each row its own sequence, batch 1) on the target.

    ``mode``: ``"run"`` (``<prefix>_run``, or ``_run_lens`` with ``sequence_lens``) or ``"step"``
    (state filled with garbage, ``<prefix>_reset``, then one ``<prefix>_step`` per time step).
    ``trace=True`` (traced builds only) also returns every LSTM state per step, shaped like
    ``run_int(..., trace=True)``'s; ``count=True`` (untraced builds only) the instructions of each
    inference and each ``step()`` call. A fault, a hang or a wrong exit raises ToolchainError.
    """
    out = _run_rows(exe, _rows(exe, x_int8, sequence_lens, mode), mode, trace, count, timeout)
    y = protocol.assemble(exe.plan, [o.y for o in out.rows])
    traces = protocol.traces(exe.layers, out.rows) if trace else None
    return TargetRun(y, traces, out.inference, out.steps, out.total)


# ---- instruction counts and footprint ---------------------------------------------------------------


@dataclass(frozen=True)
class StepCounts:
    """Instructions of one sequence on one core."""

    target: str
    opt: str
    steps: int  # T
    inference: int  # run() over the T steps (streaming and buffered models alike)
    per_step: tuple[int, ...] | None  # each step() call of a second run in step mode (causal models)
    macs_per_step: int

    @property
    def step_mean(self) -> float:
        """Mean instructions per time step: of the step() calls when measured, else run() / T."""
        if self.per_step:
            return float(np.mean(self.per_step))
        return self.inference / max(self.steps, 1)

    @property
    def instructions_per_mac(self) -> float:
        return self.step_mean / self.macs_per_step if self.macs_per_step else float("nan")


def count_steps(exe: TargetExe, x_int8: np.ndarray, *, timeout: float = RUN_TIMEOUT) -> StepCounts:
    """Instructions of ``run()`` on the first row of ``x_int8`` (ONNX layout) and, for causal
    models, of each ``step()`` call on the same row."""
    if exe.traced:
        raise ValueError("count instructions on an untraced build (build_target(..., trace=False))")
    row = _rows(exe, x_int8)[:1]
    if not row:
        raise DataError("count_steps needs at least one sequence")
    r = _run_rows(exe, row, "run", False, True, timeout)
    per_step = None
    if exe.has_step:
        s = _run_rows(exe, row, "step", False, True, timeout)
        per_step = s.steps[0] if s.steps else None
    assert r.inference is not None
    return StepCounts(exe.target.name, exe.opt, int(row[0].x.shape[0]), r.inference[0], per_step,
                      macs_per_step(exe.model))


def target_footprint(exe: TargetExe) -> TargetFootprint:
    """Runtime / model code, weights and tables, state RAM and worst-case stack of the build.

    Sizes come from the linked ELF's symbol table (so only code reachable from the harness
    counts); the stack bound walks gcc's call-graph files from ``<prefix>_run`` (and
    ``<prefix>_step``). Measure untraced builds: the trace hook is model code.
    """
    p = exe.prefix
    roots = [f"{p}_run"] + ([f"{p}_step"] if exe.has_step else [])
    return model_footprint(exe.build, exe.opt, p, roots, (exe.src_dir / f"{p}.h").read_text(), f"tlh_{p}_state")


# ---- runners for tinylstm.validate -----------------------------------------------------------------


def parse_target_spec(spec: str) -> tuple[str, str]:
    """``"cortex-m4"`` -> (cortex-m4, -Os); ``"cortex-m4:-O2"`` or ``"cortex-m4:O2"`` -> (cortex-m4, -O2)."""
    name, _, opt = spec.strip().partition(":")
    name = name.strip()
    opt = opt.strip() or DEFAULT_OPT
    if not opt.startswith("-"):
        opt = "-" + opt
    get_target(name)  # raises ToolchainError naming the supported cores
    if opt not in OPT_LEVELS:
        raise ToolchainError(f"unsupported optimisation level {opt!r} in {spec!r}; use one of "
                             f"{', '.join(OPT_LEVELS)}")
    return name, opt


@dataclass(frozen=True)
class TargetCost:
    """What a model costs on one core: the build's footprint and the instruction counts of one
    sequence (``count_steps``)."""

    footprint: TargetFootprint
    counts: StepCounts
    kernels: str = "portable"  # the kernels of the build: "portable" or "mve" (Helium)

    def to_dict(self) -> dict[str, object]:
        f, c = self.footprint, self.counts
        return {"target": f.target, "opt": f.opt, "kernels": self.kernels, "runtime_text": f.runtime_text,
                "model_text": f.model_text,
                "library_text": f.library_text, "model_rodata": f.model_rodata, "state_bytes": f.state_bytes,
                "scratch_bytes": f.scratch_bytes, "stack_bytes": f.stack_bytes, "steps": c.steps,
                "instructions_per_inference": c.inference, "instructions_per_step": c.step_mean,
                "macs_per_step": c.macs_per_step, "instructions_per_mac": c.instructions_per_mac}


class TargetRunner:
    """``runner(int_inputs) -> outputs`` for ``tinylstm.validate`` (the contract of
    :func:`.host.host_runner`: each input a canonical int8 batch ``(n, T, F)``, rows of one length;
    each output the canonical output, a row per sequence), plus ``cost(x)``. All rows of all
    batches go through one QEMU run of ``<prefix>_run``. A non-causal model whose sequences
    outgrow the build's ``MAX_STEPS`` is rebuilt once with a bound that fits."""

    def __init__(self, qmodel: QuantizedModel, target: str, opt: str, work: Path, max_steps: int | None) -> None:
        self.qmodel = qmodel
        self.target = get_target(target)
        self.opt = opt
        self.work = work
        self.builds = [build_target(qmodel, self.target, work / f"{self.target.name}{opt}", opt, max_steps=max_steps)]

    def _fitting(self, longest: int) -> TargetExe:
        exe = self.builds[-1]
        if exe.plan.max_steps is not None and longest > exe.plan.max_steps:
            bound = 1 << (longest - 1).bit_length()
            exe = build_target(self.qmodel, self.target, self.work / f"{self.target.name}{self.opt}_T{bound}",
                               self.opt, max_steps=bound)
            self.builds.append(exe)
        return exe

    def __call__(self, int_inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        batches = [protocol.canonical_rows(self.builds[-1].plan, x, who="the target runner") for x in int_inputs]
        exe = self._fitting(max((r.x.shape[0] for rows in batches for r in rows), default=0))
        flat = [r for rows in batches for r in rows]
        outs = _run_rows(exe, flat, "run", False, False, RUN_TIMEOUT).rows if flat else ()
        return protocol.assemble_batches(exe.plan, outs, [len(rows) for rows in batches])

    def cost(self, xc_int8: np.ndarray) -> TargetCost:
        """Footprint of the build and instructions of the first row of ``xc_int8`` (canonical)."""
        exe = self._fitting(xc_int8.shape[1] if xc_int8.shape[0] else 0)
        return TargetCost(target_footprint(exe), count_steps(exe, self.qmodel.input_view.from_canonical(xc_int8)),
                          exe.kernels)


def target_runner(
    qmodel: QuantizedModel,
    target: str,
    opt: str = DEFAULT_OPT,
    workdir: str | os.PathLike | None = None,
    *,
    max_steps: int | None = None,
) -> TargetRunner:
    """Cross-compile once; return a ``TargetRunner`` (``runner(int_inputs) -> outputs`` for
    ``tinylstm.validate``, and ``runner.cost(x)``)."""
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="tinylstm-target-"))
    return TargetRunner(qmodel, target, opt, work, max_steps)


def target_runners(
    qmodel: QuantizedModel,
    targets: Sequence[str],
    workdir: str | os.PathLike | None = None,
) -> dict[str, TargetRunner]:
    """One runner per target spec (``"cortex-m4"``, ``"cortex-m55:-O2"``), named like
    ``"cortex-m4 -Os"``, for ``validate(..., c_runners=...)``. Builds happen here (errors early)."""
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="tinylstm-target-"))
    out: dict[str, TargetRunner] = {}
    for spec in targets:
        name, opt = parse_target_spec(spec)
        out[f"{name} {opt}"] = target_runner(qmodel, name, opt, work)
    return out


__all__ = [
    "CTrace",
    "LayerInfo",
    "StepCounts",
    "TargetCost",
    "TargetExe",
    "TargetFootprint",
    "TargetRun",
    "TargetRunner",
    "build_target",
    "count_steps",
    "macs_per_step",
    "parse_target_spec",
    "run_target",
    "target_footprint",
    "target_runner",
    "target_runners",
]
