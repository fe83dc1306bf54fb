"""The generated C on emulated Cortex-M cores: bit-exact runs, instruction counts, footprint.

:func:`build_target` generates one integer model (``tinylstm.codegen.generate_files``), adds a
semihosting harness ``main`` and cross-compiles everything for a core with
:func:`tinylstm.target.build` (our start-up and linker scripts). :func:`run_target` streams int8
sequences in the ONNX input layout through ``<prefix>_run`` / ``_run_lens`` or ``<prefix>_step``
on the core's QEMU board and returns the int8 output in the ONNX output layout (what
``QuantizedModel.run_int`` returns), optionally every LSTM state per step (traced builds) and
the instructions executed per inference and per ``step()`` call (QEMU plugin, exact).
:func:`target_footprint` splits the build's size into runtime code, model code, weights and
tables, state RAM and worst-case stack. :func:`target_runner` / :func:`target_runners` give
``tinylstm.validate`` its ``c_runners``.

Harness protocol (binary, little-endian): input file ``int32 n``, then per sequence ``int32
steps, int32 len (-1: run(), else run_lens()), int8 x[steps * INPUT_SIZE]``; output file per
sequence ``int8 y[...]`` (run: ``steps * OUTPUT_SIZE`` or ``OUTPUT_SIZE``; step mode: ``steps *
OUTPUT_SIZE``, the output after every step) then, in traced builds with tracing on, for every
live LSTM layer and direction ``uint8 valid[steps], int8 h[steps][H], int16 c[steps][H]`` (the
layout of ``tinylstm.chost``). The harness reads, runs and writes one sequence at a time, so its
RAM use is bounded by the longest sequence, not by the data set. Every inference is a
``tl_bench_begin()``/``tl_bench_end()`` window of depth 0; in step mode every ``step()`` call
is a window of depth 1 inside it (a nested window adds its count + 4 to its parent).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.plan import Plan, make_plan
from ..errors import DataError
from ..ir.macs import macs_per_step
from ..qmodel import QLstm, QuantizedModel
from . import cores as tgt
from .host import CTrace, stack_traces
from .toolchain import STRICT_FLAGS, ToolchainError

MODES = ("run", "step")
#: optimisation level of a target spec without one ("cortex-m4" = "cortex-m4:-Os")
DEFAULT_OPT = "-Os"
#: QEMU timeout per run (seconds); QEMU executes about 1.6e9 guest instructions per second
RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class LayerInfo:
    """One live LSTM layer as the harness traces it."""

    node: int  # index in QuantizedModel.nodes
    name: str
    hidden: int  # H
    directions: int  # 1 or 2


@dataclass(frozen=True, eq=False)
class TargetExe:
    """A cross-compiled harness holding one generated model."""

    build: tgt.TargetBuild
    model: QuantizedModel
    plan: Plan  # what the generated C does (step() exists, layouts, MAX_STEPS)
    prefix: str
    opt: str
    traced: bool  # built with <PREFIX>_TRACE: the trace hook runs inside the count windows
    layers: tuple[LayerInfo, ...]  # live LSTM layers, in the trace order
    src_dir: Path

    @property
    def target(self) -> tgt.Target:
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


@dataclass(frozen=True)
class TargetFootprint:
    """Bytes of one generated model on one core (linked ELF, unused code dropped by --gc-sections)."""

    target: str
    opt: str
    runtime_text: int  # tl_* code (the hand-written runtime; the two count markers excluded)
    model_text: int  # <prefix>_* code (reset, step, run and their static helpers)
    model_rodata: int  # <prefix>_* const data: weights, per-row constants, tables, params
    library_text: int  # compiler support routines the model calls (e.g. __aeabi_lmul on M0+)
    library_calls: tuple[str, ...]  # their names
    state_bytes: int  # sizeof(<prefix>_state_t): h, c, scratch, heads, sequence workspace
    scratch_bytes: int  # of which the per-step scratch (new h of one LSTM step)
    stack_bytes: int  # worst-case stack of <prefix>_run (or the deeper of run/step), from .su/.ci
    stack_path: tuple[str, ...]  # that call chain
    stack_complete: bool  # False if the chain reaches code without stack data (library routines)

    @property
    def code_bytes(self) -> int:
        return self.runtime_text + self.model_text + self.library_text

    @property
    def flash_bytes(self) -> int:
        return self.code_bytes + self.model_rodata

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.stack_bytes

    def to_dict(self) -> dict[str, object]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["library_calls"] = list(self.library_calls)
        d["stack_path"] = list(self.stack_path)
        d.update(code_bytes=self.code_bytes, flash_bytes=self.flash_bytes, ram_bytes=self.ram_bytes)
        return d


# ---- layouts -----------------------------------------------------------------------------------------


def _rows(exe: TargetExe, x_int8: np.ndarray) -> list[np.ndarray]:
    """ONNX-layout int8 batch -> one (T, F) array per row, features in the ONNX order of a step."""
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        if x.dtype.kind not in "iu" or (x.size and (int(x.min()) < -128 or int(x.max()) > 127)):
            raise DataError(f"the target runner expects int8 input, got {x.dtype}")
        x = x.astype(np.int8)
    xc = exe.model.input_view.to_canonical(x)  # (B, T, F) canonical
    if xc.ndim != 3 or xc.shape[2] != exe.plan.input.features:
        raise DataError(f"input of shape {x.shape} does not give (batch, steps, {exe.plan.input.features}) "
                        "sequences")
    perm = exe.plan.input.perm
    rows = []
    for b in range(xc.shape[0]):
        r = np.ascontiguousarray(xc[b], dtype=np.int8)
        if perm is not None:
            o = np.empty_like(r)
            o[:, list(perm)] = r
            r = o
        rows.append(r)
    return rows


def _assemble(exe: TargetExe, ys: Sequence[np.ndarray]) -> np.ndarray:
    """Per-row (T or 1, OUT) outputs in the ONNX step order -> the ONNX output layout."""
    perm = exe.plan.output.perm
    out = []
    for y in ys:
        if perm is not None:
            y = y[:, list(perm)]
        if not exe.plan.output_seq:
            y = y[-1]  # run: the only row; step mode: the output after the last step
        out.append(y)
    return np.asarray(exe.model.output_view.from_canonical(np.stack(out))).astype(np.int8)


# ---- the harness -------------------------------------------------------------------------------------

_HARNESS = r"""/* tinylstm target harness (generated by tinylstm.ctarget): streams int8 sequences from a host
 * file (semihosting) through @p@_run / @p@_run_lens / @p@_step, writes the int8 outputs and,
 * in builds with @P@_TRACE, every LSTM state. Each inference is a tl_bench_begin/end window,
 * each step() call a window nested in it (instruction counting). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_target.h"
#include "@p@.h"

#define HARNESS_MODE_RUN 0
#define HARNESS_MODE_STEP 1
#define HARNESS_LAYERS @NLAYERS@

#ifdef @P@_TRACE
static const int32_t harness_nodes[] = {@NODES@};
#endif
static const int32_t harness_hidden[] = {@HIDDEN@};
static const int32_t harness_dirs[] = {@DIRS@};

static @p@_state_t harness_state;
static uint8_t *harness_trace; /* NULL: not tracing this sequence */
static size_t harness_trace_size;
static int32_t harness_steps;

