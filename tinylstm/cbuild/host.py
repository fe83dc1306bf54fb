"""Build the generated C on the host and run it on int8 data: the C side of every bit-exactness check.

:func:`build_host` generates one or several models (prefixes ``model`` or ``m0``, ``m1``...) into a
work folder, adds a harness ``main`` and compiles everything with the strict warning set of
:data:`tinylstm.toolchain.STRICT_FLAGS` (gcc or clang, any ``-O``, optionally ASan + UBSan).
:func:`run_c` feeds int8 sequences in the ONNX input layout (each row of the batch run on its
own, batch 1) through ``<prefix>_run`` / ``_run_lens`` or step by step through ``<prefix>_step``,
and returns the int8 output in the ONNX output layout plus, on request, every LSTM state (h and c
of every layer and direction, per step) for comparison with ``QuantizedModel.run_int(...,
trace=True)``.

Harness protocol (binary, little-endian host order): input file ``int32 n``, then per sequence
``int32 steps, int32 len (-1: run(), else run_lens()), int8 x[steps * INPUT_SIZE]``; output file per
sequence ``int8 y[...]`` (run: ``steps * OUTPUT_SIZE`` or ``OUTPUT_SIZE``; step modes: ``steps *
OUTPUT_SIZE``, the output after every step) then, with tracing, for every live LSTM layer and
direction ``uint8 valid[steps], int8 h[steps][H], int16 c[steps][H]``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.emit import emit_model
from ..codegen.plan import Plan, make_plan
from ..codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from ..codegen.writer import write_tree
from ..errors import DataError
from ..qmodel import QLstm, QuantizedModel
from .toolchain import ToolchainError, compile_host

MODES = ("run", "step", "interleave")
#: instances stepped in lock-step by the "interleave" mode
INTERLEAVE = 3


@dataclass(frozen=True)
class CTrace:
    """The C side's per-step LSTM state of one direction (fields named like simulate.LstmTrace)."""

    h: np.ndarray  # (B, T, H) int8
    c: np.ndarray  # (B, T, H) int16 Q(k)
    valid: np.ndarray  # (B, T) bool: step processed


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


def _layers(plan: Plan) -> list[int]:
    return plan.live_of(QLstm)


