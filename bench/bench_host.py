"""Host C latency per step vs onnxruntime float, and the wall time of `tinylstm build`.

    .venv/bin/python bench/bench_host.py [--no-write] [--compilers gcc,clang] [--repeats 7]
                                         [--skip-build-time] [--workdir DIR]

a) Per model (the shipped japanese_vowels and adding_T400, random one-layer LSTMs I = 16,
   H = 64 / 128): the generated C compiled with ``-O2`` (gcc, clang) and timed inside the C
   program (bench/host_timing.c: ``clock_gettime`` around the model calls, warm-up first, median
   over repeats), against onnxruntime float on the same sequences in the same run, one thread:
   (i) streaming, one ``session.run`` per step of a single-step variant of the graph
   (``initial_h`` / ``initial_c`` fed from the previous call; checked against the full-sequence
   run to 1e-5) and (ii) the whole sequence in one call, divided by T. The C outputs must equal
   the simulator's exactly (checked). The numpy simulator per step is shown for context.
b) ``python -m tinylstm build`` (quantize + generate + validate with host C, gcc) on a
   ~100k-parameter model (LSTM I = 64, H = 128 + Dense 128 -> 10; calibration 64 sequences,
   validation 200 sequences, T = 50) as a subprocess, timed, and the same phases timed one by one
   through the Python API.

Prints markdown and writes it into docs/host-bench.md between the bench_host markers (unless
``--no-write``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # everything single-threaded (before numpy loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_simulator import random_model  # noqa: E402
from bench_target import random_lstm  # noqa: E402
from host_timing import CTiming, build_timing, time_c  # noqa: E402
from machine_info import cpu_model, tool_version  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.cbuild.emulated import macs_per_step  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.ir import FloatModel  # noqa: E402
from tinylstm.qmodel import QuantizedModel  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402

DOC = ROOT / "docs" / "host-bench.md"
BEGIN, END = "<!-- bench_host:begin -->", "<!-- bench_host:end -->"
EXAMPLES = ROOT / "examples" / "models"
PARITY_TOL = 1e-5
#: issue #4: host C per step at least this many times faster than onnxruntime float per step
GOAL_STEP_RATIO = 10.0


# ---------------------------------------------------------------------------------------------
# models and data
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One model with its calibration and timing sequences (each batch 1, ONNX input layout)."""

    name: str
    proto: onnx.ModelProto
    calib: list[np.ndarray]
    seqs: list[np.ndarray]  # float32, batch 1, ONNX layout


