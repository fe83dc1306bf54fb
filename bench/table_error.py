"""Print docs/quantization.md §13.1: the error of the standard table (§8.1) and of the custom
tables (§8.2) against float64, in LSB of Q(15), over every input.

    .venv/bin/python bench/table_error.py

Standard table: sigmoid_q15 and tanh_q15 of inputs Q(16) (the default pre-activation format)
over [-17, 17] (past the grid's end at 16), and the cell-output tanh of every int16 cell in Q(9),
Q(11) and Q(13). Custom tables (used for other activations, and for sigmoid / tanh only with
``lut_interp=False``; built here for sigmoid and tanh to compare): ``lut_error``. Takes about
a minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tinylstm.fixedpoint import sigmoid_q15, tanh_q15  # noqa: E402
from tinylstm.ir import SIGMOID, TANH  # noqa: E402
from tinylstm.quantize.luts import build_lut, lut_error, standard_table  # noqa: E402

SIZES = (128, 256, 512, 1024, 2048)
P = 16


def standard_errors(size: int) -> tuple[float, float, float]:
    """(sigmoid, tanh at Q(16), worst cell tanh over Q(9), Q(11), Q(13)) max |error| in LSB."""
    d, frac = standard_table(size)
    z = np.arange(-17 * 2**P, 17 * 2**P + 1, dtype=np.int64)
    x = z * 2.0**-P
    es = np.abs(sigmoid_q15(z, d, P - frac) - 2**15 / (1 + np.exp(-x))).max()
    et = np.abs(tanh_q15(z, d, P - frac) - 2**15 * np.tanh(x)).max()
    c = np.arange(-32768, 32768, dtype=np.int64)
    eh = max(np.abs(tanh_q15(c, d, k - frac) - 2**15 * np.tanh(c * 2.0**-k)).max() for k in (9, 11, 13))
    return float(es), float(et), float(eh)


def main() -> None:
    print("| entries | standard sigmoid | standard tanh | standard tanh of the cell | custom sigmoid, interp "
          "| custom tanh, interp | custom sigmoid, nearest |")
    print("|---|---|---|---|---|---|---|")
    for size in SIZES:
        es, et, eh = standard_errors(size)
        cs = lut_error(build_lut(SIGMOID, P, size=size), SIGMOID)
        ct = lut_error(build_lut(TANH, P, size=size), TANH)
        cn = lut_error(build_lut(SIGMOID, P, size=size, interp=False), SIGMOID)
        bold = "**" if size == 512 else ""
        print(f"| {bold}{size + 1}{' (default)' if size == 512 else ''}{bold} | {bold}{es:.2f}{bold} | "
              f"{bold}{et:.2f}{bold} | {eh:.2f} | {cs:.2f} | {ct:.2f} | {cn:.1f} |", flush=True)


if __name__ == "__main__":
    main()
