"""`tinylstm build`: quantize + generate + validate, with every output written at the end."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.dataset import load_dataset
from .qmodel import QuantizedModel
from .validate.validation import ValidationReport, validate


@dataclass
class BuildResult:
    out_dir: Path
    files: list[Path]
    qmodel: QuantizedModel
    report: ValidationReport
    analysis: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:

        lines = [self.report.to_markdown(), ""]
        t = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        lines.append(f"wrote {len(self.files)} files to {self.out_dir} ({t})")
        return "\n".join(lines)


def check_c_generation(qm: QuantizedModel) -> None:
    """Refuse, on one line naming the node, a model the C back end cannot run (the C plan's checks:
    node kinds, per-row constants of a static batch, tables outside ``tl_lut_eval``), before any C
    work. LSTM and GRU layers both have C kernels."""
    from .codegen.plan import make_plan

    make_plan(qm)


def build(
    onnx_path: str | os.PathLike,
    calib: Any,
    out_dir: str | os.PathLike,
    *,
    data: Any = None,
    prefix: str = "model",
    compilers: tuple[str, ...] | list[str] = ("gcc",),
    quantize_options: dict[str, Any] | None = None,
    target: str | None = None,
    targets: Sequence[str] = (),
    max_steps: int | None = None,
    batch_row: int | None = None,
    generate_for: str | None = None,
) -> BuildResult:
    """Quantize ``onnx_path`` on ``calib``, emit C, validate on ``data`` (default: ``calib``).

    ``targets`` (e.g. ``("cortex-m4", "cortex-m55:-O2")``) also validates the C cross-compiled
    for each Cortex-M core under QEMU, like ``validate(..., targets=...)``; they are checked
    first, so an unknown core or a missing arm-none-eabi-gcc / qemu-system-arm raises
    :class:`~tinylstm.toolchain.ToolchainError` before any work. ``target`` (a core name;
    default: the first of ``targets``) adds that core's compiled sizes to the analysis.
    ``out_dir`` receives the C library, ``model.tlq``, ``report.md`` and ``report.json`` (with
    the footprint) in one atomic write after validation ran; a user error before that leaves
    nothing behind. ``max_steps`` bounds ``run()`` of models with a reverse or bidirectional LSTM
    (default: the longest sequence of the calibration and validation data). ``batch_row``: see
    :func:`tinylstm.load_onnx`. ``generate_for``: the core whose kernels the written C uses, as
    ``generate_c``'s ``target`` (``"cortex-m55"``: the Helium layout; default: the portable C). The
    emulated runs of ``targets`` always use their core's own kernels (Helium on cortex-m55).
    """
    from .codegen import generate_files
    from .codegen.names import check_prefix
    from .codegen.plan import make_plan
    from .codegen.writer import write_tree
    from .lowering import kernels_for
    from .onnx_import import load_onnx
    from .quantize.quantizer import quantize
    from .validate.analyze import analyze

    check_prefix(prefix)
    kernels = kernels_for(generate_for)  # an unknown core is refused before any work
    if targets:
        target = target or _check_targets(targets)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    fm = load_onnx(onnx_path, batch_row=batch_row)
    cal = load_dataset(calib, fm, what="calibration data")
    val = load_dataset(data, fm, what="validation data") if data is not None else cal
    bits_note = None
    if (quantize_options or {}).get("lstm_weight_bits") == "auto":  # per layer, scored on the validation data
        from .finetune.weight_bits import choose_weight_bits

        qm, choice = choose_weight_bits(fm, cal, val, quantize_options=quantize_options)
        bits_note = choice.describe()
    else:
        qm = quantize(fm, cal, **(quantize_options or {}))
    check_c_generation(qm)
    seconds["quantize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bound_note = None
    if max_steps is None and not make_plan(qm).streaming:
        max_steps = max(len(s) for s in cal.sequences + val.sequences)
        bound_note = (f"run() buffers sequences of up to {max_steps} steps (the model has a reverse or "
                      "bidirectional LSTM; the bound is the longest sequence of the calibration and validation "
                      "data): give max_steps (--max-steps) to change it")
    files: dict[str, str | bytes] = dict(generate_files(qm, prefix, max_steps, target=generate_for))
    seconds["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinylstm-build-") as tmp:
        report = validate(onnx_path, qm, val, float_model=fm,
                          compilers=tuple(compilers), targets=tuple(targets), workdir=tmp)
        tlq = Path(tmp) / "model.tlq"
        qm.save(tlq)
        files["model.tlq"] = tlq.read_bytes()
    seconds["validate"] = time.perf_counter() - t0
    analysis = analyze(qm, target=target, prefix=prefix, max_steps=max_steps, kernels=kernels)
    report.notes += _kernels_notes(kernels, targets)
    for note in (bound_note, bits_note):
        if note:
            report.notes.append(note)
    report.footprint = analysis
    files["report.md"] = report.to_markdown()
    files["report.json"] = report.to_json() + "\n"
    written = write_tree(files, out_dir)
    return BuildResult(Path(out_dir), written, qm, report, analysis, seconds)


def _kernels_notes(kernels: str, targets: Sequence[str]) -> list[str]:
    """What the report should say when the written C and the emulated runs use different kernels."""
    from .cbuild.emulated import parse_target_spec
    from .lowering import kernels_for

    helium = [t for t in targets if kernels_for(parse_target_spec(t)[0]) == "mve"]
    if kernels == "mve" and not helium:
        return ["the written C uses the Helium (MVE) kernels (generated for cortex-m55); no run here executed them: "
                "add --target cortex-m55 to validate them on the emulated core"]
    if kernels != "mve" and helium:
        return [f"the {', '.join(helium)} run(s) executed the Helium (MVE) kernels; the written C is the portable "
                "one (generate it for cortex-m55, --for cortex-m55, to ship what ran there)"]
    return []


def _check_targets(targets: Sequence[str]) -> str:
    """Validate the target specs and that the cross tools are installed; the first core's name."""
    from .cbuild.emulated import parse_target_spec
    from .cbuild.toolchain import ToolchainError, missing_reason

    names = [parse_target_spec(t)[0] for t in targets]  # unknown core / level -> ToolchainError
    reason = missing_reason("arm-none-eabi-gcc", "qemu-system-arm")
    if reason:
        raise ToolchainError(reason)  # the sentence validate's target runners raise
    return names[0]