static void harness_fail(int code, const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
    exit(code);
}

static size_t harness_block(int32_t steps, int32_t hidden)
{
    return (size_t)steps * (1u + 3u * (size_t)hidden);
}

static void harness_trace_begin(int32_t steps, int tr)
{
    int32_t li;
    harness_steps = steps;
    harness_trace = NULL;
    harness_trace_size = 0;
    if (!tr) {
        return;
    }
    for (li = 0; li < HARNESS_LAYERS; ++li) {
        harness_trace_size += (size_t)harness_dirs[li] * harness_block(steps, harness_hidden[li]);
    }
    harness_trace = (uint8_t *)calloc(harness_trace_size + 1u, 1u);
    if (harness_trace == NULL) {
        harness_fail(3, "out of memory (trace)");
    }
}

#ifdef @P@_TRACE
void @p@_trace(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c)
{
    size_t off = 0;
    int32_t li, hid;
    if (harness_trace == NULL) {
        return;
    }
    for (li = 0; li < HARNESS_LAYERS && harness_nodes[li] != node; ++li) {
        off += (size_t)harness_dirs[li] * harness_block(harness_steps, harness_hidden[li]);
    }
    if (li == HARNESS_LAYERS || direction < 0 || direction >= harness_dirs[li] || t < 0 || t >= harness_steps) {
        harness_fail(4, "trace hook called with a bad node, direction or step");
    }
    hid = harness_hidden[li];
    off += (size_t)direction * harness_block(harness_steps, hid);
    harness_trace[off + (size_t)t] = 1u;
    memcpy(&harness_trace[off + (size_t)harness_steps + (size_t)t * (size_t)hid], h, (size_t)hid);
    memcpy(&harness_trace[off + (size_t)harness_steps * (1u + (size_t)hid) + (size_t)t * 2u * (size_t)hid], c,
           2u * (size_t)hid);
}
#endif