def _harness_model(idx: int, prefix: str, plan: Plan) -> str:
    p, P = prefix, prefix.upper()
    layers = _layers(plan)
    nodes = ", ".join(str(k) for k in layers) or "-1"
    hidden = ", ".join(str(plan.nodes[k].hidden_size) for k in layers) or "0"
    dirs = ", ".join(str(plan.nodes[k].num_directions) for k in layers) or "0"
    run_lens = (f"{p}_run_lens(&st[0], sq->x, sq->steps, sq->len, y);" if plan.lens_input
                else f"{p}_run(&st[0], sq->x, sq->steps, y);")
    step_body = ""
    if plan.has_step:
        step_body = f"""
    if (mode == MODE_STEP) {{
        for (i = 0; i < n; ++i) {{
            seq_t *sq = &seqs[i];
            int32_t t;
            int8_t *y = out_alloc(sq, {P}_OUTPUT_SIZE, 1);
            trace_begin(&lay, sq->steps, tr);
            memset(&st[0], 0xA5, sizeof st[0]); /* reset() must not rely on a zeroed state */
            {p}_reset(&st[0]);
            for (t = 0; t < sq->steps; ++t) {{
                {p}_step(&st[0], &sq->x[t * {P}_INPUT_SIZE], &y[t * {P}_OUTPUT_SIZE]);
            }}
            out_write(fout, y, sq->steps * {P}_OUTPUT_SIZE);
            trace_end(fout);
            free(y);
        }}
        return 0;
    }}
    if (mode == MODE_INTERLEAVE) {{
        for (i = 0; i < n; i += {INTERLEAVE}) {{
            int32_t m = n - i < {INTERLEAVE} ? n - i : {INTERLEAVE};
            int32_t t, j, longest = 0;
            int8_t *ys[{INTERLEAVE}];
            for (j = 0; j < m; ++j) {{
                ys[j] = out_alloc(&seqs[i + j], {P}_OUTPUT_SIZE, 1);
                memset(&st[j], 0x5A, sizeof st[j]);
                {p}_reset(&st[j]);
                longest = seqs[i + j].steps > longest ? seqs[i + j].steps : longest;
            }}
            for (t = 0; t < longest; ++t) {{
                for (j = 0; j < m; ++j) {{
                    if (t < seqs[i + j].steps) {{
                        {p}_step(&st[j], &seqs[i + j].x[t * {P}_INPUT_SIZE], &ys[j][t * {P}_OUTPUT_SIZE]);
                    }}
                }}
            }}
            for (j = 0; j < m; ++j) {{
                out_write(fout, ys[j], seqs[i + j].steps * {P}_OUTPUT_SIZE);
                free(ys[j]);
            }}
        }}
        return 0;
    }}"""
    return f"""
/* ---- model {idx}: {p} ---- */
static const int32_t {p}_h_nodes[] = {{{nodes}}};
static const int32_t {p}_h_hidden[] = {{{hidden}}};
static const int32_t {p}_h_dirs[] = {{{dirs}}};

void {p}_trace(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c)
{{
    trace_record(node, direction, t, h, c);
}}

static int run_{p}(int mode, int tr, seq_t *seqs, int32_t n, FILE *fout)
{{
    static {p}_state_t st[{INTERLEAVE}];
    layers_t lay;
    int32_t i;
    lay.count = {len(layers)};
    lay.nodes = {p}_h_nodes;
    lay.hidden = {p}_h_hidden;
    lay.dirs = {p}_h_dirs;
    if (mode == MODE_RUN) {{
        for (i = 0; i < n; ++i) {{
            seq_t *sq = &seqs[i];
            int8_t *y = out_alloc(sq, {P}_OUTPUT_SIZE, {P}_MANY_TO_MANY);
            trace_begin(&lay, sq->steps, tr);
            memset(&st[0], 0xA5, sizeof st[0]);
            {run_lens}
            out_write(fout, y, {P}_MANY_TO_MANY ? sq->steps * {P}_OUTPUT_SIZE : {P}_OUTPUT_SIZE);
            trace_end(fout);
            free(y);
        }}
        return 0;
    }}{step_body}
    return 2;
}}
"""


_HARNESS_HEAD = r"""/* tinylstm host harness (generated by tinylstm.chost): reads int8 sequences, runs a generated
 * model, writes its int8 outputs and optionally every LSTM state. Host only: uses stdio/malloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

@INCLUDES@

#define MODE_RUN 0
#define MODE_STEP 1
#define MODE_INTERLEAVE 2

typedef struct {
    int32_t steps;
    int32_t len;
    int8_t *x;
} seq_t;

typedef struct {
    int32_t count;
    const int32_t *nodes;
    const int32_t *hidden;
    const int32_t *dirs;
} layers_t;

static const layers_t *g_lay;
static uint8_t *g_trace; /* NULL: not tracing */
static size_t g_trace_size;
static int32_t g_steps;

static size_t block_size(int32_t steps, int32_t hidden)
{
    return (size_t)steps * (1u + 3u * (size_t)hidden);
}

static void trace_begin(const layers_t *lay, int32_t steps, int tr)
{
    int32_t li;
    g_lay = lay;
    g_steps = steps;
    g_trace = NULL;
    g_trace_size = 0;
    if (!tr) {
        return;
    }
    for (li = 0; li < lay->count; ++li) {
        g_trace_size += (size_t)lay->dirs[li] * block_size(steps, lay->hidden[li]);
    }
    g_trace = (uint8_t *)calloc(g_trace_size + 1u, 1u);
    if (g_trace == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(3);
    }
}

static void trace_record(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c)
{
    size_t off = 0;
    int32_t li, hid;
    if (g_trace == NULL) {
        return;
    }
    for (li = 0; li < g_lay->count && g_lay->nodes[li] != node; ++li) {
        off += (size_t)g_lay->dirs[li] * block_size(g_steps, g_lay->hidden[li]);
    }
    if (li == g_lay->count || direction < 0 || direction >= g_lay->dirs[li] || t < 0 || t >= g_steps) {
        fprintf(stderr, "trace: bad call node %ld direction %ld t %ld\n", (long)node, (long)direction, (long)t);
        exit(4);
    }
    hid = g_lay->hidden[li];
    off += (size_t)direction * block_size(g_steps, hid);
    g_trace[off + (size_t)t] = 1u;
    memcpy(&g_trace[off + (size_t)g_steps + (size_t)t * (size_t)hid], h, (size_t)hid);
    memcpy(&g_trace[off + (size_t)g_steps * (1u + (size_t)hid) + (size_t)t * 2u * (size_t)hid], c,
           2u * (size_t)hid);
}

static void out_write(FILE *f, const void *p, int32_t n)
{
    if (n > 0 && fwrite(p, 1u, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "write failed\n");
        exit(5);
    }
}

static void trace_end(FILE *f)
{
    if (g_trace != NULL) {
        out_write(f, g_trace, (int32_t)g_trace_size);
        free(g_trace);
        g_trace = NULL;
    }
}

static int8_t *out_alloc(const seq_t *sq, int32_t size, int per_step)
{
    size_t n = per_step ? (size_t)sq->steps * (size_t)size : (size_t)size;
    int8_t *y = (int8_t *)malloc(n + 1u);
    if (y == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(3);
    }
    memset(y, 0x77, n + 1u);
    return y;
}

static int32_t read_i32(FILE *f)
{
    int32_t v;
    if (fread(&v, sizeof v, 1u, f) != 1u) {
        fprintf(stderr, "short input\n");
        exit(6);
    }
    return v;
}
"""

