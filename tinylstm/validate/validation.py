"""`tinylstm validate`: onnxruntime float vs the integer simulator vs the compiled C.

The float oracle is onnxruntime on the original ONNX file. The simulator's int8 outputs are the
reference for the C: every C run (host compilers, later emulated Cortex-M targets) must equal
them exactly — a mismatch count other than zero is a failure. Against float we report error
statistics, classifier accuracy / top-1 agreement, regression targets, per-step error drift and
cell-state saturation per layer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import Dataset, load_dataset
from ..errors import DataError
from ..ir import FloatModel
from ..qmodel import QuantizedModel
from ..simulate import run_canonical_int
from .metrics import ClassStats, ErrorStats, class_stats, drift_slope, error_stats
from .oracle import Oracle

#: runs C on int8 inputs: canonical int8 batches (n, T, F), one per length group -> canonical int8
#: outputs (a row per sequence)
CRunner = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass
class CResult:
    """One compiled configuration compared with the simulator."""

    name: str  # e.g. "host gcc -O2"
    sequences: int
    mismatched_sequences: int
    mismatched_values: int
    first_mismatch: str | None = None
    seconds: float = 0.0


@dataclass
class ValidationReport:
    model: str
    data: str
    sequences: int
    output_layout: str
    int8_vs_float: ErrorStats
    classifier: ClassStats | None = None
    targets: dict[str, Any] | None = None
    step_error: list[float] | None = None
    drift_per_step: float | None = None
    cell_saturation: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    c: list[CResult] = field(default_factory=list)
    #: per emulated core: footprint and instructions of the first validation sequence
    #: (``ctarget.TargetCost.to_dict``), in the order of ``c``
    target_cost: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: ``tinylstm.analyze.analyze`` of the integer model, when a build wrote the C (``build``)
    footprint: dict[str, Any] | None = None

    @property
    def mismatches(self) -> int:
        return sum(r.mismatched_sequences for r in self.c)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mismatches"] = self.mismatches
        d["ok"] = self.ok
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        e = self.int8_vs_float
        lines = [
            f"# Validation of `{self.model}`",
            "",
            f"data: `{self.data}` — {self.sequences} sequences; output {self.output_layout}",
            "",
            "## Simulator vs compiled C (must be 0)",
            "",
            "| build | sequences | mismatched sequences | mismatched values | seconds |",
            "|---|---|---|---|---|",
        ]
        for r in self.c:
            lines.append(f"| {r.name} | {r.sequences} | {r.mismatched_sequences} | {r.mismatched_values} | "
                         f"{r.seconds:.2f} |")
        if not self.c:
            lines.append("| (no C build run) | | | | |")
        for r in self.c:
            if r.first_mismatch:
                lines.append(f"\nfirst mismatch ({r.name}): {r.first_mismatch}")
        if self.target_cost:
            steps = self.target_cost[0]["steps"]
            lines += [
                "",
                f"## Cost on the emulated cores (bytes; instructions of one validation sequence, T = {steps})",
                "",
                "| build | code: runtime + model + library | weights, tables (.rodata) | RAM: state (of which "
                "scratch) | stack | instructions per inference | per step | per MAC |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for t in self.target_cost:
                code = t["runtime_text"] + t["model_text"] + t["library_text"]
                lines.append(
                    f"| {t['target']} {t['opt']} | {code} ({t['runtime_text']} + {t['model_text']} + "
                    f"{t['library_text']}) | {t['model_rodata']} | {t['state_bytes']} ({t['scratch_bytes']}) | "
                    f"{t['stack_bytes']} | {t['instructions_per_inference']} | "
                    f"{t['instructions_per_step']:.0f} | {t['instructions_per_mac']:.2f} |")
            lines.append(f"\nMACs per step: {self.target_cost[0]['macs_per_step']} (tinylstm.analyze); per step = "
                         "mean of the step() calls (causal models) or run() / T.")
            helium = [f"{t['target']} {t['opt']}" for t in self.target_cost if t.get("kernels") == "mve"]
            if helium:
                lines.append(f"Helium (MVE) builds: {', '.join(helium)}: C generated for cortex-m55 (its LSTM layers "
                             "in the Helium layout where they take tl_lstm_step_mve, docs/targets.md).")
        lines += [
            "",
            "## int8 (simulator) vs float (onnxruntime)",
            "",
            "| rmse | mae | max abs | l2r | cosine | mean abs float |",
            "|---|---|---|---|---|---|",
            f"| {e.rmse:.4g} | {e.mae:.4g} | {e.max_abs:.4g} | {e.l2r:.4g} | {e.cosine:.6f} | "
            f"{e.mean_ref_abs:.4g} |",
        ]
        c = self.classifier
        if c is not None:
            lines += ["", "| classifier | float | int8 |", "|---|---|---|"]
            if c.accuracy_ref is not None:
                lines.append(f"| accuracy | {100 * c.accuracy_ref:.2f}% | {100 * c.accuracy_got:.2f}% |")
            lines.append(f"| top-1 agreement int8 vs float | {100 * c.top1_agreement:.2f}% | |")
        if self.targets:
            t = self.targets
            lines += ["", "| against targets | float | int8 |", "|---|---|---|"]
            for k in ("mae", "max_abs"):
                lines.append(f"| {k} | {t['float'][k]:.4g} | {t['int8'][k]:.4g} |")
            if "wrong_0.04" in t["float"]:
                lines.append(f"| wrong (abs err > 0.04) | {t['float']['wrong_0.04']} | {t['int8']['wrong_0.04']} |")
        if self.step_error is not None:
            se = self.step_error
            lines += ["", f"per-step mean abs error: first {se[0]:.4g}, last {se[-1]:.4g}, max {max(se):.4g}; "
                      f"drift {self.drift_per_step:.3g} per step"]
        if self.cell_saturation:
            lines += ["", "| layer | direction | cell values | saturated (int16 limits) |", "|---|---|---|---|"]
            for name, dirs in self.cell_saturation.items():
                for k, s in enumerate(dirs):
                    lines.append(f"| {name} | {k} | {s['values']} | {s['saturated']} |")
        if self.footprint is not None:
            from .analyze import format_analysis

            lines += ["", "## Footprint", "", format_analysis(self.footprint)]
        for n in self.notes:
            lines.append(f"\nnote: {n}")
        return "\n".join(lines) + "\n"


def validate(
    onnx_path: str | os.PathLike,
    qmodel: QuantizedModel,
    data: str | os.PathLike | np.ndarray | Sequence[np.ndarray] | Dataset,
    *,
    float_model: FloatModel | None = None,
    c_runners: dict[str, CRunner] | None = None,
    host_c: bool = True,
    compilers: Sequence[str] = ("gcc",),
    targets: Sequence[str] = (),
    workdir: str | os.PathLike | None = None,
) -> ValidationReport:
    """Compare onnxruntime float, the simulator and compiled C on ``data``.

    ``c_runners`` maps a build name to a runner; by default (``host_c``) the model is generated,
    compiled on the host with each of ``compilers`` and run; ``targets`` (e.g. ``cortex-m4``,
    ``cortex-m55:-O2``) adds cross-compiled runs on emulated Cortex-M cores (QEMU).
    """
    from ..onnx_import import load_onnx

    fm = float_model if float_model is not None else load_onnx(onnx_path, batch_row=qmodel.batch_row)
    check_same_model(fm, qmodel)
    ds = load_dataset(data, fm, what="validation data")
    oracle = Oracle(os.fspath(onnx_path), fm, batch_row=fm.batch_row)
    groups = ds.groups()
    order: list[int] = []
    f_out: list[np.ndarray] = []
    q_out: list[np.ndarray] = []
    q_int: list[np.ndarray] = []
    int_inputs: list[np.ndarray] = []
    sat: dict[str, list[dict[str, int]]] = {}
    for idx, batch in groups:
        yf = oracle.run(batch)
        xq = qmodel.quantize_input(batch.astype(np.float32))  # elementwise: canonical in, canonical out
        yq, traces = run_canonical_int(qmodel, xq, trace=True)
        int_inputs.append(xq)
        q_int.append(yq)
        order.extend(idx.tolist())
        f_out.extend(list(yf))
        q_out.extend(list(qmodel.dequantize_output(yq)))
        for name, trs in traces.items():
            rows = sat.setdefault(name, [{"values": 0, "saturated": 0} for _ in trs])
            for k, tr in enumerate(trs):
                cv = tr.c[tr.valid]
                rows[k]["values"] += int(cv.size)
                rows[k]["saturated"] += int(np.count_nonzero((cv >= 32767) | (cv <= -32768)))
    notes: list[str] = list(oracle.notes)
    flat_f = np.concatenate([a.reshape(-1) for a in f_out])
    flat_q = np.concatenate([a.reshape(-1) for a in q_out])
    report = ValidationReport(
        model=os.fspath(onnx_path),
        data=ds.source,
        sequences=len(ds),
        output_layout=_layout(fm),
        int8_vs_float=error_stats(flat_q, flat_f),
        cell_saturation=sat,
        notes=notes,
    )
    inv = np.argsort(np.asarray(order))
    f_seq = [f_out[i] for i in inv]
    q_seq = [q_out[i] for i in inv]
    if not fm.many_to_many and fm.output_features > 1:
        report.classifier = class_stats(
            np.stack([a.reshape(-1) for a in q_seq]), np.stack([a.reshape(-1) for a in f_seq]), ds.labels
        )
    if ds.targets is not None and ds.labels is None:
        report.targets = _target_stats(f_seq, q_seq, ds.targets)
    if fm.many_to_many:
        report.step_error, report.drift_per_step = _step_error(fm, f_seq, q_seq)

    runners = dict(c_runners or {})
    if host_c and not c_runners:
        from ..cbuild.host import host_runner

        for cc in compilers:
            runners[f"host {cc} -O2"] = host_runner(qmodel, compiler=cc, workdir=workdir)
    if targets:
        from ..cbuild.emulated import target_runners

        runners.update(target_runners(qmodel, list(targets), workdir))
    for name, runner in runners.items():
        t0 = time.perf_counter()
        outs = runner(int_inputs)
        report.c.append(_compare(name, q_int, outs, time.perf_counter() - t0))
        cost = getattr(runner, "cost", None)  # emulated cores: footprint and instruction counts
        if cost is not None and int_inputs:
            report.target_cost.append(cost(int_inputs[0]).to_dict())
    return report


def _layout(fm: FloatModel) -> str:
    from ..ir.reference import describe_view

    return describe_view(fm.output_view)


def _compare(name: str, sim: list[np.ndarray], got: list[np.ndarray], seconds: float) -> CResult:
    """Simulator vs C outputs, canonical (a row per sequence), compared exactly."""
    if len(got) != len(sim):
        raise DataError(f"{name}: C produced {len(got)} output groups for {len(sim)} inputs")
    seqs = bad_seqs = bad_vals = 0
    first = None
    for g, (s, c) in enumerate(zip(sim, got, strict=True)):
        c = np.asarray(c)
        if c.shape != s.shape:
            raise DataError(f"{name}: C output shape {c.shape} != simulator {s.shape}")
        diff = c.astype(np.int16) != s.astype(np.int16)
        per = diff.reshape(diff.shape[0], -1)  # one row per sequence
        seqs += per.shape[0]
        if diff.any():
            bad_vals += int(diff.sum())
            bad_seqs += int(per.any(axis=1).sum())
            if first is None:
                pos = tuple(int(v) for v in np.argwhere(diff)[0])
                first = f"group {g} index {pos}: C {int(c[pos])} vs simulator {int(s[pos])}"
    return CResult(name, seqs, bad_seqs, bad_vals, first, seconds)


def _target_stats(f_seq, q_seq, targets) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, seq in (("float", f_seq), ("int8", q_seq)):
        errs = []
        for a, t in zip(seq, targets, strict=True):
            t = np.asarray(t, np.float64).reshape(-1)
            a = np.asarray(a, np.float64).reshape(-1)
            if a.shape != t.shape:
                raise DataError(f"target y has {t.size} values per sequence; the model outputs {a.size}")
            errs.append(np.abs(a - t))
        e = np.concatenate(errs)
        per_seq = np.array([x.max() for x in errs])
        out[label] = {"mae": float(e.mean()), "max_abs": float(e.max()),
                      "wrong_0.04": int((per_seq >= 0.04).sum())}
    return out


def _step_error(fm: FloatModel, f_seq, q_seq) -> tuple[list[float], float]:
    t_axis = 0  # canonical per-sequence outputs: (T, F)
    sums: list[float] = []
    counts: list[int] = []
    for a, b in zip(f_seq, q_seq, strict=True):
        d = np.abs(np.moveaxis(a, t_axis, 0).astype(np.float64) - np.moveaxis(b, t_axis, 0))
        d = d.reshape(d.shape[0], -1).mean(axis=1)
        for t, v in enumerate(d):
            if t >= len(sums):
                sums.append(0.0)
                counts.append(0)
            sums[t] += float(v)
            counts[t] += 1
    se = [s / c for s, c in zip(sums, counts, strict=True)]
    return se, drift_slope(np.asarray(se))


def plot_step_error(report: ValidationReport, path: str | os.PathLike) -> Path | None:
    """Error vs time step as a PNG, when matplotlib is installed (else None)."""
    if report.step_error is None:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(report.step_error)
    ax.set_xlabel("time step")
    ax.set_ylabel("mean |int8 - float|")
    ax.set_title("error vs time step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def check_same_model(fm: FloatModel, qmodel: QuantizedModel) -> None:
    """Refuse an integer model quantized from another float model (its recorded fingerprint)."""
    want = qmodel.float_fingerprint
    if want and want != fm.fingerprint():
        raise DataError(
            f"the integer model was quantized from another float model than '{fm.source}' "
            f"(fingerprint {want[:12]}, this model {fm.fingerprint()[:12]}): quantize this model "
            "again, or validate the ONNX file the .tlq came from"
        )
