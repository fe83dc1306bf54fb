"""What the benchmark tables note about the machine: the CPU model and tool versions.

Used by bench/bench_host.py, bench/bench_target.py and bench/peers/common.py (each puts
``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def cpu_model(default: str) -> str:
    """The first ``model name`` of /proc/cpuinfo, else ``default``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def tool_version(cmd: list[str], missing: str = "?") -> str:
    """The first line ``cmd`` (e.g. ``["gcc", "--version"]``) prints, else ``missing``."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return missing
    return out.splitlines()[0].strip() if out else missing