_HARNESS_MAIN = r"""
static int32_t input_size(int model)
{
    switch (model) {
@SIZES@
    default:
        return -1;
    }
}

int main(int argc, char **argv)
{
    FILE *fin, *fout;
    int model, mode, tr, rc = 2;
    int32_t n, i, in_size;
    seq_t *seqs;
    if (argc != 6) {
        fprintf(stderr, "usage: %s model mode(0 run, 1 step, 2 interleave) trace in.bin out.bin\n", argv[0]);
        return 2;
    }
    model = atoi(argv[1]);
    mode = atoi(argv[2]);
    tr = atoi(argv[3]);
    in_size = input_size(model);
    fin = fopen(argv[4], "rb");
    fout = fopen(argv[5], "wb");
    if (fin == NULL || fout == NULL || in_size < 0) {
        fprintf(stderr, "cannot open files or bad model\n");
        return 2;
    }
    n = read_i32(fin);
    seqs = (seq_t *)calloc((size_t)n + 1u, sizeof *seqs);
    for (i = 0; i < n; ++i) {
        size_t bytes;
        seqs[i].steps = read_i32(fin);
        seqs[i].len = read_i32(fin);
        bytes = (size_t)seqs[i].steps * (size_t)in_size;
        seqs[i].x = (int8_t *)malloc(bytes + 1u);
        if (seqs[i].x == NULL || fread(seqs[i].x, 1u, bytes, fin) != bytes) {
            fprintf(stderr, "short input\n");
            return 6;
        }
    }
    switch (model) {
@CALLS@
    default:
        break;
    }
    for (i = 0; i < n; ++i) {
        free(seqs[i].x);
    }
    free(seqs);
    fclose(fin);
    if (fclose(fout) != 0) {
        return 5;
    }
    return rc;
}
"""


def harness_source(prefixes: Sequence[str], plans: Sequence[Plan]) -> str:
    includes = "\n".join(f'#include "{p}.h"' for p in prefixes)
    parts = [_HARNESS_HEAD.replace("@INCLUDES@", includes)]
    for i, (p, plan) in enumerate(zip(prefixes, plans, strict=True)):
        parts.append(_harness_model(i, p, plan))
    sizes = "\n".join(f"    case {i}:\n        return {p.upper()}_INPUT_SIZE;" for i, p in enumerate(prefixes))
    calls = "\n".join(f"    case {i}:\n        rc = run_{p}(mode, tr, seqs, n, fout);\n        break;"
                      for i, p in enumerate(prefixes))
    parts.append(_HARNESS_MAIN.replace("@SIZES@", sizes).replace("@CALLS@", calls))
    return "".join(parts)


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
    plans = tuple(make_plan(m, max_steps) for m in models)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = dict(runtime_files())
    for m, p in zip(models, prefixes, strict=True):
        files.update(emit_model(m, p, max_steps))
    files["harness.c"] = harness_source(prefixes, plans)
    src_dir = work / "src"
    write_tree(files, src_dir)
    sources = [src_dir / f"{p}.c" for p in prefixes] + [src_dir / s for s in RUNTIME_SOURCES] + [src_dir / "harness.c"]
    exe = work / f"harness_{compiler}{opt.replace('-', '_')}{'_san' if sanitize else ''}"
    defines = tuple(f"-D{p.upper()}_TRACE" for p in prefixes)
    res = compile_host(sources, exe, compiler=compiler, opt=opt, sanitize=sanitize, include_dirs=(src_dir,),
                       extra_flags=defines + tuple(extra_flags), timeout=600)
    return HostExe(exe, models, plans, prefixes, compiler, opt, sanitize, res.command, src_dir)


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    x: np.ndarray  # (T, F) int8, features of each step in the ONNX order
    len: int  # -1: run()


