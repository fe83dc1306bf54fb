"""JapaneseVowels speaker classifier: ONNX -> int8 -> C on the host and on an emulated Cortex-M4.

    .venv/bin/python examples/japanese_vowels.py [--train] [--out build/jv] [--limit N]

Uses the shipped ``examples/models/japanese_vowels.onnx`` (an LSTM(32) + Linear trained on the
270 UCI training utterances). ``--train`` retrains it first with torch (about 15 s, the recipe of
``scripts/train_models.py``) and exports it with ``tinylstm.export.from_torch``.
Then: quantize on the training utterances, generate C, validate on the 370 test utterances
(onnxruntime float vs the int8 simulator vs gcc on the host and, when arm-none-eabi-gcc and
qemu-system-arm are installed, the C built for Cortex-M4 and run under QEMU), print the footprint.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import tinylstm  # noqa: E402
from tinylstm.cbuild.toolchain import missing_reason  # noqa: E402
from tinylstm.data.dataset import Dataset, load_dataset  # noqa: E402
from tinylstm.pipeline import build  # noqa: E402
from tinylstm.validate.analyze import analyze, format_analysis  # noqa: E402
from tinylstm.validate.validation import ValidationReport, validate  # noqa: E402

MODELS = ROOT / "examples" / "models"
TARGET = "cortex-m4"


@dataclass(frozen=True)
class Result:
    report: ValidationReport  # float vs simulator vs every C build that ran
    analysis: dict  # tinylstm.validate.analyze.analyze output
    target_skipped: str | None  # why the Cortex-M4 run was skipped, else None


def train_and_export(onnx_path: Path) -> Path:
    """Retrain with the recipe of scripts/train_models.py and export with from_torch."""
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    from tinylstm.export import from_torch
    from train_models import JV_HIDDEN, JV_NOISE, fit_japanese_vowels

    from tinylstm.data.taskfiles import load_japanese_vowels

    torch.set_num_threads(1)
    jv = load_japanese_vowels()
    t0 = time.perf_counter()
    model, _ = fit_japanese_vowels(jv.train, hidden=JV_HIDDEN, noise=JV_NOISE, seed=2)
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    model.eval()
    return from_torch(model, torch.from_numpy(jv.train.x[:2, :10]), onnx_path)


def subset(ds: Dataset, n: int | None) -> Dataset:
    """The first ``n`` sequences (all when None)."""
    if n is None:
        return ds
    labels = None if ds.labels is None else ds.labels[:n]
    return Dataset(ds.sequences[:n], labels, None if ds.targets is None else ds.targets[:n], ds.source)


def run(onnx_path: Path, out_dir: Path, *, limit: int | None = None, target: bool = True) -> Result:
    """Build (quantize + generate + validate on the host) and validate on the emulated M4."""
    fm = tinylstm.load_onnx(onnx_path)
    calib = subset(load_dataset(MODELS / "japanese_vowels_calib.npz", fm, what="calibration data"), limit)
    test = subset(load_dataset(MODELS / "japanese_vowels_test.npz", fm, what="test data"), limit)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    res = build(onnx_path, calib, out_dir, data=test, prefix="jv", compilers=("gcc",))
    print(f"wrote {len(res.files)} files to {out_dir}")
    report = res.report  # float vs simulator vs host gcc
    skipped = missing_reason("arm-none-eabi-gcc", "qemu-system-arm") if target else "not requested"
    if not skipped:
        on_m4 = validate(onnx_path, res.qmodel, test, float_model=fm, host_c=False, targets=(TARGET,))
        report.c.extend(on_m4.c)
    an = analyze(res.qmodel, target=None if skipped else TARGET, prefix="jv")
    return Result(report, an, skipped)


def summary(res: Result) -> str:
    rep = res.report
    lines = []
    c = rep.classifier
    if c is not None and c.accuracy_ref is not None:
        lines.append(f"accuracy on {rep.sequences} test utterances: float (onnxruntime) "
                     f"{100 * c.accuracy_ref:.2f} %, int8 (simulator) {100 * c.accuracy_got:.2f} %, "
                     f"top-1 agreement {100 * c.top1_agreement:.2f} %")
    for r in rep.c:
        lines.append(f"simulator vs C [{r.name}]: {r.mismatched_sequences} mismatched sequences "
                     f"of {r.sequences} ({r.seconds:.1f} s)")
    if res.target_skipped:
        lines.append(f"Cortex-M4 run skipped: {res.target_skipped}")
    lines += ["", format_analysis(res.analysis)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="retrain with torch and export first")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "japanese_vowels")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N utterances")
    ap.add_argument("--no-target", action="store_true", help="skip the emulated Cortex-M4 run")
    args = ap.parse_args(argv)
    onnx_path = MODELS / "japanese_vowels.onnx"
    if args.train:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: using the shipped ONNX model")
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            onnx_path = train_and_export(args.out.parent / "japanese_vowels_retrained.onnx")
    t0 = time.perf_counter()
    res = run(onnx_path, args.out, limit=args.limit, target=not args.no_target)
    print(summary(res))
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0 if res.report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