static void harness_write(FILE *f, const void *p, size_t n)
{
    if (n > 0u && fwrite(p, 1u, n, f) != n) {
        harness_fail(5, "write failed");
    }
}

static int32_t harness_read_i32(FILE *f)
{
    int32_t v;
    if (fread(&v, sizeof v, 1u, f) != 1u) {
        harness_fail(6, "short input");
    }
    return v;
}

static void harness_infer(int mode, int8_t *x, int32_t steps, int32_t len, int8_t *y)
{
    (void)len;
    memset(&harness_state, 0xA5, sizeof harness_state); /* reset()/run() must not rely on a zeroed state */
    if (mode == HARNESS_MODE_RUN) {
        tl_bench_begin();
#if @P@_HAS_RUN_LENS
        if (len >= 0) {
            @p@_run_lens(&harness_state, x, steps, len, y);
        } else {
            @p@_run(&harness_state, x, steps, y);
        }
#else
        @p@_run(&harness_state, x, steps, y);
#endif
        tl_bench_end();
        return;
    }
#if @P@_HAS_STEP
    {
        int32_t t;
        tl_bench_begin();
        @p@_reset(&harness_state);
        for (t = 0; t < steps; ++t) {
            tl_bench_begin();
            @p@_step(&harness_state, &x[t * @P@_INPUT_SIZE], &y[t * @P@_OUTPUT_SIZE]);
            tl_bench_end();
        }
        tl_bench_end();
    }
#else
    harness_fail(2, "this model has no step()");
#endif
}