@dataclass(frozen=True)
class _RowOut:
    y: np.ndarray  # (T or 1, OUT) int8 in the ONNX order of one step: after each step (step modes)
    trace: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None  # per (layer, direction): valid, h, c


def _run_rows(exe: HostExe, model: int, rows: Sequence[_Row], mode: str, trace: bool,
              timeout: float = 600) -> list[_RowOut]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    plan = exe.plans[model]
    if mode != "run" and not plan.has_step:
        raise DataError(f"model {exe.prefixes[model]} has no step() (not causal); use mode='run'")
    if mode == "interleave" and trace:
        raise ValueError("interleave mode does not trace")
    fin = plan.input.features
    fout = plan.output.features
    chunks = [np.array([len(rows)], np.int32).tobytes()]
    for r in rows:
        x = np.ascontiguousarray(r.x, dtype=np.int8)
        if x.ndim != 2 or x.shape[1] != fin:
            raise DataError(f"sequence shape {x.shape}, expected (steps, {fin})")
        chunks.append(np.array([x.shape[0], r.len], np.int32).tobytes())
        chunks.append(x.tobytes())
    layers = [(plan.nodes[k].num_directions, plan.nodes[k].hidden_size) for k in _layers(plan)]
    with tempfile.TemporaryDirectory(prefix="tlh-") as tmp:
        pin, pout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        pin.write_bytes(b"".join(chunks))
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        cmd = [str(exe.exe), str(model), str(MODES.index(mode)), str(int(trace)), str(pin), str(pout)]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        if res.returncode != 0 or res.stderr.strip():
            err = res.stderr.decode(errors="replace").strip()
            raise ToolchainError(f"{' '.join(cmd)} exited with {res.returncode}: {err[-3000:]}")
        data = pout.read_bytes()
    out: list[_RowOut] = []
    pos = 0
    for r in rows:
        steps = r.x.shape[0]
        per_step = mode != "run" or plan.output_seq
        n = steps * fout if per_step else fout
        y = np.frombuffer(data, np.int8, n, pos).reshape(-1, fout)
        pos += n
        tr = None
        if trace:
            tr = []
            for dirs, hid in layers:
                for _ in range(dirs):
                    valid = np.frombuffer(data, np.uint8, steps, pos).astype(bool)
                    pos += steps
                    h = np.frombuffer(data, np.int8, steps * hid, pos).reshape(steps, hid)
                    pos += steps * hid
                    c = np.frombuffer(data, np.int16, steps * hid, pos).reshape(steps, hid)
                    pos += 2 * steps * hid
                    tr.append((valid, h, c))
        out.append(_RowOut(y, tr))
    if pos != len(data):
        raise ToolchainError(f"harness wrote {len(data)} bytes, expected {pos}")
    return out


def _rows_of(plan: Plan, x_int8: np.ndarray, lens: np.ndarray | None) -> list[_Row]:
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        if x.dtype.kind not in "iu" or (x.size and (x.min() < -128 or x.max() > 127)):
            raise DataError("run_c expects int8 input")
        x = x.astype(np.int8)
    xc = plan.model.input_view.to_canonical(x)  # (B, T, F)
    rows = []
    for b in range(xc.shape[0]):
        r = xc[b]
        if plan.input.perm:
            onnx_order = np.empty_like(r)
            onnx_order[:, list(plan.input.perm)] = r
            r = onnx_order
        rows.append(_Row(r, -1 if lens is None else int(lens[b])))
    return rows