def _onnx_layout(fm: FloatModel, canonical: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(fm.input_view.from_canonical(canonical).astype(np.float32))


def shipped_case(name: str, n_seqs: int) -> Case:
    proto = onnx.load(str(EXAMPLES / f"{name}.onnx"))
    fm = tinylstm.load_onnx(proto)
    cal, test = load_task_file(EXAMPLES / f"{name}_calib.npz"), load_task_file(EXAMPLES / f"{name}_test.npz")

    def rows(d, n):
        return [_onnx_layout(fm, d.x[i : i + 1, : int(d.lengths[i])]) for i in range(min(n, d.n))]

    return Case(name, proto, rows(cal, cal.n), rows(test, n_seqs))


def random_case(hidden: int, inputs: int, steps: int, n_seqs: int) -> Case:
    proto = random_lstm(inputs, hidden, seed=hidden)
    for init in proto.graph.initializer:  # random_lstm's W, R come out float64 under NumPy 2: ORT refuses
        if init.data_type == TensorProto.DOUBLE:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    fm = tinylstm.load_onnx(proto)
    rng = np.random.default_rng(hidden)
    calib = [_onnx_layout(fm, rng.uniform(-1.5, 1.5, (4, t, inputs))) for t in (8, 13, 50)]
    seqs = [_onnx_layout(fm, rng.uniform(-1.5, 1.5, (1, steps, inputs))) for _ in range(n_seqs)]
    return Case(f"random H={hidden}", proto, calib, seqs)


# ---------------------------------------------------------------------------------------------
# onnxruntime: full sequence and a single-step variant of the graph
# ---------------------------------------------------------------------------------------------
def ort_session(proto: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class StepGraph:
    proto: onnx.ModelProto  # inputs: the original input (feed one step), h_in, c_in
    h_out: int  # index of Y_h among the outputs (the next h_in)
    c_out: int  # index of Y_c
    hidden: int


def step_graph(proto: onnx.ModelProto) -> StepGraph:
    """The graph with its single forward LSTM fed ``initial_h`` / ``initial_c`` from new graph
    inputs ``h_in`` / ``c_in`` ([1, batch, H]) and ``Y_h`` / ``Y_c`` added to the outputs: run on
    one time step at a time, feeding each call the state the previous one returned."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    lstms = [n for n in g.node if n.op_type == "LSTM"]
    if len(lstms) != 1:
        raise SystemExit(f"step_graph: expected one LSTM node, found {len(lstms)}")
    node = lstms[0]
    direction = next((a.s.decode() for a in node.attribute if a.name == "direction"), "forward")
    hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
    if direction != "forward":
        raise SystemExit("step_graph: the LSTM must run forward")
    ins = list(node.input) + [""] * (7 - len(node.input))
    ins[5], ins[6] = "h_in", "c_in"
    del node.input[:]
    node.input.extend(ins)
    outs = list(node.output) + [""] * (3 - len(node.output))
    outs[1] = outs[1] or "bench_Y_h"
    outs[2] = outs[2] or "bench_Y_c"
    del node.output[:]
    node.output.extend(outs)
    for name in ("h_in", "c_in"):
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "batch", hidden]))
    names = [o.name for o in g.output]
    for name in outs[1:]:
        if name not in names:
            g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "batch", hidden]))
            names.append(name)
    # drop what fed the old initial state (e.g. Shape -> ConstantOfShape zeros)
    needed = set(names)
    keep = []
    for n in reversed(list(g.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    del g.node[:]
    g.node.extend(reversed(keep))
    onnx.checker.check_model(m)
    return StepGraph(m, names.index(outs[1]), names.index(outs[2]), hidden)


def _steps(fm: FloatModel, x: np.ndarray) -> list[np.ndarray]:
    """One batch-1 sequence (ONNX layout) -> its steps, each a one-step tensor in the same layout."""
    xc = fm.input_view.to_canonical(x)
    return [_onnx_layout(fm, xc[:, t : t + 1]) for t in range(xc.shape[1])]


def ort_streamer(sg: StepGraph, input_name: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    sess = ort_session(sg.proto)
    zeros = np.zeros((1, 1, sg.hidden), np.float32)

    def stream(steps: list[np.ndarray]) -> np.ndarray:
        h = c = zeros
        out: list[np.ndarray] = []
        for xt in steps:
            out = sess.run(None, {input_name: xt, "h_in": h, "c_in": c})
            h, c = out[sg.h_out], out[sg.c_out]
        return out[0]

    return stream


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def call_floor_us(repeats: int) -> float:
    """onnxruntime's Python per-call cost: session.run of an Identity on 16 floats."""
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    sess = ort_session(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    x = np.zeros((1, 16), np.float32)
    n = 2000
    return median_time(lambda: [sess.run(None, {"x": x}) for _ in range(n)], repeats) / n * 1e6


# ---------------------------------------------------------------------------------------------
# part a
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyRow:
    name: str
    shape: str
    macs: int  # multiply-accumulates per step (tinylstm.cbuild.emulated.macs_per_step)
    steps: int  # time steps per pass (all timing sequences)
    c_step_us: dict[str, float]  # compiler -> us per step() call
    c_run_us: dict[str, float]  # compiler -> us per step of run()
    ort_step_us: float
    ort_seq_us: float  # whole-sequence session.run / T
    sim_us: float | None
    parity: float  # max |step graph - full graph| on the final output


def _check_exact(name: str, q: QuantizedModel, xs: list[np.ndarray], t: CTiming) -> None:
    sim = [q.run_int(x) for x in xs]
    bad = sum(not np.array_equal(a, b) for a, b in zip(t.y_run, sim, strict=True))
    if t.y_step is not None:
        bad += sum(not np.array_equal(a, b) for a, b in zip(t.y_step, sim, strict=True))
    if bad:
        raise SystemExit(f"{name}: {bad} C outputs differ from the simulator")


def latency(case: Case, compilers: list[str], work: Path, repeats: int, sim_seqs: int) -> LatencyRow:
    fm = tinylstm.load_onnx(case.proto)
    q = quantize(fm, case.calib)
    xs = [q.quantize_input(x) for x in case.seqs]
    c_step, c_run = {}, {}
    for cc in compilers:
        exe = build_timing(q, work / case.name.replace(" ", "_").replace("=", "") / cc, compiler=cc)
        t = time_c(exe, xs, repeats=repeats)
        _check_exact(f"{case.name} {cc}", q, xs, t)
        if t.step_ns is not None:
            c_step[cc] = t.step_ns / 1e3
        c_run[cc] = t.run_ns_per_step / 1e3
    steps = sum(int(fm.input_view.to_canonical(x).shape[1]) for x in case.seqs)

    full = ort_session(case.proto)
    in_name = full.get_inputs()[0].name
    sg = step_graph(case.proto)
    stream = ort_streamer(sg, in_name)
    per_seq = [_steps(fm, x) for x in case.seqs]
    parity = 0.0
    for x, st in zip(case.seqs, per_seq, strict=True):
        parity = max(parity, float(np.max(np.abs(stream(st) - full.run(None, {in_name: x})[0]))))
    if parity > PARITY_TOL:
        raise SystemExit(f"{case.name}: the single-step graph differs from the full run by {parity:.3g}")
    t_step = median_time(lambda: [stream(st) for st in per_seq], repeats)
    t_seq = median_time(lambda: [full.run(None, {in_name: x}) for x in case.seqs], repeats)
    sim_us = None
    if sim_seqs:
        sub = xs[:sim_seqs]
        sim_steps = sum(int(fm.input_view.to_canonical(x).shape[1]) for x in sub)
        sim_us = median_time(lambda: [q.run_int(x) for x in sub], 1) / sim_steps * 1e6
    shape = describe(fm)
    row = LatencyRow(case.name, shape, macs_per_step(q), steps, c_step, c_run, t_step / steps * 1e6,
                     t_seq / steps * 1e6, sim_us, parity)
    cs = ", ".join(f"{cc} step {row.c_step_us.get(cc, float('nan')):.3f} run {row.c_run_us[cc]:.3f}"
                   for cc in compilers)
    print(f"{case.name:14s} {shape}: C us/step {cs}; ORT step {row.ort_step_us:.2f} seq {row.ort_seq_us:.2f}; "
          f"sim {sim_us if sim_us is None else round(sim_us, 1)}; parity {parity:.2g}", flush=True)
    return row


def describe(fm: FloatModel) -> str:
    parts = []
    for node in fm.nodes[1:]:
        kind = type(node).__name__
        if kind == "LstmNode":
            parts.append(f"LSTM {node.input_size}->{node.hidden_size}")
        elif kind == "DenseNode":
            parts.append(f"Dense {node.weight.shape[1]}->{node.features}")
    return " + ".join(parts)


def latency_table(rows: list[LatencyRow], compilers: list[str], floor_us: float) -> list[str]:
    cc0 = compilers[0]
    both = " / ".join(compilers)
    head = (f"| model | layers | MACs/step | steps timed | C step() µs ({both}) | C run() µs/step ({both}) | "
            f"C {cc0} ns/MAC | ORT streaming µs/step | ORT whole sequence µs/step | "
            f"**ORT streaming / C step()** ({both}) | ORT whole sequence / C {cc0} run() | simulator µs/step |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    met = 0
    for r in rows:
        ratios = [r.ort_step_us / r.c_step_us[cc] for cc in compilers if cc in r.c_step_us]
        met += bool(ratios) and max(ratios) >= GOAL_STEP_RATIO
        cells = [r.name, r.shape, str(r.macs), str(r.steps),
                 " / ".join(f"{r.c_step_us[cc]:.2f}" if cc in r.c_step_us else "-" for cc in compilers),
                 " / ".join(f"{r.c_run_us[cc]:.2f}" for cc in compilers),
                 f"{r.c_step_us.get(cc0, r.c_run_us[cc0]) * 1e3 / r.macs:.2f}",
                 f"{r.ort_step_us:.1f}", f"{r.ort_seq_us:.2f}",
                 " / ".join(f"**{x:.1f}×**" for x in ratios) or "-",
                 f"{r.ort_seq_us / r.c_run_us[cc0]:.2f}×", "-" if r.sim_us is None else f"{r.sim_us:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Goal (issue #4): C at least {GOAL_STEP_RATIO:g}× faster per step than onnxruntime streaming: "
              f"met on {met} of {len(rows)} models (best compiler). onnxruntime's Python call floor "
              f"(`session.run` of an Identity on 16 floats): {floor_us:.1f} µs per call; the streaming column pays "
              "it once per step."]
    return lines


# ---------------------------------------------------------------------------------------------
# part b
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildTiming:
    params: int
    cli_seconds: float
    cli_phases: str  # as `tinylstm build` printed them
    startup_seconds: float  # python -m tinylstm --help
    phases: dict[str, float]  # Python API, one phase at a time
    mismatches: int


def build_time(work: Path, inputs: int = 64, hidden: int = 128, outputs: int = 10, steps: int = 50,
               n_calib: int = 64, n_val: int = 200) -> BuildTiming:
    from tinylstm.codegen import generate_files

    from tinylstm.cbuild.host import host_runner
    from tinylstm.data.dataset import load_dataset
    from tinylstm.validate.validation import validate

    work.mkdir(parents=True, exist_ok=True)
    model = work / "m100k.onnx"
    onnx.save(random_model(inputs, hidden, outputs, seed=0), str(model))
    rng = np.random.default_rng(0)
    calib, val = work / "calib.npz", work / "val.npz"
    np.savez(calib, x=rng.normal(0, 1, (n_calib, steps, inputs)).astype(np.float32))
    np.savez(val, x=rng.normal(0, 1, (n_val, steps, inputs)).astype(np.float32))
    out = work / "out"
    cmd = [sys.executable, "-m", "tinylstm", "build", str(model), "--calib", str(calib), "--data", str(val),
           "-o", str(out)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    cli = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr[-2000:]}")
    m = re.search(r"wrote \d+ files to .*\((.*)\)", res.stdout)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinylstm", "--help"], capture_output=True, cwd=ROOT, timeout=120)
    startup = time.perf_counter() - t0

    ph: dict[str, float] = {}

    def lap(name: str, t_start: float) -> float:
        now = time.perf_counter()
        ph[name] = now - t_start
        return now

    t = time.perf_counter()
    fm = tinylstm.load_onnx(model)
    t = lap("load ONNX", t)
    cal = load_dataset(calib, fm, what="calibration data")
    ds = load_dataset(val, fm, what="validation data")
    t = lap("load data", t)
    qm = quantize(fm, cal.sequences)
    t = lap("calibrate + quantize", t)
    generate_files(qm, "model")
    t = lap("generate C", t)
    sess = ort_session(onnx.load(str(model)))
    name = sess.get_inputs()[0].name
    xs = [fm.input_view.from_canonical(b).astype(np.float32) for _, b in ds.groups()]
    for x in xs:
        sess.run(None, {name: x})
    t = lap("onnxruntime float", t)
    ints = [qm.quantize_input(x) for x in xs]
    for x in ints:
        qm.run_int(x, trace=True)
    t = lap("simulator (traced)", t)
    runner = host_runner(qm, workdir=work / "c")
    t = lap("compile host C (gcc -O2)", t)
    runner(ints)
    t = lap("run host C", t)
    rep = validate(model, qm, ds, float_model=fm, workdir=work / "v")
    lap("whole validate() (all of the above it does)", t)
    return BuildTiming(fm.parameters, cli, m.group(1) if m else "?", startup, ph, rep.mismatches)


def build_table(b: BuildTiming) -> list[str]:
    lines = [f"`python -m tinylstm build` wall time: **{b.cli_seconds:.2f} s** (goal ≤ 10 s), as the CLI split it: "
             f"{b.cli_phases}; Python start-up + imports (`python -m tinylstm --help`) {b.startup_seconds:.2f} s. "
             f"Simulator vs C mismatches: {b.mismatches}.",
             "", "The same phases one by one through the Python API:", "",
             "| phase | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in b.phases.items()]
    return lines


# ---------------------------------------------------------------------------------------------
def machine_note(compilers: list[str]) -> str:
    cpu = cpu_model(platform.machine())
    ccs = "; ".join(tool_version([cc, "--version"], missing="-") for cc in compilers)
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {ccs}; "
            f"onnxruntime {ort.__version__}, numpy {np.__version__}, Python {platform.python_version()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compilers", default="gcc,clang")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement (median)")
    ap.add_argument("--sim-seqs", type=int, default=2, help="sequences for the simulator column (0: skip)")
    ap.add_argument("--skip-build-time", action="store_true", help="part a only")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/host-bench.md alone")
    args = ap.parse_args()
    compilers = [c for c in args.compilers.split(",") if c]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tinylstm-bench-host-"))

    cases = [shipped_case("japanese_vowels", 32), shipped_case("adding_T400", 8),
             random_case(64, 16, 100, 8), random_case(128, 16, 100, 8)]
    rows = [latency(c, compilers, work, args.repeats, args.sim_seqs) for c in cases]
    floor = call_floor_us(args.repeats)
    b = None if args.skip_build_time else build_time(work / "build")
    if b is not None:
        print(f"tinylstm build: {b.cli_seconds:.2f} s ({b.cli_phases}); phases {b.phases}", flush=True)

    text_lines = [
        f"Machine: {machine_note(compilers)}. Command: `.venv/bin/python bench/bench_host.py`.",
        "",
        "### Per-step latency: generated C vs onnxruntime float",
        "",
        "C: the generated model compiled with `-O2` and the strict warning set, timed inside the program "
        "(`bench/host_timing.c`, `clock_gettime(CLOCK_MONOTONIC)` around the calls only, warm-up pass first, "
        f"median of {args.repeats} samples of ≥ 50 ms). `step()` µs = one pass of `reset` + `step()` over every "
        "timing sequence / steps; `run()` µs/step = one pass of `run()` / steps. Its outputs equal the "
        "simulator's exactly (checked every run). onnxruntime (CPU, 1 thread, Python API): *streaming* = one "
        "`session.run` per step of the same graph with the LSTM's `initial_h`/`initial_c` fed from the previous "
        f"call (final output within {PARITY_TOL:g} of the full-sequence run, checked); *whole sequence* = one "
        "`session.run` per sequence / T. Timing sequences: 32 japanese_vowels test utterances (7–29 steps), "
        "8 adding_T400 test sequences (400 steps), 8 random sequences of 100 steps for the random models "
        "(`bench_target.random_lstm`, output Y_h, no head). Simulator: `QuantizedModel.run_int`, batch 1, for "
        "context.",
        "",
        *latency_table(rows, compilers, floor),
    ]
    if b is not None:
        text_lines += [
            "",
            "### `tinylstm build` wall time, ~100k parameters",
            "",
            f"Model: x [batch, time, 64] → LSTM(64 → 128) → Dense(128 → 10) ({b.params} parameters, "
            "random weights, `bench_simulator.random_model`); calibration 64 sequences and validation 200 "
            "sequences of T = 50, N(0, 1) inputs; default quantizer (int16 LSTM weights), host C with gcc.",
            "",
            *build_table(b),
        ]
    text = "\n".join(text_lines)
    print()
    print(text)
    if not args.no_write:
        doc = DOC.read_text() if DOC.is_file() else ""
        if BEGIN not in doc or END not in doc:
            raise SystemExit(f"{DOC}: markers {BEGIN} / {END} not found")
        DOC.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}",
                              doc, flags=re.S))
        print(f"\nwrote the tables into {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