int main(int argc, char **argv)
{
    FILE *fin, *fout;
    int mode, tr;
    int32_t n, i;
    if (argc != 5) {
        harness_fail(2, "usage: harness mode(0 run, 1 step) trace(0/1) in.bin out.bin");
    }
    mode = atoi(argv[1]);
    tr = atoi(argv[2]);
#ifndef @P@_TRACE
    if (tr) {
        harness_fail(2, "built without @P@_TRACE: cannot trace");
    }
#endif
    if (mode != HARNESS_MODE_RUN && mode != HARNESS_MODE_STEP) {
        harness_fail(2, "bad mode");
    }
    fin = fopen(argv[3], "rb");
    fout = fopen(argv[4], "wb");
    if (fin == NULL || fout == NULL) {
        harness_fail(2, "cannot open the input or output file");
    }
    n = harness_read_i32(fin);
    for (i = 0; i < n; ++i) {
        const int32_t steps = harness_read_i32(fin);
        const int32_t len = harness_read_i32(fin);
        const size_t in_bytes = (size_t)steps * (size_t)@P@_INPUT_SIZE;
        const size_t out_bytes =
            (mode == HARNESS_MODE_STEP || @P@_MANY_TO_MANY) ? (size_t)steps * (size_t)@P@_OUTPUT_SIZE
                                                             : (size_t)@P@_OUTPUT_SIZE;
        int8_t *x, *y;
        if (steps < 0) {
            harness_fail(6, "negative step count");
        }
        x = (int8_t *)malloc(in_bytes + 1u);
        y = (int8_t *)malloc(out_bytes + 1u);
        if (x == NULL || y == NULL) {
            harness_fail(3, "out of memory (sequence)");
        }
        if (fread(x, 1u, in_bytes, fin) != in_bytes) {
            harness_fail(6, "short input");
        }
        memset(y, 0x77, out_bytes + 1u);
        harness_trace_begin(steps, tr);
        harness_infer(mode, x, steps, len, y);
        harness_write(fout, y, out_bytes);
        if (harness_trace != NULL) {
            harness_write(fout, harness_trace, harness_trace_size);
            free(harness_trace);
            harness_trace = NULL;
        }
        free(y);
        free(x);
    }
    fclose(fin);
    if (fclose(fout) != 0) {
        return 5;
    }
    return 0;
}
"""


def harness_source(prefix: str, layers: Sequence[LayerInfo]) -> str:
    """The target harness C for a model generated with ``prefix`` (protocol in the module doc)."""
    def ints(vals: Sequence[int]) -> str:
        return ", ".join(str(v) for v in vals) or "0"

    return (_HARNESS.replace("@NLAYERS@", str(len(layers)))
            .replace("@NODES@", ints([la.node for la in layers]) if layers else "-1")
            .replace("@HIDDEN@", ints([la.hidden for la in layers]))
            .replace("@DIRS@", ints([la.directions for la in layers]))
            .replace("@p@", prefix).replace("@P@", prefix.upper()))


def build_target(
    qmodel: QuantizedModel,
    target: str | tgt.Target,
    workdir: str | os.PathLike,
    opt: str = DEFAULT_OPT,
    *,
    trace: bool = False,
    prefix: str = "model",
    max_steps: int | None = None,
    extra_cflags: Sequence[str] = (),
) -> TargetExe:
    """Generate ``qmodel``'s C into ``workdir/src``, add the harness and cross-compile for ``target``.

    ``trace=True`` defines ``<PREFIX>_TRACE`` so :func:`run_target` can return every LSTM state
    (the hook then runs inside the count windows: count and size untraced builds).
    ``max_steps`` bounds ``run()`` of non-causal models (default: the input's static length,
    else 256). Everything compiles with :data:`tinylstm.toolchain.STRICT_FLAGS`; a compiler
    error or a missing toolchain raises :class:`ToolchainError`.
    """
    from ..codegen import generate_files
    from ..codegen.writer import write_tree

    t = tgt.get_target(target)
    plan = make_plan(qmodel, max_steps)
    layers = tuple(LayerInfo(k, qmodel.nodes[k].name, qmodel.nodes[k].hidden_size,
                             qmodel.nodes[k].num_directions) for k in plan.live_of(QLstm))
    generated = generate_files(qmodel, prefix, max_steps)
    example = f"{prefix}_example.c"
    files = {n: v for n, v in generated.items() if n.endswith((".c", ".h")) and n != example}
    files["harness.c"] = harness_source(prefix, layers)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    src_dir = work / "src"
    write_tree(files, src_dir)
    sources = sorted(n for n in files if n.endswith(".c") and n != "harness.c") + ["harness.c"]
    elf = work / f"harness_{t.name}{opt.replace('-', '_')}{'_trace' if trace else ''}.elf"
    b = tgt.build(t, [src_dir / s for s in sources], elf, include_dirs=[src_dir], opt=opt,
                  defines=[f"{prefix.upper()}_TRACE"] if trace else [],
                  extra_cflags=[*STRICT_FLAGS, *extra_cflags], timeout=600)
    return TargetExe(b, qmodel, plan, prefix, opt, trace, layers, src_dir)


# ---- running -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowOut:
    y: np.ndarray  # (T or 1, OUT) int8, ONNX order of one step
    trace: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] | None  # per (layer, direction): valid, h, c


@dataclass(frozen=True)
class _Batch:
    rows: tuple[_RowOut, ...]
    inference: tuple[int, ...] | None  # per row
    steps: tuple[tuple[int, ...], ...] | None  # per row, per step() call
    total: int | None


def _run_rows(exe: TargetExe, rows: Sequence[np.ndarray], mode: str, trace: bool, count: bool,
              lens: np.ndarray | None, timeout: float) -> _Batch:
    """Rows (T, F) int8 in the ONNX step order -> outputs, traces and counts (one QEMU run)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "step" and not exe.has_step:
        raise DataError("this model has no step() (a reverse or bidirectional LSTM, or a head reading an "
                        "early step); use mode='run'")
    if trace and not exe.traced:
        raise ValueError("trace=True needs a build made with build_target(..., trace=True)")
    if count and exe.traced:
        raise ValueError("count=True needs an untraced build (the trace hook would be counted)")
    exe.plan.check_steps(max((r.shape[0] for r in rows), default=0))
    chunks = [np.array([len(rows)], "<i4").tobytes()]
    for b, r in enumerate(rows):
        chunks.append(np.array([r.shape[0], -1 if lens is None else int(lens[b])], "<i4").tobytes())
        chunks.append(np.ascontiguousarray(r, np.int8).tobytes())
    fout = exe.plan.output.features
    with tempfile.TemporaryDirectory(prefix="tinylstm-target-") as tmp:
        Path(tmp, "in.bin").write_bytes(b"".join(chunks))
        res = tgt.run(exe.target, exe.elf, [str(MODES.index(mode)), str(int(trace)), "in.bin", "out.bin"],
                      cwd=tmp, timeout=timeout, count=count, check=True)
        data = Path(tmp, "out.bin").read_bytes()
    outs, pos = [], 0
    for r in rows:
        steps = r.shape[0]
        n = steps * fout if (mode == "step" or exe.plan.output_seq) else fout
        y = np.frombuffer(data, np.int8, n, pos).reshape(-1, fout)
        pos += n
        tr = None
        if trace:
            blocks = []
            for la in exe.layers:
                for _ in range(la.directions):
                    valid = np.frombuffer(data, np.uint8, steps, pos).astype(bool)
                    pos += steps
                    h = np.frombuffer(data, np.int8, steps * la.hidden, pos).reshape(steps, la.hidden)
                    pos += steps * la.hidden
                    c = np.frombuffer(data, "<i2", steps * la.hidden, pos).reshape(steps, la.hidden)
                    pos += 2 * steps * la.hidden
                    blocks.append((valid, h, c.astype(np.int16)))
            tr = tuple(blocks)
        outs.append(_RowOut(y, tr))
    if pos != len(data):
        raise ToolchainError(f"the {exe.target.name} harness wrote {len(data)} bytes, expected {pos}")
    inference = per_step = None
    if count:
        inference, per_step = _split_windows(res.windows, [r.shape[0] for r in rows], mode)
    return _Batch(tuple(outs), inference, per_step, res.total_instructions)


