"""Instructions per MAC of the generated LSTM (or GRU) step on emulated Cortex-M cores, and its footprint.

    .venv/bin/python bench/bench_target.py [--hidden 32,64,128] [--inputs 16] [--steps 8]
                                           [--targets cortex-m0plus,cortex-m4,cortex-m55]
                                           [--opts -Os,-O2] [--bits 16,8] [--no-write]
                                           [--cell lstm|gru] [--linear-before-reset 1|0]
                                           [--helium] [--head N]

One random forward LSTM layer (I inputs, H hidden, output Y_h, no head) per H, quantized with
random calibration data (int16 LSTM weights, the default, and int8), generated, cross-compiled
and run on QEMU. Each ``<prefix>_step()`` call is counted by the instruction-counting plugin;
instr/MAC = mean instructions per step() / (4 H (I + H)). Footprint (runtime .text, model
.text, .rodata, state, scratch, worst-case stack) is measured on the first target at -Os.
Prints a markdown table and writes it into docs/targets.md between the bench_target markers
(unless ``--no-write``).

``--cell gru``: the same with one forward GRU layer (``linear_before_reset`` 1 by default, PyTorch's;
MACs 3 H (I + H)); its table goes between the bench_target_gru markers of docs/targets.md when
they exist (else it is only printed).

``--helium``: the Helium (MVE) kernels on Cortex-M55 (C generated for cortex-m55: ``tl_lstm_step_mve``)
at each of ``--opts``; their table goes between the bench_target_mve markers. Without it the M55
columns run the portable C (the Armv7E-M kernels). ``--head N`` adds a Dense head of N outputs after
Y_h (its MACs counted: H·N per step).
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine_info import cpu_model, tool_version  # noqa: E402

import tinylstm  # noqa: E402
from tinylstm.cbuild import emulated as ctarget  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402

DOC = ROOT / "docs" / "targets.md"
BEGIN, END = "<!-- bench_target:begin -->", "<!-- bench_target:end -->"
GRU_BEGIN, GRU_END = "<!-- bench_target_gru:begin -->", "<!-- bench_target_gru:end -->"
#: goals of the kernels (issue 15: integer spec v2; I = 16)
GOALS = ("goals: M4 <= 1.25 instr/MAC at H = 64 and <= 1.0 at H = 128 (int8 weights <= 1.6), M0+ <= 5.0 / 4.0, "
         "runtime .text <= 1.5 KB, scratch <= 8*H bytes per layer")
#: the GRU's (issue 18)
GRU_GOALS = "goal: M4 -Os <= 1.4 instr/MAC at H = 64 (MACs = 3·H·(I+H)); runtime .text reported"
#: the Helium kernels' (issue 17)
MVE_BEGIN, MVE_END = "<!-- bench_target_mve:begin -->", "<!-- bench_target_mve:end -->"
MVE_GOALS = ("goals: M55 Helium -O2 <= 0.6 instr/MAC at H = 64 with a Dense head and <= 0.45 at H = 128 "
             "(int16 weights), <= 0.6 at H = 64 with int8 weights")


def random_lstm(inputs: int, hidden: int, seed: int = 0, head: int = 0) -> onnx.ModelProto:
    """x [time, batch, I] -> LSTM (forward, bias) -> Y_h [1, batch, H] (-> Squeeze -> Dense(head) when
    ``head``: y [batch, head])."""
    rng = np.random.default_rng(seed)
    H, I = hidden, inputs
    w = (rng.uniform(-1, 1, (1, 4 * H, I)) / np.sqrt(I)).astype(np.float32)
    r = (rng.uniform(-1, 1, (1, 4 * H, H)) / np.sqrt(H)).astype(np.float32)
    b = rng.normal(0, 0.3, (1, 8 * H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["", "Y_h"], hidden_size=H)]
    out = helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "batch", H])
    if head:
        hw = (rng.uniform(-1, 1, (head, H)) / np.sqrt(H)).astype(np.float32)
        inits += [numpy_helper.from_array(hw, "HW"), numpy_helper.from_array(np.zeros(head, np.float32), "HB"),
                  numpy_helper.from_array(np.array([0], np.int64), "axes0")]
        nodes += [helper.make_node("Squeeze", ["Y_h", "axes0"], ["h"]),
                  helper.make_node("Gemm", ["h", "HW", "HB"], ["y"], transB=1)]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", head])
    graph = helper.make_graph(
        nodes, "bench_lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", I])], [out],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def random_gru(inputs: int, hidden: int, seed: int = 0, linear_before_reset: int = 1) -> onnx.ModelProto:
    """x [time, batch, I] -> GRU (forward, bias) -> Y_h [1, batch, H]."""
    rng = np.random.default_rng(seed)
    H, I = hidden, inputs
    w = (rng.uniform(-1, 1, (1, 3 * H, I)) / np.sqrt(I)).astype(np.float32)
    r = (rng.uniform(-1, 1, (1, 3 * H, H)) / np.sqrt(H)).astype(np.float32)
    b = rng.normal(0, 0.3, (1, 6 * H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    graph = helper.make_graph(
        [helper.make_node("GRU", ["x", "W", "R", "B"], ["", "Y_h"], hidden_size=H,
                          linear_before_reset=linear_before_reset)], "bench_gru",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", I])],
        [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "batch", H])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def machine_note() -> str:
    cpu = cpu_model("?")
    gcc = tool_version(["arm-none-eabi-gcc", "--version"])
    qemu = tool_version(["qemu-system-arm", "--version"])
    return f"{platform.system()} {platform.machine()} ({cpu}); {gcc}; {qemu}"


def short(target: str) -> str:
    return {"cortex-m0plus": "M0+", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7",
            "cortex-m33": "M33", "cortex-m55": "M55"}.get(target, target)


def _split_table(fits: dict[tuple[int, int], list[tuple[int, int, float]]], bits: list[int],
                 cols: list[tuple[str, str]], cell: str = "LSTM") -> list[str]:
    """Least-squares split of instructions per step into a*MACs + b*H + c over the H values:
    a is the matrix-vector cost per MAC, b the per-unit cost (requantization, activations, cell)."""
    if not fits or min(len(v) for v in fits.values()) < 3:
        return []
    out = ["Split of a step (least squares over H: instr/step = a·MACs + b·H + c): a = matmul instr/MAC, "
           "b = instructions per hidden unit outside the matmul (requantization, peepholes, tables, cell):",
           "", f"| {cell} weights | " + " | ".join(f"{short(t)} {o} a / b" for t, o in cols) + " |",
           "|---|" + "---|" * len(cols)]
    for nbits in bits:
        cells = []
        for k in range(len(cols)):
            pts = np.array(fits[(nbits, k)], dtype=np.float64)
            a, b, _ = np.linalg.lstsq(np.c_[pts[:, 0], pts[:, 1], np.ones(len(pts))], pts[:, 2], rcond=None)[0]
            cells.append(f"{a:.2f} / {b:.0f}")
        out.append(f"| int{nbits} | " + " | ".join(cells) + " |")
    return out + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", default="32,64,128")
    ap.add_argument("--inputs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--targets", default="cortex-m0plus,cortex-m4,cortex-m55")
    ap.add_argument("--opts", default="-Os,-O2")
    ap.add_argument("--bits", default="16,8", help="LSTM weight widths (quantize lstm_weight_bits)")
    ap.add_argument("--portable", default="cortex-m0plus,cortex-m4",
                    help="also build these targets at -Os with -DTL_PORTABLE (portable C kernels, no assembly)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/targets.md alone")
    ap.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="the recurrent layer (default lstm)")
    ap.add_argument("--linear-before-reset", type=int, choices=(0, 1), default=1,
                    help="--cell gru: the GRU's linear_before_reset (default 1, PyTorch's)")
    ap.add_argument("--helium", action="store_true", help="the Helium (MVE) kernels on cortex-m55 at each of --opts")
    ap.add_argument("--head", type=int, default=0, help="a Dense head of N outputs after Y_h (LSTM only)")
    args = ap.parse_args()
    gru = args.cell == "gru"
    cell = "GRU" if gru else "LSTM"
    hiddens = [int(h) for h in args.hidden.split(",") if h]
    targets = [t for t in args.targets.split(",") if t]
    opts = [o if o.startswith("-") else "-" + o for o in args.opts.split(",") if o]
    bits = [int(b) for b in args.bits.split(",") if b]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tinylstm-bench-target-"))
    I, T = args.inputs, args.steps
    rng = np.random.default_rng(1)

    cols = [(t, o) for t in targets for o in opts]
    cols += [(t, "-Os portable") for t in args.portable.split(",") if t]
    fp_target = "cortex-m4" if "cortex-m4" in targets else targets[0]
    fp_opt = "-Os"
    if args.helium:  # the Helium columns only (the portable ones are the main table's)
        cols, fp_target, fp_opt = [("cortex-m55", f"{o} Helium") for o in opts], "cortex-m55", "-Os Helium"
    rows: list[str] = []
    fps: list[str] = []
    fits: dict[tuple[int, int], list[tuple[int, int, float]]] = {}  # (bits, column) -> (MACs, H, instr/step)
    for nbits in bits:
        for H in hiddens:
            proto = random_gru(I, H, H, args.linear_before_reset) if gru else random_lstm(I, H, seed=H, head=args.head)
            fm = tinylstm.load_onnx(proto)
            calib = [rng.uniform(-1.5, 1.5, (t, 4, I)).astype(np.float32) for t in (8, 13)]
            q = quantize(fm, calib, lstm_weight_bits=nbits)
            x = q.quantize_input(rng.uniform(-1.5, 1.5, (T, 1, I)).astype(np.float32))
            macs = ctarget.macs_per_step(q)
            cells = []
            for k, (target, opt) in enumerate(cols):
                portable = opt.endswith(" portable")
                exe = ctarget.build_target(q, target, work / f"b{nbits}_H{H}" / f"{target}{opt.replace(' ', '_')}",
                                           opt.split()[0], extra_cflags=("-DTL_PORTABLE",) if portable else (),
                                           kernels="mve" if opt.endswith(" Helium") else "portable")
                c = ctarget.count_steps(exe, x)
                r = ctarget.run_target(exe, x, "step")
                if not np.array_equal(r.y, q.run_int(x)):
                    raise SystemExit(f"H={H} {target} {opt}: target output differs from the simulator")
                cells.append(f"{c.instructions_per_mac:.2f}")
                fits.setdefault((nbits, k), []).append((macs, H, c.step_mean))
                print(f"int{nbits} H={H:<4} {target:<14} {opt}: {c.step_mean:10.1f} instr/step "
                      f"{c.instructions_per_mac:6.2f} instr/MAC", flush=True)
                if (target, opt) == (fp_target, fp_opt):
                    fp = ctarget.target_footprint(exe)
                    fps.append(f"| int{nbits} | {H} | {fp.runtime_text} | {fp.model_text} | {fp.model_rodata} | "
                               f"{fp.state_bytes} | {fp.scratch_bytes} | {fp.stack_bytes} | "
                               f"{', '.join(fp.library_calls) or '-'} |")
            rows.append(f"| int{nbits} | {H} | {macs} | " + " | ".join(cells) + " |")
    head = f"| {cell} weights | H | MACs/step | " + " | ".join(f"{short(t)} {o}" for t, o in cols) + " |"
    what = (f"One forward GRU layer (linear_before_reset = {args.linear_before_reset})" if gru
            else "One forward LSTM layer" + (f" and a Dense({args.head}) head" if args.head else ""))
    flags = "".join(f" {f}" for f, on in (("--helium", args.helium), (f"--head {args.head}", args.head)) if on)
    table = [
        f"{what}, I = {I}, output Y_h, {T} steps; random weights quantized with random "
        f"calibration data; mean instructions per `model_step()` call / ({'3' if gru else '4'}·H·(I+H)"
        f"{f' + {args.head}·H' if args.head else ''}). "
        f"Command: `.venv/bin/python bench/bench_target.py{' --cell gru' if gru else ''}"
        f"{' --linear-before-reset 0' if gru and not args.linear_before_reset else ''}{flags}`. "
        f"Machine: {machine_note()}.",
        "",
        "instr/MAC:",
        "",
        head,
        "|" + "---|" * (3 + len(cols)),
        *rows,
        "",
        *_split_table(fits, bits, cols, cell),
        f"Footprint on {fp_target} {fp_opt} (bytes; linked ELF; stack = worst chain from `model_run`/`model_step`, "
        "library routines excluded):",
        "",
        f"| {cell} weights | H | runtime .text | model .text | model .rodata | state | of which scratch | stack | "
        "library calls |",
        "|---|---|---|---|---|---|---|---|---|",
        *fps,
        "",
        f"({GRU_GOALS if gru else (MVE_GOALS if args.helium else GOALS)}.)",
    ]
    text = "\n".join(table)
    print()
    print(text)
    begin, end = (GRU_BEGIN, GRU_END) if gru else ((MVE_BEGIN, MVE_END) if args.helium else (BEGIN, END))
    if not args.no_write:
        doc = DOC.read_text()
        if gru and (begin not in doc or end not in doc):
            print(f"\n{DOC} has no {begin} / {end} markers: table printed only")
            return 0
        if begin not in doc or end not in doc:
            raise SystemExit(f"{DOC}: markers {begin} / {end} not found")
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{text}\n{end}", doc, flags=re.S)
        DOC.write_text(new)
        print(f"\nwrote the table into {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
