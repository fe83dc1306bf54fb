"""Figures the docs state twice agree with each other and with the shipped models' metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"


def test_quantization_doc_t400_row_matches_results():
    q = (ROOT / "docs" / "quantization.md").read_text()
    sec = q[q.index("### 13.2"):q.index("### 13.3")]
    row = next(line for line in sec.splitlines() if line.startswith("| adding, T = 400 |"))
    nums = re.findall(r"(\d+)\**\s*/ 2560[^|]*?mean err (0\.\d+)", row)
    res = (ROOT / "docs" / "results.md").read_text()
    rrow = next(line for line in res.splitlines() if line.startswith("| adding problem, T = 400 |"))
    cells = re.findall(r"(\d+) wrong \((0\.\d+)\)", rrow)
    assert nums == cells[:2] == [("0", "0.0030"), ("0", "0.0071")]
    meta = json.loads((MODELS / "adding_T400.json").read_text())["float_test_score"]
    assert (meta["wrong"], f"{meta['mean_abs_error']:.4f}") == (0, "0.0030")
