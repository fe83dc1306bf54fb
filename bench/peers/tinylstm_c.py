"""tinylstm's generated C in the peer benchmark: its outputs and latency on the host, its flash.

- :func:`host_c`: the model generated and compiled for the host with the bench timing harness
  (``bench/host_timing.c`` via ``bench/host_timing.py``, gcc ``-O2``). One harness run gives the
  outputs of ``model_run`` for every scored sequence (returned through a lookup, so the benchmark's
  per-sequence loop costs nothing); a second run on the latency sequences times ``model_run``
  inside the C program (``clock_gettime`` around the call, median of 5 calls per sequence, then
  the median over sequences) — no Python, process start or file I/O in the figure.
- :func:`c_footprint`: flash bytes of the generated C — weights, tables and params (rodata) plus
  runtime and model code — from the Cortex-M4 ``-Os`` build (``tinylstm.cbuild.emulated``) when
  ``arm-none-eabi-gcc`` is installed, else from the host objects (gcc ``-Os``, text + data).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import numpy as np

sys.path.insert(0, str(common.ROOT / "bench"))

import host_timing  # noqa: E402  (bench/host_timing.py)


@dataclass(frozen=True)
class HostC:
    run_one: Callable[[np.ndarray], np.ndarray]  # canonical (1, L, F) float32 -> canonical (1, outputs)
    latency_us: float  # median over the latency sequences of one run() call, timed in C
    step_us: float | None  # per step() call: median pass over the latency sequences / steps (causal models)
    compiler: str
    checked: int  # sequences compared here with QuantizedModel.run_int
    mismatched: int  # of which differ (must be 0)


def host_c(fm: Any, qm: Any, seqs: list[np.ndarray], latency_seqs: list[np.ndarray], work: Path,
           compiler: str = "gcc", check: int = 0) -> HostC:
    """Build and run the generated C on ``seqs`` (canonical (1, L, F) float32 each) and time it on
    ``latency_seqs``. The returned ``run_one`` answers for exactly those sequences (by content).
    The first ``check`` outputs are compared here with the simulator (``run_int``)."""
    exe = host_timing.build_timing(qm, work, compiler=compiler, opt="-O2")

    def ints(xs: list[np.ndarray]) -> list[np.ndarray]:
        return [qm.quantize_input(fm.input_view.from_canonical(x)) for x in xs]

    xs = ints(seqs)
    outs = host_timing.time_c(exe, xs, repeats=0)
    checked = min(check, len(xs))
    bad = sum(not np.array_equal(y, qm.run_int(x)) for x, y in zip(xs[:checked], outs.y_run[:checked], strict=True))
    table = {}
    for x, y in zip(seqs, outs.y_run, strict=True):
        table[np.ascontiguousarray(x).tobytes()] = fm.output_view.to_canonical(qm.dequantize_output(y))
    timed = host_timing.time_c(exe, ints(latency_seqs), min_ms=50, repeats=5, seq_repeats=5)

    def run_one(x: np.ndarray) -> np.ndarray:
        return table[np.ascontiguousarray(x).tobytes()]

    step = None if timed.step_ns is None else timed.step_ns / 1e3
    return HostC(run_one, float(timed.seq_median_ns or 0.0) / 1e3, step, compiler, checked, bad)


@dataclass(frozen=True)
class CFootprint:
    flash_bytes: int  # data + code
    data_bytes: int  # weights, per-row constants, tables, params (const data of the model)
    code_bytes: int  # runtime (tl_*) + model (<prefix>_*) code (+ compiler support routines on the target)
    how: str  # which build the sizes come from

    @property
    def note(self) -> str:
        return f"generated C, {self.how}: {self.data_bytes:,} data + {self.code_bytes:,} code"


def c_footprint(qm: Any, work: Path) -> CFootprint:
    from tinylstm.cbuild.toolchain import which

    if which("arm-none-eabi-gcc"):
        from tinylstm.cbuild import emulated as ctarget

        exe = ctarget.build_target(qm, "cortex-m4", work / "cortex-m4", "-Os")
        fp = ctarget.target_footprint(exe)
        return CFootprint(fp.flash_bytes, fp.model_rodata, fp.code_bytes, "Cortex-M4 -Os")
    return _host_footprint(qm, work / "host-size")


def _host_footprint(qm: Any, work: Path) -> CFootprint:
    """No cross compiler: sizes of the host objects (gcc -Os -c), Berkeley ``size`` text + data
    (text holds the read-only data). Unused runtime functions count too (no linking)."""
    from tinylstm.codegen.emit import emit_model, footprint
    from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
    from tinylstm.codegen.writer import write_tree

    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = dict(runtime_files())
    files.update(emit_model(qm, "model"))
    write_tree(files, work / "src")
    sizes = {}
    for name in ("model.c", *RUNTIME_SOURCES):
        obj = work / (name[:-2] + ".o")
        subprocess.run(["gcc", "-std=c99", "-Os", "-c", str(work / "src" / name), "-I", str(work / "src"), "-o",
                        str(obj)], check=True, capture_output=True)
        text, data = subprocess.run(["size", str(obj)], check=True, capture_output=True,
                                    text=True).stdout.splitlines()[1].split()[:2]
        sizes[name] = int(text) + int(data)
    data_bytes = footprint(qm, "model")["flash_bytes"]
    total = sum(sizes.values())
    return CFootprint(total, data_bytes, total - data_bytes, "host objects gcc -Os (no arm-none-eabi-gcc)")


def mismatches(c: np.ndarray, sim: np.ndarray) -> int:
    """Sequences whose C output differs from the simulator's (both (n, outputs), dequantized from
    int8 by the same affine map, so equal floats mean equal int8)."""
    return int(np.sum(np.any(c != sim, axis=1)))


__all__ = ["CFootprint", "HostC", "c_footprint", "host_c", "mismatches"]