def _split_windows(windows: Sequence[tgt.Window], steps: Sequence[int], mode: str
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
    rows = _rows(exe, x_int8)
    lens = None
    if sequence_lens is not None:
        if not exe.plan.lens_input:
            raise DataError("this model takes no sequence_lens input")
        if mode != "run":
            raise DataError("sequence_lens needs mode='run' (run_lens)")
        lens = np.asarray(sequence_lens).reshape(-1)
        if lens.shape[0] != len(rows):
            raise DataError(f"sequence_lens has {lens.shape[0]} entries for batch {len(rows)}")
    out = _run_rows(exe, rows, mode, trace, count, lens, timeout)
    y = _assemble(exe, [o.y for o in out.rows])
    traces = None
    if trace:
        traces = stack_traces([(la.name, la.directions) for la in exe.layers],
                              [o.trace for o in out.rows])  # type: ignore[misc]
    return TargetRun(y, traces, out.inference, out.steps, out.total)


# ---- instruction counts ---------------------------------------------------------------------------


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
    r = _run_rows(exe, row, "run", False, True, None, timeout)
    per_step = None
    if exe.has_step:
        s = _run_rows(exe, row, "step", False, True, None, timeout)
        per_step = s.steps[0] if s.steps else None
    assert r.inference is not None
    return StepCounts(exe.target.name, exe.opt, int(row[0].shape[0]), r.inference[0], per_step,
                      macs_per_step(exe.model))


# ---- footprint -------------------------------------------------------------------------------------


def target_footprint(exe: TargetExe) -> TargetFootprint:
    """Runtime / model code, weights and tables, state RAM and worst-case stack of the build.

    Sizes come from the linked ELF's symbol table (so only code reachable from the harness
    counts); the stack bound walks gcc's call-graph files from ``<prefix>_run`` (and
    ``<prefix>_step``). Measure untraced builds: the trace hook is model code.
    """
    fp = tgt.sizes(exe.build)
    p = exe.prefix
    markers = {tgt.BEGIN_MARKER, tgt.END_MARKER}
    runtime_text = sum(s.size for s in fp.symbols if s.kind == "text" and s.name.startswith("tl_")
                       and s.name not in markers)
    model_text = fp.symbol_bytes(f"{p}_", "text")
    model_rodata = fp.symbol_bytes(f"{p}_", "rodata") + fp.symbol_bytes(f"{p}_", "data")
    roots = [f"{p}_run"] + ([f"{p}_step"] if exe.has_step else [])
    bounds = [fp.stack_bound(r) for r in roots if r in fp.callgraph]
    if not bounds:
        raise ToolchainError(f"{p}_run is missing from the call graph of {exe.elf.name}")
    worst = max(bounds, key=lambda b: b.bytes)
    lib = sorted({u for b in bounds for u in b.unknown})
    sym_size = {s.name: s.size for s in fp.symbols if s.kind == "text"}
    state = next((s.size for s in fp.symbols if s.name == "harness_state"), 0)
    scratch = 0
    m = re.search(r"int16_t scratch\[(\d+)\];", (exe.src_dir / f"{p}.h").read_text())
    if m:
        scratch = 2 * int(m.group(1))
    path = tuple(fn.rpartition(":")[2] for fn in worst.path)  # gcc names static functions "file.c:fn"
    return TargetFootprint(exe.target.name, exe.opt, runtime_text, model_text, model_rodata,
                           sum(sym_size.get(u, 0) for u in lib), tuple(lib), state, scratch,
                           worst.bytes, path, worst.complete)


# ---- runners for tinylstm.validate -----------------------------------------------------------------


def parse_target_spec(spec: str) -> tuple[str, str]:
    """``"cortex-m4"`` -> (cortex-m4, -Os); ``"cortex-m4:-O2"`` or ``"cortex-m4:O2"`` -> (cortex-m4, -O2)."""
    name, _, opt = spec.strip().partition(":")
    name = name.strip()
    opt = opt.strip() or DEFAULT_OPT
    if not opt.startswith("-"):
        opt = "-" + opt
    tgt.get_target(name)  # raises ToolchainError naming the supported cores
    if opt not in tgt.OPT_LEVELS:
        raise ToolchainError(f"unsupported optimisation level {opt!r} in {spec!r}; use one of "
                             f"{', '.join(tgt.OPT_LEVELS)}")
    return name, opt


@dataclass(frozen=True)
class TargetCost:
    """What a model costs on one core: the build's footprint and the instruction counts of one
    sequence (``count_steps``)."""

    footprint: TargetFootprint
    counts: StepCounts

    def to_dict(self) -> dict[str, object]:
        f, c = self.footprint, self.counts
        return {"target": f.target, "opt": f.opt, "runtime_text": f.runtime_text, "model_text": f.model_text,
                "library_text": f.library_text, "model_rodata": f.model_rodata, "state_bytes": f.state_bytes,
                "scratch_bytes": f.scratch_bytes, "stack_bytes": f.stack_bytes, "steps": c.steps,
                "instructions_per_inference": c.inference, "instructions_per_step": c.step_mean,
                "macs_per_step": c.macs_per_step, "instructions_per_mac": c.instructions_per_mac}


class TargetRunner:
    """``runner(int_inputs) -> outputs`` for ``tinylstm.validate`` (the contract of
    ``tinylstm.chost.host_runner``: each input an int8 batch in the ONNX layout, rows of one
    length; each output what ``QuantizedModel.run_int`` returns for it), plus ``cost(x)``. All rows
    of all batches go through one QEMU run of ``<prefix>_run``. A non-causal model whose sequences
    outgrow the build's ``MAX_STEPS`` is rebuilt once with a bound that fits."""

    def __init__(self, qmodel: QuantizedModel, target: str, opt: str, work: Path, max_steps: int | None) -> None:
        self.qmodel = qmodel
        self.target = tgt.get_target(target)
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
        batches = [_rows(self.builds[-1], x) for x in int_inputs]
        exe = self._fitting(max((r.shape[0] for rows in batches for r in rows), default=0))
        flat = [r for rows in batches for r in rows]
        res = _run_rows(exe, flat, "run", False, False, None, RUN_TIMEOUT) if flat else None
        outs, pos = [], 0
        for rows in batches:
            if not rows:
                outs.append(np.zeros((0,), np.int8))
                continue
            outs.append(_assemble(exe, [o.y for o in res.rows[pos : pos + len(rows)]]))  # type: ignore[union-attr]
            pos += len(rows)
        return outs

    def cost(self, x_int8: np.ndarray) -> TargetCost:
        """Footprint of the build and instructions of the first row of ``x_int8`` (ONNX layout)."""
        rows = _rows(self.builds[-1], x_int8)[:1]
        exe = self._fitting(rows[0].shape[0] if rows else 0)
        return TargetCost(target_footprint(exe), count_steps(exe, x_int8))


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
    "harness_source",
    "macs_per_step",
    "parse_target_spec",
    "run_target",
    "target_footprint",
    "target_runner",
    "target_runners",
]
