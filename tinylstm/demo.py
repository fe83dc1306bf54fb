"""`make demo`: the whole job on the shipped example model.

Inspects the JapaneseVowels LSTM classifier (examples/models/, trained by
scripts/train_models.py), quantizes it on its calibration set, generates the C library, compiles
it on the host and validates float (onnxruntime) vs int8 simulator vs C on the test split.
Output: ``demo_out/`` (the C library, model.tlq, report.md/json).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import TinyLstmError

MODEL = "japanese_vowels"


def _models_dir() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        d = base / "examples" / "models"
        if (d / f"{MODEL}.onnx").is_file():
            return d
    raise TinyLstmError("examples/models/japanese_vowels.onnx not found: run `make demo` from the repository root")


def main(argv: list[str] | None = None) -> int:
    from .cbuild.toolchain import missing_reason
    from .ir.summary import format_summary, summarize
    from .onnx_import import load_onnx
    from .pipeline import build

    out = Path(argv[0]) if argv else Path("demo_out")
    d = _models_dir()
    onnx_path = d / f"{MODEL}.onnx"
    print(f"== 1. inspect {onnx_path}\n")
    print(format_summary(summarize(load_onnx(onnx_path))))
    compilers = [c for c in ("gcc", "clang") if missing_reason(c) is None]
    if not compilers:
        print(f"\nnote: {missing_reason('gcc')}; validating without the compiled C")
    print(f"\n== 2. build: quantize, generate C, compile ({', '.join(compilers) or 'none'}), validate\n")
    res = build(onnx_path, d / f"{MODEL}_calib.npz", out, data=d / f"{MODEL}_test.npz",
                compilers=tuple(compilers), prefix="jv")
    print(res.summary())
    print(f"\nthe C library is in {out}/ (jv.h, jv.c, tl_*.c); see docs/c-api.md to use it.")
    return 0 if res.report.ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except TinyLstmError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