def _assemble(plan: Plan, outs: Sequence[_RowOut], mode: str) -> np.ndarray:
    ys = []
    for o in outs:
        y = o.y
        if plan.output.perm:
            y = y[:, list(plan.output.perm)]
        if not plan.output_seq:
            y = y[-1]  # run: the only row; step modes: the output after the last step
        ys.append(y)
    return plan.model.output_view.from_canonical(np.stack(ys)).astype(np.int8)


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
    lens = None
    if sequence_lens is not None:
        if not plan.lens_input:
            raise DataError("this model takes no sequence_lens input")
        if mode != "run":
            raise DataError("sequence_lens needs mode='run' (run_lens)")
        lens = np.asarray(sequence_lens).reshape(-1)
    rows = _rows_of(plan, x_int8, lens)
    if lens is not None and lens.shape[0] != len(rows):
        raise DataError(f"sequence_lens has {lens.shape[0]} entries for batch {len(rows)}")
    outs = _run_rows(exe, model, rows, mode, trace)
    y = _assemble(plan, outs, mode)
    return y, (_traces(plan, outs) if trace else None)


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
    rows = _rows_of(plan, x_int8, None)
    outs = _run_rows(exe, model, rows, "step", trace, timeout)
    perm = list(plan.output.perm) if plan.output.perm else None
    y = np.stack([o.y if perm is None else o.y[:, perm] for o in outs]).astype(np.int8)
    return y, (_traces(plan, outs) if trace else None)


def stack_traces(layers: Sequence[tuple[str, int]],
                 rows: Sequence[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> dict[str, tuple[CTrace, ...]]:
    """Per-row harness traces (one ``(valid, h, c)`` block per layer direction, in the order of
    ``layers``: ``(name, directions)``) as one CTrace (B, T, ...) per direction, keyed by layer
    name. Shared by the host (here) and the target (``ctarget``) harnesses."""
    result: dict[str, tuple[CTrace, ...]] = {}
    slot = 0
    for name, directions in layers:
        dirs = []
        for _ in range(directions):
            dirs.append(CTrace(h=np.stack([r[slot][1] for r in rows]), c=np.stack([r[slot][2] for r in rows]),
                               valid=np.stack([r[slot][0] for r in rows])))
            slot += 1
        result[name] = tuple(dirs)
    return result


def _traces(plan: Plan, outs: Sequence[_RowOut]) -> dict[str, tuple[CTrace, ...]]:
    """The traced rows' LSTM states, per live layer name, one CTrace (B, T, ...) per direction."""
    layers = [(plan.nodes[k].name, plan.nodes[k].num_directions) for k in _layers(plan)]
    return stack_traces(layers, [o.trace for o in outs])  # type: ignore[misc]


def host_runner(
    qmodel: QuantizedModel,
    compiler: str = "gcc",
    workdir: str | os.PathLike | None = None,
    opt: str = "-O2",
) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """Build once; return ``runner(int_inputs) -> outputs`` for ``validate``: each input an int8
    batch in the ONNX layout (rows of one length), each output what ``run_int`` returns for it."""
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="tinylstm-host-"))
    exe = build_host(qmodel, work / f"host_{compiler}", compiler=compiler, opt=opt)
    plan = exe.plans[0]

    def runner(int_inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        nonlocal exe, plan
        t_axis = qmodel.input_view.axis_of("T")
        longest = max((x.shape[t_axis] for x in int_inputs), default=0)
        if plan.max_steps is not None and longest > plan.max_steps:  # buffered: room for the data
            exe = build_host(qmodel, work / f"host_{compiler}_{longest}", compiler=compiler, opt=opt,
                             max_steps=longest)
            plan = exe.plans[0]
        rows: list[_Row] = []
        counts = []
        for x in int_inputs:
            r = _rows_of(plan, x, None)
            rows += r
            counts.append(len(r))
        outs = _run_rows(exe, 0, rows, "run", False)
        res, pos = [], 0
        for c in counts:
            res.append(_assemble(plan, outs[pos : pos + c], "run"))
            pos += c
        return res

    return runner


__all__ = ["CTrace", "HostExe", "build_host", "host_runner", "run_c", "run_c_steps"]
